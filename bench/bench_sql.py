"""`trainer sql` on a large result: peak memory (RSS) and time, streamed vs materialised.

    python bench/bench_sql.py [--rows 20000000]

Each case is a fresh `python -m trainer sql` process; its peak resident memory is its own
getrusage(RUSAGE_SELF).ru_maxrss, printed on exit. The baseline materialises the whole result as
one pandas DataFrame (what `trainer sql` did before: `.df()` then format), side by side with the
streamed formats (Arrow batches of ibstore.sandbox.BATCH_ROWS rows) and the capped table.
The target (issue 8.2): 20 million rows under 1 GB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs `trainer` in this process and reports its peak RSS (MiB on Linux) on stderr, even on exit.
RUNNER = """
import resource, runpy, sys
sys.argv = ["trainer", *sys.argv[1:]]
try:
    runpy.run_module("trainer", run_name="__main__")
finally:
    print(f"PEAK_RSS_MB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}", file=sys.stderr)
"""

BASELINE = """
import resource, sys
from ibstore.sandbox import Limits, run_query
frame = run_query(sys.argv[1], sys.argv[2], Limits(timeout_s=None, memory_limit="8GB"))
frame.to_csv(sys.argv[3], index=False)
print(f"PEAK_RSS_MB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}", file=sys.stderr)
"""


def run(code: str, args: list[str]) -> tuple[float, float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    elapsed = time.perf_counter() - started
    peak = next((float(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_MB")),
                float("nan"))
    if done.returncode != 0:
        return elapsed, peak, f"exit {done.returncode}: {done.stderr.strip().splitlines()[0]}"
    return elapsed, peak, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    args = parser.parse_args()
    query = f"SELECT range AS i, range * 0.5 AS x, 'row ' || range AS label FROM range({args.rows})"
    with tempfile.TemporaryDirectory() as folder:
        root, out = Path(folder) / "results", Path(folder) / "out"
        root.mkdir()
        out.mkdir()
        cases = [("materialised DataFrame -> CSV (baseline)", BASELINE, [str(root), query, str(out / "base.csv")])]
        for fmt in ("csv", "json", "parquet"):
            cases.append((f"trainer sql --output x.{fmt} (streamed)", RUNNER,
                          ["sql", "--results", str(root), "--timeout", "0", "--output", str(out / f"x.{fmt}"), query]))
        cases.append(("trainer sql table (200 rows shown, all counted)", RUNNER,
                      ["sql", "--results", str(root), "--timeout", "0", query]))
        print(f"{args.rows:,} rows: {query}")
        print(f"{'case':50} {'seconds':>8} {'peak RSS MB':>12} {'vs baseline':>12}  file MB")
        baseline_peak = None
        for label, code, case_args in cases:
            elapsed, peak, error = run(code, case_args)
            baseline_peak = baseline_peak or peak
            target = Path(case_args[-1] if label.startswith("materialised") else case_args[-2])
            size = f"{target.stat().st_size / 2**20:8.0f}" if target.is_file() else "       -"
            print(f"{label:50} {elapsed:8.1f} {peak:12.0f} {peak / baseline_peak:11.2f}x  {size}  {error}")
            if target.is_file():
                target.unlink()


if __name__ == "__main__":
    main()
