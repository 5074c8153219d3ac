"""What every page shares: the results root and store, the run selection (kept in the URL and in
the sidebar), the dead/diverged badges, panel titles, chart display with downloads, plain text
from results, and "not recorded for this run"."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from explorer import charts, cohort_tables, patched_frames, runs_table
from explorer.results import ResultStore
from explorer.run_filter import RunFilter
from explorer.run_rows import among, rows_among, rows_where
from ibstore import layout, query_process, views
from ibstore.record import FLAG_OF_STATUS, FLAGS, Status
from ibstore.text import cut, terminal_text

MAX_PAGE_RUNS = 60               # pages drawing a panel or chart per run read at most this many (whole groups)
MAX_DEFAULT_RUNS = MAX_PAGE_RUNS  # selected, in whole seed groups, when neither the URL nor the session says
MAX_FILTER_RUNS = MAX_PAGE_RUNS   # a changed filter selects at most this many of the runs it shows (whole groups)
MAX_GROUP_RUNS = 500             # pages (and modes) that draw seed groups, not runs, read at most this many
MAX_SIDEBAR_RUNS = 1_000         # the sidebar offers the selection and the first runs up to this many
NOT_RECORDED = "not recorded for this run"
MAX_URL_RUNS = 200               # the URL lists at most this many ids (Streamlit ignores a query string of
                                 # more than 1,000 parameters; a link is pasted into mails and chats)
MAX_SIDEBAR_CHIPS = 200          # a larger selection is summarised in the sidebar, not drawn as chips
SELECTED = "selected_runs"       # session key: the selected run ids (what every page shows)
SELECTION = "selection"          # session key of the sidebar's multiselect (drawn for MAX_SIDEBAR_CHIPS runs)
SHOWN_FILTER = "shown_filter"    # session key: the RunFilter whose every shown run is the selection, or None
URL_RUNS = "runs"                # the URL holds the selection as ?runs=a&runs=b
URL_SELECT, SHOWN = "select", "shown"   # or as ?select=shown and the Runs page's filter (explorer.run_filter)
URL_WRITTEN = "url_written"      # session key: what this session last wrote as the selection into the URL
UNKNOWN = "unknown_runs"         # session key: (ids a URL named that the root lacks, the selection then,
                                 # those of them this session had selected: removed since)
PENDING = "pending_selection"    # session key: (run ids, RunFilter or None) a page chose, applied on the next run
LINK_PROBLEMS = "link_problems"  # session key: (what in a link was not understood, the selection then)
BUSY_WHERE = "busy_where"        # session key: a link's SQL condition that other statements kept from running
                                 # (explorer.run_filter.busy): kept in the URL and the box, not run again
URL_KEYS_READ = "url_keys_read"  # session key: the URL keys a page has read once (ui.from_link)
BADGES = FLAGS   # record field -> badge (ibstore.record: the same rule as `trainer ls`)
# The trainer's dead_network rule (trainer.health): what every page says a dead network is.
DEAD_RULE = ("at every logged epoch from some logged epoch >= 1 to the last, some hidden layer was dead (its "
             "kernel gradient was exactly zero in every minibatch of that epoch, or it gave the same activations "
             "on every input), and the network does not classify every training example correctly")
# The rule behind each badge (the trainer's flags; DESIGN.md, "Results root").
BADGE_HELP = (f"[dead]: {DEAD_RULE}; nothing the output learns can then depend on the input. "
              "[saturated]: not dead, but from some logged epoch to the end a hidden layer had 99 % of its values "
              "at a bound of its activation, or was dead (almost no gradient passes it). "
              "[diverged]: a train or test loss was NaN or infinite, or the activations grew past what a histogram bin can "
              "index.")


def cli_results() -> str | None:
    """`streamlit run explorer/app.py -- --results DIR`."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--results")
    return parser.parse_known_args(sys.argv[1:])[0].results


@st.cache_resource(show_spinner=False)
def _store(root: str) -> ResultStore:
    # The SQL sandbox's fork server (a second or two of imports) starts beside the first load,
    # not when a visitor's first SQL condition or statement waits for it.
    query_process.start_server()
    return ResultStore(root)


def store() -> ResultStore:
    """The store of the results root in use (the same object for every session and page)."""
    return _store(os.path.realpath(layout.results_root(cli_results())))   # a symlink loop stays as given


def root_source() -> str:
    return layout.root_source(cli_results())


# text from results (run names, ids, config values) is shown as text, never as Markdown or HTML

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:&=^])")


# Where GitHub-flavoured Markdown turns bare text into a link (http://, www., user@host): Streamlit
# links these after escapes are resolved, so a zero-width space goes in to break the pattern.
_AUTOLINK = re.compile(r"(?i)(://|@|\bwww\.)")
ZERO_WIDTH_SPACE = "\u200b"


def plain(text: object) -> str:
    """`text` for a Markdown-rendering element (st.caption, st.warning, ...) so that it shows as
    typed: every ASCII punctuation character Markdown or Streamlit could act on is backslash-escaped
    (CommonMark shows an escaped punctuation character literally), a zero-width space keeps URLs and
    e-mail addresses from becoming links, line breaks become spaces, and what is not printable (bidi
    controls that reorder the line, zero-width and control characters) is written as its escape
    (ibstore.text.terminal_text)."""
    one_line = terminal_text(" ".join(str(text).split()))
    unlinked = _AUTOLINK.sub(lambda m: m.group(1)[0] + ZERO_WIDTH_SPACE + m.group(1)[1:], one_line)
    return _MARKDOWN.sub(r"\\\1", unlinked)


def whole_number_input(container, label: str, low: int, high: int, default: int, key: str, **options) -> int:
    """A number input of whole numbers in [low, high] kept in the URL as `key` (omitted at the
    default). A link's value that is not such a number is dropped, and the page says so: Streamlit's
    own binding (bind="query-params") fails on inf or nan, with a traceback on the page."""
    linked = st.query_params.get(key)
    value = default
    if linked is not None and from_link(key):
        warn_given_twice(key)                # the last value is the one read, as below
    if linked is not None:
        try:
            number = float(linked)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and number == int(number) and low <= number <= high:
            value = int(number)
        else:
            st.warning(f"The link's {plain(key)}={plain(cut(linked))} is dropped: {plain(label)} is a whole number from "
                       f"{low} to {high}.", icon=":material/link_off:")
    chosen = int(container.number_input(label, low, high, value, key=f"{key}_input", **options))
    if chosen == default:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = str(chosen)
    return chosen


def offered_number(key: str, low: float, high: float, label: str) -> None:
    """Before a slider of numbers in [low, high] bound to the URL as `key`: a link's value that is not
    such a number is named (Streamlit's binding drops it unsaid, and the slider shows its default as
    if the link had named it: `smooth=nan`)."""
    linked = st.query_params.get(key)
    if linked is None or not from_link(key):
        return
    warn_given_twice(key, read_last=False)
    try:
        number = float(linked)
    except ValueError:
        number = math.nan
    if not low <= number <= high:       # NaN too
        st.warning(f"The link's {plain(key)}={plain(cut(linked))} is dropped: {plain(label)} is a number from {low:g} "
                   f"to {high:g}.", icon=":material/link_off:")


def warn_given_twice(key: str, read_last: bool = True) -> None:
    """Names a link's `key` given more than once: a bound selectbox (or ours) takes its last value, a
    bound slider none (`read_last` False), and said nothing. The URL then keeps what is read (every
    value stayed in it, so a link copied from the page gave them all again: an attacker's)."""
    if len(given := st.query_params.get_all(key)) > 1:
        read = (f"its last value, {plain(cut(str(given[-1])))}, is the one read" if read_last else
                "none of them is read: the slider shows its default")
        st.warning(f"The link gives {plain(key)} {len(given)} times; {read}.", icon=":material/link_off:")
        if read_last:
            st.query_params[key] = given[-1]
        else:
            del st.query_params[key]


def from_link(key: str) -> bool:
    """Whether the URL's `key` came with the address this session opened (a shared link), not from
    this session's own choices: only the first run of a session that reads `key` says so. A choice
    made on one page stays in the URL on the next and can stop fitting the selection; that is no
    link's fault, and is dropped without a word."""
    read = st.session_state.setdefault(URL_KEYS_READ, set())
    first = key not in read
    read.add(key)
    return first


def offered(key: str, shown: list, what: str | None = None, any_case: bool = False, read_last: bool = True) -> list:
    """`shown` (a bound widget's options), after naming a link's `key` that is not among them:
    Streamlit's binding drops such a value unsaid, and the page then showed its default (another
    estimator, split or epoch, band or layout) as if the link had named it. `what` names what the
    selected runs recorded no such of; None for the page's own fixed choices, which are listed.
    `read_last` False for a bound select_slider, which reads none of a key given twice."""
    linked, opened = st.query_params.get(key), from_link(key)
    if opened:
        warn_given_twice(key, read_last)
    fold = str.lower if any_case else str          # `any_case`: the binding reads the value in any case (a toggle's)
    if opened and linked is not None and fold(linked) not in [fold(str(option)) for option in shown]:
        why = (f"the selected runs recorded no such {what}" if what else
               f"{plain(key)} is one of {plain(', '.join(str(option) for option in shown))}")
        st.warning(f"The link's {plain(key)}={plain(cut(linked))} is dropped: {why}.", icon=":material/link_off:")
    return shown


def linked_selectbox(container, label: str, options: list[str], key: str, format_func, index: int = 0,
                     what: str = "choice", **widget_options) -> str | None:
    """A selectbox of ids (runs, seed groups) kept in the URL as `key` by the id chosen, omitted at
    `index`, the default. Streamlit's own binding (bind="query-params") keeps the label shown, and a
    run's or group's label carries its badges and seed count: a shared link stopped naming its
    group once another seed finished or died. A link's id not among `options` is dropped and named
    (`what` says what it names); a link that holds a label still shown is read as its id."""
    linked, opened = st.query_params.get(key), from_link(key)
    if opened:
        warn_given_twice(key)
    default = options[index] if options else None
    value = default
    if linked is not None:
        by_label = {str(format_func(option)): option for option in options}
        found = linked if linked in options else by_label.get(linked)
        value = default if found is None else found
        if found is None and opened:
            st.warning(f"The link's {plain(key)}={plain(cut(linked))} is dropped: no {what} of that id among the "
                       "selected runs.", icon=":material/link_off:")
    chosen = container.selectbox(label, options, options.index(value) if options else 0, key=key,
                                 format_func=format_func, **widget_options)
    if chosen is None or chosen == default:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = chosen
    return chosen


def linked_multiselect(container, label: str, options: list, key: str, format_func, what: str = "choice",
                       **widget_options) -> list:
    """A multiselect of ids (layer numbers) kept in the URL as `key`, one value per id chosen, omitted
    when every option is (the default; an empty `key=` is none). Not Streamlit's binding, which keeps
    labels: a layer's label says "(last hidden)" by the selection, so a link stopped naming it. Ids
    of a link not among `options` are named and dropped; labels still shown are read as their ids."""
    linked, opened = st.query_params.get_all(key), from_link(key)
    value = list(options)
    if linked:
        by_text = {str(format_func(option)): option for option in options} | {str(option): option for option in options}
        unknown = [text for text in linked if text not in by_text and text != ""]
        if unknown and opened:
            st.warning(f"The link's {plain(key)}={plain(', '.join(unknown))} is dropped: no {what} of that id here.",
                       icon=":material/link_off:")
        known = list(dict.fromkeys(by_text[text] for text in linked if text in by_text))
        value = known if known or linked == [""] else value
    chosen = container.multiselect(label, options, value, key=key, format_func=format_func, **widget_options)
    if chosen == list(options):
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = [str(option) for option in chosen] or [""]
    return chosen


# the run selection: one list of run ids for every page, in the URL and the sidebar (explorer.sidebar)

def selection() -> list[str]:
    return list(st.session_state.get(SELECTED, []))


def shown_filter() -> RunFilter | None:
    """The Runs page filter whose every shown run the selection is ("Select all shown"), if it is."""
    return st.session_state.get(SHOWN_FILTER)


def set_selection(run_ids: list[str], every_shown: RunFilter | None = None) -> None:
    """Select `run_ids` from a page (`every_shown`: they are every run that filter shows, so the
    URL names the filter instead of the ids): the sidebar's widget is drawn already and cannot
    change in this script run, so the selection waits in the session for the rerun."""
    st.session_state[PENDING] = (list(run_ids), every_shown)
    st.rerun()


def ordered_runs(results: ResultStore) -> pd.DataFrame:
    """Every run as the Runs page's table orders and shows it (explorer.runs_table), worked out
    once per snapshot, not at every interaction; after a flush only the changed runs' rows are
    made again, while what orders them stays (read-only)."""
    def ordered(runs: pd.DataFrame) -> pd.DataFrame:
        return runs_table.runs_table(runs, results.varying_keys(), run_flags(runs))

    def patched(table: pd.DataFrame, _, changed: set[str], same: bool) -> pd.DataFrame | None:
        runs = results.runs()
        order = [key for key in results.varying_keys() if key in table] + ["seed", "run_id"]
        return patched_frames.replaced_rows(table, ordered(runs[runs["run_id"].isin(changed)]), order) if same else None
    return results.carried("ordered_runs", lambda _: ordered(results.runs()), patched)


def latest_cohort(ordered: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """The run ids of `ordered` (rows in the Runs page's order, with `cohort`) of the cohort whose
    latest run started last (`runs`' started_at; the first in that order on a tie or where no run
    has a start), in that order, or of the runs of no cohort where none belongs to one: what the
    app selects when nothing else says. A root holding several cohorts had opened on one cohort's
    last groups beside the next one's first, whose labels then named every config key the cohorts
    differ in (their whole `estimators` lists); its report compares one cohort's groups, and so
    does the default. It had also opened on the first cohort in that order: a new user who trained
    the quickstart and then the notebook's 8000-epoch cohort was shown the 500-epoch quickstart.

    Only cohorts with a trained epoch count where any has one (an attacker's: a sweep killed before
    its first epoch, or one in its first seconds, opened the app on runs with nothing to show), and
    a start after now counts as none (a skewed clock, or a hand-made record, pinned its cohort).

    >>> ordered = pd.DataFrame({"run_id": list("abcd"), "cohort": [None, "y", "x", "y"]})
    >>> runs = pd.DataFrame({"run_id": list("abcd"), "epochs_done": 1, "started_at": pd.to_datetime(
    ...     ["2026-01-04", "2026-01-01", "2026-01-02", "2026-01-01"], utc=True)})
    >>> latest_cohort(ordered, runs), latest_cohort(ordered, runs.assign(started_at=pd.NaT))
    (['c'], ['b', 'd'])
    >>> latest_cohort(ordered, runs.assign(epochs_done=[1, 1, 0, 1]))
    ['b', 'd']
    >>> latest_cohort(ordered, runs.assign(started_at=pd.to_datetime(["2026-01-04", "2026-01-01", "9999-12-31",
    ...                                                               "2026-01-01"], utc=True)))
    ['b', 'd']
    >>> latest_cohort(ordered.iloc[:1], runs)
    ['a']
    """
    if ordered.empty:
        return []
    cohorts = ordered["cohort"].astype(object)
    named = cohorts.dropna()
    if named.empty:
        return ordered.loc[cohorts.isna().to_numpy(), "run_id"].tolist()
    by_run = runs.set_index("run_id")
    trained = ordered["run_id"].map(pd.to_numeric(by_run["epochs_done"], errors="coerce") > 0).fillna(False)
    if trained.loc[named.index].any():
        named = named[trained.loc[named.index].to_numpy(bool)]
    started = pd.to_datetime(ordered["run_id"].map(by_run["started_at"]).loc[named.index], utc=True, errors="coerce")
    started = started.where(started <= pd.Timestamp.now(tz="UTC"))     # after now: no start known
    latest = started.groupby(named, sort=False).max()             # NaT where none of its runs has a start
    cohort = latest.idxmax() if latest.notna().any() else named.iloc[0]
    return ordered.loc[cohorts.eq(cohort).to_numpy(), "run_id"].tolist()


def whole_groups(run_ids: list[str], runs: pd.DataFrame, limit: int) -> list[str]:
    """The runs of the first seed groups of `run_ids` (in their order, a group where its first run
    is), as many groups as fit in `limit` runs, and at least the first whole. The seed is the unit:
    cutting at `limit` runs had left the last group with some of its seeds, and every interval and
    test over seeds then read fewer than the root holds.

    >>> runs = pd.DataFrame({"run_id": list("abcde"), "group_id": ["g", "g", "h", "h", "h"]})
    >>> whole_groups(list("abcde"), runs, 4), whole_groups(list("cdeab"), runs, 1)
    (['a', 'b'], ['c', 'd', 'e'])
    """
    ids = np.asarray(run_ids, dtype=object)
    codes = _group_codes(ids, runs)
    return ids[codes < _groups_within(codes, limit)].tolist()


def _group_codes(ids: np.ndarray, runs: pd.DataFrame) -> np.ndarray:
    """Each of `ids`' seed group, numbered 0, 1, ... in the order the groups first appear among them
    (a run the root lacks, or one without a group_id, is a group of its own)."""
    rows = pd.Index(runs["run_id"]).get_indexer(ids)           # hashed, not a loop over 100,000 ids
    group_ids = np.where(rows >= 0, runs["group_id"].to_numpy(object)[rows], None)
    return pd.factorize(np.where(pd.isna(group_ids), ids, group_ids))[0]


def _groups_within(codes: np.ndarray, limit: int) -> int:
    """How many of the first groups (`_group_codes`) fit in `limit` runs together: at least one."""
    runs_through = np.cumsum(np.bincount(codes)) if len(codes) else np.zeros(0, int)
    return max(1, int(np.searchsorted(runs_through, limit, side="right")))


def runs_limit(by_group: bool) -> int:
    """How many selected runs a page reads: MAX_GROUP_RUNS where it draws seed groups (a line, band
    or panel per group: a 50-seed cohort is read whole), else MAX_PAGE_RUNS (a panel or chart per run)."""
    return MAX_GROUP_RUNS if by_group else MAX_PAGE_RUNS


def page_runs(selected: list[str], runs: pd.DataFrame, limit: int) -> tuple[list[str], str | None]:
    """What a page reads of the selection `selected` (`runs`: the root's, with group_id), and the
    warning that says what it draws of what is selected (None when all of it): at most `limit` runs,
    the first seed groups whole (`whole_groups`), or, when the first group alone holds more, the
    first `limit` of its seeds (its badge then says how many of them, `group_badges`). A cut at
    `limit` runs had drawn 10 of a group's 50 selected seeds and labelled them "10 of 50 seeds
    selected", its interval and comparison over those 10.

    >>> runs = pd.DataFrame({"run_id": list("abcde"), "group_id": ["g", "g", "h", "h", "h"]})
    >>> page_runs(list("abcde"), runs, 5)
    (['a', 'b', 'c', 'd', 'e'], None)
    >>> page_runs(list("abcde"), runs, 4)[0], page_runs(list("cdeab"), runs, 2)[0]
    (['a', 'b'], ['c', 'd'])
    """
    if len(selected) <= limit:
        return list(selected), None
    ids = np.asarray(selected, dtype=object)
    codes = _group_codes(ids, runs)
    groups = _groups_within(codes, limit)
    whole = ids[codes < groups]
    selected_groups = int(codes.max()) + 1
    said = (f"{len(selected)} runs in {selected_groups} seed group{'s' if selected_groups > 1 else ''} are selected; "
            f"this page reads at most {limit} runs")
    if len(whole) > limit:
        first = "the first seed group alone" if selected_groups > 1 else "its one seed group"
        said += (f", and {first} has {len(whole)} selected seeds: the page draws {limit} of them, and what it shows "
                 f"of that group (lines, bands, n, tests) is over those {limit}")
    else:
        first = "the first seed group" if groups == 1 else f"the first {groups} seed groups"
        said += f", in whole seed groups: {first} ({len(whole)} runs)"
    return whole[:limit].tolist(), said + ". Narrow the selection on the Runs page or in the sidebar."


# badges: flags the trainer wrote into run.json (dead_network, diverged)

def first_alive_run(run_ids: list[str], flags: dict[str, list[str]]) -> str | None:
    """The first of `run_ids` the trainer flagged neither dead nor diverged (`run_flags`), else the
    first, else None: where a page opens (a dead network's layers are all zero, a diverged one's end
    in NaN; a saturated one is what the Activations page is for)."""
    return next((run_id for run_id in run_ids if not {"dead", "diverged"} & set(flags.get(run_id, ()))),
                run_ids[0] if run_ids else None)


def run_flags(runs: pd.DataFrame) -> dict[str, list[str]]:
    """run_id -> its badges ("dead", "saturated", "diverged"), by ibstore.record's rule (a run with
    status diverged is diverged too; `run_flags` there, for one record). Column-wise: a root has
    100,000 runs, and every page asks."""
    marked = {badge: _set(runs, column) for column, badge in BADGES.items()}
    for status, badge in FLAG_OF_STATUS.items():
        marked[badge] = marked[badge] | runs["status"].eq(status.value).to_numpy()
    flagged = np.logical_or.reduce(list(marked.values()))
    columns = [marked[badge][flagged].tolist() for badge in marked]
    return {run_id: [badge for badge, on in zip(marked, ons) if on]
            for run_id, *ons in zip(runs["run_id"][flagged].tolist(), *columns)}


def flag_rows(runs: pd.DataFrame, run_ids) -> pd.DataFrame:
    """The rows of `run_ids` with only what `run_flags` reads: taking rows of every column of the
    runs frame (its configs' JSON text among them) was a noticeable part of the sidebar's rerun at
    100,000 runs (bench/RESULTS.md)."""
    return rows_among(runs[[c for c in ("run_id", "status", *BADGES) if c in runs]], run_ids)


def _set(runs: pd.DataFrame, column: str) -> np.ndarray:
    """Where a flag is true: False for false, None and NaN (not recorded) and a missing column."""
    if column not in runs:
        return np.zeros(len(runs), dtype=bool)
    return runs[column].fillna(False).astype(bool).to_numpy()


def run_badges(runs: pd.DataFrame) -> dict[str, str]:
    """run_id -> " [dead]", " [diverged]", " [dead, diverged]" for flagged runs (plain text)."""
    return {run_id: f" [{', '.join(marks)}]" for run_id, marks in run_flags(runs).items()}


def group_badges(results: ResultStore, runs: pd.DataFrame, run_ids: list[str]) -> dict[str, str]:
    """group_id -> " [dead: 2 of 3 seeds]" and the like, for groups with a flagged run;
    " [2 of 5 seeds selected]" for groups of which `runs` (the root's) holds more seeds than the
    selection; and " [60 of 100 selected seeds drawn]" for a group of which `run_ids`, what a page
    draws, hold fewer seeds than the selection (`page_runs` cut it: one group held more than the page
    reads): a group's band, n and tests are over the seeds drawn."""
    flags = run_flags(flag_rows(runs, run_ids))   # the selection's: a page asks three times
    in_root = runs["group_id"].value_counts()
    chosen = selection()
    in_selection = (rows_among(runs[["run_id", "group_id"]], chosen)["group_id"].value_counts()
                    if len(chosen) > len(run_ids) else pd.Series(dtype=int))   # else the page drew it all
    badges = {}
    for group, members in results.groups(run_ids).items():
        drawn = len(members)
        # run_ids from outside a page (a notebook, a test) are a selection of their own
        selected = max(drawn, int(in_selection.get(group, 0)))
        seeds = int(in_root.get(group, selected))
        marks = [f"{drawn} of {selected} selected seeds drawn"] if selected > drawn else []
        marks += [f"{selected} of {seeds} seeds selected"] if seeds > selected else []
        counts = {badge: sum(badge in flags.get(r, []) for r in members) for badge in BADGES.values()}
        marks += [f"{badge}: {n} of {drawn} seeds" if drawn > 1 else badge for badge, n in counts.items() if n]
        if marks:
            badges[group] = f" [{', '.join(marks)}]"
    return badges


def labels(results: ResultStore, runs: pd.DataFrame, run_ids: list[str]) -> dict[str, str]:
    """run_id -> its title from the varying keys, with its badges."""
    marks = run_badges(runs)
    return {r: label + marks.get(r, "") for r, label in results.labels(run_ids).items()}


def with_panels(results: ResultStore, runs: pd.DataFrame, frame: pd.DataFrame, run_ids: list[str],
                by_group: bool = False) -> pd.DataFrame:
    """`frame` with `panel` (the run's or seed group's title and badges, rows in title order) and
    `group` (the seed group's title without its seed count: runs of one group share a colour).
    Titles come from the keys that vary among `run_ids`: pages pass what they read of the
    selection, the whole of it unless it is more than the page reads (`page_runs`), so a run has one
    title on every page that reads the whole selection."""
    frame = results.with_panels(frame, run_ids, by_group)
    badges = group_badges(results, runs, run_ids)
    titles = group_titles(results, runs, run_ids)
    if by_group:
        panel = frame["panel"] + frame["group_id"].map(badges).astype(object).fillna("")
        return frame.assign(panel=panel, group=frame["group_id"].map(titles))
    group_of = {r: g for g, members in results.groups(run_ids).items() for r in members}
    badges = run_badges(flag_rows(runs, frame["run_id"].unique()))
    panel = frame["panel"] + frame["run_id"].map(badges).astype(object).fillna("")
    return frame.assign(panel=panel, group=frame["run_id"].map(group_of).map(titles))


def group_titles(results: ResultStore, runs: pd.DataFrame, run_ids: list[str]) -> dict[str, str]:
    """group_id -> its title (the keys that vary among the groups of `run_ids`, its badges), in
    order. Every page colours by these titles over what it reads of the selection (`group_domain`),
    so a group keeps its colour from page to page while the pages read the whole selection."""
    badges = group_badges(results, runs, run_ids)
    return {g: label + badges.get(g, "") for g, label in results.labels(run_ids, by_group=True).items()}


def cohort_names(runs: pd.DataFrame, run_ids: list[str]) -> list[str]:
    """The sorted cohort names of `run_ids` (rows of `runs`, with `cohort`): where no config key
    varies, the names alone tell groups apart (one setting under two names, a null comparison).

    >>> cohort_names(pd.DataFrame({"run_id": ["a", "b", "c"], "cohort": ["y", "x", None]}), ["a", "b", "c"])
    ['x', 'y']
    """
    return sorted(str(name) for name in runs.loc[runs["run_id"].isin(run_ids), "cohort"].dropna().unique())


def group_domain(results: ResultStore, runs: pd.DataFrame, run_ids: list[str]) -> list[str]:
    """The colour domain of the selection's seed groups (the charts' `color_domain`)."""
    return list(group_titles(results, runs, run_ids).values())


def with_layer_names(results: ResultStore, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (with run_id and layer) with each layer's `layer_name`, so that every page names a
    layer alike (charts.with_layer_label); a run without MI rows keeps numbers only."""
    if "layer_name" in frame or frame.empty:
        return frame
    names = results.layer_names(list(frame["run_id"].unique()))
    return frame.merge(names, on=["run_id", "layer"], how="left") if not names.empty else frame


@st.cache_data(show_spinner=False, max_entries=64)
def _phases(root: str, version: int, run_ids: tuple[str, ...]) -> pd.DataFrame:
    results = store()
    assert str(results.root) == root, (results.root, root)   # the cache key names the store's root
    return results.phases(list(run_ids))


def phases(results: ResultStore, run_ids: list[str]) -> pd.DataFrame:
    """The `phases` view of these runs, computed once per content of the root (ResultStore.version)."""
    return _phases(str(results.root), results.version(), tuple(run_ids))


@st.cache_data(show_spinner=False, max_entries=16)
def _phase_curves(root: str, version: int, run_ids: tuple[str, ...]) -> pd.DataFrame:
    results = store()
    assert str(results.root) == root, (results.root, root)
    return results.phase_curves(list(run_ids))


def phase_curves(results: ResultStore, run_ids: list[str]) -> pd.DataFrame:
    """The curves the statistics of these runs read (CURVES_SQL: I(X;T) and each layer's SNR), once
    per content of the root."""
    return _phase_curves(str(results.root), results.version(), tuple(run_ids))


def ordered_splits(splits) -> list[str]:
    """train, test, full first (the record's splits: ibstore.views.SPLITS), then any other split."""
    present = set(splits)
    return [s for s in views.SPLITS if s in present] + sorted(present - set(views.SPLITS))


def page_start(title: str) -> tuple[ResultStore, pd.DataFrame, list[str]]:
    """The start of every page that shows the selected runs: its title, then (store, all runs, the
    whole selection); the page stops with a hint if nothing is selected. A page whose modes read
    different numbers of runs (`runs_limit`) draws its mode's widgets, then `cut_selection`."""
    results = store()
    st.title(title)
    chosen = selection()
    if not chosen:
        st.info("No runs selected: choose them in the sidebar or on the Runs page.", icon=":material/checklist:")
        st.stop()
    return results, results.runs(), chosen


def cut_selection(all_runs: pd.DataFrame, selected: list[str], limit: int) -> list[str]:
    """What the page reads of `selected` (`page_runs`), with a warning when that is not all of it."""
    drawn, warning = page_runs(selected, all_runs, limit)
    if warning:
        st.warning(warning, icon=":material/filter_list:")
    return drawn


def selection_page(title: str, limit: int | None = None) -> tuple[ResultStore, pd.DataFrame, list[str]]:
    """`page_start`, then the selection cut to what the page reads (`cut_selection`: at most `limit`
    runs, default MAX_PAGE_RUNS, in whole seed groups): (store, all runs, the runs the page reads)."""
    results, all_runs, selected = page_start(title)
    return results, all_runs, cut_selection(all_runs, selected, limit or MAX_PAGE_RUNS)


def runs_with(results: ResultStore, table: str, chosen: list[str], what: str) -> list[str]:
    """The selected runs that recorded `table`; the others are listed as not recorded, and the
    page stops if none did."""
    recorded = results.recorded(table, chosen)
    missing = [r for r in chosen if r not in recorded]
    if missing:
        not_recorded(what, missing)
    if not recorded:
        st.stop()
    return recorded


# live: pages redraw by themselves while a selected run trains

LIVE_SECONDS = 1.0   # a flushed epoch shows within this plus one rescan (the issue asks for 2 s)


def running(all_runs: pd.DataFrame, run_ids: list[str]) -> list[str]:
    wanted = set(run_ids)
    return [r for r in all_runs.loc[all_runs["status"] == Status.RUNNING, "run_id"] if r in wanted]


def live_interval(all_runs: pd.DataFrame, run_ids: list[str]) -> float | None:
    """`st.fragment(run_every=...)` for a page's charts: every LIVE_SECONDS while one of `run_ids`
    trains, never otherwise (nothing refreshes when nothing runs)."""
    return LIVE_SECONDS if running(all_runs, run_ids) else None


def live_caption(all_runs: pd.DataFrame, run_ids: list[str]) -> None:
    """In a live fragment: rescan the root (only changed run folders are read), say which runs
    train and their latest flushed epoch; when none trains any more, rerun the page so that it
    stops refreshing."""
    if not running(all_runs, run_ids):
        return
    results = store()
    results.refresh(unless_within_s=LIVE_SECONDS / 2)
    now = results.runs()
    training = rows_where(now, among(now["run_id"], run_ids) & (now["status"] == Status.RUNNING).to_numpy())
    if training.empty:
        st.rerun()
    epochs = ", ".join(f"{n} at epoch {e}" for n, e in zip(training["run_id"], training["epochs_done"]))
    st.caption(f":material/autorenew: {len(training)} selected run(s) training, redrawn every "
               f"{LIVE_SECONDS:g} s: {plain(epochs)}")


# charts

def show_chart(chart: alt.TopLevelMixin, data: pd.DataFrame, name: str) -> None:
    """The chart (without Streamlit's theme, so the screen and the SVG look the same), then SVG
    (rendered by vl-convert on click) and CSV downloads. The PNG is the chart toolbar's own
    "Download as PNG" (the drawn chart, as on screen): one PNG button per chart."""
    st.altair_chart(chart, width="content", theme=None)
    svg_button, csv_button = st.columns([1, 1], width=220)
    svg_button.download_button("SVG", data=lambda: charts.svg(chart), file_name=f"{name}.svg",
                               mime="image/svg+xml", on_click="ignore", key=f"svg-{name}", icon=":material/draw:")
    csv_button.download_button("CSV", data=lambda: data.to_csv(index=False), file_name=f"{name}.csv",
                               mime="text/csv", on_click="ignore", key=f"csv-{name}", icon=":material/table:")


def show_table(table: pd.DataFrame) -> None:
    """A small table as HTML (st.table: it wraps at any width and reads in the DOM). st.table
    renders text cells as Markdown, so every text cell goes through `plain`."""
    st.table(table.map(lambda value: plain(value) if isinstance(value, str) else value), hide_index=True)


def recorded_by_fewer(choices: pd.DataFrame, with_mi: list[str], estimator: str, params: str, split: str) -> None:
    """Under the estimator and split boxes: how many of the selected runs with MI (`with_mi`) did
    not record this estimator, params and split (`choices`: ResultStore.mi_choices' counts), which
    the page then draws and counts nothing of."""
    chosen = choices[(choices["estimator"] == estimator) & (choices["params"] == params) & (choices["split"] == split)]
    recorded = int(chosen["runs"].iloc[0]) if len(chosen) else 0
    if recorded < len(with_mi):
        st.caption(plain(f"{len(with_mi) - recorded} of the {len(with_mi)} selected runs with MI recorded no "
                         f"{split} MI with {estimator} {params}: they are not on this page (the Estimator box lists "
                         "what any of them recorded)."))


def plane_captions(results: ResultStore, run_ids: list[str], estimator: str, params: str, split: str,
                   labels: dict[str, str]) -> None:
    """Under an information plane, by seed group (`labels`: group_id -> title), the layers of
    `run_ids` whose I(X;T) ends at its ceiling (`cohort_tables.ceiling_note`: a new user's planes
    piled every hidden layer on one point, (log2 n, H(Y)), with no word of why) and those idnns' fixed
    bins [-1, 1] clip (`cohort_tables.clipped_note`), which the plane draws as the bins make them."""
    drawn = phases(results, run_ids)
    drawn = drawn[(drawn["estimator"] == estimator) & (drawn["params"] == params) & (drawn["split"] == split)]
    for note in (cohort_tables.ceiling_note(drawn, labels), cohort_tables.clipped_note(drawn, labels)):
        if note:
            st.caption(plain(note))


def not_recorded(what: str, run_ids: list[str]) -> None:
    st.info(f"{what}: {NOT_RECORDED} ({plain(', '.join(run_ids))}).", icon=":material/block:")
