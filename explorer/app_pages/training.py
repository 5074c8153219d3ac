"""Training curves: train and test accuracy and loss per epoch, per run or over seeds with a band;
overlaid on one chart (loss on a log axis) or as the seed notebook's small multiples of accuracy,
one panel per run or seed group. Dead and diverged runs carry a badge in their names."""

import streamlit as st

from explorer import charts, ui

store, all_runs, selection = ui.selection_page("Training curves")

with_metrics = ui.runs_with(store, "metrics", selection, "Accuracy and loss")

left, middle, right, far = st.columns(4)
view = left.radio("View", ["overlay", "small multiples"], key="curves", bind="query-params", horizontal=True)
grouping = middle.radio("Lines", ["per run", "per seed group"], key="lines", bind="query-params", horizontal=True)
aggregate = right.radio("Over seeds", ["median", "mean"], key="agg", bind="query-params", horizontal=True,
                        disabled=grouping != "per seed group")
columns = far.number_input("Columns", 1, charts.MAX_COLUMNS, 2, key="cols", bind="query-params",
                           disabled=view != "small multiples")
training_now = set(all_runs.loc[all_runs["status"] == "running", "run_id"]) & set(with_metrics)


@st.fragment(run_every=5 if training_now else None)
def curves() -> None:
    """The curves; redrawn every few seconds while a selected run is still training."""
    if training_now:
        store.refresh()
        st.caption(f"{len(training_now)} selected run(s) still training: the curves refresh every 5 s.")
    by_group = grouping == "per seed group"
    if by_group:
        frame = store.metrics_over_seeds(with_metrics, aggregate)
        title = f"{aggregate} over seeds" + (", band: min to max" if view == "overlay" else "")
    else:
        frame = store.metrics(with_metrics)
        title = None
    frame = ui.with_panels(store, all_runs, frame, with_metrics, by_group=by_group)
    stride = charts.epoch_stride(frame["epoch"].max())
    drawn = charts.every_nth_epoch(frame, stride)
    if stride > 1:
        st.caption(f"The lines go through one epoch in {stride} (at most {charts.LINE_POINTS} points a line) "
                   "and the last; the CSV holds every epoch.")
    if view == "overlay":
        st.caption("Colour: seed group (the seeds of one config share it); dashes: split. Loss on a log axis.")
        chart = charts.training_curves(drawn, band=by_group, title=title, color_field="group")
    else:
        chart = charts.accuracy_grid(drawn, columns=int(columns), title=title)
    ui.show_chart(chart, frame, "training_curves" if view == "overlay" else "accuracy_grid")


curves()
