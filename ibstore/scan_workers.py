"""Reading the run folders a scan must read again: one (`read_entry`), or many (`read_entries`),
in worker processes when there are many, else on threads.

A cold scan of a foreign root reads every run folder: list it, lstat its entries, read and
validate run.json (mostly Python: bench/bench_cold_scan.py measures it). Threads do not share that
out (the GIL; eight threads cost more CPU than one), so from PROCESS_MIN_FOLDERS folders on
the reads go to worker processes forked from the query fork server (ibstore.query_process:
started once per process with these modules imported, a fork is a few ms), one a CPU, in
batches of BATCH_FOLDERS folders. This process reads batches too, from the end of the list,
while a thread hands batches from its start to the workers, a few a worker in flight (the
first hand-over starts the workers and waits for the fork server: seconds, more on a busy
machine, which the scanning thread spends reading), until none is left. A worker returns each
entry with its record as validated JSON (pickled bytes); its `RunRecord` is parsed again
from that JSON when the views need it (pydantic's JSON parser, cheap per record). Results
come back in folder order, each exactly what `read_entry` gives in this process
(tests/test_scan_workers.py). If worker processes cannot be started or die, the batches they
did not return are read here on threads, and the scan's note says why.

Below PROCESS_MIN_FOLDERS (a warm scan reads the few folders that changed) threads read them:
a folder not in the page cache is mostly waiting for the disk, which releases the GIL.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ibstore import collector, query_process
from ibstore.index_file import Entry
from ibstore.scan import file_tuples, read_run

READ_THREADS = 8             # run folders read at once on threads
PROCESS_MIN_FOLDERS = 1000   # fewer folders than this are read on threads, in this process
BATCH_FOLDERS = 64           # run folders a worker reads per task: small enough to share out evenly
MAX_WORKERS = 8

Read = tuple[Entry, list[tuple]]   # an entry and its table files' FILES_SCHEMA rows


def read_entry(root: Path, run_dir: Path, signature: bytes) -> Read:
    """The entry of a run folder read now (`read_run`), and its table files' FILES_SCHEMA rows."""
    run = read_run(root, run_dir)
    record = run.record
    entry = Entry(run_dir.name, signature, None if record is None else record.model_dump_json().encode(),
                  None if record is None else record.status, run.problems, record)
    return entry, file_tuples(run.files)


def read_entries(root: Path, runs_dir: Path, to_read: list[tuple[str, bytes]]) -> tuple[list[Read], str]:
    """`read_entry` of each (folder name, signature), in order; and a note if worker processes
    were wanted and could not be used ("" otherwise)."""
    with collector.paused():
        return _read_entries(root, runs_dir, to_read)


def _read_entries(root: Path, runs_dir: Path, to_read: list[tuple[str, bytes]]) -> tuple[list[Read], str]:
    workers = min(MAX_WORKERS, len(os.sched_getaffinity(0)))
    # a daemonic process (a multiprocessing pool's worker) may not start processes
    if len(to_read) < PROCESS_MIN_FOLDERS or workers < 2 or multiprocessing.current_process().daemon:
        return _on_threads(root, runs_dir, to_read), ""
    batches = [to_read[start:start + BATCH_FOLDERS] for start in range(0, len(to_read), BATCH_FOLDERS)]
    results: list[list[Read] | None] = [None] * len(batches)
    untaken = deque(enumerate(batches))   # the workers take from the left, this process from the right
    note = ""
    try:
        query_process.start_server()
        with ProcessPoolExecutor(max_workers=workers, mp_context=query_process.CONTEXT) as pool:
            # Submitting starts the workers and waits for the fork server, so a thread does it;
            # it keeps a few batches a worker in flight, and this thread reads the rest meanwhile.
            futures: dict[int, Future] = {}
            failed: list[BaseException] = []
            feeder = threading.Thread(target=_feed, args=(pool, workers, root, runs_dir, untaken, futures, failed),
                                      name="scan_workers feeder")
            feeder.start()
            while True:
                try:
                    number, batch = untaken.pop()
                except IndexError:
                    break
                results[number] = _read_here(root, runs_dir, batch)
            feeder.join()
            if failed:
                raise failed[0]
            for number, future in futures.items():
                results[number] = _result(future)
    except (OSError, BrokenProcessPool) as error:
        note = f"worker processes could not read the run folders ({error or type(error).__name__}): read here"
    for number, batch in enumerate(batches):
        if results[number] is None:
            results[number] = _on_threads(root, runs_dir, batch)
    return [read for batch_reads in results for read in batch_reads], note


def _feed(pool: ProcessPoolExecutor, workers: int, root: Path, runs_dir: Path,
          untaken: deque[tuple[int, list[tuple[str, bytes]]]], futures: dict[int, Future],
          failed: list[BaseException]) -> None:
    """Submit batches from the left of `untaken`, at most two a worker in flight, until none is
    left. If a submission fails (the workers cannot start), its batch goes back to be read by
    the scanning thread, and the error to `failed`, raised there."""
    in_flight = threading.Semaphore(2 * workers)
    while True:
        in_flight.acquire()
        try:
            number, batch = untaken.popleft()
        except IndexError:
            return
        try:
            futures[number] = pool.submit(_read_batch, root, runs_dir, batch)
        except BaseException as error:   # raised by the scanning thread, whatever it is
            untaken.appendleft((number, batch))
            failed.append(error)
            return
        futures[number].add_done_callback(lambda _: in_flight.release())


def _result(future: Future) -> list[Read] | None:
    """A worker's batch, or None if its worker died (the batch is then read here)."""
    try:
        return future.result()
    except BrokenProcessPool:
        return None


def _read_batch(root: Path, runs_dir: Path, batch: list[tuple[str, bytes]]) -> list[Read]:
    """In a worker process: the batch's entries, records as JSON only (cheaper to send and to
    parse again than a pickled model)."""
    reads = _read_here(root, runs_dir, batch)
    for entry, _ in reads:
        entry.forget_record()
    return reads


def _read_here(root: Path, runs_dir: Path, batch: list[tuple[str, bytes]]) -> list[Read]:
    return [read_entry(root, runs_dir / name, signature) for name, signature in batch]


def _on_threads(root: Path, runs_dir: Path, to_read: list[tuple[str, bytes]]) -> list[Read]:
    """`read_entry` of each, on up to READ_THREADS threads, in order."""
    if len(to_read) <= 1 or READ_THREADS <= 1:
        return _read_here(root, runs_dir, to_read)
    # Batches, not a task per folder: 10,000 futures cost more than the reads.
    size = -(-len(to_read) // (4 * READ_THREADS))
    batches = [to_read[start:start + size] for start in range(0, len(to_read), size)]
    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(batches)), thread_name_prefix="read_run") as pool:
        return [read for batch in pool.map(lambda batch: _read_here(root, runs_dir, batch), batches)
                for read in batch]
