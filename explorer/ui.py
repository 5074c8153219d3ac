"""What every page shares: the results root and store, the run selection (kept in the URL and in
the sidebar), the dead/diverged badges, panel titles, chart display with downloads, plain text
from results, and "not recorded for this run"."""

from __future__ import annotations

import argparse
import re
import sys

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
import vl_convert as vlc

from explorer import configdiff
from explorer.results import ResultStore
from ibstore import layout
from ibstore.record import Status

MAX_DEFAULT_RUNS = 12            # selected when neither the URL nor the session says
MAX_FILTER_RUNS = 40             # a changed filter selects at most this many of the runs it shows
MAX_PAGE_RUNS = 60               # chart pages draw at most this many runs (a panel or chart per run)
MAX_GROUP_RUNS = 500             # pages that draw seed groups, not runs (Phases), read at most this many
MAX_SIDEBAR_RUNS = 1_000         # the sidebar offers the selection and the first runs up to this many
NOT_RECORDED = "not recorded for this run"
SPLITS = ("train", "test", "full")
SELECTION = "selection"          # session key of the sidebar's multiselect: the selected run ids
URL_RUNS = "runs"                # the URL holds the selection as ?runs=a&runs=b
UNKNOWN = "unknown_runs"         # session key: (ids a URL named that the root lacks, the selection then,
                                 # those of them this session had selected: removed since)
PENDING = "pending_selection"    # session key: a selection a page made, applied on the next script run
BADGES = {"dead_network": "dead", "diverged": "diverged"}
# The rule behind each badge (the trainer's flags; DESIGN.md, "Results root").
BADGE_HELP = ("[dead]: from some logged epoch to the end, a hidden layer got exactly zero kernel gradient or gave "
              "the same activations on every input (nothing the output learns depends on the input). "
              "[diverged]: a train or test loss was NaN or infinite.")


def cli_results() -> str | None:
    """`streamlit run explorer/app.py -- --results DIR`."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--results")
    return parser.parse_known_args(sys.argv[1:])[0].results


@st.cache_resource(show_spinner=False)
def _store(root: str) -> ResultStore:
    return ResultStore(root)


def store() -> ResultStore:
    """The store of the results root in use (the same object for every session and page)."""
    return _store(str(layout.results_root(cli_results()).resolve()))


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
    e-mail addresses from becoming links, line breaks become spaces."""
    one_line = " ".join(str(text).split())
    unlinked = _AUTOLINK.sub(lambda m: m.group(1)[0] + ZERO_WIDTH_SPACE + m.group(1)[1:], one_line)
    return _MARKDOWN.sub(r"\\\1", unlinked)


# the run selection: one list of run ids for every page, in the URL and the sidebar

def init_selection(all_runs: pd.DataFrame) -> list[str]:
    """The selection for this script run, before any page draws: the one a page set last run
    (`set_selection`), else the URL's ids if it names any, else this session's, else the first
    MAX_DEFAULT_RUNS runs; ids the root lacks (never held, or removed since they were chosen) are
    dropped and remembered for `unknown_warning`. The URL and the sidebar are set to it."""
    known = list(all_runs["run_id"])
    known_set = set(known)
    wanted = list(dict.fromkeys(st.query_params.get_all(URL_RUNS)))
    # ids this session or a page chose were in the root then: one it lacks now was removed since
    chosen_before = set(st.session_state.get(SELECTION, [])) | set(st.session_state.get(PENDING, []))
    if PENDING in st.session_state:
        asked, fallback = st.session_state.pop(PENDING), []
    elif wanted:
        asked, fallback = wanted, known[:MAX_DEFAULT_RUNS]
    else:
        asked, fallback = st.session_state.get(SELECTION, known[:MAX_DEFAULT_RUNS]), []
    selection = [r for r in asked if r in known_set]
    unknown = [r for r in asked if r not in known_set]
    if unknown:
        selection = selection or fallback
        st.session_state[UNKNOWN] = (unknown, selection, [r for r in unknown if r in chosen_before])
    st.session_state[SELECTION] = selection
    st.query_params[URL_RUNS] = selection
    return selection


def selection() -> list[str]:
    return list(st.session_state.get(SELECTION, []))


def set_selection(run_ids: list[str]) -> None:
    """Select `run_ids` from a page: the sidebar's widget is drawn already and cannot change in
    this script run, so the selection waits in the session for the rerun."""
    st.session_state[PENDING] = list(run_ids)
    st.rerun()


def _sidebar_changed() -> None:
    st.query_params[URL_RUNS] = st.session_state[SELECTION]


def chip_keys(results: ResultStore, all_runs: pd.DataFrame) -> list[str]:
    """The keys that tell the root's runs apart: those that vary over the root, and the seed."""
    return results.varying_keys() + ([configdiff.SEED_KEY] if all_runs["seed"].nunique() > 1 else [])


def run_names(results: ResultStore, all_runs: pd.DataFrame, run_ids: list[str]) -> dict[str, str]:
    """run_id -> a short name for a selection chip, for `run_ids`: the values of `chip_keys`
    ("relu · 0.2 · s1"; the keys are named once beside the chips), its badges; the run id where
    that names several of `run_ids` or nothing varies. A chip holds about 20 characters:
    "key=value, ..." would be cut."""
    keys = chip_keys(results, all_runs)
    flats = results.flat_configs()

    def name(run_id: str) -> str:
        flat = flats.get(run_id)
        if not keys or flat is None:
            return run_id
        return " · ".join(f"s{flat[k]}" if k == configdiff.SEED_KEY else
                          configdiff.format_value(flat[k]) if k in flat else "-" for k in keys)

    names = {r: name(r) for r in run_ids}
    counts = pd.Series(list(names.values()), dtype=object).value_counts()
    marks = run_badges(all_runs[all_runs["run_id"].isin(run_ids)])
    return {r: (n if counts[n] == 1 else f"{n} ({r})") + marks.get(r, "") for r, n in names.items()}


def sidebar_options(all_run_ids: list[str], chosen: list[str]) -> list[str]:
    """What the sidebar offers: every run of a root of at most MAX_SIDEBAR_RUNS, else the first
    MAX_SIDEBAR_RUNS and the selection (a list of 100,000 runs would be sent to the browser at
    every interaction; the Runs page finds any run)."""
    if len(all_run_ids) <= MAX_SIDEBAR_RUNS:
        return all_run_ids
    return list(dict.fromkeys(all_run_ids[:MAX_SIDEBAR_RUNS] + chosen))


def selection_sidebar(all_runs: pd.DataFrame) -> None:
    """The selection, shown and editable on every page, each run by its distinguishing name."""
    results = store()
    options = sidebar_options(list(all_runs["run_id"]), selection())
    names = run_names(results, all_runs, options)
    st.multiselect("Selected runs", options, key=SELECTION, on_change=_sidebar_changed,
                   format_func=lambda run_id: names.get(run_id, run_id), placeholder="no runs selected",
                   help="Shared by every page and kept in the URL (?runs=...): copy the URL to share the view. "
                        "The Runs page's filters and row selection set it too. " + BADGE_HELP)
    keys = chip_keys(results, all_runs)
    st.caption(f"{len(selection())} of {len(all_runs)} runs selected" +
               (f"; chips show {plain(' · '.join(keys))}" if keys else "") +
               (f"; the list offers the first {len(options):,}, the Runs page every run"
                if len(options) < len(all_runs) else ""))


def unknown_warning() -> None:
    """Names the ids a URL asked for that the root does not hold, while that selection stands:
    selected runs whose folders were removed meanwhile, and ids the root never held."""
    if UNKNOWN not in st.session_state:
        return
    unknown, applied, removed = st.session_state[UNKNOWN]
    if set(applied) != set(selection()):   # the Runs page may reorder it: that is no change
        del st.session_state[UNKNOWN]
        return
    if removed:
        st.warning(f"{len(removed)} selected run(s) are no longer in this results root (their folders were "
                   f"removed): {plain(', '.join(removed))}. They are left out of the selection.",
                   icon=":material/folder_off:")
    linked = [r for r in unknown if r not in removed]
    if linked:
        st.warning(f"The link names {len(linked)} run(s) this results root does not hold: "
                   f"{plain(', '.join(linked))}. They are left out of the selection.", icon=":material/link_off:")


# badges: flags the trainer wrote into run.json (dead_network, diverged)

def run_flags(runs: pd.DataFrame) -> dict[str, list[str]]:
    """run_id -> its badges ("dead", "diverged"); a run with status diverged is diverged too.
    Column-wise: a root has 100,000 runs, and every page asks."""
    marked = {badge: _set(runs, column) for column, badge in BADGES.items()}
    marked["diverged"] = marked["diverged"] | runs["status"].eq("diverged").to_numpy()
    flagged = np.logical_or.reduce(list(marked.values()))
    columns = [marked[badge][flagged].tolist() for badge in marked]
    return {run_id: [badge for badge, on in zip(marked, ons) if on]
            for run_id, *ons in zip(runs["run_id"][flagged].tolist(), *columns)}


def _set(runs: pd.DataFrame, column: str) -> np.ndarray:
    """Where a flag is true: False for false, None and NaN (not recorded) and a missing column."""
    if column not in runs:
        return np.zeros(len(runs), dtype=bool)
    return runs[column].fillna(False).astype(bool).to_numpy()


def run_badges(runs: pd.DataFrame) -> dict[str, str]:
    """run_id -> " [dead]", " [diverged]", " [dead, diverged]" for flagged runs (plain text)."""
    return {run_id: f" [{', '.join(marks)}]" for run_id, marks in run_flags(runs).items()}


def group_badges(results: ResultStore, runs: pd.DataFrame, run_ids: list[str]) -> dict[str, str]:
    """group_id -> " [dead: 2 of 3 seeds]" and the like, for groups with a flagged run."""
    flags = run_flags(runs)
    badges = {}
    for group, members in results.groups(run_ids).items():
        counts = {badge: sum(badge in flags.get(r, []) for r in members) for badge in BADGES.values()}
        marks = [f"{badge}: {n} of {len(members)} seeds" if len(members) > 1 else badge
                 for badge, n in counts.items() if n]
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
    Titles come from the keys that vary among `run_ids`: pages pass the whole selection, so a
    run has one title on every page."""
    frame = results.with_panels(frame, run_ids, by_group)
    badges = group_badges(results, runs, run_ids)
    titles = group_titles(results, runs, run_ids)
    if by_group:
        panel = frame["panel"] + frame["group_id"].map(badges).astype(object).fillna("")
        return frame.assign(panel=panel, group=frame["group_id"].map(titles))
    group_of = {r: g for g, members in results.groups(run_ids).items() for r in members}
    panel = frame["panel"] + frame["run_id"].map(run_badges(runs)).astype(object).fillna("")
    return frame.assign(panel=panel, group=frame["run_id"].map(group_of).map(titles))


def group_titles(results: ResultStore, runs: pd.DataFrame, run_ids: list[str]) -> dict[str, str]:
    """group_id -> its title (the keys that vary among the groups of `run_ids`, its badges), in
    order. Every page colours by these titles over the whole selection (`group_domain`), so a
    group keeps its colour from page to page."""
    badges = group_badges(results, runs, run_ids)
    return {g: label + badges.get(g, "") for g, label in results.labels(run_ids, by_group=True).items()}


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


def ordered_splits(splits) -> list[str]:
    """train, test, full first, then any other split."""
    present = set(splits)
    return [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))


def selection_page(title: str, limit: int | None = None) -> tuple[ResultStore, pd.DataFrame, list[str]]:
    """The start of every page that shows the selected runs: (store, all runs, selection, at most
    `limit` (default MAX_PAGE_RUNS) of it); the page stops with a hint if nothing is selected."""
    limit = limit or MAX_PAGE_RUNS
    results = store()
    st.title(title)
    all_runs = results.runs()
    chosen = selection()
    if not chosen:
        st.info("No runs selected: choose them in the sidebar or on the Runs page.", icon=":material/checklist:")
        st.stop()
    if len(chosen) > limit:
        st.warning(f"{len(chosen)} runs are selected; this page draws the first {limit}. Narrow the "
                   "selection on the Runs page or in the sidebar.", icon=":material/filter_list:")
        chosen = chosen[:limit]
    return results, all_runs, chosen


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
    results.refresh()
    now = results.runs()
    training = now[now["run_id"].isin(run_ids) & (now["status"] == Status.RUNNING)]
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
    svg_button.download_button("SVG", data=lambda: vlc.vegalite_to_svg(chart.to_json()), file_name=f"{name}.svg",
                               mime="image/svg+xml", on_click="ignore", key=f"svg-{name}", icon=":material/draw:")
    csv_button.download_button("CSV", data=lambda: data.to_csv(index=False), file_name=f"{name}.csv",
                               mime="text/csv", on_click="ignore", key=f"csv-{name}", icon=":material/table:")


def show_table(table: pd.DataFrame) -> None:
    """A small table as HTML (st.table: it wraps at any width and reads in the DOM). st.table
    renders text cells as Markdown, so every text cell goes through `plain`."""
    st.table(table.map(lambda value: plain(value) if isinstance(value, str) else value), hide_index=True)


def not_recorded(what: str, run_ids: list[str]) -> None:
    st.info(f"{what}: {NOT_RECORDED} ({plain(', '.join(run_ids))}).", icon=":material/block:")
