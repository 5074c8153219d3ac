"""Where a cold scan's time goes (issue 20): CPU per run folder read, the views, and the whole
cold `ibstore.index.scan` read serially, on threads and in worker processes.

    python bench/bench_cold_scan.py ROOT [--repeat 3] [--before DIR]

ROOT: e.g. 10,000 runs from bench/make_results.py. Rows:
- `read_entry, collector on/off`: CPU seconds a run folder (`scan_workers.read_entry`, in this
  process, one after another) with Python's cyclic garbage collector on, and paused as
  `scan_workers.read_entries` pauses it; alternating, median of --repeat.
- `views`: CPU seconds of `runs` and `config` from every record (what the parent does after
  the reads), the collector paused as in `index.scan`.
- `cold scan, <how>`: a fresh process with an empty user cache runs `index.scan(ROOT)`: wall,
  its own CPU seconds and, if `perf` is installed, the CPU seconds of its whole process tree
  (`perf stat -e task-clock` follows the fork server and the worker processes, which no rusage
  of the process sees), median of --repeat. <how>: serial (one thread), threads (READ_THREADS,
  no processes), processes (the default from PROCESS_MIN_FOLDERS folders). With --before DIR
  (e.g. `git archive` of earlier code) the processes row of that code too, alternating.
The load average is printed before and after: on 2 shared cores the wall figures follow it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

COLD_SCAN = """
import sys, time
from ibstore import index, scan_workers
how = sys.argv[2]
if how != "processes":
    scan_workers.PROCESS_MIN_FOLDERS = 1 << 62
if how == "serial":
    scan_workers.READ_THREADS = 1
if __name__ == "__main__":
    started, cpu = time.perf_counter(), time.process_time()
    found = index.scan(sys.argv[1])
    print(time.perf_counter() - started, time.process_time() - cpu, found.folders_read)
"""


def per_run_cpu(root: Path, repeat: int) -> dict[str, float]:
    import gc

    from ibstore import collector, scan, scan_workers

    runs_dir = root / "runs"
    names = sorted(os.listdir(runs_dir))
    seconds: dict[str, list[float]] = {"read_entry, collector on": [], "read_entry, collector off": []}
    for _ in range(repeat):
        for label, paused in (("read_entry, collector on", False), ("read_entry, collector off", True)):
            scan._RECORDS.items.clear()   # every run.json parsed again, as in a fresh process
            gc.collect()
            started = time.process_time()
            if paused:
                with collector.paused():
                    reads = scan_workers._read_here(root, runs_dir, [(name, b"") for name in names])
            else:
                reads = scan_workers._read_here(root, runs_dir, [(name, b"") for name in names])
            seconds[label].append((time.process_time() - started) / len(names))
            del reads
    return {label: statistics.median(values) for label, values in seconds.items()}


def views_cpu(root: Path) -> tuple[float, int]:
    from ibstore import collector, views
    from ibstore.scan import read_run

    runs_dir = root / "runs"
    records = [run.record for name in sorted(os.listdir(runs_dir)) if (run := read_run(root, runs_dir / name)).record]
    started = time.process_time()
    with collector.paused():   # as index.scan builds them
        views.runs_table(records), views.config_table(records)
    return time.process_time() - started, len(records)


def cold_scan(root: Path, how: str, code: Path = REPO) -> tuple[float, float, float]:
    """Wall, own CPU and process tree CPU seconds (NaN without perf) of one cold scan."""
    with tempfile.TemporaryDirectory() as cache:
        counted = Path(cache) / "task-clock"
        perf = ["perf", "stat", "-x,", "-e", "task-clock", "-o", str(counted)] if shutil.which("perf") else []
        done = subprocess.run([*perf, sys.executable, "-c", COLD_SCAN, str(root), how], cwd=code, capture_output=True,
                              text=True, check=False,
                              env={**os.environ, "PYTHONPATH": str(code), "XDG_CACHE_HOME": str(Path(cache) / "c")})
        tree = float("nan")
        if perf and done.returncode == 0:
            line = next(line for line in counted.read_text().splitlines() if "task-clock" in line)
            tree = float(line.split(",")[0]) / 1000
    if done.returncode != 0:
        raise SystemExit(f"cold scan ({how}) failed: {done.stderr.strip()[-500:]}")
    wall, cpu, _ = done.stdout.split()
    return float(wall), float(cpu), tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, metavar="DIR", help="earlier code: its processes row too")
    args = parser.parse_args()
    load_before = os.getloadavg()
    for label, seconds in per_run_cpu(args.root, args.repeat).items():
        print(f"{label:36} {1e3 * seconds:8.3f} ms CPU a run")
    seconds, records = views_cpu(args.root)
    print(f"{'views (runs + config)':36} {seconds:8.2f} s CPU for {records:,} records")
    cases = [(how, how, REPO) for how in ("serial", "threads", "processes")]
    if args.before:
        cases.append(("processes, --before", "processes", args.before))
    measured: dict[str, list[tuple[float, float, float]]] = {}
    for _ in range(args.repeat):
        for label, how, code in cases:
            measured.setdefault(label, []).append(cold_scan(args.root, how, code))
    print(f"{'cold index.scan':36} {'wall s':>8} {'own CPU s':>10} {'tree CPU s':>11}")
    for label, values in measured.items():
        wall, cpu, tree = (statistics.median(column) for column in zip(*values))
        print(f"{'  ' + label:36} {wall:8.2f} {cpu:10.2f} {tree:11.2f}")
    print(f"{os.cpu_count()} cores; load average (1, 5, 15 min) before {load_before} after {os.getloadavg()}")


if __name__ == "__main__":
    main()
