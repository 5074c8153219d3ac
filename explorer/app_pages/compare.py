"""Compare: the seed notebook's grid of information planes, one panel per run or per seed group,
titled with the keys that vary among them (and a dead/diverged badge); or every run or group
overlaid on one information plane, one colour each. Per seed group, over the runs the statistics
keep and those still training (explorer.phase_charts.left_out: dead, diverged and unfinished runs
left out, as the Phases page and the report's plane leave them out)."""

import pandas as pd
import streamlit as st

from explorer import charts, charts_infoplane, cohort_tables, phase_charts, ui, viewport

store, all_runs, selected = ui.page_start("Compare")

c1, c2, c3, c4 = st.columns([2, 2, 2, 2])
grouping = c3.radio("Panels", ui.offered("panels", ["per run", "per seed group"]), key="panels",
                    bind="query-params", horizontal=True)
by_group = grouping == "per seed group"
# a panel per seed group is over every selected seed (up to MAX_GROUP_RUNS runs), per run MAX_PAGE_RUNS at most
selection = ui.cut_selection(all_runs, selected, ui.runs_limit(by_group))
with_mi = ui.runs_with(store, "mi", selection, "Mutual information")

choices = store.mi_choices(with_mi)
estimators = list(dict.fromkeys(choices["estimator"] + " " + choices["params"]))
estimator = c1.selectbox("Estimator", ui.offered("estimator", estimators, "estimator"), key="estimator",
                         bind="query-params")
name, params = estimator.split(" ", 1)
splits = ui.ordered_splits(choices.loc[choices["estimator"] == name, "split"])
split = c2.radio("Split", ui.offered("split", splits, "split"), key="split", bind="query-params", horizontal=True)
ui.recorded_by_fewer(choices, with_mi, name, params, split)
layout = c4.radio("Layout", ui.offered("layout", ["grid", "overlay"]), key="layout",
                  bind="query-params", horizontal=True,
                  help="grid: one information plane per run or group; overlay: all on one plane, one colour each")
d1, d2, d3, d4 = st.columns([2, 2, 2, 2])
if layout == "grid":
    columns = d1.selectbox("Columns", ui.offered("plane_cols", ["auto", *range(1, charts.MAX_COLUMNS + 1)]),
                           key="plane_cols", bind="query-params",
                           help="auto: as many square planes as fit the window (1 when narrow, 4 at 1920 px)")
    axes = d2.radio("Axes", ui.offered("axes", ["shared", "free"]), key="axes", bind="query-params", horizontal=True)
    color_by = d3.radio("Colour", ui.offered("color", list(charts_infoplane.COLOR_BY)), key="color",
                        bind="query-params", horizontal=True)
if by_group:
    # mean first: the report's planes and the Phases page's statistics are over the seeds' mean
    aggregate = d4.radio("Over seeds", ui.offered("agg", ["mean", "median"]), key="agg",
                         bind="query-params", horizontal=True)
    spread = "none"
    if layout == "grid":
        spread = st.radio("Spread over seeds", ui.offered("spread", ["min-max", "IQR", "none"]), key="spread",
                          bind="query-params",
                          horizontal=True)
    spread = None if spread == "none" else spread
else:
    aggregate, spread = None, None


@st.fragment(run_every=ui.live_interval(all_runs, with_mi))
def planes() -> None:
    """The information planes; redrawn every second while a selected run trains."""
    ui.live_caption(all_runs, with_mi)
    if by_group:
        measured = all_runs[all_runs["run_id"].isin(with_mi)]
        why = phase_charts.left_out(measured)      # what the statistics leave out, as the Phases page counts it
        counts = [f"{int((why == reason).sum())} {reason}" for reason in phase_charts.LEFT_OUT if (why == reason).any()]
        st.caption("Over each group's seeds the statistics keep, and those still training, at the epochs every one "
                   "of them has logged: a group's path ends where its shortest run ends, so that no point is over "
                   "fewer seeds (a seed leaving would move the mean)"
                   + (f"; {int(pd.notna(why).sum())} of {len(measured)} runs left out ({', '.join(counts)})."
                      if counts else "."))
        titles = ui.group_titles(store, all_runs, selection)
        all_left_out = pd.Series(pd.notna(why), index=measured.index).groupby(measured["group_id"], sort=False).all()
        if layout == "grid" and (gone := [titles[group] for group in all_left_out.index[all_left_out]]):
            st.caption(ui.plain(f"No panel for {', '.join(gone)}: every seed of it is left out."))
        kept = measured.loc[pd.isna(why), "run_id"].tolist()
        if not kept:
            st.info("No run the statistics keep (completed, neither dead nor diverged) or still training among the "
                    "selected runs with MI: nothing to draw per seed group.", icon=":material/info:")
            return
        frame = store.mi_over_seeds(kept, name, params, split, aggregate)
    else:
        frame = store.mi(with_mi, name, split, params)
    frame = ui.with_panels(store, all_runs, frame, selection, by_group)
    if frame.empty:
        st.info(f"No {ui.plain(split)} MI with {ui.plain(estimator)}: {ui.NOT_RECORDED}.")
        return
    if not frame["i_xt"].notna().any():
        st.info(ui.plain(cohort_tables.no_i_xt_note(name, cohort_tables.NO_PLANE)), icon=":material/info:")
        return
    if name == "ksg":   # rows written before ksg left i_xt NULL hold h(T) there
        st.caption(cohort_tables.LEGACY_KSG)
    ui.plane_captions(store, frame["run_id"].unique().tolist() if "run_id" in frame else kept, name, params, split,
                      ui.group_titles(store, all_runs, selection))
    names = ui.cohort_names(all_runs, selection)   # one group's seeds under two cohorts are no two groups
    varying = ", ".join(store.varying_keys(selection)) or (
        f"none; the groups differ only in name ({', '.join(names)})"
        if len(names) > 1 and len(store.groups(selection)) > 1 else "none")
    title = f"{name} {params}, {split} split" + (f", {aggregate} over seeds" if aggregate else "")
    if layout == "grid":
        st.caption(f"Varying keys: {ui.plain(varying)}. " +
                   ("Colour: epoch; shape: layer; the faint lines join each epoch's layers." if color_by == "epoch"
                    else "Colour and shape: layer; the lines follow each layer over the epochs."))
        width = viewport.main_width()
        n_columns = charts_infoplane.auto_columns(width) if columns == "auto" else int(columns)
        chart = charts_infoplane.infoplane_grid(frame, columns=n_columns, shared_axes=axes == "shared",
                                                spread=spread, title=title, color_by=color_by, page_width=width)
    else:
        followed = f"each group's {aggregate} over its seeds" if aggregate else "each run"
        st.caption(f"Varying keys: {ui.plain(varying)}. Colour: seed group (the same on every "
                   f"page); shape: layer; the lines follow {followed}, layer by layer, over the epochs.")
        chart = charts_infoplane.infoplane_overlay(frame, title=title,
                                                   color_domain=ui.group_domain(store, all_runs, selection))
    ui.show_chart(chart, frame, f"infoplane_{split}")


planes()
