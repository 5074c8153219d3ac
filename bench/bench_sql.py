"""`trainer sql` on a large result: peak memory (RSS) and time, streamed vs materialised; and the
cost of running each statement in its bounded worker process (issue 17.1).

    python bench/bench_sql.py [--rows 20000000]
    python bench/bench_sql.py --overhead [--runs 100] [--repeat 9]

--overhead: a small query and the README one-liners (explorer/sql_examples.py) on a synthetic
root (bench/make_results.py), each timed in one run both ways, alternating: in this process on
a sandbox connection (`sandbox.connect`, how statements ran before the bounds) and through
`sandbox.Statement` (the worker forked from the fork server, its batches over a pipe). Medians
of --repeat runs, and their ratio.

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
frame = run_query(sys.argv[1], sys.argv[2], Limits(timeout_s=None, memory_bytes=8 << 30))
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


def overhead(runs: int, repeat: int) -> None:
    import statistics

    from bench.make_results import make_root
    from explorer.sql_examples import EXAMPLES
    from ibstore import query_process, sandbox
    from ibstore.index import scan

    def in_process(found, query: str) -> int:
        con = sandbox.connect(scan=found, names=views_of(query))
        try:
            reader = con.sql(query).to_arrow_reader(sandbox.BATCH_ROWS)
            return sandbox.first_rows(iter(reader), reader.schema, 200)[1]
        finally:
            con.close()

    def in_worker(found, query: str) -> int:
        return sandbox.head(found, query, 200, sandbox.Limits())[1]

    def views_of(query: str):
        from ibstore import views
        return views.read_by(query)

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "results"
        make_root(root, runs, epochs=200, logged=50, seeds=5)
        found = scan(root)
        query_process.start_server()
        in_worker(found, "SELECT 1")   # the fork server's start (once per process) is not a query's cost
        queries = {"small: SELECT count(*) FROM runs": "SELECT count(*) FROM runs", **EXAMPLES}
        print(f"{runs} runs (200 epochs, 50 logged); median of {repeat}, seconds")
        print(f"{'query':60} {'in process':>10} {'worker':>8} {'ratio':>6} {'+ms':>6}")
        for label, query in queries.items():
            before, after = [], []
            for _ in range(repeat):
                for run, times in ((in_process, before), (in_worker, after)):
                    started = time.perf_counter()
                    rows = run(found, query)
                    times.append(time.perf_counter() - started)
            b, a = statistics.median(before), statistics.median(after)
            print(f"{label[:60]:60} {b:10.3f} {a:8.3f} {a / b:6.2f} {1000 * (a - b):6.0f}  ({rows} rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--overhead", action="store_true", help="the bounded worker's cost per query")
    parser.add_argument("--runs", type=int, default=100, help="--overhead: runs in the synthetic root")
    parser.add_argument("--repeat", type=int, default=9, help="--overhead: timings per query and way")
    args = parser.parse_args()
    if args.overhead:
        overhead(args.runs, args.repeat)
        return
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
