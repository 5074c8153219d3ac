"""Run locks (another process cannot take a held run; a killed holder frees it at once), what
`trainer run` does with completed and held runs."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ibstore.lock import LOCK_FILE, RunLock, RunLocked, holder, is_live
from ibstore.record import SCHEMA_VERSION, RunRecord, Status
from trainer import cli, config
from ibstore.lifecycle import Redo, read_record
from ibstore.record import utc_now
from trainer.store import RunExists, RunWriter, write_record
from trainer.tables import load_tables

HOLD = """
import sys, time
from pathlib import Path
from ibstore.lock import RunLock
lock = RunLock.acquire(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(600)
"""


def hold_in_another_process(run_dir: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[1])
    assert process.stdout.readline().strip() == "locked"
    return process


@pytest.mark.slow
def test_a_held_run_cannot_be_taken_and_a_killed_holder_frees_it_at_once(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    assert is_live(run_dir) is None and holder(run_dir) is None
    process = hold_in_another_process(run_dir)
    try:
        assert is_live(run_dir) is True
        assert holder(run_dir)["pid"] == process.pid and holder(run_dir)["host"] == socket.gethostname()
        started = time.monotonic()
        with pytest.raises(RunLocked) as refused:
            RunLock.acquire(run_dir, wait_s=0.3)
        assert time.monotonic() - started >= 0.3  # it retried for wait_s
        assert str(refused.value).startswith(f"run 'r1' is held by pid {process.pid} on host {socket.gethostname()} since ")
        assert is_live(run_dir) is True  # the probe above did not take the lock from the holder
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert is_live(run_dir) is False  # no waiting for a heartbeat to go stale
    with RunLock.acquire(run_dir, wait_s=0) as lock:
        assert lock.held and holder(run_dir)["pid"] == os.getpid()
        # flock is per open file: even this process cannot lock the run a second time
        with pytest.raises(RunLocked):
            RunLock.acquire(run_dir, wait_s=0)
    assert not lock.held and is_live(run_dir) is False
    assert (run_dir / LOCK_FILE).exists()  # never deleted (see ibstore.lock)


@pytest.mark.slow
def test_a_probe_does_not_keep_a_writer_out(tmp_path):
    """Readers probe with a momentary shared lock; a writer retries through it."""
    run_dir = tmp_path / "r"
    RunLock.acquire(run_dir).release()
    probes = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom ibstore.lock import is_live\n"
                               "end = time.time() + 1.5\nwhile time.time() < end: is_live(sys.argv[1])",
                               str(run_dir)], cwd=Path(__file__).resolve().parents[1])
    try:
        time.sleep(0.3)
        for _ in range(20):
            RunLock.acquire(run_dir, wait_s=1.0).release()
    finally:
        probes.wait()


def test_a_hostile_lock_file_is_not_a_live_run(tmp_path):
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / LOCK_FILE)
    assert is_live(fifo) is None and holder(fifo) is None  # no hang on a named pipe
    with pytest.raises(OSError):
        RunLock.acquire(fifo, wait_s=0)
    nested = tmp_path / "nested"
    nested.mkdir()
    (nested / LOCK_FILE).write_text("[" * 3000)
    assert holder(nested) is None and is_live(nested) is False
    (nested / LOCK_FILE).write_text(json.dumps([1, 2]))
    assert holder(nested) is None


@pytest.mark.slow
def test_a_writer_holds_its_run_and_a_fresh_start_keeps_completed_runs(tmp_path):
    writer = RunWriter(tmp_path, {"run_id": "r"})
    run_dir = tmp_path / "runs" / "r"
    assert is_live(run_dir) is True and read_record(tmp_path, "r").pid == os.getpid()
    with pytest.raises(RunLocked, match=f"run 'r' is held by pid {os.getpid()}"):
        RunWriter(tmp_path, {"run_id": "r"})
    assert writer.finish("completed", 0) == Status.COMPLETED
    assert is_live(run_dir) is False
    before = (run_dir / "run.json").read_bytes()
    with pytest.raises(RunExists, match="run 'r' is already completed"):
        RunWriter(tmp_path, {"run_id": "r"})
    assert (run_dir / "run.json").read_bytes() == before and is_live(run_dir) is False
    RunWriter(tmp_path, {"run_id": "r"}, redo=Redo(completed=True)).close()
    assert read_record(tmp_path, "r").status == "running" and is_live(run_dir) is False


@pytest.mark.slow
@pytest.mark.parametrize("lost", ["removed", "moved", "linked"])
def test_a_writer_whose_folder_is_removed_or_moved_writes_nothing_more(tmp_path, lost):
    # An attacker's: a run folder deleted (or renamed) while its run trained was made again by the
    # next flush, without the earlier rows, and recorded completed 300/300
    import numpy as np

    from trainer import saved
    from trainer.store import StoreError
    writer = RunWriter(tmp_path, {"run_id": "r"}, flush_seconds=0)
    writer.add("metrics", {"run_id": "r", "epoch": 0, "split": ["train", "test"], "loss": [1.0, 2.0],
                           "accuracy": [0.5, 0.6]})
    writer.flush(0)
    run_dir = tmp_path / "runs" / "r"
    if lost == "removed":
        import shutil
        shutil.rmtree(run_dir)
    else:   # linked: moved out of the root, a link to it left in its place (which led writes outside)
        run_dir.rename(tmp_path / "runs" / "moved-away")
        if lost == "linked":
            (tmp_path / "runs" / "moved-away").rename(tmp_path / "outside")
            run_dir.symlink_to(tmp_path / "outside")
    writer.add("metrics", {"run_id": "r", "epoch": 1, "split": ["train", "test"], "loss": [1.0, 2.0],
                           "accuracy": [0.5, 0.6]})
    said = f"run folder {str(run_dir)!r} was removed, moved or replaced (or its .lock removed) while the run trained"
    with pytest.raises(StoreError, match="was removed, moved or replaced") as refused:
        writer.flush(1)
    assert str(refused.value).startswith(said)
    with pytest.raises(OSError):   # nor its activations (the training loop asks `folder_lost` first)
        writer.folder_lost() if lost == "linked" else saved.save_epoch(tmp_path, "r", 1, [np.zeros((3, 2))])
    with pytest.raises(StoreError, match="was removed, moved or replaced"):
        writer.finish("completed", 1)
    assert not writer.lock.held
    if lost == "removed":
        assert not run_dir.exists()
    elif lost == "moved":   # what it held stays where it was moved, as it was
        assert not run_dir.exists() and len(load_tables(tmp_path, "moved-away", 10)["metrics"]) == 2
    else:                   # nothing more written through the link
        assert len([p for p in (tmp_path / "outside").iterdir() if p.suffix == ".parquet"]) == 1   # the first flush


@pytest.mark.slow
def test_trainer_run_keeps_completed_runs_unless_forced_and_never_touches_held_ones(tmp_path, capsys):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"name": "tiny", "epochs": 2, "architecture": [4], "batch_size": 1024}))
    (experiment,) = config.plan(config.load_file(path))
    run_id, root = experiment.run_id(0), tmp_path / "results"
    run_dir = root / "runs" / run_id
    run_dir.mkdir(parents=True)
    write_record(run_dir / "run.json", RunRecord(run_id=run_id, status="completed", schema_version=SCHEMA_VERSION))
    assert cli.main(["run", str(path), "--quiet", "--results", str(root)]) == 0
    assert f"{run_id}: already completed, not trained again (--force retrains it)" in capsys.readouterr().out
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.json"]

    write_record(run_dir / "run.json", RunRecord(run_id=run_id, status="running", host=socket.gethostname(),
                                                 heartbeat_at=utc_now(), schema_version=SCHEMA_VERSION))
    process = hold_in_another_process(run_dir)
    try:
        assert cli.main(["run", str(path), "--force", "--quiet", "--results", str(root)]) == 1
        err = capsys.readouterr().err
        assert f"{run_id}: held by pid {process.pid} on host {socket.gethostname()} since " in err
        assert err.strip().endswith("not trained") and read_record(root, run_id).status == "running"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    write_record(run_dir / "run.json", RunRecord(run_id=run_id, status="completed", schema_version=SCHEMA_VERSION))
    assert cli.main(["run", str(path), "--force", "--quiet", "--results", str(root)]) == 0
    assert f"{run_id}: completed" in capsys.readouterr().out
    record = read_record(root, run_id)
    assert record.status == "completed" and record.epochs_done == 2 and record.pid == os.getpid()


@pytest.mark.slow
def test_trainer_compact_merges_finished_runs_and_leaves_live_ones_alone(tmp_path, capsys):
    def flushed_twice(run_id: str) -> RunWriter:
        writer = RunWriter(tmp_path, {"run_id": run_id}, flush_seconds=0)
        for epoch in range(2):
            writer.add("metrics", {"run_id": run_id, "epoch": epoch, "split": ["train", "test"],
                                   "loss": [1.0, 2.0], "accuracy": [0.5, 0.6]})
            writer.flush(epoch)
        return writer
    flushed_twice("killed").close()      # a killed writer leaves its parts
    live = flushed_twice("live")         # still training (this process holds its lock)
    assert cli.main(["compact", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "killed: merged 2 part file(s)" in out
    assert f"live: held by pid {os.getpid()}" in out and "left alone" in out
    assert sorted(p.name for p in (tmp_path / "runs" / "killed").glob("*.parquet")) == ["metrics.parquet"]
    assert len(list((tmp_path / "runs" / "live").glob("metrics.part-*.parquet"))) == 2
    assert load_tables(tmp_path, "killed", 10)["metrics"]["epoch"].to_pylist() == [0, 0, 1, 1]
    live.close()
