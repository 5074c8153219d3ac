"""Ctrl-C while a sweep starts a worker (issue 18): the parent must not lose it. Workers are
started with SIGINT blocked, which they inherit; the parent holds a Ctrl-C back meanwhile and
raises it once the worker is registered. In-process, no worker is started (fast tier), but for
the last test, which sweeps one tiny run in a fresh interpreter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from trainer.local_pool import _sigint_held_back

REPO = Path(__file__).resolve().parents[1]


def blocked_signals() -> set:
    return signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_a_ctrl_c_while_a_worker_starts_reaches_the_parent_once_it_has_started():
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    # A thread that does not block SIGINT, as the sweep's progress threads: the kernel may hand
    # the process's signal to it, whatever the main thread's mask.
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with _sigint_held_back():
            assert signal.SIGINT in blocked_signals()   # what a worker started here inherits
            os.kill(os.getpid(), signal.SIGINT)         # the terminal's Ctrl-C, mid-start
            for _ in range(100):                        # bytecode boundaries: any handler would run here
                pass
            assert received == []
        assert received == [signal.SIGINT]
        assert signal.SIGINT not in blocked_signals()
        assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    finally:
        stop.set()
        other.join()
        signal.signal(signal.SIGINT, previous)


def test_holding_back_keeps_a_signal_mask_the_parent_already_had():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        with _sigint_held_back():
            pass
        assert signal.SIGUSR1 in blocked_signals()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})


# A fresh interpreter (no resource tracker yet) sweeps one tiny run on one worker and prints, for
# each process the sweep spawned, whether SIGINT was blocked in the spawning thread.
SPAWNS_OF_A_SWEEP = (
    "import json, signal, sys\n"
    "import multiprocessing.util as util\n"
    "from trainer import cli\n"
    "spawns, real = [], util.spawnv_passfds\n"
    "def recording(path, args, passfds):\n"
    "    kind = 'tracker' if any('resource_tracker' in str(a) for a in args) else 'worker'\n"
    "    spawns.append([kind, signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])])\n"
    "    return real(path, args, passfds)\n"
    "util.spawnv_passfds = recording\n"
    "code = cli.main(['sweep', sys.argv[1], '--workers', '1', '--results', sys.argv[2]])\n"
    "print(json.dumps({'code': code, 'spawns': spawns}))\n")


@pytest.mark.slow
def test_every_worker_of_a_sweep_starts_with_sigint_blocked(tmp_path):
    """The first spawn starts multiprocessing's resource tracker, which blocks SIGINT around its own
    start and unblocks it after, in the spawning thread: inside the hold, the first worker then
    started with SIGINT unblocked, and a Ctrl-C during its start printed a traceback (fresh clone)."""
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"architecture": [10, 7, 5], "epochs": 1, "n_runs": 1,
                                  "log_schedule": {"every": 1}}))
    result = subprocess.run([sys.executable, "-c", SPAWNS_OF_A_SWEEP, str(config), str(tmp_path / "results")],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["code"] == 0, result.stderr
    assert ["worker", True] in outcome["spawns"] and ["worker", False] not in outcome["spawns"], outcome
