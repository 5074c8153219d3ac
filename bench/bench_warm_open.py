"""The two costs of a warm `trainer sql` that grow with the root (issue 20, 100,000 runs), each
timed both ways in one process, alternating, so that a busy machine weighs on both alike:

- loading the index: `index.bin` read into a buffer (before) or mapped (now), then parsed
  (`ibstore.index_file.load`);
- handing the `runs` view table to a query worker: pickled into its arguments (before) or as
  a memory file (`ibstore.shared_table`, now); the worker counts the rows and ends. Wall
  seconds from start to its answer, and this process's CPU seconds.

    python bench/bench_warm_open.py ROOT [--repeat 3]

ROOT must have an index in the user's cache made by this code (e.g. after one `trainer sql
--results ROOT ...`). Medians of --repeat; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from pathlib import Path

import pyarrow as pa

from ibstore import index, index_file, layout, private_file, query_process
from ibstore.scan import run_dirs
from ibstore.shared_table import SharedTable


def count_rows(table: pa.Table, out) -> None:
    out.send(table.num_rows)
    out.close()


def hand_over(table: pa.Table | SharedTable) -> int:
    # the query fork server, but a plain process of it: `count_rows` lives in this script (__main__),
    # which ibstore's own workers are prepared without (query_process.WorkerProcess)
    context = multiprocessing.get_context("forkserver")
    received, sent = context.Pipe(duplex=False)
    worker = context.Process(target=count_rows, args=(table, sent))
    worker.start()
    if isinstance(table, SharedTable):
        table.close()
    sent.close()
    rows = received.recv()
    worker.join()
    return rows


def timed(work) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = args.root.absolute()
    folders = len(run_dirs(layout.runs_dir(root))[0])
    load_before = os.getloadavg()
    read = private_file.read_index_file

    def load(mapped: bool):
        def work():
            index_file.read_index_file = lambda path, limit, mapped=False, was=mapped: read(path, limit, was)
            try:
                loaded, note = index_file.load(root, folders)
            finally:
                index_file.read_index_file = read
            assert loaded is not None, note
        return work

    runs = index.scan(root).views["runs"]
    query_process.start_server()
    hand_over(runs.slice(0, 1))   # the server is up
    cases = {"index loaded: read": load(False), "index loaded: mapped": load(True),
             "runs to a worker: pickled": lambda: hand_over(runs),
             "runs to a worker: memory file": lambda: hand_over(SharedTable(runs))}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, work in cases.items():
            times[name].append(timed(work))
    print(f"{root} ({folders:,} run folders; runs table {runs.nbytes / 1e6:.0f} MB), median of {args.repeat}")
    print(f"{os.cpu_count()} cores; load average before {load_before} after {os.getloadavg()}")
    print(f"{'case':<34}{'wall s':>8}{'CPU s':>8}")
    for name, pairs in times.items():
        print(f"{name:<34}{statistics.median(w for w, _ in pairs):>8.2f}{statistics.median(c for _, c in pairs):>8.2f}")


if __name__ == "__main__":
    main()
