"""Nothing lost: training processes killed with SIGKILL at random moments leave a results
root that reads cleanly; an unwritable root or a full disk gives a clear error and no
partial files."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from ibstore.sandbox import connect, run_query
from ibstore.scan import scan
from ibstore.schema import HEARTBEAT_STALE_SECONDS
from trainer import cli, schedule

REPO = Path(__file__).resolve().parents[1]
LONG = {"name": "long", "epochs": 100000, "architecture": [10, 7, 5], "batch_size": 1024,
        "log_schedule": "default"}
KILLS = 5


def write_config(folder: Path, raw: dict) -> Path:
    path = folder / f"{raw['name']}.json"
    path.write_text(json.dumps(raw))
    return path


def hidden_or_readable(run_dir: Path) -> None:
    """Every file a reader would open is whole (temporary files are hidden: '.name.tmp')."""
    for path in run_dir.iterdir():
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix == ".parquet":
            pq.read_table(path)
        else:
            json.loads(path.read_text())


def test_sigkill_at_random_moments_keeps_every_flushed_epoch(tmp_path):
    """Five `trainer run` processes, each killed at a seeded random moment, while SQL readers query
    their roots. The moment counts from the run's start (run.json) for two of them, so they may die
    before their first flush, and from their first flush for three, so they die between or during
    later flushes however slowly the machine starts TensorFlow."""
    config_path = write_config(tmp_path, LONG)
    rng = random.Random(20240605)
    roots = [tmp_path / f"results{i}" for i in range(KILLS)]
    delays = [rng.uniform(0.5, 12.0) for _ in roots]
    processes = [subprocess.Popen([sys.executable, "-m", "trainer", "run", str(config_path), "--quiet",
                                   "--results", str(root)], cwd=REPO, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for root in roots]
    counts_from = ["run.json", "run.json", "metrics.parquet", "metrics.parquet", "metrics.parquet"]
    kill_at: dict[int, float] = {}
    deadline = time.time() + 240
    while len(kill_at) < KILLS or any(p.poll() is None for p in processes):
        assert time.time() < deadline, "the training processes never started"
        for i, (root, process) in enumerate(zip(roots, processes)):
            if i not in kill_at and list(root.glob(f"runs/*/{counts_from[i]}")):
                kill_at[i] = time.time() + delays[i]
            if i in kill_at and time.time() >= kill_at[i] and process.poll() is None:
                process.send_signal(signal.SIGKILL)
            run_query(connect(root), "SELECT count(*), max(m.epoch) FROM metrics m JOIN runs USING (run_id)")
        time.sleep(0.05)

    logged = schedule.logged_epochs(LONG["log_schedule"], LONG["epochs"])
    for root, process in zip(roots, processes):
        assert process.returncode == -signal.SIGKILL
        later = scan(root, now=time.time() + HEARTBEAT_STALE_SECONDS + 1)
        con = connect(root, scan=later)
        assert later.problems == []
        (status,) = run_query(con, "SELECT status FROM runs").status
        assert status == "interrupted"
        epochs = list(run_query(con, "SELECT DISTINCT epoch FROM metrics ORDER BY epoch").epoch)
        assert epochs == list(range(len(epochs)))
        mi_epochs = list(run_query(con, "SELECT DISTINCT epoch FROM mi ORDER BY epoch").epoch)
        assert mi_epochs == logged[:len(mi_epochs)] and (not mi_epochs or mi_epochs[-1] <= epochs[-1])
        (run_dir,) = (root / "runs").iterdir()
        assert json.loads((run_dir / "run.json").read_text())["epochs_done"] <= (epochs or [0])[-1]
        hidden_or_readable(run_dir)
    assert sum(len(list(root.glob("runs/*/metrics.parquet"))) for root in roots) >= 3


def test_a_results_root_that_cannot_be_created_is_a_clear_error(tmp_path, capsys):
    """Root is not writable even for root: a path under a regular file."""
    config_path = write_config(tmp_path, {**LONG, "name": "short", "epochs": 2})
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    before = sorted(tmp_path.rglob("*"))
    for verb in ("sweep", "run"):
        assert cli.main([verb, str(config_path), "--results", str(blocker / "results")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: cannot write results under '{blocker / 'results'}': Not a directory")
        assert "Traceback" not in err
    assert sorted(tmp_path.rglob("*")) == before and blocker.read_text() == "not a folder"


FULL_DISK = '''
"""Loaded by every Python process of the test (PYTHONPATH): Parquet writes fail as on a full disk."""
import errno, os
import pyarrow.parquet

def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

pyarrow.parquet.write_table = full_disk
'''


def test_a_full_disk_stops_the_sweep_with_a_clear_error_and_no_temporary_files(tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(FULL_DISK)
    config_path = write_config(tmp_path, {**LONG, "name": "full", "epochs": 4, "grid": {"initial_bias": [0, 1]}})
    root = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(hooks)}
    result = subprocess.run([sys.executable, "-m", "trainer", "sweep", str(config_path), "--workers", "1",
                             "--results", str(root)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 2, result.stderr
    assert f"error: cannot write results under '{root}': No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(list((root / "runs").iterdir())) == 1  # the sweep stopped after the first experiment
    assert [p.name for p in root.rglob("*") if p.is_file()] == ["run.json"]
