"""Phases: does a layer compress, and do seed groups differ? Per layer, I(X;T) and I(Y;T) against
epoch, a line per seed group with its band over seeds, the peak and SNR-drop epochs marked, the runs
the statistics leave out (dead, diverged, unfinished) left out and counted in the legend, runs still
training drawn (explorer.phase_charts); beside it the statistics over
seeds of the `phases` view (ibstore.stats, the `phase_stats` view's numbers): at a glance whether
the last hidden layer compresses (and, on demand, that verdict under every estimator recorded), per
group and layer compression with its interval and its test against the noise floor, every group
against a reference group, and, where the groups lie along one numeric key, the trend along it
(ibstore.trend). Tables download as CSV and LaTeX; a button writes the cohorts' `trainer report`."""

import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from explorer import charts, cohort_tables, phase_charts, report, seed_bands, ui, viewport
from explorer.results import ResultStore
from explorer.run_rows import in_order
from ibstore import layout, stats

REPORT_BANDS = {long: short for short, long in phase_charts.BANDS.items()}   # the page's band -> --band
GLANCE_WIDTH = 480   # px: the at-a-glance table goes beside the chart when the main column has this to spare


def _store(root: str) -> ResultStore:
    results = ui.store()
    assert str(results.root) == root, (results.root, root)   # the cache keys name the store's root
    return results


# A line per seed group, not a panel per run: a 50-seed cohort is read whole.
store, all_runs, selection = ui.selection_page("Phases", ui.MAX_GROUP_RUNS)
with_mi = ui.runs_with(store, "mi", selection, "Mutual information")


@st.cache_data(show_spinner=False, max_entries=16)
def recorded(root: str, version: int, run_ids: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The estimators, params and splits these runs recorded, and their layers' names: queries over
    every selected run's MI, asked once per content of the root."""
    results = _store(root)
    return results.mi_choices(list(run_ids)), results.layer_names(list(run_ids))


choices, layer_names = recorded(str(store.root), store.version(), tuple(with_mi))
estimators = list(dict.fromkeys(choices["estimator"] + " " + choices["params"]))
c1, c2, c3, c4 = st.columns([3, 2, 3, 2])
estimator = c1.selectbox("Estimator", ui.offered("estimator", estimators, "estimator"), key="estimator",
                         bind="query-params")
name, params = estimator.split(" ", 1)
splits = ui.ordered_splits(choices.loc[(choices["estimator"] == name) & (choices["params"] == params), "split"])
split = c2.radio("Split", ui.offered("split", splits, "split"), key="split", bind="query-params", horizontal=True)
ui.recorded_by_fewer(choices, with_mi, name, params, split)
band = c3.radio("Band over seeds", ui.offered("band", seed_bands.BANDS), key="band",
                bind="query-params", horizontal=True,
                help="a picture of the spread at each epoch; the tables give t intervals of each run's peak, "
                     "compression and SNR-drop epoch over seeds")
ui.offered("log_epochs", ["true", "false"], any_case=True)      # what Streamlit's binding reads
log_epochs = c4.toggle("Log epoch axis", True, key="log_epochs", bind="query-params")

# a layer number with every name it has in the selection: networks of different depths name one
# number differently (3 is the output of one and dense_3 of a deeper one): "3 · dense_3 / output"
layer_names = layer_names.drop_duplicates(["layer", "layer_name"]).sort_values(["layer", "layer_name"])
names = {int(layer): " / ".join(name for name in named if isinstance(name, str)) or None   # NULL: older files
         for layer, named in layer_names.groupby("layer")["layer_name"]}
last_hidden = cohort_tables.last_hidden_layer(names) if names else None


def layer_title(layer: int) -> str:
    return charts.layer_label(layer, names[layer]) + (" (last hidden)" if layer == last_hidden else "")


d1, d2, d3 = st.columns([3, 2, 2])
layers = ui.linked_multiselect(d1, "Layers", list(names), "layers", layer_title, what="layer")
titles = ui.group_titles(store, all_runs, selection)    # group_id -> its title and badges, in colour order
measured = all_runs[all_runs["run_id"].isin(with_mi)]
groups = [g for g in titles if g in set(measured["group_id"])]
live = set(measured.loc[np.equal(stats.exclusions(measured), None), "group_id"])   # as cohort_tables.live_groups
offered = [g for g in groups if g in live] or groups
reference = ui.linked_selectbox(d2, "Reference group", offered, "reference", lambda g: titles[g],
                               offered.index(cohort_tables.first_alive(measured, offered)), what="seed group",
                               help="a group with a run kept (not dead, diverged or unfinished), by default the "
                                    "first with two; every other "
                                    "such group is compared with it, or in a grid of several keys with its nearest "
                                    "groups at its values")
if not layers:
    st.info("No layer chosen: pick one or more above.", icon=":material/layers:")
    st.stop()
if twice := cohort_tables.same_networks_note(store, selection, {g: titles[g] for g in groups}):
    st.warning(ui.plain(twice), icon=":material/content_copy:")
if mixed := cohort_tables.mixed_groups_note(store, selection, {g: titles[g] for g in groups}):
    st.warning(ui.plain(mixed), icon=":material/call_split:")
if versions := cohort_tables.data_versions_note(measured, {g: titles[g] for g in groups},
                                                store.flat_configs(list(measured["run_id"]))):
    st.warning(ui.plain(versions), icon=":material/dataset:")
# Saxe et al. (2018): is a layer's compression the estimator's? Every estimator with I(X;T) on this split
# side by side, on demand (each is its own statistics over every group, as the report computes them).
measured_phases = ui.phases(store, list(with_mi))       # cached: the tables read it too
estimator_phases = measured_phases[(measured_phases["estimator"] == name) & (measured_phases["params"] == params)]
if ceilings := cohort_tables.split_ceilings_note(estimator_phases, split):
    st.caption(ui.plain(ceilings))
with_i_xt = measured_phases[(measured_phases["split"] == split) & measured_phases["peak_i_xt"].notna()]
measured_on_split = set(with_i_xt["estimator"] + " " + with_i_xt["params"])     # ksg records no I(X;T)
on_split = [choice for choice in estimators if choice in measured_on_split]    # the Estimator box's order
if len(on_split) < 2 and (linked_across := st.query_params.get("across")) is not None:   # no toggle to read it
    if ui.from_link("across") and linked_across.lower() != "false":    # not this session's own choice
        st.warning(f"The link's across={ui.plain(ui.cut(linked_across))} is dropped: fewer than two estimators "
                   f"record I(X;T) on the {split} split of these runs.", icon=":material/link_off:")
    st.query_params.pop("across")
ui.offered("across", ["true", "false"], any_case=True)      # what Streamlit's binding reads
across = len(on_split) > 1 and d3.toggle(
    "Across estimators", False, key="across", bind="query-params",
    help=f"does the last hidden layer compress under each of the {len(on_split)} estimators with I(X;T) on the "
         f"{split} split? (each one's statistics, computed on demand)")


def phase_rows(root: str, run_ids: tuple[str, ...], estimator: str, params: str, split: str) -> pd.DataFrame:
    """The `phases` rows of these runs for one estimator, params and split (ui.phases caches the view)."""
    phases = ui.phases(_store(root), list(run_ids))
    return phases[(phases["estimator"] == estimator) & (phases["params"] == params) & (phases["split"] == split)]


def curve_rows(root: str, run_ids: tuple[str, ...], estimator: str, params: str, split: str) -> pd.DataFrame:
    """The I(X;T) curves of these runs for one estimator, params and split (ui.phase_curves caches them)."""
    curves = ui.phase_curves(_store(root), list(run_ids))
    return curves[(curves["estimator"] == estimator) & (curves["params"] == params) & (curves["split"] == split)]


@st.cache_data(show_spinner=False, max_entries=64)
def group_stats(root: str, version: int, run_ids: tuple[str, ...], estimator: str, params: str,
                split: str) -> pd.DataFrame:
    """ibstore.stats.phase_stats of those rows (the `phase_stats` view's numbers): t intervals and
    permutation tests, worth caching."""
    return stats.phase_stats(phase_rows(root, run_ids, estimator, params, split),
                             curve_rows(root, run_ids, estimator, params, split))


@st.cache_data(show_spinner=False, max_entries=16)
def across_estimators(root: str, version: int, run_ids: tuple[str, ...], estimators: tuple[str, ...], split: str,
                      labels: tuple[tuple[str, str], ...]) -> tuple[pd.DataFrame, str | None]:
    """`cohort_tables.across_estimators` and its sentence: each estimator's glance (`estimators`: those
    with I(X;T)) of the groups `labels` names, in their order."""
    titles, glances = dict(labels), []
    for estimator in estimators:
        estimator_name, estimator_params = estimator.split(" ", 1)
        rows = group_stats(root, version, run_ids, estimator_name, estimator_params, split)
        rows = in_order(rows[rows["group_id"].isin(titles)].assign(group=lambda f: f["group_id"].map(titles)),
                        "group_id", titles)
        glances.append(cohort_tables.glance_table(rows, estimator))
    glance = pd.concat(glances, ignore_index=True) if glances else pd.DataFrame()
    return cohort_tables.across_estimators(glance), cohort_tables.across_estimators_note(glance)


@st.cache_data(show_spinner=False, max_entries=64)
def comparison(root: str, version: int, run_ids: tuple[str, ...], estimator: str, params: str, split: str,
               layers: tuple[int, ...], labels: tuple[tuple[str, str], ...], reference: str
               ) -> tuple[pd.DataFrame, str | None, pd.DataFrame, str | None]:
    """The comparison table of `layers` and the sentence naming which groups differ, over every layer
    recorded (q is over those); then the last hidden layer's compression over the floor against the
    reference and its sentence (q over the groups alone: `cohort_tables.last_hidden_comparisons`)."""
    these, labelled = phase_rows(root, run_ids, estimator, params, split), dict(labels)
    store = _store(root)
    compared = cohort_tables.reference_comparisons(these, labelled, reference, ui.phase_curves(store, list(run_ids)),
                                                   store.flat_configs(list(run_ids)))
    last = cohort_tables.last_hidden_comparisons(compared, these)
    last_notes = [None if last.empty else cohort_tables.differences_note(last, labelled, "groups",
                                                                         "at the last hidden layer"),
                  cohort_tables.other_depth_note(compared, last, labelled)]
    differences = [cohort_tables.differences_note(compared, labelled), cohort_tables.horizon_note(compared),
                   cohort_tables.two_depths_note(compared, these, labelled)]
    return (cohort_tables.comparison_table(these, labelled, layers=layers, compared=compared),
            " ".join(note for note in differences if note) or None,
            cohort_tables.last_hidden_comparison_table(last, labelled) if not last.empty else pd.DataFrame(),
            " ".join(note for note in last_notes if note) or None)


@st.cache_data(show_spinner=False, max_entries=64)
def trend_rows(root: str, version: int, run_ids: tuple[str, ...], estimator: str, params: str,
               split: str) -> tuple[str, pd.DataFrame] | None:
    """The key the seed groups lie along and the trends of the compared quantities along it, over
    every layer recorded (q is over those); None where they lie along no one numeric key."""
    along = cohort_tables.trend_key(_store(root), list(run_ids))
    if along is None:
        return None
    return along.key, along.trends(phase_rows(root, run_ids, estimator, params, split),
                                   ui.phase_curves(_store(root), list(run_ids)))


@st.cache_data(show_spinner=False, max_entries=64)
def chart_data(root: str, version: int, run_ids: tuple[str, ...], measured_ids: tuple[str, ...], estimator: str,
               params: str, split: str, layers: tuple[int, ...]) -> phase_charts.PhaseData:
    """The chart's MI rows and marks (every group of `run_ids` in the legend; the phases of
    `measured_ids`, those with MI, are the tables' cached ones): a change of band or axis only
    redraws them."""
    results = _store(root)
    return results.phase_data(list(run_ids), estimator, params, split, list(layers),
                              phases=ui.phases(results, list(measured_ids)))


def table_downloads(table: pd.DataFrame, name: str) -> None:
    csv_button, tex_button = st.columns([1, 1], width=220)
    csv_button.download_button("CSV", data=lambda: table.to_csv(index=False), file_name=f"{name}.csv",
                               mime="text/csv", on_click="ignore", key=f"csv-{name}", icon=":material/table:")
    tex_button.download_button("LaTeX", data=lambda: table.to_latex(index=False, escape=True),
                               file_name=f"{name}.tex", mime="text/x-tex", on_click="ignore", key=f"tex-{name}",
                               icon=":material/functions:")


@st.fragment(run_every=ui.live_interval(all_runs, with_mi))
def phase_panels() -> None:
    """The chart and the tables; redrawn every second while a selected run trains."""
    ui.live_caption(all_runs, with_mi)
    root, version, measured_ids = str(store.root), store.version(), tuple(with_mi)
    width = viewport.main_width()
    if width >= charts.PAGE_WIDTH + GLANCE_WIDTH:
        left, right = st.columns([charts.PAGE_WIDTH, width - charts.PAGE_WIDTH], gap="medium")
    else:                                         # 1280 px and narrower: the chart needs the column
        left, right = st.container(), st.container()
    with left:
        st.caption("Line: the mean over the seeds the statistics keep and those still training, dead, diverged and "
                   "unfinished ones (interrupted or failed) left out (counted in the legend), at the epochs every "
                   "one of them has logged (a line ends where its group's shortest run ends); "
                   f"band: {ui.plain(band)} (none for one seed; cut to what the values can be, 0 to H(X) for "
                   "I(X;T) of the binning family, the kde bounds and EDGE, 0 to H(Y) for I(Y;T) of the binning "
                   f"family); {phase_charts.MARKS_SAID}. "
                   "Colours: the seed groups', the same on every page.")
        data = chart_data(root, version, tuple(selection), measured_ids, name, params, split, tuple(layers))
        drawn = phase_charts.lines(data, REPORT_BANDS[band])     # the CSV too (a new user's held no curve)
        chart = phase_charts.draw(data, title=f"{name} {params}, {split} split", log_epochs=log_epochs,   # kept in
                                  drawn=drawn)                                                         # downloads
        ui.show_chart(chart, drawn, f"phases_{name}_{split}_{REPORT_BANDS[band]}")   # which band the CSV holds
    these = phase_rows(root, measured_ids, name, params, split)
    if cohort_tables.records_no_i_xt(these):
        with right:
            st.info(ui.plain(cohort_tables.no_i_xt_note(name)), icon=":material/info:")
        return
    group_rows = group_stats(root, version, measured_ids, name, params, split)
    group_rows = group_rows[group_rows["group_id"].isin(titles)].assign(group=lambda f: f["group_id"].map(titles))
    group_rows = in_order(group_rows, "group_id", titles)
    with right:
        if last_hidden is not None:
            glance = cohort_tables.glance_table(group_rows, estimator).drop(columns=["estimator"])
            if glance["layer"].nunique() == 1:     # every group's last hidden layer is this one
                st.subheader(f"Does {ui.plain(layer_title(last_hidden))} compress?")
                glance = glance.drop(columns=["layer"])
            else:                                  # networks of different depths: each group's own
                st.subheader("Does each group's last hidden layer compress?")
            if note := cohort_tables.glance_note(group_rows):
                st.markdown(ui.plain(note))
            if from_start := cohort_tables.last_hidden_from_start_note(these, group_rows, titles):
                st.warning(ui.plain(from_start), icon=":material/first_page:")
            ui.show_table(glance)
            table_downloads(glance, f"last_hidden_{name}_{split}")
        if across:
            table, note = across_estimators(root, version, measured_ids, tuple(on_split), split,
                                            tuple(titles.items()))
            st.subheader("Across estimators")
            st.markdown(ui.plain(note or f"Fewer than two estimators recorded I(X;T) on the {split} split."))
            if not table.empty:
                ui.show_table(table)
                table_downloads(table, f"last_hidden_across_estimators_{split}")
        st.caption(f"Mean [95 % t interval] over the live seeds; {stats.COMPRESSION_TEST}; dead, diverged and "
                   f"unfinished runs are left out and counted. {cohort_tables.ONE_LAYER} {cohort_tables.VERDICTS} "
                   f"{cohort_tables.UNDECIDED}")
    st.subheader("Per seed group and layer")
    st.caption(cohort_tables.EXCESS_BOUND + " " + cohort_tables.ADJUSTED + " " + cohort_tables.VERDICTS)
    if ceiling := cohort_tables.ceiling_note(these[these["layer"].isin(layers)], titles):
        st.warning(ui.plain(ceiling), icon=":material/vertical_align_top:")
    from_start_note = (cohort_tables.from_start_note if last_hidden is None     # else the glance's names its own
                       else cohort_tables.below_glance_from_start_note)
    if from_start := from_start_note(these[these["layer"].isin(layers)], group_rows, titles):
        st.warning(ui.plain(from_start), icon=":material/first_page:")
    if died := cohort_tables.units_died_note(these[these["layer"].isin(layers)], titles):
        st.warning(ui.plain(died), icon=":material/heart_broken:")
    table = cohort_tables.group_table(group_rows[group_rows["layer"].isin(layers)])
    ui.show_table(table)
    if named := cohort_tables.left_out_note(group_rows[group_rows["layer"].isin(layers)]):   # the table's layers
        st.caption(ui.plain(named))
    table_downloads(table, f"phase_stats_{name}_{split}")
    compared, differences, last_compared, last_differences = comparison(
        root, version, measured_ids, name, params, split, tuple(layers), tuple(titles.items()), reference)
    if last_differences:
        # the group every row is compared with: in a grid it need not be the reference (a reviewer's)
        against = titles[reference] if last_compared.empty else last_compared["b"].iloc[0]
        one = last_compared.empty or last_compared["b"].nunique() == 1
        st.subheader(cohort_tables.LAST_HIDDEN_QUESTION.format(ui.plain(against) if one
                                                               else cohort_tables.EACH_COMPARED))
        st.caption(ui.plain(cohort_tables.LAST_HIDDEN_COMPARED))
        st.markdown(ui.plain(last_differences))
        if not last_compared.empty:
            ui.show_table(last_compared)
            table_downloads(last_compared, f"last_hidden_comparison_{name}_{split}")
    st.subheader("Compared" + (cohort_tables.compared_title(compared["b"], ui.plain) if not compared.empty
                               else f" with {ui.plain(titles[reference])}" if reference else ""))
    left_out = cohort_tables.not_compared(these, titles)
    if compared.empty:
        st.caption("Fewer than two seed groups with a run kept: nothing to compare. " + ui.plain(left_out or ""))
    else:
        st.caption(cohort_tables.COMPARED_CAPTION + " The seed is the unit. " + cohort_tables.ADJUSTED + " " +
                   ui.plain(left_out or ""))
        if logged := cohort_tables.schedule_note(curve_rows(root, measured_ids, name, params, split), these, titles):
            st.warning(ui.plain(logged), icon=":material/schedule:")
        st.markdown(ui.plain(differences))
        ui.show_table(compared)
        table_downloads(compared, f"comparison_{name}_{split}")
    if (along := trend_rows(root, version, measured_ids, name, params, split)) is None:
        if note := cohort_tables.not_a_number_note(_store(root), list(measured_ids)):
            st.warning(ui.plain(note), icon=":material/timeline:")
    else:
        key, trends = along
        st.subheader(f"Trend along {ui.plain(key)}")
        st.caption(ui.plain(cohort_tables.TREND_CAPTION.format(key=key)))
        if note := cohort_tables.trend_note(trends, key):
            st.markdown(ui.plain(note))
        if cut := cohort_tables.horizon_note(trends):
            st.caption(ui.plain(cut))
        if trends["p_value"].notna().any():       # else the note says why none could be tested
            table = cohort_tables.trend_table(trends, layers)
            ui.show_table(table)
            table_downloads(table, f"trend_{name}_{split}")


phase_panels()

st.subheader("Report")
cohorts = sorted(all_runs.loc[all_runs["run_id"].isin(selection), "cohort"].dropna().astype(str).unique())
if not cohorts:     # `trainer report` reports cohorts: there is no command to show
    st.caption("No selected run belongs to a cohort (`trainer sweep` of a cohort's configs gives them one): "
               "`trainer report` reports whole cohorts, so there is no report to write for this selection.")
else:
    st.caption(f"The report of the selection's cohorts ({ui.plain(', '.join(cohorts))}), the same as the command "
               "below: every completed run of those cohorts, compared with the reference group above if it has a run "
               "kept and belongs to those cohorts (else with the report's first group), figures as PNG and SVG, tables "
               f"as LaTeX, into a folder of that name in {ui.plain(report.reports_folder())} (the server's `"
               f"{report.REPORTS_ENV}`, else reports/ in the folder the explorer was started in; outside the results "
               "root).")
    # With no live group there is nothing to compare; a group of runs outside the cohorts (an ad hoc
    # `trainer run` beside a cohort) is no group of the report, which refused it.
    in_cohorts = set(all_runs.loc[all_runs["cohort"].isin(cohorts), "group_id"])
    report_reference = reference if reference in live and reference in in_cohorts else None
    # the app's root unless it is the default one, which the command finds by itself (shlex.join quotes it)
    root = Path(store.root).resolve()      # as given to the app (relative to its folder): resolved both sides
    results = [] if root == layout.DEFAULT_ROOT.resolve() else ["--results", str(root)]
    # the cohorts after "--": a cohort named "--output=/elsewhere" is a cohort, not an option
    st.code(shlex.join(["trainer", "report", *results, "--split", split, "--band", REPORT_BANDS[band],
                        *([f"--reference={report_reference}"] if report_reference else []), "--output", "FOLDER",
                        "--", *cohorts]),
            language="bash", wrap_lines=True)
    folder_column, button_column = st.columns([3, 1], vertical_alignment="bottom")
    # a folder of these cohorts' own, which the box follows as the selection's cohorts change
    default = report.default_folder(cohorts)
    # (Streamlit drops a widget's state while another page is shown: a reviewer's box came back empty)
    if st.session_state.get("report_folder_of") != default or "report_folder" not in st.session_state:
        st.session_state["report_folder_of"] = st.session_state["report_folder"] = default
    folder = folder_column.text_input(f"Report folder (in {report.reports_folder()})", key="report_folder")
    if button_column.button("Write report", icon=":material/description:"):
        try:
            with st.spinner("Writing the report..."):
                written, reported = report.write_report(store, cohorts, report.page_folder(folder), split,
                                                         REPORT_BANDS[band], report_reference, label="Report folder")
            st.success(f"Report written: {ui.plain(written)} ({len(reported.run_ids)} completed runs"
                       + (f"; still training, left out: {ui.plain(', '.join(reported.running))}" if reported.running else "")
                       + ").", icon=":material/check:")
        except (report.ReportError, OSError) as error:
            st.error(f"Report not written: {ui.plain(error)}", icon=":material/block:")
