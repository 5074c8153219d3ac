"""Runs: every run with its flags, status, the varying keys as typed columns, seed and final
accuracies first; filter and select (the selection every page shows, kept in the URL and the
sidebar); group by a config key (counts and means with intervals); parallel coordinates of the
varying keys against an outcome."""

import streamlit as st

from explorer import charts, charts_results, quickstart, run_filter, runs_table, ui
from explorer.results import ResultStore
from explorer.run_rows import rows_where
from ibstore import scan, views
from ibstore.record import Status
from ibstore.sandbox import SqlError

FILTERS_CHANGED = "runs_filters_changed"
WHERE = run_filter.WHERE                # the condition's widget key and URL parameter
VALID_WHERE = "runs_valid_where"        # session: the last condition that ran
LINK_WARNINGS = "runs_link_warnings"    # session: a link's warnings, drawn again after a new selection's rerun
DROP_BUSY_WHERE = "runs_drop_busy_where"  # session: the visitor chose runs while a link's condition could not run

store = ui.store()
st.title("Runs")
all_runs = store.runs()

if left_out := scan.left_out(store.problems):
    st.warning(f"{len(left_out)} runs or files could not be read and are left out; "
               "the sidebar lists them.", icon=":material/warning:")
if quickstart.active(store.root):
    quickstart.progress(store.root)


@st.fragment(run_every=ui.LIVE_SECONDS)
def live(store: ResultStore, running: set[str]) -> None:
    """Runs in progress, refreshed every second; the page reruns when one finishes."""
    store.refresh(unless_within_s=ui.LIVE_SECONDS / 2)
    runs = store.runs()
    now_running = rows_where(runs, runs["status"] == Status.RUNNING)
    if set(now_running["run_id"]) != running:
        st.rerun()
    st.subheader("Running")
    for run in now_running[["run_id", "epochs_done", "epochs_total"]].itertuples():   # not the config keys
        total = run.epochs_total or 0
        st.progress(min(run.epochs_done / total, 1.0) if total else 0.0,
                    text=f"{ui.plain(run.run_id)}: epoch {run.epochs_done} of {total}")


running = set(all_runs.loc[all_runs["status"] == Status.RUNNING, "run_id"])
if running:
    live(store, running)


def filters_changed() -> None:
    """A filter the reader changed selects what it shows (applied once the table is known)."""
    st.session_state[FILTERS_CHANGED] = True


# filters: a config key and its values (offered from the data), and a free SQL condition. They are
# not bound to the URL: the page writes them there (run_filter.write_url), and so does the sidebar
# when the selection is every run they show on any page. A widget's state is dropped while another
# page shows: it starts again from the URL. Only a condition that runs goes there, so a typo leaves
# the URL, the table and the selection as the last valid condition made them.
# A link's filter that names what this root lacks, or a condition that does not run, is said once,
# as a warning (the link's, not the reader's, mistake), and left out; so it is not run again at
# every rerun, and the URL the page writes back no longer claims it.
# The link's selection is then made in a rerun (`select`), which drops what this run drew: its
# warnings wait in the session and are drawn again.
link_warnings = st.session_state.pop(LINK_WARNINGS, [])
if run_filter.KEY not in st.session_state:
    linked, problems = run_filter.from_url(store, st.query_params.get(run_filter.KEY),
                                           st.query_params.get_all(run_filter.VALUES), "")
    st.session_state[run_filter.KEY], st.session_state[run_filter.VALUES] = linked.key, list(linked.values)
    said = st.session_state.get(ui.LINK_PROBLEMS, ([], None))[0]    # a `select=shown` link's: the sidebar's
    problems = run_filter.given_twice(st.query_params) + problems
    link_warnings += [ui.plain(problem) for problem in problems if problem not in said]
if st.session_state.pop(DROP_BUSY_WHERE, False):     # before the box is drawn, which then holds ""
    st.session_state[WHERE] = ""
    st.session_state.pop(ui.BUSY_WHERE, None)
if WHERE not in st.session_state:
    linked_where = st.query_params.get(WHERE, "")
    try:
        if linked_where and linked_where != st.session_state.get(ui.BUSY_WHERE):   # the sidebar's said so
            run_filter.RunFilter(None, (), linked_where).shown(store, ui.ordered_runs(store))
    except SqlError as error:
        if run_filter.busy(error):
            st.session_state[ui.BUSY_WHERE] = linked_where
            link_warnings.append(f"The link's SQL condition ({ui.plain(run_filter.cut(linked_where))}) could not run "
                                 f"now: {ui.plain(run_filter.cut(str(error), 400))}. It stays in the box and the URL; "
                                 "reload the page to run it again. Meanwhile no condition applies.")
        else:
            link_warnings.append(f"The link's SQL condition ({ui.plain(run_filter.cut(linked_where))}) does not "
                                 f"run: {ui.plain(run_filter.cut(str(error), 400))}. No condition applies.")
            linked_where = ""
    st.session_state[WHERE] = linked_where
for warning in link_warnings:
    st.warning(warning, icon=":material/link_off:")


def select(run_ids: list[str], every_shown: run_filter.RunFilter | None = None) -> None:
    """`ui.set_selection`, keeping this run's link warnings for the rerun it starts. A link's
    condition that could not run (ui.BUSY_WHERE) leaves the box with the visitor's choice: the table
    was drawn without it, and the URL would have claimed it."""
    st.session_state[LINK_WARNINGS] = link_warnings
    if ui.BUSY_WHERE in st.session_state:
        st.session_state[DROP_BUSY_WHERE] = True
    ui.set_selection(run_ids, every_shown)


keys = store.config_keys()
left, middle, right = st.columns([1, 2, 3])
key = left.selectbox("Config key", [None, *keys], key=run_filter.KEY, on_change=filters_changed,
                     format_func=lambda k: "(any)" if k is None else k)
values = store.config_values(key) if key else []
chosen = middle.multiselect("Values", values, key=run_filter.VALUES, disabled=not key, placeholder="any",
                            on_change=filters_changed, format_func=run_filter.shown_value)
where = right.text_input("SQL condition", key=WHERE, on_change=filters_changed,
                         placeholder="e.g. final_test_accuracy > 0.8 AND status = 'completed'",
                         help="A WHERE condition over the columns of the `runs` view (the same as "
                              "`trainer sql \"SELECT * FROM runs WHERE ...\"`): final_test_accuracy, "
                              "dead_network, a column per config key such as initial_bias, ...")

valid_where = st.session_state.get(VALID_WHERE, "")
ordered = ui.ordered_runs(store)   # every run in reading order, once per snapshot
if where != st.session_state.get(ui.BUSY_WHERE):
    st.session_state.pop(ui.BUSY_WHERE, None)
try:
    shown_by = run_filter.RunFilter(key, tuple(chosen), where)
    if ui.BUSY_WHERE in st.session_state:     # kept for the URL, shown without: it could not run now
        table = run_filter.RunFilter(key, tuple(chosen)).shown(store, ordered)
    else:
        table = shown_by.shown(store, ordered)
        valid_where = where
except SqlError as error:
    st.session_state.pop(FILTERS_CHANGED, None)     # a typo selects nothing
    kept = f"the last valid condition ({ui.plain(valid_where)}) still applies" if valid_where else \
        "no condition applies"
    hint = views.where_error_hint(store.configs(list(ordered["run_id"])).values(), where, error)
    st.error(f"SQL condition: {ui.plain(error)}{f' ({ui.plain(hint)})' if hint else ''}. The selection is unchanged; "
             f"{kept}.")
    shown_by = run_filter.RunFilter(key, tuple(chosen), valid_where)
    table = shown_by.shown(store, ordered)
table = table.reset_index(drop=True)
st.session_state[VALID_WHERE] = valid_where
run_filter.write_url(shown_by)

varying = store.varying_keys()  # over the whole root: stable while filtering
shown = table["run_id"].tolist()
if st.session_state.pop(FILTERS_CHANGED, False):
    filtered = ui.whole_groups(shown, all_runs, ui.MAX_FILTER_RUNS)
    if filtered != ui.selection():
        select(filtered)

selection = ui.selection()
selected, visible = set(selection), set(shown)
hidden = [r for r in selection if r not in visible]
pages = runs_table.page_count(len(shown))
page = st.number_input(f"Page (of {pages}, {runs_table.ROWS_PER_PAGE:,} rows each)", min_value=1, max_value=pages,
                       key="runs_page", width=200) if pages > 1 else 1
rows = runs_table.page_rows(len(shown), page)
on_page = shown[rows]
positions = [i for i, r in enumerate(on_page) if r in selected]
st.caption(f"{len(shown)} of {len(all_runs)} runs shown. Changing a filter selects the runs it shows, at most "
           f"{ui.MAX_FILTER_RUNS} (the first seed group whole if it alone has more), cutting no seed group at that "
           "limit (a condition on a run's own results, such as "
           "its accuracy, can still pick some of a group's seeds: pages then title the group \"[3 of 5 seeds "
           "selected]\"); pick rows to change the selection. Every page shows the "
           "selection, which the sidebar and the URL hold." + (f" {len(hidden)} selected run(s) are hidden by the filters." if hidden else ""))
event = st.dataframe(
    table.iloc[rows], hide_index=True, on_select="rerun", selection_mode="multi-row",
    key=f"runs-{hash((tuple(on_page), tuple(selection)))}", selection_default={"selection": {"rows": positions}},
    column_config={
        "flags": st.column_config.TextColumn("flags", width=60, help="written by the trainer. " + ui.BADGE_HELP),
        "status": st.column_config.TextColumn("status", width=90),
        "seed": st.column_config.NumberColumn("seed", width=50),
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, width=90),
        **{column: st.column_config.NumberColumn(label, format="%.3f", width=75)
           for column, label in runs_table.OUTCOMES.items()},
        "duration_s": st.column_config.NumberColumn("duration [s]", format="%.0f"),
        "run_id": st.column_config.TextColumn("run id", width=120),
    },
)
picked = runs_table.picked_selection(shown, on_page, event.selection.rows, selection)
if picked != selection:
    select(picked)
buttons = st.columns(3, width=600)
if buttons[0].button("Select all shown", icon=":material/select_all:", disabled=visible <= selected):
    # every run shown and none other: the URL can name the filter instead of listing the runs
    if selected <= visible:     # the filter as drawn: without a condition that could not run now
        select(shown, every_shown=run_filter.RunFilter(key, tuple(chosen)) if ui.BUSY_WHERE in st.session_state
               else shown_by)
    else:
        select(list(dict.fromkeys(selection + shown)))
if buttons[1].button("Clear selection", icon=":material/deselect:", disabled=not selection):
    select([])
if selection:
    buttons[2].page_link("app_pages/compare.py", label="Compare the selection", icon=":material/grid_view:")

st.subheader("Group by")
group_keys = [k for k in varying if k in table]
ui.offered("group", ["(no grouping)", *group_keys], "varying config key")   # the binding keeps the label
group_key = st.selectbox("Config key", [None, *group_keys], key="group",
                         bind="query-params", format_func=lambda k: "(no grouping)" if k is None else k,
                         help="W&B's Group: one row per value of the key over the runs shown")
if group_key:
    st.dataframe(runs_table.group_summary(table, group_key), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                for c in ("mean test acc", "95% CI low", "95% CI high")})
    st.caption("The mean and its interval (Student's t, cut to [0, 1]; none for one seed) are over the row's "
               "completed runs, each network once (seeds: a run of the same setting and seed under another name or "
               "with other measurement settings trained the same network again, and is no second seed), dead and "
               "saturated networks included (their chance accuracy is what such a setting gives, as the Training "
               "page and the report count it): a run still training, failed or interrupted has no final accuracy "
               "yet (the table beside shows where it stopped). "
               "configs: the settings of the other varying keys among the row's runs; where its completed runs train "
               "more than one (settings that differ only in what they measure, such as estimators or histogram bins, "
               "train the same networks), the mean has no interval (they are not seeds of one setting: their spread "
               "is the settings' differences as much as noise).")

numeric_outcomes = [c for c in runs_table.OUTCOMES if table[c].notna().any()]
keys_drawn = [k for k in varying if k in table]


def outcome_name(column: str) -> str:
    return runs_table.OUTCOMES.get(column, "compression of a layer over its noise floor")


def with_compression(table, pickers) -> tuple:
    """The table with the chosen layer's compression per run (pickers: estimator, split, layer),
    and that column's name; (table, None) when the runs shown recorded no MI."""
    phases = ui.phases(store, list(table["run_id"]))
    if phases.empty:
        st.info("The runs shown recorded no mutual information: no compression to draw.", icon=":material/block:")
        return table, None
    choices = store.mi_choices(list(table["run_id"]))      # in the order every page offers them
    estimators = list(dict.fromkeys(choices["estimator"] + " " + choices["params"]))
    estimator = pickers[0].selectbox("Estimator", ui.offered("pc_estimator", estimators, "estimator"), key="pc_estimator",
                                     bind="query-params")
    name, params = estimator.split(" ", 1)
    these = phases[(phases["estimator"] == name) & (phases["params"] == params)]
    split = pickers[1].radio("Split", ui.offered("pc_split", ui.ordered_splits(these["split"]), "split"), key="pc_split",
                             bind="query-params", horizontal=True)
    pairs = these[["layer", "layer_name"]].drop_duplicates().sort_values(["layer", "layer_name"])
    layers = {charts.layer_label(int(number), layer_name): (int(number), layer_name)
              for number, layer_name in pairs.itertuples(index=False)}
    chosen = pickers[2].selectbox("Layer", ui.offered("pc_layer", [runs_table.EACH_LAST_HIDDEN, *layers], "layer"),
                                  key="pc_layer", bind="query-params")
    layer = layers.get(chosen)
    compression = runs_table.layer_compression(these, layer, name, params, split)
    # the default names its layer where every network's last hidden layer is the same one
    named = compression["layer"].unique()
    of = named[0] if len(named) == 1 else chosen if layer else "each network's last hidden layer"
    column = f"compression over floor of {of} (bits)"
    if note := runs_table.unmeasured_note(len(table), compression.index.nunique(),
                                          f"{estimator} {split} MI at {chosen if layer else 'a last hidden layer'}"):
        st.caption(ui.plain(note))
    if note := runs_table.left_out_note(compression["left_out"]):
        st.caption(note)
    return table.assign(**{column: table["run_id"].map(compression[runs_table.COMPRESSION])}), column


if keys_drawn and len(table) > 1:
    st.subheader("Parallel coordinates")
    pickers = st.columns(4)
    outcomes = [*numeric_outcomes, runs_table.COMPRESSION]
    ui.offered("pc_outcome", [outcome_name(o) for o in outcomes])              # the binding keeps the label
    outcome = pickers[0].selectbox("Outcome", outcomes, key="pc_outcome",
                                   bind="query-params", format_func=outcome_name,
                                   help="compression over its noise floor, per run: how far a layer's I(X;T) "
                                        "fell from the epoch where its seed group's mean peaks to the run's end "
                                        "(the `phases` view's compression_bits - noise_floor_bits). Peak - final "
                                        "alone is above 0 in every run, noise or not, since each run's own peak "
                                        "is picked where its noise is high.")
    drawn = runs_table.drawn_sample(table)
    if len(drawn) < len(table):
        st.caption(f"A fixed sample of {len(drawn):,} of the {len(table):,} runs shown is drawn: more lines "
                   "would hide one another and slow every redraw.")
    if outcome == runs_table.COMPRESSION:
        drawn, outcome = with_compression(drawn, pickers[1:])
    if outcome:
        drawn = drawn.dropna(subset=[outcome])
        if drawn.empty:
            st.info(f"No run drawn has a value of {ui.plain(outcome)}: nothing to draw.", icon=":material/block:")
        else:
            ui.show_chart(charts_results.parallel_coordinates(drawn, keys_drawn, outcome), drawn,
                          "parallel_coordinates")
