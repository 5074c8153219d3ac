"""CPU and wall seconds of flushing a stack's runs: 45 networks' rows of 30 logged epochs (one flush
interval of every-epoch logging), flushed all at once (`Flushes.flush_all`), of reading those parts back, and of
compacting those runs (each part read back into a base file, as each run's end does), this checkout
beside an older one.

    python bench/bench_logged_flush.py                                   # this checkout
    python bench/bench_logged_flush.py --before /tmp/old --repeats 3     # and an older checkout, interleaved
    python bench/bench_logged_flush.py --epochs 32 --flushes 4           # flushes of 8 logged epochs each

The rows are those of a real run (`bench_training.py`'s logged epoch: the default config, 45 networks,
every epoch logged) with the flushes during training held back, so that one flush at the end writes
them all, as a flush interval's worth of logged epochs does in a long run. With `--flushes K` each
run's held rows are cut into K consecutive slices, flushed one after another (K parts per table,
compacted at the end): the notebook cohort's sweep flushes each run about 30 times, about 8 logged
epochs each, so the cost of a file that does not grow with its rows weighs more than in one flush.
CPU is the whole process's (every flush thread). With `--before DIR` each measurement runs in a subprocess with PYTHONPATH=DIR or
this checkout, interleaved `--repeats` times; medians are printed with the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from side_by_side import add_arguments, report

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def measure(networks: int, epochs: int, flushes: int) -> dict[str, float]:
    """CPU and wall seconds of flushing every network's rows of `epochs` logged epochs in `flushes`
    flushes, then of compacting every run."""
    from trainer import config, flushing, tables, training

    held: dict = {}

    def keep_stack(stack):
        held["stack"] = stack
        return {}

    _hold_back_the_loops_flushes(training, flushing)
    training._finish_completed = keep_stack
    (experiment,) = config.plan({"name": "bench", "epochs": epochs, "log_schedule": {"every": 1},
                                 "n_runs": networks})
    with tempfile.TemporaryDirectory() as root:
        training.run_experiment(experiment, Path(root), progress=False)
        writers = [network.writer for network in held["stack"].networks]
        rows = [writer.pending for writer in writers]
        cpu = wall = 0.0
        for k in range(flushes):    # slice k of each table's queue: epochs k/flushes to (k+1)/flushes
            for writer, queued in zip(writers, rows):
                writer.pending = {table: items[k * len(items) // flushes:(k + 1) * len(items) // flushes]
                                  for table, items in queued.items()}
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            _flush_all(flushing, writers, [epochs * (k + 1) // flushes] * len(writers))
            cpu, wall = cpu + time.process_time() - started_cpu, wall + time.perf_counter() - started_wall
        reading = time.process_time()
        for writer in writers:       # every table's files read back, as the compaction and a resume do
            for table, files in tables.table_files(writer.dir).items():
                tables.read_table(files, table)
        reading = time.process_time() - reading
        compaction_cpu, compaction_wall = time.process_time(), time.perf_counter()
        for writer in writers:       # as a run's end does, under the lock its writer still holds
            tables.compact_run(writer.dir)
        compaction_cpu = time.process_time() - compaction_cpu
        compaction_wall = time.perf_counter() - compaction_wall
        for writer in writers:
            writer.close()
    return {"flush, CPU": cpu, "flush, wall": wall, "reading back, CPU": reading,
            "compaction, CPU": compaction_cpu, "compaction, wall": compaction_wall}


def _hold_back_the_loops_flushes(training, flushing) -> None:
    """The training loop flushes nothing but a checkpoint's flush, in this checkout (its flushes
    behind the training, `Flushes`) and in older ones (`flush_together`)."""
    if hasattr(flushing, "Flushes"):
        class HeldBack(flushing.Flushes):
            def start(self, writers, epochs_done):
                pass
        training.Flushes = HeldBack
    else:
        def only_forced(writers, epochs_done, only_due=True):
            if not only_due:
                flushing.flush_together(writers, epochs_done, only_due=False)
        training.flush_together = only_forced


def _flush_all(flushing, writers, epochs_done) -> None:
    """Every writer flushed now, waited for (this checkout's `Flushes.flush_all`, or older code's)."""
    if hasattr(flushing, "Flushes"):
        flushes = flushing.Flushes()
        flushes.flush_all(writers, epochs_done)
        flushes.close()
    else:
        flushing.flush_together(writers, epochs_done, only_due=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=45)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--flushes", type=int, default=1, help="flushes the rows are cut into")
    parser.add_argument("--repeats", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args()
    report(__file__, args, lambda: measure(args.networks, args.epochs, args.flushes),
           ["--networks", str(args.networks), "--epochs", str(args.epochs), "--flushes", str(args.flushes)],
           f"{args.flushes} flush(es) of {args.networks} runs x {args.epochs} logged epochs in all", "seconds")


if __name__ == "__main__":
    main()
