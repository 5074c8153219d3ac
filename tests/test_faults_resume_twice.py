"""Two `trainer sweep --resume` of one cohort at once (issue 17): a sweep is killed (kill -9,
workers included) mid-training once every run has a checkpoint, then two resuming sweeps start
together. Between them each unfinished run is trained once (a witness logs every writer that
takes a run), every epoch is in each run's tables exactly once, and both exit 0 with a final
tally that is true."""

from __future__ import annotations

import collections
import os
import re
import signal
import time

import pytest
from test_sweep import (
    COUNT_WRITERS,
    REPO,
    TINY,
    metrics,
    run_json,
    run_writers,
    session_processes,
    sweep_process,
    wait_for,
    wait_slowed,
    write_config,
)

from ibstore.lock import is_live
from ibstore.progress import read_progress
from ibstore.sandbox import run_query
from trainer import config
from trainer.schedule import logged_epochs
from trainer.tables import read_table, table_files

# Long enough for the victim to be killed after its first checkpoint (5 s of training, slowed to a
# tenth: wait_slowed), before it ends, on an idle machine too, and for the resumed training to last
# seconds, so that the two resuming sweeps overlap; logged sparsely so that it stays short.
EPOCHS = 8000
BIASES = [0, 0.25, 0.5]
SCHEDULE = {"every": 200}


@pytest.mark.slow   # three sweeps training a small cohort
def test_two_resuming_sweeps_of_one_cohort_train_each_run_once(tmp_path):
    path = write_config(tmp_path, "cohort", {**TINY, "epochs": EPOCHS, "architecture": [4], "log_schedule": SCHEDULE,
                                             "save_checkpoints": True, "grid": {"initial_bias": BIASES}})
    run_ids = [experiment.run_id(0) for experiment in config.plan(config.load_file(path))]
    root, log, hooks = tmp_path / "results", tmp_path / "writers.log", tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(COUNT_WRITERS.format(repo=str(REPO), log=str(log)))
    env = {**os.environ, "PYTHONPATH": str(hooks), "XDG_CACHE_HOME": str(tmp_path / "cache")}

    victim = sweep_process(path, root, "--workers", "1", env=env)
    checkpointed = lambda: {r for r in run_ids if list((root / "runs" / r).glob("checkpoints/*.npz"))}
    wait_slowed(lambda: checkpointed() == set(run_ids) or victim.poll() is not None,
                lambda: run_writers(session_processes(victim.pid)), timeout=300, what="a checkpoint of every run")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the sweep ended before it could be killed"
    wait_for(lambda: not any(is_live(root / "runs" / r) for r in run_ids), timeout=60,
             what="the killed worker's locks to be freed (its exit can end after its sweep was reaped)")
    unfinished = sorted(r for r in run_ids if not (root / "runs" / r / "run.json").exists()
                        or run_json(root, r)["status"] != "completed")
    assert unfinished, "every run completed before the kill"
    log.unlink()

    first = sweep_process(path, root, "--workers", "1", "--resume", "--sweep-id", "first", env=env)
    time.sleep(0.5)
    second = sweep_process(path, root, "--workers", "1", "--resume", "--sweep-id", "second", env=env)
    outputs = [process.communicate(timeout=600) for process in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), outputs
    assert any(f"{len(unfinished)} interrupted run(s) continue from their last checkpoint" in out
               for out, _ in outputs), outputs
    # they overlapped: one met the runs the other held (when it planned, or when its worker took them)
    assert any("held by other live processes" in out or "waiting for it" in out for out, _ in outputs), outputs

    trained = collections.Counter(line.split()[0] for line in log.read_text().splitlines())
    assert trained == dict.fromkeys(unfinished, 1), trained   # each unfinished run trained exactly once
    tallies = []
    for out, err in outputs:
        assert "Traceback" not in err
        done = re.search(r"^done: (\d+) completed of (\d+) planned \((\d+) trained by this sweep\)$", out, re.MULTILINE)
        assert done, out
        tallies.append(tuple(int(n) for n in done.groups()))
    assert [(completed, planned) for completed, planned, _ in tallies] == [(len(run_ids), len(run_ids))] * 2
    assert sum(here for *_, here in tallies) == len(unfinished)
    for sweep_id in ("first", "second"):
        progress = read_progress(root, sweep_id)
        assert progress.state == "finished" and progress.exit_code == 0
        assert progress.runs == dict.fromkeys(run_ids, "completed")

    for run_id in run_ids:   # nothing double-written: every epoch once, in the files and through SQL
        assert run_json(root, run_id)["status"] == "completed"
        rows = metrics(root, run_id)
        assert collections.Counter(zip(rows["epoch"], rows["split"])) \
            == {(epoch, split): 1 for epoch in range(EPOCHS + 1) for split in ("train", "test")}
        mi = read_table(table_files(root / "runs" / run_id)["mi"], "mi").to_pandas()
        assert not mi.duplicated(["epoch", "layer", "split", "estimator", "params"]).any()
        assert sorted(mi["epoch"].unique()) == logged_epochs(SCHEDULE, EPOCHS)
    counted = run_query(root, "SELECT run_id, count(*) AS n, count(DISTINCT (epoch, split)) AS distinct_rows "
                              "FROM metrics GROUP BY 1")
    assert (counted["n"] == counted["distinct_rows"]).all() and sorted(counted["run_id"]) == sorted(run_ids)
