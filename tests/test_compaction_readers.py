"""Compaction never breaks a reader (issue 17.6): a store that refreshes and queries in a loop
while another process appends part files and compacts them (each run's parts replaced by one
base file as the run finishes) sees no exception in 1,000 iterations; a query that loses a
file to compaction reads the compacted file instead."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

from explorer.results import ResultStore

ITERATIONS = 1000

# The writer: one run after another through trainer.store.RunWriter, three flushes each
# (three part files per table), compacted when each finishes. It prints the number of runs it
# finished when stopped. It pauses PAUSE_S after each run: unpaced it grew the root to about
# a thousand runs in the loop, and every rescan and query grows with the root, so the test took
# minutes; paced, each compaction still overlaps several of the reader's iterations.
PAUSE_S = 0.2
WRITER = """
import signal, sys, time
from pathlib import Path
from trainer.store import RunWriter
root, finished = Path(sys.argv[1]), 0
signal.signal(signal.SIGTERM, lambda *_: sys.exit(print(finished, flush=True)))
while True:
    run_id = f"w{finished:06d}"
    writer = RunWriter(root, {"run_id": run_id, "epochs_total": 3}, flush_seconds=0)
    for epoch in range(3):
        writer.add("metrics", {"run_id": run_id, "epoch": epoch, "split": ["train", "test"],
                               "loss": [1.0, 2.0], "accuracy": [0.5, 0.6]})
        writer.add("mi", {"run_id": run_id, "epoch": epoch, "layer": 0, "layer_name": "dense", "units": 4,
                          "split": "train", "estimator": "binning", "params": "{}", "i_xt": 1.0, "i_yt": 0.5, "h_t_bits": None})
        writer.flush(epoch)
    writer.finish("completed", 2)
    finished += 1
    if finished == 4:
        print("ready", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def root(tmp_path, private_index):
    return tmp_path / "results"


def loop_against_a_compacting_writer(root, iterations: int, read) -> list[str]:
    """Start WRITER on `root`, then `iterations` times: refresh a store and `read(store, runs)`
    (runs: the 8 newest, the ones being compacted). The exceptions raised, as text; asserts that
    the writer compacted meanwhile."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(PAUSE_S)], cwd=REPO, text=True,
                              stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    failures = []
    try:
        assert writer.stdout.readline() == "ready\n"
        store = ResultStore(root, max_age_s=0)
        for _ in range(iterations):
            try:
                store.refresh()
                read(store, store.runs()["run_id"].tolist()[-8:])
            except Exception as error:   # counted, so the test reports every one
                failures.append(f"{type(error).__name__}: {error}")
        print(f"{iterations} iterations, {len(failures)} exceptions")
    finally:
        writer.terminate()
        finished = int(writer.communicate(timeout=60)[0].split()[-1])
    print(f"the writer finished {finished} runs")
    assert finished > 4   # the writer compacted while the reader read
    return failures


@pytest.mark.slow   # 1,000 rescans and queries against a busy writer: minutes on a loaded machine
def test_a_reader_looping_through_compactions_sees_no_exception(root):
    def read(store, runs):
        assert set(store.metrics(runs)["run_id"]) <= set(runs)
    assert loop_against_a_compacting_writer(root, ITERATIONS, read) == []
