"""Training curves: train and test accuracy and loss per epoch, per run or over seeds with a band."""

import streamlit as st

from explorer import charts, ui

store, all_runs, selection = ui.selection_page("Training curves")

with_metrics = ui.runs_with(store, "metrics", selection, "Accuracy and loss")

left, right = st.columns(2)
grouping = left.radio("Lines", ["per run", "per seed group"], key="lines", bind="query-params", horizontal=True)
aggregate = right.radio("Over seeds", ["median", "mean"], key="agg", bind="query-params", horizontal=True,
                        disabled=grouping != "per seed group")
training_now = set(all_runs.loc[all_runs["status"] == "running", "run_id"]) & set(with_metrics)


@st.fragment(run_every=5 if training_now else None)
def curves() -> None:
    """The curves; redrawn every few seconds while a selected run is still training."""
    if training_now:
        store.refresh()
        st.caption(f"{len(training_now)} selected run(s) still training: the curves refresh every 5 s.")
    if grouping == "per seed group":
        frame = store.metrics_over_seeds(with_metrics, aggregate)
        title = f"{aggregate} over seeds, band: min to max"
    else:
        frame = store.metrics(with_metrics)
        title = None
    frame = store.with_panels(frame, with_metrics, by_group=grouping == "per seed group")
    chart = charts.training_curves(frame, band=grouping == "per seed group", title=title)
    ui.show_chart(chart, frame, "training_curves")


curves()
