"""Runs: every run with status, dead/diverged badges, the varying keys as columns, final accuracy;
filter and select (the selection every page shows, kept in the URL and the sidebar)."""

import json

import streamlit as st

from explorer import configdiff, quickstart, ui
from explorer.results import ResultStore
from ibstore.sandbox import SqlError

FILTERS_CHANGED = "runs_filters_changed"

store = ui.store()
st.title("Runs")
all_runs = store.runs()

if store.problems:
    st.warning(f"{len(store.problems)} runs or files could not be read and are left out; "
               "the sidebar lists them.", icon=":material/warning:")
if quickstart.active(store.root):
    quickstart.progress(store.root)


@st.fragment(run_every=5)
def live(store: ResultStore, running: set[str]) -> None:
    """Runs in progress, refreshed every few seconds; the page reruns when one finishes."""
    store.refresh()
    runs = store.runs()
    now_running = runs[runs["status"] == "running"]
    if set(now_running["run_id"]) != running:
        st.rerun()
    st.subheader("Running")
    for run in now_running.itertuples():
        total = run.epochs_total or 0
        st.progress(min(run.epochs_done / total, 1.0) if total else 0.0,
                    text=f"{ui.plain(run.run_id)}: epoch {run.epochs_done} of {total}")


running = set(all_runs.loc[all_runs["status"] == "running", "run_id"])
if running:
    live(store, running)


def filters_changed() -> None:
    """A filter the reader changed selects what it shows (applied once the table is known)."""
    st.session_state[FILTERS_CHANGED] = True


# filters: a config key and its values (offered from the data), and a free SQL condition
flats = store.flat_configs()
keys = sorted(set().union(*flats.values()))
left, middle, right = st.columns([1, 2, 3])
key = left.selectbox("Config key", [None, *keys], key="fkey", bind="query-params", on_change=filters_changed,
                     format_func=lambda k: "(any)" if k is None else k)
values = sorted({json.dumps(flat.get(key), sort_keys=True) for flat in flats.values()}) if key else []
chosen = middle.multiselect("Values", values, key="fval", bind="query-params", disabled=not key,
                            on_change=filters_changed, format_func=lambda v: configdiff.format_value(json.loads(v)))
where = right.text_input("SQL condition", key="where", bind="query-params", on_change=filters_changed,
                         placeholder="final_test_accuracy > 0.8 AND status = 'completed'",
                         help="A WHERE condition over the columns of the `runs` view (the same as "
                              "`trainer sql \"SELECT * FROM runs WHERE ...\"`): final_test_accuracy, "
                              "dead_network, a column per config key such as initial_bias, ...")

runs = all_runs
if key and chosen:
    runs = runs[runs["run_id"].isin(store.runs_with_config(key, chosen))]
if where:
    try:
        runs = runs[runs["run_id"].isin(store.runs(where)["run_id"])]
    except SqlError as error:
        st.error(f"SQL condition: {ui.plain(error)}")
shown = list(runs["run_id"])
if st.session_state.pop(FILTERS_CHANGED, False) and shown[:ui.MAX_FILTER_RUNS] != ui.selection():
    ui.set_selection(shown[:ui.MAX_FILTER_RUNS])

varying = store.varying_keys()  # over the whole root: stable while filtering
flat = {r: flats[r] for r in shown}
badges = ui.run_flags(all_runs)
table = runs.drop(columns=[c for c in varying if c in runs]).assign(
    flags=[", ".join(badges.get(r, [])) for r in shown],
    **{k: [configdiff.format_value(flat[r].get(k)) for r in shown] for k in varying})
table["progress"] = (table["epochs_done"] / table["epochs_total"]).clip(upper=1.0)
columns = ["flags", "status", "run_id", "name", "cohort", "seed", *varying, "final_train_accuracy",
           "final_test_accuracy", "progress", "epochs_done", "epochs_total", "duration_s", "error"]

selection = ui.selection()
selected, visible = set(selection), set(shown)
positions = [i for i, r in enumerate(shown) if r in selected]
hidden = [r for r in selection if r not in visible]
st.caption(f"{len(shown)} of {len(all_runs)} runs shown. Changing a filter selects the runs it shows (the first "
           f"{ui.MAX_FILTER_RUNS}); pick rows to change the selection. Every page shows the selection, which the "
           "sidebar and the URL hold." + (f" {len(hidden)} selected run(s) are hidden by the filters." if hidden else ""))
event = st.dataframe(
    table[columns], hide_index=True, on_select="rerun", selection_mode="multi-row",
    key=f"runs-{hash((tuple(shown), tuple(selection)))}", selection_default={"selection": {"rows": positions}},
    column_config={
        "flags": st.column_config.TextColumn("flags", width=80, help="written by the trainer: dead (every layer's "
                                             "gradient stayed zero), diverged (a loss was not finite)"),
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
        "final_train_accuracy": st.column_config.NumberColumn("train acc", format="%.3f"),
        "final_test_accuracy": st.column_config.NumberColumn("test acc", format="%.3f"),
        "duration_s": st.column_config.NumberColumn("duration [s]", format="%.0f"),
    },
)
picked = [shown[i] for i in event.selection.rows] + hidden
if picked != selection:
    ui.set_selection(picked)
buttons = st.columns(3, width=600)
if buttons[0].button("Select all shown", icon=":material/select_all:", disabled=visible <= selected):
    ui.set_selection(list(dict.fromkeys(selection + shown)))
if buttons[1].button("Clear selection", icon=":material/deselect:", disabled=not selection):
    ui.set_selection([])
if selection:
    buttons[2].page_link("app_pages/compare.py", label="Compare the selection", icon=":material/grid_view:")
