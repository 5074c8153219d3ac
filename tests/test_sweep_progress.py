"""A real `trainer sweep` as a user sees it: progress with and without a terminal, no TensorFlow
start-up notices (nor in a foreground `trainer run`), and Ctrl-C at start-up and mid-training
(issue 18). Every test starts the command as a process: slow tier."""

from __future__ import annotations

import fcntl
import itertools
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from test_sweep import REPO, TINY, session_processes, wait_for, write_config

from ibstore.lifecycle import current_status

# One at a time under pytest-xdist with the other timed tests: progress every 10 s and Ctrl-C
# within 3 s are timed bounds (group "timed").
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("timed")]

# What a sweep's workers and a foreground run must not print (TensorFlow / XLA / absl start-up notices).
NOTICES = ("I0000", "XLA service", "Compiled cluster using XLA", "oneDNN", "absl::InitializeLog")
# The bound: progress shows at least this often, with or without a terminal.
PROGRESS_EVERY_S = 10.0
PROGRESS = re.compile(r"(\d+)/(\d+) network-epochs")
# A cohort of 4 networks in 2 stacked groups, a few seconds of training after start-up (600 epochs
# once trained in under a second, between two of the test's 1 s progress lines: no frame mid-training).
# 3000 epochs: a group reports every 500 (its logged epochs) and trains about 600 epochs a second
# on one core, so the 2500 after its first report last about 4 s unloaded, longer under load.
COHORT = {**TINY, "epochs": 3000, "log_schedule": {"every": 500}, "grid": {"initial_bias": [0, 0.5]}, "n_runs": 2}
LONG = {**COHORT, "epochs": 100000}


def sweep_command(path: Path, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "trainer", "sweep", str(path), "--results", str(root), "--workers", "2", *extra]


def stamped(stream, into: list[tuple[float, bytes]]) -> threading.Thread:
    """Read `stream` (a file object or a pty's fd) into (arrival time, chunk) pairs on a thread."""
    def pump():
        while True:
            try:
                chunk = os.read(stream, 4096) if isinstance(stream, int) else stream.read1(4096)
            except OSError:   # the pty's other end closed
                return
            if not chunk:
                return
            into.append((time.monotonic(), chunk))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    return reader


def progress_times(chunks: list[tuple[float, bytes]]) -> list[tuple[float, int, int]]:
    """(arrival time, done, total) of every progress frame (a line, or a bar redrawn after "\r")."""
    frames, pending = [], b""
    for arrived, chunk in chunks:
        pending += chunk
        *complete, pending = re.split(rb"[\r\n]", pending)
        for frame in complete:
            found = PROGRESS.search(frame.decode(errors="replace"))
            if found:
                frames.append((arrived, int(found[1]), int(found[2])))
    return frames


def assert_regular(frames: list[tuple[float, int, int]], started: float, ended: float) -> None:
    """Progress from the start to the end of the sweep, no gap longer than PROGRESS_EVERY_S, ending at 100 %."""
    times = [started, *(t for t, _, _ in frames), ended]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) <= PROGRESS_EVERY_S, f"progress gaps {gaps}"
    assert frames[-1][1] == frames[-1][2] == 4 * COHORT["epochs"], frames[-1]
    assert any(0 < done < total for _, done, total in frames), "no progress while training"


def test_without_a_terminal_plain_progress_lines_come_regularly_and_workers_are_quiet(tmp_path):
    path = write_config(tmp_path, "cohort", COHORT)
    started = time.monotonic()
    sweep = subprocess.Popen(sweep_command(path, tmp_path / "results", "--progress-seconds", "1"), cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = [], []
    readers = [stamped(sweep.stdout, out), stamped(sweep.stderr, err)]
    assert sweep.wait(timeout=300) == 0
    ended = time.monotonic()
    for reader in readers:
        reader.join()
    stderr = b"".join(chunk for _, chunk in err).decode()
    stdout = b"".join(chunk for _, chunk in out).decode()
    assert_regular(progress_times(err), started, ended)
    assert "\r" not in stderr and "\x1b" not in stderr
    assert not [line for line in stderr.splitlines() if any(notice in line for notice in NOTICES)], stderr
    run_lines = [line for line in stdout.splitlines() if line.startswith("completed")]
    assert len(run_lines) == 4 and all(re.search(r"  \d+ s$", line) for line in run_lines), stdout


def test_a_foreground_run_prints_its_own_lines_only(tmp_path):
    # One seed trains in the command's own process, which imports TensorFlow itself: TensorFlow's
    # start-up notice ("I0000 ... port.cc] oneDNN custom operations are on ...") once came first.
    path = write_config(tmp_path, "one", {**TINY, "epochs": 2})
    done = subprocess.run([sys.executable, "-m", "trainer", "run", str(path), "--results", str(tmp_path / "results")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stderr.splitlines() if any(notice in line for notice in NOTICES)], done.stderr
    assert re.fullmatch(r"one-\w+-s0: completed  \(.+\)\n", done.stdout), done.stdout
    # without a terminal its progress is the sweep's plain line, not a bar's carriage returns
    assert "\r" not in done.stderr and re.search(r"^run: 2/2 network-epochs \(100%\) .* 1/1 runs ended\]$",
                                                 done.stderr, re.MULTILINE), done.stderr


def test_on_a_terminal_the_bar_is_redrawn_regularly(tmp_path):
    path = write_config(tmp_path, "cohort", COHORT)
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # as a terminal window has
    started = time.monotonic()
    sweep = subprocess.Popen(sweep_command(path, tmp_path / "results"), cwd=REPO,
                             stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal)
    os.close(terminal)
    chunks: list[tuple[float, bytes]] = []
    reader = stamped(controller, chunks)
    assert sweep.wait(timeout=300) == 0
    ended = time.monotonic()
    reader.join(timeout=10)
    os.close(controller)
    frames = progress_times(chunks)
    assert_regular(frames, started, ended)
    text = b"".join(chunk for _, chunk in chunks).decode(errors="replace")
    assert not any(notice in text for notice in NOTICES), text


def interrupt(sweep: subprocess.Popen) -> float:
    """Ctrl-C as a terminal sends it (SIGINT to the process group); returns seconds until the sweep exited."""
    signalled = time.monotonic()
    os.killpg(sweep.pid, signal.SIGINT)
    sweep.wait(timeout=60)   # generous: the bound is asserted below on the elapsed time
    return time.monotonic() - signalled


def sweep_in_session(path: Path, root: Path) -> subprocess.Popen:
    return subprocess.Popen(sweep_command(path, root), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def assert_stopped_cleanly(sweep: subprocess.Popen, elapsed: float) -> None:
    _, err = sweep.communicate()
    assert sweep.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    # The bound is structural (workers still starting die of SIGTERM at once; training ones get
    # local_pool.SHUTDOWN_GRACE_SECONDS), so the elapsed time is asserted: it is the requirement.
    assert elapsed <= 3.0, f"the sweep took {elapsed:.1f} s to exit after Ctrl-C"
    wait_for(lambda: session_processes(sweep.pid) == [], timeout=10, what="every process of the sweep to exit")


def test_ctrl_c_while_the_workers_start_exits_at_once_and_leaves_no_run_running(tmp_path):
    path, root = write_config(tmp_path, "long", LONG), tmp_path / "results"
    sweep = sweep_in_session(path, root)
    # the parent, multiprocessing's resource tracker and two workers (importing TensorFlow)
    wait_for(lambda: len(session_processes(sweep.pid)) >= 4, timeout=120, what="the workers to start")
    assert not list(root.glob("runs/*/run.json")), "a worker took a run before the test could interrupt it"
    elapsed = interrupt(sweep)
    assert_stopped_cleanly(sweep, elapsed)
    statuses = {run.name: current_status(root, run.name) for run in (root / "runs").glob("*")}
    assert not any(status is not None and status.value != "interrupted" for status in statuses.values()), statuses


def test_ctrl_c_mid_training_exits_within_3_s_and_the_runs_read_interrupted(tmp_path):
    path, root = write_config(tmp_path, "long", LONG), tmp_path / "results"
    sweep = sweep_in_session(path, root)
    wait_for(lambda: len(list(root.glob("runs/*/metrics.part-000001.parquet"))) == 4, timeout=240,
             what="every run to flush its first part")
    elapsed = interrupt(sweep)
    assert_stopped_cleanly(sweep, elapsed)
    run_ids = [run.name for run in (root / "runs").glob("*")]
    assert len(run_ids) == 4
    assert {current_status(root, run_id).value for run_id in run_ids} == {"interrupted"}
