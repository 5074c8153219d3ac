"""Flushing the writers of a stack's runs together: their part-file writes overlap in threads.

Each flush writes a part file per table and run.json, each synced to disk before its rename
(trainer.atomic), so a flush waits on the disk several times; a stack of 45 networks flushing one
after the other stalls training for as many waits. Arrow's Parquet writer and fsync release the
GIL, so in a few threads those waits overlap. Each run's flush stays all or nothing (its own
files, its own state); a failure is raised once every started flush has ended, so no flush is
still writing when the caller finishes the runs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

from trainer.store import RunWriter

# Flushes in flight at once: four overlap the disk waits of a stack as well as eight did, with less
# CPU lost to contention on 2 cores; two left waits unoverlapped under load (bench/RESULTS.md).
FLUSH_THREADS = 4


def flush_together(writers: list[RunWriter], epochs_done: list[int], only_due: bool = True) -> None:
    """Flush these writers (with `only_due`, those whose flush interval has passed), writer i
    recording epochs_done[i]. Raises the first failure (StoreError, ...) after all have ended."""
    chosen = [(writer, epochs) for writer, epochs in zip(writers, epochs_done) if not only_due or writer.flush_due()]
    if len(chosen) <= 1:
        for writer, epochs in chosen:
            writer.flush(epochs)
        return
    pool = ThreadPoolExecutor(min(FLUSH_THREADS, len(chosen)), thread_name_prefix="flush")
    try:
        futures = [pool.submit(writer.flush, epochs) for writer, epochs in chosen]
        wait(futures)
    except BaseException:
        # Interrupted (Ctrl-C): flushes not yet started are dropped, started ones end first.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    for future in futures:
        future.result()
