"""What every page shares: the results root and store, the run selection, the URL state,
chart display with downloads, and "not recorded for this run"."""

from __future__ import annotations

import argparse
import sys
import altair as alt
import pandas as pd
import streamlit as st
import vl_convert as vlc

from explorer.results import ResultStore
from ibstore import layout

MAX_DEFAULT_RUNS = 12
NOT_RECORDED = "not recorded for this run"
SPLITS = ("train", "test", "full")


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


# the run selection, shared by the pages and kept in the URL (?runs=a&runs=b)

def selected_runs(runs: pd.DataFrame) -> list[str]:
    """The selected run ids: from the URL if it names any, else this session's selection, else the
    first MAX_DEFAULT_RUNS runs. Unknown ids are dropped. The URL is updated to match."""
    known = set(runs["run_id"])
    wanted = st.query_params.get_all("runs") or st.session_state.get("selected_runs")
    selection = [r for r in (wanted or []) if r in known] or list(runs["run_id"][:MAX_DEFAULT_RUNS])
    set_selected_runs(selection)
    return selection


def set_selected_runs(run_ids: list[str]) -> None:
    st.session_state["selected_runs"] = list(run_ids)
    st.query_params["runs"] = list(run_ids)


def ordered_splits(splits) -> list[str]:
    """train, test, full first, then any other split."""
    present = set(splits)
    return [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))


def selection_page(title: str) -> tuple[ResultStore, pd.DataFrame, list[str]]:
    """The start of every page that shows the selected runs: (store, all runs, selection)."""
    results = store()
    st.title(title)
    all_runs = results.runs()
    selection = selected_runs(all_runs)
    st.caption(f"{len(selection)} of {len(all_runs)} runs selected (choose them on the Runs page).")
    return results, all_runs, selection


def runs_with(results: ResultStore, table: str, selection: list[str], what: str) -> list[str]:
    """The selected runs that recorded `table`; the others are listed as not recorded, and the
    page stops if none did."""
    recorded = results.recorded(table, selection)
    missing = [r for r in selection if r not in recorded]
    if missing:
        not_recorded(what, missing)
    if not recorded:
        st.stop()
    return recorded


# charts

def show_chart(chart: alt.TopLevelMixin, data: pd.DataFrame, name: str) -> None:
    """The chart, then PNG / SVG (rendered by vl-convert on click) and CSV downloads."""
    st.altair_chart(chart, width="content")
    spec = chart.to_json
    png, svg, csv = st.columns([1, 1, 1], width=330)
    png.download_button("PNG", data=lambda: vlc.vegalite_to_png(spec(), scale=2), file_name=f"{name}.png",
                        mime="image/png", on_click="ignore", key=f"png-{name}", icon=":material/image:")
    svg.download_button("SVG", data=lambda: vlc.vegalite_to_svg(spec()), file_name=f"{name}.svg",
                        mime="image/svg+xml", on_click="ignore", key=f"svg-{name}", icon=":material/draw:")
    csv.download_button("CSV", data=lambda: data.to_csv(index=False), file_name=f"{name}.csv",
                        mime="text/csv", on_click="ignore", key=f"csv-{name}", icon=":material/table:")


def not_recorded(what: str, run_ids: list[str]) -> None:
    st.info(f"{what}: {NOT_RECORDED} ({', '.join(run_ids)}).", icon=":material/block:")
