"""The explorer: `streamlit run explorer/app.py [-- --results DIR]` (or $IB_RESULTS)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable without installing the package

import streamlit as st  # noqa: E402

from explorer import quickstart, sidebar, ui  # noqa: E402
from ibstore import scan  # noqa: E402

st.set_page_config(page_title="Information plane lab", page_icon=":material/scatter_plot:", layout="wide")

PAGES = [
    st.Page("app_pages/runs.py", title="Runs", icon=":material/table_rows:", default=True),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/grid_view:"),
    st.Page("app_pages/config.py", title="Config", icon=":material/tune:"),
    st.Page("app_pages/training.py", title="Training curves", icon=":material/show_chart:"),
    st.Page("app_pages/gradients.py", title="Gradients", icon=":material/trending_down:"),
    st.Page("app_pages/phases.py", title="Phases", icon=":material/stacked_line_chart:"),
    st.Page("app_pages/activations.py", title="Activations", icon=":material/bar_chart:"),
    st.Page("app_pages/movie.py", title="Information plane over time", icon=":material/play_circle:"),
    st.Page("app_pages/sql.py", title="SQL", icon=":material/terminal:"),
]
page = st.navigation(PAGES)

store = ui.store()
with st.spinner("Reading the results root..."):
    # Waits only for the first scan; later ones run in the background, but not for a rerun sooner
    # after the last scan than it took (the first visit's rerun that selects runs: at 100,000 runs,
    # a second stat pass at once).
    store.refresh(wait=False, unless_within_s=store.scan_s)

def root_panel() -> None:
    """Which results root is in use, and what in it could not be read."""
    st.caption(f"Results root ({ui.root_source()})")
    st.code(str(store.root), language=None, wrap_lines=True)
    if store.problems:
        skipped = len(scan.left_out(store.problems))
        said = [f"{skipped} runs or files skipped" if skipped else "",
                f"{len(store.problems) - skipped} warnings" if skipped < len(store.problems) else ""]
        with st.expander(":warning: " + ", ".join(filter(None, said))):
            for problem in store.problems:
                st.text(f"{problem.run_id}: {problem.problem}")


all_runs = store.runs()
if all_runs.empty:
    # Nothing to show yet: look again now, not in the background (an empty root costs nothing to
    # scan), so that the first runs, which the quickstart's panel reruns the app for, show at once.
    store.refresh()
    all_runs = store.runs()
if all_runs.empty:
    with st.sidebar:
        root_panel()
    quickstart.empty_root(store.root)
    st.stop()

sidebar.init_selection(store, all_runs)
with st.sidebar:
    sidebar.selection_sidebar(all_runs)
    root_panel()
sidebar.unknown_warning()
page.run()
