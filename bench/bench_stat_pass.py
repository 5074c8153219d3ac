"""The stat pass of a refresh (ibstore.index_stat.signatures) on a large root, and whether sharing
it out would shorten it: in this process alone, on 2 and 4 threads, and with one kept helper
process (forked once, before the timing) doing half of it; then one lstat per run folder alone
(what the pass would cost without run.json's). Side by side, alternating, `--repeat` rounds; wall
seconds, this process's CPU seconds (the helper's are not counted), the load average beside.

    python bench/bench_stat_pass.py RUNS_DIR [--repeat 3]

Read-only: it only lstats RUNS_DIR's entries.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor

from ibstore import index_stat

SETTLED_NS = 3_000_000_000


def _signatures(runs_dir: str, names: list[str]) -> list[bytes]:
    return index_stat.signatures(runs_dir, names, time.time_ns() - SETTLED_NS)


def on_threads(runs_dir: str, names: list[str], threads: int) -> list[bytes]:
    size = -(-len(names) // threads)
    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(lambda start: _signatures(runs_dir, names[start:start + size]), range(0, len(names), size))
        return [signature for part in parts for signature in part]


def folders_only(runs_dir: str, names: list[str]) -> None:
    runs_fd = os.open(runs_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            os.lstat(name, dir_fd=runs_fd)
    finally:
        os.close(runs_fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs_dir = args.runs_dir
    names = sorted(name for name in os.listdir(runs_dir) if not name.startswith("."))
    middle = len(names) // 2
    with multiprocessing.get_context("fork").Pool(1) as helper:
        helper.apply(_signatures, (runs_dir, names[:10]))   # started before the timing
        ways = {
            "this process": lambda: _signatures(runs_dir, names),
            "2 threads": lambda: on_threads(runs_dir, names, 2),
            "4 threads": lambda: on_threads(runs_dir, names, 4),
            "this process + a helper process": lambda: (
                (lambda other: _signatures(runs_dir, names[:middle]) + other.get())(
                    helper.apply_async(_signatures, (runs_dir, names[middle:])))),
            "one lstat per run folder alone": lambda: folders_only(runs_dir, names),
        }
        expected = _signatures(runs_dir, names)
        print(f"{len(names):,} run folders in {runs_dir}; {os.cpu_count()} cores")
        for round_number in range(args.repeat):
            for name, way in ways.items():
                load = os.getloadavg()[0]
                wall, cpu = time.perf_counter(), time.process_time()
                result = way()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if result is not None:
                    assert result == expected, name
                print(f"round {round_number + 1}  {name:34s} {wall:6.3f} s wall {cpu:6.3f} CPU-s  load {load:.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
