"""Compare: the seed notebook's grid of information planes, one panel per run or per seed group,
titled with the keys that vary among them."""

import streamlit as st

from explorer import charts, ui

store, all_runs, selection = ui.selection_page("Compare")

with_mi = ui.runs_with(store, "mi", selection, "Mutual information")

choices = store.mi_choices(with_mi)
estimators = list(dict.fromkeys(choices["estimator"] + " " + choices["params"]))
c1, c2, c3, c4, c5 = st.columns([2, 2, 1, 2, 2])
estimator = c1.selectbox("Estimator", estimators, key="estimator", bind="query-params")
name, params = estimator.split(" ", 1)
splits = ui.ordered_splits(choices.loc[choices["estimator"] == name, "split"])
split = c2.radio("Split", splits, key="split", bind="query-params", horizontal=True)
columns = c3.number_input("Columns", 1, 6, 2, key="cols", bind="query-params")
axes = c4.radio("Axes", ["shared", "free"], key="axes", bind="query-params", horizontal=True)
grouping = c5.radio("Panels", ["per run", "per seed group"], key="panels", bind="query-params", horizontal=True)
by_group = grouping == "per seed group"
if by_group:
    g1, g2 = st.columns(2)
    aggregate = g1.radio("Over seeds", ["median", "mean"], key="agg", bind="query-params", horizontal=True)
    spread = g2.radio("Spread", ["min-max", "IQR", "none"], key="spread", bind="query-params", horizontal=True)
    frame = store.mi_over_seeds(with_mi, name, params, split, aggregate)
    spread = None if spread == "none" else spread
else:
    aggregate, spread = None, None
    frame = store.mi(with_mi, name, split, params)
frame = store.with_panels(frame, with_mi, by_group)

if frame.empty:
    st.info(f"No {split} MI with {estimator}: {ui.NOT_RECORDED}.")
    st.stop()
varying = store.varying_keys(with_mi)
title = f"{name} {params}, {split} split" + (f", {aggregate} over seeds" if aggregate else "")
st.caption("Varying keys: " + (", ".join(varying) or "none") + ". Colour: epoch; shape: layer; "
           "the faint lines join each epoch's layers.")
chart = charts.infoplane_grid(frame, columns=int(columns), shared_axes=axes == "shared", spread=spread, title=title)
ui.show_chart(chart, frame, f"infoplane_{split}")
