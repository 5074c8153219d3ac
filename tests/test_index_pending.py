"""Writers hand their finished runs' entries to the index (ibstore.index.record_run,
ibstore.index_pending): a reader after them reads no run folder, and the index never holds a
record the run folder does not (a cold scan's reads: tests/test_scan_workers.py)."""

from __future__ import annotations

import json
import os
import threading

import pytest

from ibstore import index, index_pending, layout, views
from ibstore.index import scan
from ibstore.record import RunRecord, Status
from ibstore.scan import read_run
from trainer.store import write_record

TANH = {"activation_fn": "tanh", "epochs": 20}


@pytest.fixture
def root(small_tanh_root):
    return small_tanh_root(4)


def run_ids(root) -> list[str]:
    return sorted(os.listdir(layout.runs_dir(root)))


def hand_over_all(root) -> dict:
    """What each run's writer does when it finishes: run id -> its pending file."""
    return {run_id: index.record_run(root, run_id) for run_id in run_ids(root)}


def pending_files(root) -> list[str]:
    return sorted(index_pending.listing(root))


def as_read(root, run_id: str) -> RunRecord:
    """The run's record as its folder says now (read_run, no index)."""
    return read_run(root, layout.runs_dir(root) / run_id).record


def shown(result) -> dict[str, tuple]:
    """Everything a reader sees of a scan: records, files, problems, the runs and config tables."""
    return {"records": {r.run_id: r.model_dump_json() for r in result.runs},
            "files": result.file_table.sort_by([("run_id", "ascending"), ("name", "ascending")]).to_pylist(),
            "problems": sorted((p.run_id, p.path, p.problem) for p in result.problems),
            "runs": views.view_data(result)["runs"].sort_by("run_id").to_pylist(),
            "config": views.view_data(result)["config"].to_pylist()}


def rewrite_record(root, run_id, **fields) -> None:
    """run.json with these fields changed, written as the trainer writes it (atomically)."""
    path = layout.run_json_path(root, run_id)
    write_record(path, RunRecord.from_json_bytes(path.read_bytes()).model_copy(update=fields), sync=False)


def test_a_reader_after_the_writers_reads_no_run_folder_and_sees_what_a_full_read_gives(root, reads, tmp_path,
                                                                                     monkeypatch):
    for run_id in run_ids(root):
        assert index.record_run(root, run_id).parent.name == index_pending.PENDING_DIR
    assert len(pending_files(root)) == 4 and reads == run_ids(root)   # each writer read its own run
    reads.clear()
    handed = scan(root)
    assert reads == [] and handed.folders_read == 0 and len(handed.runs) == 4
    # the saved index holds them now: the pending files are gone, a new process loads and reads nothing
    assert pending_files(root) == []
    index.forget()
    again = scan(root)
    assert reads == [] and again.index_note.startswith("loaded") and shown(again) == shown(handed)
    # ground truth: the same root read from nothing, in another user cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-cache"))
    index.forget()
    cold = scan(root)
    assert sorted(reads) == run_ids(root) and cold.folders_read == 4
    assert shown(cold) == shown(handed)


def test_a_run_changed_after_its_entry_was_handed_over_is_read_again(root, reads):
    changed, kept = run_ids(root)[:2]
    for run_id in run_ids(root):
        index.record_run(root, run_id)
    rewrite_record(root, changed, status=Status.FAILED, error="out of memory", epochs_done=7)
    reads.clear()
    result = scan(root)
    assert reads == [changed] and result.folders_read == 1
    assert result.run(changed) == as_read(root, changed) and result.run(changed).status is Status.FAILED
    assert result.run(kept) == as_read(root, kept)
    # The stale entry stays: a reader cannot tell it from a newer state handed over after its stat
    # pass. The others went into index.bin; the run's writer removes the stale one when it hands over.
    stale = index_pending.file_name(changed, b"")   # only its run id matters below
    assert [index_pending.run_id_of(name) for name in pending_files(root)] == [changed]
    assert stale not in pending_files(root)
    handed = index.record_run(root, changed)
    assert pending_files(root) == [handed.name]
    reads.clear()
    index.forget()
    assert scan(root).run(changed) == as_read(root, changed) and reads == []


def test_an_entry_handed_over_between_a_scans_stat_pass_and_its_save_is_kept(root, reads, monkeypatch):
    """A writer that hands over a newer state after a reader's stat pass (the reader lists it, but
    saves the older entry it read) must not lose it: the next process reads no folder."""
    victim = run_ids(root)[0]
    for run_id in run_ids(root):
        index.record_run(root, run_id)
    scan(root)   # all four in index.bin
    real_listing = index_pending.listing

    def writer_finishes_after_the_stat_pass(at_root):
        monkeypatch.setattr(index_pending, "listing", real_listing)
        rewrite_record(root, victim, epochs_done=11)
        index.record_run(root, victim)
        return real_listing(at_root)

    rewrite_record(root, victim, epochs_done=10)   # the reader's stat pass sees this state
    index.forget()
    monkeypatch.setattr(index_pending, "listing", writer_finishes_after_the_stat_pass)
    assert scan(root).folders_read == 1   # read, under the signature its stat pass saw
    assert [index_pending.run_id_of(name) for name in pending_files(root)] == [victim]   # the newer one kept
    index.forget()
    reads.clear()
    assert scan(root).run(victim) == as_read(root, victim) and as_read(root, victim).epochs_done == 11
    assert reads == [] and pending_files(root) == []


def test_a_pending_file_of_a_run_folder_that_is_gone_is_removed(root, reads):
    import shutil
    gone, kept = run_ids(root)[:2]
    hand_over_all(root)
    shutil.rmtree(layout.runs_dir(root) / gone)
    rewrite_record(root, kept, epochs_done=3)   # a suspect, so that the scan lists pending/
    scan(root)
    # the gone run's file and those index.bin holds are removed; `kept`'s older state stays (see above)
    assert [index_pending.run_id_of(name) for name in pending_files(root)] == [kept]
    assert gone not in {run.run_id for run in scan(root).runs}


def test_a_pending_file_that_is_not_a_whole_entry_of_its_run_is_ignored(root, reads):
    victim, other = run_ids(root)[:2]
    path = index.record_run(root, victim)
    other_entry = index.record_run(root, other).read_bytes()
    for planted in (b"", path.read_bytes()[:50], b"{}", other_entry,
                    path.read_bytes().replace(b'"version": "', b'"version": "x'),
                    path.read_bytes().replace(b'"mi.parquet"', b'"../../etc/mi.parquet"')):
        path.write_bytes(planted)
        index.forget()
        index_file_path = index.index_file.cache_dir(root) / index.index_file.INDEX_FILE
        index_file_path.unlink(missing_ok=True)
        reads.clear()
        result = scan(root)
        assert victim in reads and result.run(victim) == as_read(root, victim)
        assert result.table_paths("mi", [victim])[0] == [str(layout.table_path(root, victim, "mi"))]
        path = index.record_run(root, victim)
        other_entry = index.record_run(root, other).read_bytes()


def test_a_fifo_or_symlink_at_a_pending_path_is_never_opened(root, reads, tmp_path):
    victim = run_ids(root)[0]
    path = hand_over_all(root)[victim]
    forged = tmp_path / "forged.json"
    forged.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(forged)
    reads.clear()
    assert scan(root).run(victim) == as_read(root, victim) and reads == [victim]
    index.forget()
    (index.index_file.cache_dir(root) / index.index_file.INDEX_FILE).unlink()
    path = hand_over_all(root)[victim]
    path.unlink()
    os.mkfifo(path)
    reads.clear()
    assert scan(root).run(victim) == as_read(root, victim) and reads == [victim]   # did not block


def test_two_writers_and_a_reader_at_once_leave_an_index_that_matches_every_folder(root, reads):
    writers_runs = run_ids(root)[:2]
    stop = threading.Event()
    failures: list[str] = []

    def writer(run_id: str) -> None:
        for epochs_done in range(1, 30):
            rewrite_record(root, run_id, epochs_done=epochs_done)
            index.record_run(root, run_id)

    def reader() -> None:
        while not stop.is_set():
            index.forget(root)   # each pass starts from the files, as a new process would
            result = scan(root)
            if len(result.runs) != 4:
                failures.append(f"{len(result.runs)} runs shown")

    threads = [threading.Thread(target=writer, args=(run_id,)) for run_id in writers_runs]
    reading = threading.Thread(target=reader)
    reading.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    reading.join()
    assert failures == []
    index.forget()
    reads.clear()
    final = scan(root)
    assert reads == []   # the writers' last entries (or an index saved from them) answer
    for run_id in run_ids(root):
        assert final.run(run_id) == as_read(root, run_id)
    assert {final.run(run_id).epochs_done for run_id in writers_runs} == {29}


@pytest.mark.slow
def test_the_first_trainer_sql_after_a_sweep_reads_no_run_folder(tmp_path, monkeypatch, reads, capsys):
    """A sweep's worker processes hand their runs over; `trainer sql` in a new process (this one,
    with nothing kept in memory) then answers from the index without reading a folder."""
    from trainer import cli

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))   # inherited by the sweep's workers
    index.forget()
    config = tmp_path / "cohort" / "tiny.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"epochs": 4, "architecture": [10, 7, 5], "batch_size": 1024, "n_runs": 3,
                                  "log_schedule": {"every": 2}, "grid": {"initial_bias": [0, 0.5]}}))
    root = tmp_path / "results"
    assert cli.main(["sweep", str(config.parent), "--workers", "2", "--results", str(root)]) == 0
    assert len(run_ids(root)) == 6 and len(pending_files(root)) == 6
    capsys.readouterr()
    index.forget()
    reads.clear()
    query = "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'completed') AS done FROM runs"
    assert cli.main(["sql", query, "--results", str(root)]) == 0
    out = capsys.readouterr().out
    assert reads == [] and ["6", "6"] in [line.split() for line in out.splitlines()]
    assert pending_files(root) == []   # folded into the saved index


def test_runs_stay_in_folder_order_whichever_were_read(root):
    ids = run_ids(root)
    first = scan(root)
    rewrite_record(root, ids[1], epochs_done=3)   # read again below, the others kept
    changed = scan(root)
    assert [name for name, *_ in changed.fingerprint] == ids == [r.run_id for r in changed.runs]
    assert scan(root).fingerprint == changed.fingerprint != first.fingerprint


def test_a_record_with_text_beyond_ascii_is_handed_over_as_it_reads(root, reads):
    victim = run_ids(root)[0]
    rewrite_record(root, victim, status=Status.FAILED, error="naïve 🙂 \"quoted\" \\ line\nbreak")
    hand_over_all(root)
    reads.clear()
    result = scan(root)
    assert reads == [] and result.run(victim) == as_read(root, victim)
    assert result.run(victim).error.startswith("naïve 🙂")
