"""Time the `phases` view and the `phase_stats` statistics over a synthetic root.

    python bench/bench_phases.py [--runs 500] [--seeds 5] [--epochs 2000] [--logged 300] [--root DIR]

Writes the root with bench/make_results.py (unless --root names an existing one), then times
`SELECT * FROM phases` and `SELECT * FROM phase_stats` in the SQL sandbox (each on a fresh scan,
as `trainer sql` runs them) and prints rows, groups and seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.make_results import make_root
from ibstore.sandbox import Limits, run_query
from ibstore.index import scan


def timed(root: Path, query: str) -> tuple[int, float]:
    started = time.perf_counter()
    frame = run_query(scan(root), query, Limits(timeout_s=None))
    return len(frame), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--logged", type=int, default=300)
    parser.add_argument("--root", type=Path)
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-phases-"))
    if not (root / "runs").exists():
        make_root(root, args.runs, args.epochs, args.logged, args.seeds)
    scan(root)   # the index, once: every timing below starts from it
    groups = run_query(root, "SELECT count(DISTINCT group_id) AS n FROM runs")["n"].iloc[0]
    for view in ("phases", "phase_stats"):
        rows, seconds = timed(root, f"SELECT * FROM {view}")
        print(f"{view}: {rows} rows from {args.runs} runs in {groups} seed groups, {seconds:.1f} s")


if __name__ == "__main__":
    main()
