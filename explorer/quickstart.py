"""An empty results root: say so, show the command that fills it, and run it in the background."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import streamlit as st

from ibstore import layout
from ibstore.progress import SweepProgress, holder, progress_path, read_progress
from ibstore.index import scan
from ibstore.record import Status

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = "data/configs/quickstart"
LOG_NAME = "quickstart.log"
SWEEP_ID = "quickstart"   # the sweep keeps <root>/.sweeps/quickstart.json current (ibstore.progress)


def command(root: Path) -> list[str]:
    return [sys.executable, "-m", "trainer", "sweep", QUICKSTART, "--results", str(root), "--sweep-id", SWEEP_ID]


@st.cache_resource(show_spinner=False)
def _processes() -> dict[str, subprocess.Popen]:
    """Background sweeps by results root, shared by every session of this server."""
    return {}


def start(root: Path) -> subprocess.Popen:
    root.mkdir(parents=True, exist_ok=True)
    if holder(root, SWEEP_ID) is None:     # a live one keeps its file; the new sweep then refuses the id
        progress_path(root, SWEEP_ID).unlink(missing_ok=True)  # an earlier sweep's counts are not this one's
    with open(root / LOG_NAME, "ab") as log:
        process = subprocess.Popen(command(root), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    _processes()[str(root)] = process
    return process


def statuses(root: Path) -> Counter[str]:
    """How many runs there are per status (runs that cannot be read are left out)."""
    return Counter(run.status.value for run in scan(root).runs)


def _unusable(root: Path) -> str | None:
    """Why no runs can be read from or trained into `root` (a file, a link to nothing, a path too long
    for the system, a runs folder that is a symbolic link), or None: a folder, or none yet, which the
    quickstart makes."""
    try:
        runs = layout.runs_dir(root)
        if runs.is_symlink():     # an attacker's: "holds no runs", and the quickstart then failed
            return (f"holds its runs folder as a symbolic link ({runs}): results are read and written only inside "
                    "the root's own folders")
        if runs.exists() and not runs.is_dir():
            return f"holds a file where its runs folder would be ({runs})"
        if root.is_dir() or not (root.exists() or root.is_symlink()):
            return None
        return "is a symlink that leads nowhere" if not root.exists() else "is no folder (a file, or a link to one)"
    except OSError as error:     # a path too long (ENAMETOOLONG), a folder this user may not search
        return f"cannot be read ({error.strerror})"


def empty_root(root: Path) -> None:
    st.title("No runs yet")
    where = "(`--results` after `--` on the `streamlit run` line, else `$IB_RESULTS`, else data/results)"
    if problem := _unusable(root):    # no quickstart button: it would fail, or train beside a file
        st.error(f"The results root {problem}; give a folder {where}.", icon=":material/folder_off:")
        st.code(str(root), language=None, wrap_lines=True)
        return
    if root.is_dir():
        st.write("The results root holds no runs:")
    else:   # a mistyped --results or $IB_RESULTS looked like an empty root, and the button would train into it
        st.warning(f"The results root is no folder yet: is its path right? {where}", icon=":material/folder_off:")
    st.code(str(root), language=None, wrap_lines=True)
    st.write("Fill it from a shell with")
    st.code(f"trainer sweep {QUICKSTART} --results {root}", language="bash")
    st.write("or run the quickstart cohort from here, in the background; runs appear as they finish.")
    process = _processes().get(str(root))
    if process is None or process.poll() is not None:
        if st.button("Run the quickstart cohort", type="primary", icon=":material/play_arrow:"):
            start(root)
            st.rerun()
    if process is not None:
        progress(root)


def active(root: Path) -> bool:
    return str(root) in _processes()


def sweep_progress(root: Path) -> SweepProgress | None:
    """The quickstart sweep's plan and run statuses, from the file it writes (None until it has)."""
    return read_progress(root, SWEEP_ID)


@st.fragment(run_every=2)
def progress(root: Path) -> None:
    """The background sweep: runs completed of those it plans (or of those started), and its log."""
    process = _processes()[str(root)]
    counts = statuses(root)
    seen = sum(counts.values())
    log = root / LOG_NAME
    log_text = log.read_text(errors="replace") if log.exists() else ""
    planned = sweep_progress(root)
    done, total = (planned.completed, planned.planned) if planned else (counts.get(Status.COMPLETED, 0), None)
    code = process.poll()
    text = f"{done} of {total} runs completed" if total else f"{done} of {seen} runs started so far completed"
    st.progress(min(done / (total or seen), 1.0) if (total or seen) else 0.0,
                text=text + ("" if code is None else f"; the sweep exited with code {code}"))
    if seen and st.session_state.get("quickstart_seen") != seen:
        st.session_state["quickstart_seen"] = seen
        st.rerun()  # the whole app: new runs to show
    if log.exists():
        with st.expander("sweep log", expanded=code not in (None, 0)):
            st.code(log_text[-4000:] or "(empty)", language=None)
