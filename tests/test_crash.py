"""Nothing lost: training processes killed with SIGKILL at random moments leave a results
root that reads cleanly and show as interrupted at once; a crash between compaction's two
steps loses and duplicates nothing; an unwritable root or a full disk gives a clear error,
no partial files, and a run.json that agrees with the tables."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import disk_full_for

from ibstore import layout
from ibstore.sandbox import connect, run_query
from ibstore.index import scan
from ibstore.scan import read_run
from ibstore.lifecycle import read_record
from trainer import cli, schedule, store, tables
from trainer.store import RunWriter
from trainer.tables import load_tables, table_files

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


@pytest.mark.slow
def test_sigkill_at_random_moments_keeps_every_flushed_epoch(tmp_path, capsys):
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
    first_flush = "metrics.part-000001.parquet"
    counts_from = ["run.json", "run.json", first_flush, first_flush, first_flush]
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
        now = scan(root)  # no waiting for a heartbeat to go stale: the killed writer's lock is free
        con = connect(root, scan=now)
        assert now.problems == []
        (status,) = run_query(con, "SELECT status FROM runs").status
        assert status == "interrupted"
        epochs = list(run_query(con, "SELECT DISTINCT epoch FROM metrics ORDER BY epoch").epoch)
        assert epochs == list(range(len(epochs)))
        mi_epochs = list(run_query(con, "SELECT DISTINCT epoch FROM mi ORDER BY epoch").epoch)
        assert mi_epochs == logged[:len(mi_epochs)] and (not mi_epochs or mi_epochs[-1] <= epochs[-1])
        (run_dir,) = (root / "runs").iterdir()
        assert json.loads((run_dir / "run.json").read_text())["epochs_done"] <= (epochs or [0])[-1]
        hidden_or_readable(run_dir)
        assert cli.main(["ls", "--results", str(root)]) == 0
        (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith(run_dir.name)]
        assert "interrupted" in line
    assert sum(len(list(root.glob(f"runs/*/{first_flush}"))) for root in roots) >= 3


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


@pytest.mark.slow
def test_a_full_disk_stops_the_sweep_with_a_clear_error_and_no_temporary_files(tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(FULL_DISK)
    # Two shapes (architectures; activations stack together), so two groups: the sweep must stop after the first.
    config_path = write_config(tmp_path, {**LONG, "name": "full", "epochs": 4,
                                          "grid": {"architecture": [[10, 7, 5], [10, 7]]}})
    root = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(hooks)}
    result = subprocess.run([sys.executable, "-m", "trainer", "sweep", str(config_path), "--workers", "1",
                             "--results", str(root)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 2, result.stderr
    assert f"error: cannot write results under '{root}': No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    (run_dir,) = (root / "runs").iterdir()  # the sweep stopped after the first experiment
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "run.json"]  # no table, no temporary file
    record = read_record(root, run_dir.name)
    assert record.status == "failed" and record.error.startswith("writing the results failed: No space left")
    assert record.epochs_done == 0  # as many as the (empty) tables hold


def metric_rows(run: str, epoch: int) -> dict:
    return {"run_id": run, "epoch": epoch, "split": ["train", "test"], "loss": [1.0 / (epoch + 1), 2.0],
            "accuracy": [0.5, 0.5 + epoch / 100]}


def mi_rows(run: str, epoch: int) -> dict:
    return {"run_id": run, "epoch": epoch, "layer": 0, "layer_name": "dense", "units": 4, "split": "train",
            "estimator": "binning", "params": "{}", "i_xt": 1.0, "i_yt": 0.5, "h_t_bits": None}


@pytest.mark.slow
def test_a_failed_write_mid_flush_leaves_run_json_agreeing_with_the_tables(tmp_path, monkeypatch):
    """The disk fills while the 4th flush writes its second table: that flush's first part is
    removed again, and the run is recorded failed at the 3rd flush's epoch."""
    disk_full_for(monkeypatch, ".mi.part-000004.parquet.")
    writer = RunWriter(tmp_path, {"run_id": "r", "epochs_total": 9}, flush_seconds=0)
    for epoch in range(6):
        writer.add("metrics", metric_rows("r", epoch))
        writer.add("mi", mi_rows("r", epoch))
        if epoch >= 2:
            try:
                writer.flush(epoch)   # flush_seconds=0: every flush is due
            except store.StoreError as error:
                assert "No space left on device" in str(error)
                break
    assert epoch == 5  # flushes at epochs 2, 3, 4 succeeded; the 4th (epoch 5) failed
    assert writer.finish("completed", epoch) == "failed"
    record = read_record(tmp_path, "r")
    assert record.status == "failed" and record.error == "writing the results failed: No space left on device"
    tables = load_tables(tmp_path, "r", 10**6)
    assert record.epochs_done == 4 == max(tables["metrics"]["epoch"].to_pylist()) == max(tables["mi"]["epoch"].to_pylist())
    assert record.final_test_accuracy == 0.54 and record.best_test_accuracy == 0.54
    names = sorted(p.name for p in (tmp_path / "runs" / "r").iterdir())
    assert names == [".lock", "metrics.part-000001.parquet", "metrics.part-000002.parquet",
                     "metrics.part-000003.parquet", "mi.part-000001.parquet", "mi.part-000002.parquet",
                     "mi.part-000003.parquet", "run.json"]


@pytest.mark.slow
def test_a_crash_between_compaction_steps_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    """Compaction writes the new base (ib.compacted_through = 3), then deletes the parts; a process
    dying between the two leaves parts that every reader ignores, and a later compaction removes."""
    writer = RunWriter(tmp_path, {"run_id": "r", "epochs_total": 3}, flush_seconds=0)
    for epoch in range(3):
        writer.add("metrics", metric_rows("r", epoch))
        writer.flush(epoch)
    run_dir = tmp_path / "runs" / "r"

    def dies(self, missing_ok=False):
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(type(run_dir), "unlink", dies)
    with pytest.raises(KeyboardInterrupt):
        tables.compact_run(run_dir)
    monkeypatch.undo()
    writer.close()
    assert sorted(p.name for p in run_dir.glob("*.parquet")) == [
        "metrics.parquet", "metrics.part-000001.parquet", "metrics.part-000002.parquet", "metrics.part-000003.parquet"]
    assert pq.read_metadata(run_dir / "metrics.parquet").metadata[layout.COMPACTED_THROUGH_KEY] == b"3"
    expected = [e for e in range(3) for _ in range(2)]
    assert table_files(run_dir) == {"metrics": [run_dir / "metrics.parquet"]}
    assert load_tables(tmp_path, "r", 10)["metrics"]["epoch"].to_pylist() == expected
    assert [f.path for f in read_run(tmp_path, run_dir).files["metrics"]] == [str(run_dir / "metrics.parquet")]
    epochs = run_query(connect(tmp_path), "SELECT epoch FROM metrics ORDER BY epoch").epoch.tolist()
    assert epochs == expected
    # A writer resuming the run continues after the parts the base holds.
    resumed = RunWriter(tmp_path, {"run_id": "r", "epochs_total": 4}, flush_seconds=0, resume_epoch=2)
    resumed.add("metrics", metric_rows("r", 3))
    resumed.flush(3)
    assert (run_dir / "metrics.part-000004.parquet").exists() and not list(run_dir.glob("*part-00000[123]*"))
    assert load_tables(tmp_path, "r", 10)["metrics"]["epoch"].to_pylist() == expected + [3, 3]
    assert resumed.finish("completed", 3) == "completed"
    assert sorted(p.name for p in run_dir.glob("*.parquet")) == ["metrics.parquet"]
    assert load_tables(tmp_path, "r", 10)["metrics"]["epoch"].to_pylist() == expected + [3, 3]


@pytest.mark.slow
@pytest.mark.parametrize("resume_epoch", [None, 2])
def test_a_kill_while_a_new_start_clears_the_old_tables_leaves_a_true_record(tmp_path, monkeypatch, resume_epoch):
    """`--force` removed the tables, and a resume cut them back, before run.json changed: a kill
    in between left "completed" (final accuracy and all) over no metrics, which a sweep then
    skipped as done, or an epochs_done beyond the rows kept. A resume's record then held no final
    metrics until the tables were cut: a kill there blanked an accuracy the tables still had."""
    from ibstore.lifecycle import Redo
    writer = RunWriter(tmp_path, {"run_id": "r", "epochs_total": 6}, flush_seconds=0)
    for epoch in range(6):
        writer.add("metrics", metric_rows("r", epoch))
        writer.flush(epoch)
    assert writer.finish("completed", 5) == "completed"
    assert read_record(tmp_path, "r").final_test_accuracy == 0.55

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(store, "rewrite_table" if resume_epoch else "remove_results", killed)
    with pytest.raises(KeyboardInterrupt):
        RunWriter(tmp_path, {"run_id": "r", "epochs_total": 6}, flush_seconds=0, resume_epoch=resume_epoch,
                  redo=Redo(completed=True))
    record = read_record(tmp_path, "r")
    assert record.status == "running" and record.epochs_done == (resume_epoch or 0)
    # a fresh start has no metrics yet; a resume has those of the epoch it continues from
    assert record.final_test_accuracy == (None if resume_epoch is None else 0.5 + resume_epoch / 100)
    assert record.final_train_loss == (None if resume_epoch is None else 1.0 / (resume_epoch + 1))
    assert record.finished_at is None
    assert {r.run_id: r.status.value for r in scan(tmp_path).runs} == {"r": "interrupted"}   # its lock is free


@pytest.mark.slow
def test_a_run_to_resume_with_a_damaged_table_is_recorded_failed_and_says_why(tmp_path):
    """A truncated metrics.parquet made `sweep --resume` print ArrowInvalid's traceback, resume no run
    of the stack and say the runs were "interrupted by the user"."""
    writer = RunWriter(tmp_path, {"run_id": "r", "epochs_total": 9}, flush_seconds=0)
    for epoch in range(4):
        writer.add("metrics", metric_rows("r", epoch))
        writer.flush(epoch)
    writer.close()                       # as a kill leaves it: running, its lock free
    tables.compact_run(tmp_path / "runs" / "r")
    base = tmp_path / "runs" / "r" / "metrics.parquet"
    base.write_bytes(base.read_bytes()[:100])
    with pytest.raises(store.RunDamaged, match=r"cannot resume: a table of this run cannot be read \(.*magic"):
        RunWriter(tmp_path, {"run_id": "r", "epochs_total": 9}, flush_seconds=0, resume_epoch=2)
    record = read_record(tmp_path, "r")
    assert record.status == "failed" and record.error.endswith("train it again from the start (--force)")
    assert {r.run_id: r.status.value for r in scan(tmp_path).runs} == {"r": "failed"}
