"""Flushing the writers of a stack's runs together, in threads and behind the training.

Each flush writes a part file per table and run.json, each synced to disk before its rename
(trainer.atomic), so a flush waits on the disk several times; a stack of 45 networks flushing one
after the other stalls training for as many waits. Arrow's Parquet writer and fsync release the
GIL, so in a few threads those waits overlap, and they overlap the next compiled call too (which
releases the GIL as well): the loop's flushes are started (`Flushes.start`) and the training goes
on; a writer's next flush, or its finish, waits for the one before. Each run's flush stays all or
nothing (its own files, its own state, rows taken before it starts; trainer.store.RunWriter); a
failure is raised once every started flush has ended, so no flush is still writing when the
caller finishes the runs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from trainer.store import RunWriter

# Flushes in flight at once: four overlap the disk waits of a stack as well as eight did, with less
# CPU lost to contention on 2 cores; two left waits unoverlapped under load (bench/RESULTS.md).
FLUSH_THREADS = 4


class Flushes:
    """The flushes of one stack's writers, on FLUSH_THREADS threads kept for the stack's life
    (`close` ends them once every flush has ended)."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(FLUSH_THREADS, thread_name_prefix="flush")

    def start(self, writers: list[RunWriter], epochs_done: list[int]) -> None:
        """Start flushing the writers whose flush interval has passed (writer i records
        epochs_done[i]) and return. First every writer's earlier flush is waited for: a failure
        of one is raised (StoreError, ...) once all have ended, and none is started then."""
        settle_all(writers)
        for writer, epochs in zip(writers, epochs_done):
            if writer.flush_due():
                writer.start_flush(epochs, self.pool)

    def flush_all(self, writers: list[RunWriter], epochs_done: list[int]) -> None:
        """Flush every writer now (a checkpoint must find every epoch up to it on disk) and wait;
        the first failure is raised after all have ended."""
        settle_all(writers)
        for writer, epochs in zip(writers, epochs_done):
            writer.start_flush(epochs, self.pool)
        settle_all(writers)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def settle_all(writers: list[RunWriter]) -> None:
    """Wait for every writer's flush in the background; raise the first failure after all have ended."""
    failures = []
    for writer in writers:
        try:
            writer.settle()
        except Exception as failure:   # each writer's rows go back to it before any is raised
            failures.append(failure)
    if failures:
        raise failures[0]
