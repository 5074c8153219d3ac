"""The run selection as the app opens it and the sidebar shows it: read from a link's URL (a list
of run ids, or `?select=shown` and the Runs page's filter), from the session, or from what a page
chose; written back into the URL compactly; shown as chips, or summarised when it is large."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from explorer import run_filter, ui
from explorer.results import ResultStore
from ibstore import configdiff
from ibstore.sandbox import SqlError

# A chip shows about 20 characters, and six one-character values joined by " · " already take 21:
# keys past the sixth never show.
MAX_CHIP_KEYS = 6
MAX_CAPTION_KEY_CHARS = 60


LINK_KEPT = "link_kept"     # session key: (the URL's runs, select, the selection) of a link whose filter could
                            # not run for now


def init_selection(results: ResultStore, all_runs: pd.DataFrame) -> list[str]:
    """The selection for this script run, before any page draws: the one a page set last run
    (`ui.set_selection`), else the one a link's URL names if the URL changed since this session
    wrote it (a link opened), else this session's, else the Runs page's first rows of the cohort
    trained last (`ui.latest_cohort`) in whole seed groups (`ui.whole_groups`, MAX_DEFAULT_RUNS).
    Ids the root lacks (never held, or removed since they were chosen) are dropped and remembered
    for `unknown_warning`; what a link names that is not understood is a warning, never an error."""
    known = all_runs["run_id"]

    def default() -> list[str]:   # called only when used: it orders the whole root
        return ui.whole_groups(ui.latest_cohort(ui.ordered_runs(results), all_runs), all_runs, ui.MAX_DEFAULT_RUNS)

    url_runs = list(dict.fromkeys(st.query_params.get_all(ui.URL_RUNS)))
    url_select = st.query_params.get(ui.URL_SELECT)
    linked = (url_runs, url_select) != st.session_state.get(ui.URL_WRITTEN)
    # ids this session or a page chose were in the root then: one it lacks now was removed since
    chosen_before = set(ui.selection()) | set(st.session_state.get(ui.PENDING, ([], None))[0])
    every_shown, fallback, problems, busy = ui.shown_filter(), None, [], False
    if ui.PENDING in st.session_state:
        asked, every_shown = st.session_state.pop(ui.PENDING)
    elif linked and url_select is not None:
        asked, every_shown, problems, busy = _linked_filter(results, url_select)
        asked, fallback = url_runs or default() if asked is None else asked, default
    elif linked and url_runs:
        asked, every_shown, fallback = url_runs, None, default
    else:
        asked = ui.selection() if ui.SELECTED in st.session_state else default()
    asked = pd.Index(asked, dtype=object)
    in_root = asked.isin(known)            # hashed over 100,000 ids, not a Python loop
    selection, unknown = asked[in_root].tolist(), asked[~in_root].tolist()
    if unknown:
        instead = not selection and fallback is not None     # none of the ids is here: the default stands in
        selection = fallback() if instead else selection
        st.session_state[ui.UNKNOWN] = (unknown, selection, [r for r in unknown if r in chosen_before], instead)
    if problems:
        st.session_state[ui.LINK_PROBLEMS] = (problems, selection)
    st.session_state[ui.SELECTED] = selection
    st.session_state[ui.SHOWN_FILTER] = every_shown if selection else None
    # the link stays for a reload until the selection changes (a page's or the sidebar's choice)
    if busy:
        st.session_state[ui.URL_WRITTEN] = (url_runs, url_select)
        st.session_state[LINK_KEPT] = (url_runs, url_select, selection)
    elif st.session_state.get(LINK_KEPT) != (url_runs, url_select, selection):
        st.session_state.pop(LINK_KEPT, None)
        _write_url(selection, st.session_state[ui.SHOWN_FILTER])
    return selection


def _linked_filter(results: ResultStore, url_select: str
                   ) -> tuple[list[str] | None, run_filter.RunFilter | None, list[str], bool]:
    """(run ids, the filter, problems, busy) of a link's `?select=`: `shown` with the filter the URL
    names gives every run that filter shows; anything else is not understood (no run ids). `busy`:
    its SQL condition could not run for other statements holding the sandbox's places, so the
    link stays in the URL as it is (an attacker's statements kept a shared link's filter waiting,
    and the page wrote in its place the first runs, the very ones the filter left out)."""
    if url_select != ui.SHOWN:
        return None, None, [f"select={run_filter.cut(url_select)} is not understood (allowed: select={ui.SHOWN}); "
                            "the link's run ids apply instead"], False
    params = st.query_params
    named, problems = run_filter.from_url(results, params.get(run_filter.KEY), params.get_all(run_filter.VALUES),
                                          params.get(run_filter.WHERE, ""))
    problems = run_filter.given_twice(params, (ui.URL_SELECT, run_filter.KEY, run_filter.WHERE)) + problems
    if params.get_all(run_filter.VALUES) and not named.values:
        # The link names values none of which this root's runs take (or a key none has): the runs it
        # shows are none. Without its key filter the rest of it would select the whole root.
        return [], None, problems + ["so the link's filter shows no run of this root, and none is selected"], False
    try:
        shown = named.shown(results, ui.ordered_runs(results))["run_id"].tolist()
    except SqlError as error:
        why = run_filter.cut(str(error), 400)
        if run_filter.busy(error):
            st.session_state[ui.BUSY_WHERE] = named.where       # the Runs page neither runs it again nor drops it
            return None, None, problems + [f"the link's SQL condition could not run now ({why}); the link is kept "
                                           "as it is: reload the page to run it again. Meanwhile the first runs are "
                                           "selected"], True
        params.pop(run_filter.WHERE, None)   # else every page ran it again (up to the time limit), and said so again
        return None, None, problems + [f"the link's SQL condition does not run ({why}); the first runs are "
                                       "selected"], False
    return shown, named, problems, False


def _write_url(selection: list[str], every_shown: run_filter.RunFilter | None) -> None:
    """The selection into the URL: `?select=shown` and the filter when it is every run a filter
    shows, else its first MAX_URL_RUNS ids (`selection_sidebar` says when that is not all)."""
    params = st.query_params
    if every_shown is not None:
        params.pop(ui.URL_RUNS, None)
        params[ui.URL_SELECT] = ui.SHOWN
        run_filter.write_url(every_shown)
        st.session_state[ui.URL_WRITTEN] = ([], ui.SHOWN)
    else:
        params.pop(ui.URL_SELECT, None)
        params[ui.URL_RUNS] = selection[:ui.MAX_URL_RUNS]
        st.session_state[ui.URL_WRITTEN] = (selection[:ui.MAX_URL_RUNS], None)


def _sidebar_changed() -> None:
    st.session_state[ui.SELECTED] = st.session_state[ui.SELECTION]
    st.session_state[ui.SHOWN_FILTER] = None


def chip_keys(results: ResultStore, all_runs: pd.DataFrame, selected: Sequence[str] = ()) -> list[str]:
    """The keys that tell the root's runs apart: those that vary over the root, and the seed. A
    chip is cut at about 20 characters, so the keys that tell neighbouring runs apart come first:
    those that vary among the `selected` runs (a new user's 20 runs read "s0 · full · relu · /tmp/…"
    for both learning rates, the root's keys first), then keys of plain values before keys whose
    values are lists or objects (`estimators`), each by how many values it takes over the root, most
    first (the seed among the plain ones), so that the settings a whole cohort shares (`epochs`,
    `log_schedule`) come last. On the shipped cohorts' root: "elu · 0 · s3 · 8000 · …", where
    "elu · 8000 · 0 · defau…" hid the seed."""
    counts = {key: len(results.config_values(key)) for key in results.varying_keys()}
    if all_runs["seed"].nunique() > 1:
        counts[configdiff.SEED_KEY] = int(all_runs["seed"].nunique())
    listed = {key for key in counts if any(text.startswith(("[", "{")) for text in results.config_values(key))}
    telling = set(results.varying_keys(list(selected))) if len(selected) > 1 else set()
    if all_runs.loc[all_runs["run_id"].isin(selected), "seed"].nunique() > 1:
        telling.add(configdiff.SEED_KEY)
    return sorted(counts, key=lambda key: (key not in telling, key in listed, -counts[key]))   # stable among equals


def named_keys(keys: list[str]) -> str:
    """The chips' keys for the sidebar's caption: the first MAX_CHIP_KEYS, each cut at
    MAX_CAPTION_KEY_CHARS, and how many more (a config of 20,000 keys named every one of them under
    the selection, and one key of 200 kB named it whole)."""
    more = f" (and {len(keys) - MAX_CHIP_KEYS:,} more)" if len(keys) > MAX_CHIP_KEYS else ""
    cut = [key if len(key) <= MAX_CAPTION_KEY_CHARS else key[:MAX_CAPTION_KEY_CHARS] + "…"
           for key in keys[:MAX_CHIP_KEYS]]
    return ui.plain(" · ".join(cut)) + more


def run_names(results: ResultStore, all_runs: pd.DataFrame, run_ids: list[str], keys: list[str]) -> dict[str, str]:
    """run_id -> a short name for a selection chip, for `run_ids`: the values of `keys` (`chip_keys`,
    "relu · 0.2 · s1"; the keys are named once beside the chips), its badges; the run id where
    that names several of `run_ids` or nothing varies. A chip holds about 20 characters:
    "key=value, ..." would be cut."""
    keys = keys[:MAX_CHIP_KEYS]
    flats = results.flat_configs(run_ids)

    def name(run_id: str) -> str:
        flat = flats.get(run_id)
        if not keys or flat is None:
            return run_id
        return " · ".join("-" if k not in flat else f"s{flat[k]}" if k == configdiff.SEED_KEY else
                          configdiff.short_value(flat[k]) for k in keys)

    names = {r: name(r) for r in run_ids}
    counts = pd.Series(list(names.values()), dtype=object).value_counts()
    marks = ui.run_badges(ui.flag_rows(all_runs, run_ids))
    return {r: (n if counts[n] == 1 else f"{n} ({r})") + marks.get(r, "") for r, n in names.items()}


def sidebar_options(all_run_ids: list[str], chosen: list[str]) -> list[str]:
    """What the sidebar offers: every run of a root of at most MAX_SIDEBAR_RUNS, else the first
    MAX_SIDEBAR_RUNS and the selection (a list of 100,000 runs would be sent to the browser at
    every interaction; the Runs page finds any run)."""
    if len(all_run_ids) <= ui.MAX_SIDEBAR_RUNS:
        return all_run_ids
    return list(dict.fromkeys(all_run_ids[:ui.MAX_SIDEBAR_RUNS] + chosen))


def selection_sidebar(all_runs: pd.DataFrame) -> None:
    """The selection, shown and editable on every page, each run by its distinguishing name; a
    selection of more than MAX_SIDEBAR_CHIPS runs is summarised (the Runs page edits it)."""
    results = ui.store()
    chosen = ui.selection()
    # the selection's own keys first where it is drawn as chips (a summarised one is not read whole)
    keys = chip_keys(results, all_runs, chosen if len(chosen) <= ui.MAX_SIDEBAR_CHIPS else ())
    if len(chosen) <= ui.MAX_SIDEBAR_CHIPS:
        # in the Runs page's order (by the varying keys' values, then seed), not by run id
        options = sidebar_options(ui.ordered_runs(results)["run_id"].tolist(), chosen)
        names = run_names(results, all_runs, options, keys)
        st.session_state[ui.SELECTION] = chosen
        st.multiselect("Selected runs", options, key=ui.SELECTION, on_change=_sidebar_changed,
                       format_func=lambda run_id: names.get(run_id, run_id), placeholder="no runs selected",
                       help="Shared by every page and kept in the URL (?runs=...): copy the URL to share the view. "
                            "The Runs page's filters and row selection set it too. " + ui.BADGE_HELP)
        offered = (f"; the list offers the first {len(options):,}, the Runs page every run"
                   if len(options) < len(all_runs) else "")
    else:
        offered = f"; more than {ui.MAX_SIDEBAR_CHIPS} are listed on the Runs page, not here"
    every_shown = ui.shown_filter()
    st.caption(f"{len(chosen):,} of {len(all_runs):,} runs selected" +
               (f"; chips show {named_keys(keys)}" if keys else "") + offered + ". " +
               ("The URL names the Runs page's filter (?select=shown): a link reopens every run it shows."
                if every_shown is not None and chosen else
                f"The URL lists the first {ui.MAX_URL_RUNS} of them: a link reopens only those (\"Select all "
                "shown\" on the Runs page puts a filter's whole selection in the URL)."
                if len(chosen) > ui.MAX_URL_RUNS else ""))


def unknown_warning() -> None:
    """Names the ids a URL asked for that the root does not hold, and what in a link was not
    understood, while the selection it gave stands: selected runs whose folders were removed
    meanwhile, and ids the root never held."""
    if ui.LINK_PROBLEMS in st.session_state:
        problems, applied = st.session_state[ui.LINK_PROBLEMS]
        if set(applied) != set(ui.selection()):
            del st.session_state[ui.LINK_PROBLEMS]
        else:
            st.warning(f"Part of the link does not apply: {ui.plain('; '.join(problems))}.",
                       icon=":material/link_off:")
    if ui.UNKNOWN not in st.session_state:
        return
    unknown, applied, removed, instead = st.session_state[ui.UNKNOWN]
    if set(applied) != set(ui.selection()):   # the Runs page may reorder it: that is no change
        del st.session_state[ui.UNKNOWN]
        return
    if removed:
        st.warning(f"{len(removed)} selected run(s) are no longer in this results root (their folders were "
                   f"removed): {ui.plain(run_filter.first_named(removed))}. They are left out of the selection.",
                   icon=":material/folder_off:")
    linked = [r for r in unknown if r not in removed]
    if linked:
        # quoted: an id with a space around it ("?runs=%20<id>") looked like one the root holds
        kept = (f"None of the link's runs is here, so the root's first {len(applied)} run(s) are selected instead "
                "(the Runs page's first seed groups), not the link's." if instead
                else "They are left out of the selection.")
        st.warning(f"The link names {len(linked)} run(s) this results root does not hold: "
                   f"{ui.plain(run_filter.first_named([repr(r) for r in linked]))}. {kept}", icon=":material/link_off:")
