"""kill -9 during `trainer compact` (issue 17): the command is started on a run with hundreds of
part files and SIGKILLed at a random moment of the window in which the files change, again and
again, until kills have landed inside the compaction (told by what is left on disk: a base beside
parts it holds, one table compacted and not the other, a half-written temporary file). After
every kill every reader sees each epoch exactly once, and the next compaction completes and
leaves nothing behind."""

from __future__ import annotations

import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO

from explorer.results import ResultStore
from ibstore import index
from ibstore.sandbox import run_query
from trainer import cli
from trainer.store import RunWriter
from trainer.tables import all_parts, leftover_temporaries, read_table, table_files

EPOCHS = 150           # 150 flushes: 150 parts per table, 300 in all
WANTED_MID_KILLS = 1
MAX_ATTEMPTS = 40
RUN = "r"
ROWS_PER_EPOCH = {"metrics": 2, "mi": 1}


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index.forget()
    yield tmp_path / "results"
    index.forget()


def write_parts(root: Path, epochs: int = EPOCHS) -> None:
    """A run whose writer died before compacting: one part per table per flush."""
    writer = RunWriter(root, {"run_id": RUN, "epochs_total": epochs}, flush_seconds=0)
    for epoch in range(epochs):
        writer.add("metrics", {"run_id": RUN, "epoch": epoch, "split": ["train", "test"],
                               "loss": [1.0, 2.0], "accuracy": [0.5, 0.6]})
        writer.add("mi", {"run_id": RUN, "epoch": epoch, "layer": 0, "layer_name": "dense", "units": 4,
                          "split": "train", "estimator": "binning", "params": "{}", "i_xt": 1.0,
                          "i_yt": 0.5, "h_t_bits": None})
        writer.flush(epoch)
    writer.close()


def disk_state(run_dir: Path) -> str:
    """untouched (every part, no base), done (no part left) or mid (anything between)."""
    parts, half_written = all_parts(run_dir), leftover_temporaries(run_dir)
    if not parts and not half_written:
        return "done"
    untouched = (all(len(parts.get(table, [])) == EPOCHS for table in ROWS_PER_EPOCH)
                 and not any(files[0].name == f"{table}.parquet" for table, files in table_files(run_dir).items())
                 and not half_written)
    return "untouched" if untouched else "mid"


def assert_every_reader_sees_each_epoch_once(root: Path) -> None:
    run_dir = root / "runs" / RUN
    for table, per_epoch in ROWS_PER_EPOCH.items():
        rows = read_table(table_files(run_dir)[table], table).to_pandas()
        assert collections.Counter(rows["epoch"]) == dict.fromkeys(range(EPOCHS), per_epoch), table
        counted = run_query(root, f"SELECT epoch, count(*) AS n FROM {table} GROUP BY epoch")
        assert dict(zip(counted["epoch"], counted["n"])) == dict.fromkeys(range(EPOCHS), per_epoch), table
    metrics = ResultStore(root).metrics([RUN])
    assert collections.Counter(metrics["epoch"]) == dict.fromkeys(range(EPOCHS), 2)


def compact_process(root: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "trainer", "compact", "--results", str(root)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def first_moment(condition: Callable[[], bool], compaction: subprocess.Popen) -> float:
    """When (time.monotonic) `condition()` first holds, polled every millisecond while `compaction` runs."""
    deadline = time.monotonic() + 120
    while not condition() and compaction.poll() is None:
        assert time.monotonic() < deadline, "the compaction neither changed its files nor ended in 120 s"
        time.sleep(0.001)
    return time.monotonic()


@pytest.mark.slow   # starts `trainer compact` processes and sandbox workers
def test_kill_9_inside_compaction_loses_and_duplicates_nothing(root, tmp_path, capsys):
    pristine = tmp_path / "pristine"
    write_parts(pristine)
    run_dir = root / "runs" / RUN
    untouched = set(os.listdir(pristine / "runs" / RUN))

    def changed() -> bool:   # its first change: the temporary file of a table's new base
        return set(os.listdir(run_dir)) != untouched

    # The window in which a whole compaction changes the files. Timed from the process's start, the
    # window moved by more than its length under load (Python's start-up), so most kills missed it.
    shutil.copytree(pristine, root)
    compaction = compact_process(root)
    first_change = first_moment(changed, compaction)
    last_change = first_moment(lambda: not any(".part-" in name or name.endswith(".tmp")
                                               for name in os.listdir(run_dir)), compaction)
    assert compaction.wait(timeout=120) == 0
    assert disk_state(run_dir) == "done"

    rng = random.Random(17)
    latest = last_change - first_change
    states = collections.Counter()
    for _ in range(MAX_ATTEMPTS):
        shutil.rmtree(root)
        shutil.copytree(pristine, root)
        compaction = compact_process(root)
        first_moment(changed, compaction)
        delay = rng.uniform(0.0, latest)
        time.sleep(delay)
        compaction.send_signal(signal.SIGKILL)
        compaction.wait()
        state = disk_state(run_dir)
        states[state] += 1
        if state == "done":   # this compaction changed its files faster: narrow the delays
            latest = delay

        index.forget()
        assert_every_reader_sees_each_epoch_once(root)
        assert cli.main(["compact", "--results", str(root)]) == 0
        assert "compacted 1 run(s)" in capsys.readouterr().out or state == "done"
        assert disk_state(root / "runs" / RUN) == "done"
        assert sorted(p.name for p in (root / "runs" / RUN).iterdir() if "parquet" in p.name) \
            == ["metrics.parquet", "mi.parquet"]   # nothing half-written left behind
        assert_every_reader_sees_each_epoch_once(root)
        if states["mid"] >= WANTED_MID_KILLS:
            break
    print(f"kills by what they left: {dict(states)}")
    assert states["mid"] >= 1, f"no kill landed inside the compaction in {MAX_ATTEMPTS} attempts: {dict(states)}"


@pytest.mark.slow   # its writer records the code version (git)
def test_compaction_removes_what_a_killed_write_left(root, capsys):
    """A process killed inside an atomic write leaves its temporary file (".T.parquet.XXXX.tmp",
    as trainer.atomic names them); the next compaction, holding the run's lock, removes it and
    keeps every other file's rows."""
    write_parts(root, epochs=4)
    run_dir = root / "runs" / RUN
    half = run_dir / ".metrics.parquet.k1ll3d.tmp"
    half.write_bytes((run_dir / "metrics.part-000001.parquet").read_bytes()[:100])
    unrelated = run_dir / ".notes.tmp"   # not a table's: not the compaction's to remove
    unrelated.write_text("kept")
    assert cli.main(["compact", "--results", str(root)]) == 0
    assert "compacted 1 run(s)" in capsys.readouterr().out
    assert not half.exists() and unrelated.read_text() == "kept"
    assert disk_state(run_dir) == "done"
    for table, per_epoch in ROWS_PER_EPOCH.items():
        rows = read_table(table_files(run_dir)[table], table).to_pandas()
        assert collections.Counter(rows["epoch"]) == dict.fromkeys(range(4), per_epoch)


@pytest.mark.slow   # its writer records the code version (git)
def test_an_empty_base_file_is_named_and_the_other_runs_are_compacted(root, capsys):
    # `pq.read_metadata` of a 0-byte base was a traceback (exit 1), and the runs after it were never compacted
    write_parts(root, epochs=3)
    damaged = root / "runs" / "a-damaged"
    shutil.copytree(root / "runs" / RUN, damaged)
    (damaged / "metrics.parquet").write_bytes(b"")
    assert cli.main(["compact", "--results", str(root)]) == 1
    out, err = capsys.readouterr()
    assert f"a-damaged: could not be compacted (ArrowInvalid: {damaged / 'metrics.parquet'}: " in err
    assert "compacted 1 run(s)" in out and "1 failed" in out
    assert disk_state(root / "runs" / RUN) == "done"
