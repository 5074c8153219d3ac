"""A cold scan reads run folders on threads or in worker processes (ibstore.scan_workers), and
what it gives is what reading them one by one in this process gives, damage included."""

from __future__ import annotations

import time

import pytest
from test_index_pending import TANH, run_ids, shown

from bench.make_results import write_run
from ibstore import index, layout, scan_workers
from ibstore.index import scan


@pytest.fixture
def root(messy_root):
    """Every kind of damage the scan must survive, and enough plain runs to share out."""
    root = messy_root["root"]
    for run in range(12):
        write_run(root, f"extra{run}", TANH, logged=5)
    return root


def cold_scan(root, cache, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    index.forget()
    result = scan(root, now=1e10)
    index.forget()
    assert result.folders_read == len(run_ids(root))
    return result


def serially(root, monkeypatch, tmp_path):
    monkeypatch.setattr(scan_workers, "READ_THREADS", 1)
    monkeypatch.setattr(scan_workers, "PROCESS_MIN_FOLDERS", 1 << 30)
    return cold_scan(root, tmp_path / "serial", monkeypatch)


def entry_fields(read) -> tuple:
    entry, files = read
    return entry.run_id, entry.signature, entry.record_json, entry.written_status, entry.problems, files


def test_a_cold_scan_on_threads_gives_what_a_serial_one_gives(root, tmp_path, monkeypatch):
    serial = serially(root, monkeypatch, tmp_path)
    monkeypatch.setattr(scan_workers, "READ_THREADS", 8)
    threaded = cold_scan(root, tmp_path / "threads", monkeypatch)
    assert shown(threaded) == shown(serial) and serial.problems and threaded.index_note == serial.index_note


@pytest.mark.slow
def test_a_cold_scan_in_worker_processes_gives_what_a_serial_one_gives(root, tmp_path, monkeypatch):
    serial = serially(root, monkeypatch, tmp_path)
    monkeypatch.setattr(scan_workers, "PROCESS_MIN_FOLDERS", 1)
    monkeypatch.setattr(scan_workers, "BATCH_FOLDERS", 2)
    in_workers = cold_scan(root, tmp_path / "workers", monkeypatch)
    assert shown(in_workers) == shown(serial) and serial.problems
    assert "worker processes" not in in_workers.index_note


@pytest.mark.slow
def test_workers_and_this_process_share_the_folders_in_order(root, monkeypatch):
    """This process reads batches from the end while the workers take them from the start; the
    entries come back in folder order, equal to reading each here (the workers send records as
    JSON only, so their entries hold no parsed record)."""
    runs_dir = layout.runs_dir(root)
    to_read = [(name, index.run_signature(str(runs_dir / name))) for name in run_ids(root)]
    here = [scan_workers.read_entry(root, runs_dir / name, signature) for name, signature in to_read]
    read_here = scan_workers._read_here
    # this process slowed down, so the workers (once the fork server is up) take most batches
    monkeypatch.setattr(scan_workers, "_read_here", lambda *args: time.sleep(0.5) or read_here(*args))
    monkeypatch.setattr(scan_workers, "PROCESS_MIN_FOLDERS", 1)
    monkeypatch.setattr(scan_workers, "BATCH_FOLDERS", 1)
    reads, note = scan_workers.read_entries(root, runs_dir, to_read)
    assert note == "" and [entry_fields(read) for read in reads] == [entry_fields(read) for read in here]
    by_workers = [read[0].run_id for read in reads if read[0].record_json and read[0]._record is None]
    by_this = [read[0].run_id for read in reads if read[0]._record is not None]
    assert by_workers and by_this and by_this == [name for name, _ in to_read if name in by_this]
    assert max(map(run_ids(root).index, by_workers)) < min(map(run_ids(root).index, by_this))


def test_workers_that_cannot_start_leave_the_reads_to_this_process_and_say_so(root, tmp_path, monkeypatch):
    serial = serially(root, monkeypatch, tmp_path)

    def no_pool(*args, **kwargs):
        raise OSError(24, "Too many open files")
    monkeypatch.setattr(scan_workers, "ProcessPoolExecutor", no_pool)
    monkeypatch.setattr(scan_workers.query_process, "start_server", lambda: None)
    monkeypatch.setattr(scan_workers, "PROCESS_MIN_FOLDERS", 1)
    monkeypatch.setattr(scan_workers, "READ_THREADS", 8)
    result = cold_scan(root, tmp_path / "fallback", monkeypatch)
    assert shown(result) == shown(serial)
    assert "worker processes could not read the run folders ([Errno 24] Too many open files): read here" \
        in result.index_note


def test_a_daemonic_process_reads_on_threads(root, tmp_path, monkeypatch):
    """A multiprocessing pool's worker may not start processes: its scans read on threads."""
    serial = serially(root, monkeypatch, tmp_path)
    monkeypatch.setattr(scan_workers, "PROCESS_MIN_FOLDERS", 1)
    monkeypatch.setattr(scan_workers.multiprocessing.current_process(), "daemon", True)
    result = cold_scan(root, tmp_path / "daemon", monkeypatch)   # the fast tier's guard: no process started
    assert shown(result) == shown(serial) and result.index_note == serial.index_note
