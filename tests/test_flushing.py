"""Flushing a stack's writers together (trainer.flushing): the same files as one by one, only the
due ones, a failure raised once every other flush has ended, each still all or nothing, and flushes
behind the training: rows queued while one writes go to the next, none lost, none twice, in order."""

import threading

import pytest
from conftest import disk_full_for

from ibstore.lifecycle import read_record
from trainer import store
from trainer.flushing import Flushes, settle_all
from trainer.store import RunWriter
from trainer.tables import load_tables


def metric_rows(run: str, epoch: int) -> dict:
    return {"run_id": run, "epoch": epoch, "split": ["train", "test"], "loss": [1.0 / (epoch + 1), 2.0],
            "accuracy": [0.5, 0.5 + epoch / 100]}


def writers(root, n, flush_seconds):
    result = [RunWriter(root, {"run_id": f"r{i}", "epochs_total": 9}, flush_seconds=flush_seconds) for i in range(n)]
    for i, writer in enumerate(result):
        for epoch in range(i + 1):          # run i has epochs 0..i
            writer.add("metrics", metric_rows(writer.run_id, epoch))
    return result


@pytest.fixture
def flushes():
    started = Flushes()
    yield started
    started.close()


@pytest.mark.slow  # RunWriter asks git for the commit (a subprocess)
def test_every_writer_gets_its_own_rows_and_epochs_done(tmp_path, flushes):
    stack = writers(tmp_path, 12, flush_seconds=0)
    flushes.start(stack, [i for i in range(12)])
    settle_all(stack)
    for i, writer in enumerate(stack):
        tables = load_tables(tmp_path, writer.run_id, 10**6)
        assert sorted(set(tables["metrics"]["epoch"].to_pylist())) == list(range(i + 1))
        assert set(tables["metrics"]["run_id"].to_pylist()) == {writer.run_id}
        assert read_record(tmp_path, writer.run_id).epochs_done == i
        assert [p.name for p in (tmp_path / "runs" / writer.run_id).glob("*.parquet")] == ["metrics.part-000001.parquet"]
        assert writer.pending["metrics"] == [] and writer.writing is None
        writer.close()


@pytest.mark.slow  # RunWriter asks git for the commit (a subprocess)
def test_only_writers_whose_interval_has_passed_flush(tmp_path, flushes):
    waiting = writers(tmp_path, 3, flush_seconds=3600)
    flushes.start(waiting, [0, 1, 2])
    settle_all(waiting)
    assert not list(tmp_path.glob("runs/*/*.parquet"))
    assert all(len(w.pending["metrics"]) for w in waiting)
    flushes.flush_all(waiting, [0, 1, 2])        # a checkpoint flushes them all, and waits
    assert len(list(tmp_path.glob("runs/*/*.parquet"))) == 3
    for writer in waiting:
        writer.close()


@pytest.mark.slow  # RunWriter asks git for the commit (a subprocess)
def test_a_failing_flush_is_raised_after_the_others_have_written(tmp_path, monkeypatch, flushes):
    stack = writers(tmp_path, 6, flush_seconds=0)
    disk_full_for(monkeypatch, "/r3/")
    flushes.start(stack, [1] * 6)           # written behind the caller: raised when waited for
    with pytest.raises(store.StoreError, match="No space left on device"):
        settle_all(stack)
    for i, writer in enumerate(stack):
        files = list((tmp_path / "runs" / writer.run_id).glob("*.parquet"))
        if i == 3:      # nothing half-written: its rows wait for the next flush
            assert files == [] and len(writer.pending["metrics"]) == 4 and writer.write_error
        else:
            assert len(files) == 1 and writer.pending["metrics"] == []
        writer.close()


def held_writes(monkeypatch, fail: bool = False) -> tuple[threading.Event, threading.Event]:
    """Every Parquet part written by a flush waits until `release` is set (`writing` is set once one
    waits); with `fail` the held write then fails as on a full disk."""
    writing, release = threading.Event(), threading.Event()
    real = store.write_table

    def held(path, table, **options):
        writing.set()
        assert release.wait(30)
        if fail:
            raise OSError(28, "No space left on device")
        real(path, table, **options)

    monkeypatch.setattr(store, "write_table", held)
    return writing, release


@pytest.mark.slow  # RunWriter asks git for the commit (a subprocess)
@pytest.mark.parametrize("fails", [False, True])
def test_rows_queued_while_a_flush_writes_go_to_the_next_one_once_and_in_order(tmp_path, monkeypatch, flushes,
                                                                              fails):
    """Epochs 0-2 are flushing (held in the middle of the write) while 3-5 are queued; then the
    writes go through (or the held one fails, its rows queued again before 3-5) and the next flush
    writes the rest. The run holds epochs 0-5 once each, in order, as one flush of them all would."""
    (writer,) = writers(tmp_path, 1, flush_seconds=0)     # epoch 0
    for epoch in (1, 2):
        writer.add("metrics", metric_rows(writer.run_id, epoch))
    writing, release = held_writes(monkeypatch, fail=fails)
    flushes.start([writer], [2])
    assert writing.wait(30)
    for epoch in (3, 4, 5):
        writer.add("metrics", metric_rows(writer.run_id, epoch))
    release.set()
    if fails:
        with pytest.raises(store.StoreError, match="No space left on device"):
            settle_all([writer])
        monkeypatch.undo()
    flushes.start([writer], [5])
    settle_all([writer])
    writer.close()
    tables = load_tables(tmp_path, writer.run_id, 10**6)
    assert tables["metrics"]["epoch"].to_pylist() == [epoch for epoch in range(6) for _ in ("train", "test")]
    assert read_record(tmp_path, writer.run_id).epochs_done == 5


def test_a_queued_value_is_a_column_exactly_when_numpy_gives_it_dimensions():
    """RunWriter.add repeats scalars over the rows and keeps columns; lists are recognised without
    np.ndim (which converts each to an array), every value the same as np.ndim(value) > 0 says."""
    import numpy as np
    import pyarrow as pa

    values = [[0.5, None], [], ("a", "b"), [[1, 2], [3, 4]], np.arange(3), np.array(2.0), np.float64(1.0),
              np.int64(3), 7, 0.25, True, None, "run", b"x", pa.array([1, 2]), range(3)]
    for value in values:
        assert store.is_column(value) == (np.ndim(value) > 0), value
