"""Runs: every run with status, the varying keys as columns, final accuracy; filter and select."""

import json

import streamlit as st

from explorer import configdiff, quickstart, ui
from explorer.results import ResultStore
from ibstore.sandbox import SqlError

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
                    text=f"{run.run_id}: epoch {run.epochs_done} of {total}")


running = set(all_runs.loc[all_runs["status"] == "running", "run_id"])
if running:
    live(store, running)

# filters: a config key and its values (offered from the data), and a free SQL condition
config = store.configs()
keys = sorted(set().union(*(configdiff.flatten(c) for c in config.values())))
left, middle, right = st.columns([1, 2, 3])
key = left.selectbox("Config key", [None, *keys], key="fkey", bind="query-params",
                     format_func=lambda k: "(any)" if k is None else k)
values = sorted({json.dumps(configdiff.flatten(c).get(key), sort_keys=True) for c in config.values()}) if key else []
chosen = middle.multiselect("Values", values, key="fval", bind="query-params", disabled=not key,
                            format_func=lambda v: configdiff.format_value(json.loads(v)))
where = right.text_input("SQL condition", key="where", bind="query-params",
                         placeholder="test_accuracy > 0.8 AND status = 'completed'",
                         help="A WHERE condition over the columns of this table (and `runs`).")

runs = all_runs
if key and chosen:
    runs = runs[runs["run_id"].isin(store.runs_with_config(key, chosen))]
if where:
    try:
        runs = runs[runs["run_id"].isin(store.runs(where)["run_id"])]
    except SqlError as error:
        st.error(f"SQL condition: {error}")

varying = configdiff.varying_keys(list(config.values()))  # over the whole root: stable while filtering
flat = {r: configdiff.flatten(config[r]) for r in runs["run_id"]}
table = runs.assign(**{k: [configdiff.format_value(flat[r].get(k)) for r in runs["run_id"]] for k in varying})
table["progress"] = (table["epochs_done"] / table["epochs_total"]).clip(upper=1.0)
columns = ["status", "run_id", "name", "cohort", "seed", *varying, "train_accuracy", "test_accuracy",
           "progress", "epochs_done", "epochs_total", "duration_s", "error"]

selection = [r for r in ui.selected_runs(all_runs) if r in set(table["run_id"])]
positions = [i for i, r in enumerate(table["run_id"]) if r in selection]
st.caption(f"{len(table)} of {len(all_runs)} runs shown. Select rows to compare them; the selection "
           "and filters are kept in the URL.")
event = st.dataframe(
    table[columns], hide_index=True, on_select="rerun", selection_mode="multi-row",
    key=f"runs-{hash(tuple(table['run_id']))}", selection_default={"selection": {"rows": positions}},
    column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
        "train_accuracy": st.column_config.NumberColumn("train acc", format="%.3f"),
        "test_accuracy": st.column_config.NumberColumn("test acc", format="%.3f"),
        "duration_s": st.column_config.NumberColumn("duration [s]", format="%.0f"),
    },
)
picked = [table["run_id"].iloc[i] for i in event.selection.rows]
if picked != selection:
    ui.set_selected_runs(picked)
st.caption(f"{len(picked)} selected: " + ", ".join(picked[:20]) + (" ..." if len(picked) > 20 else ""))
if picked:
    st.page_link("app_pages/compare.py", label="Compare the selected runs", icon=":material/grid_view:",
                 query_params={"runs": picked})
