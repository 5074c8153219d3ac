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

    python bench/bench_sql.py --index ROOT [--before DIR] [--repeat 3]

--index (issue 20): the first `trainer sql "SELECT count(*) FROM runs"` on ROOT (e.g. 10,000 runs
from bench/make_results.py), each a whole `python -m trainer sql` process, wall seconds (and CPU
seconds of the process and its children), median of --repeat: cold (a new, empty user cache
each time: every run folder read), warm (the index on disk), the first after the writers handed
over every run (`ibstore.index.record_run` for each, what `RunWriter.finish` does; the hand-over
itself is not timed) and an empty root (the floor: starting Python, the fork server); then
`SELECT count(*) FROM mi`, first after the cold count of runs (same cache: what checking the
pages of every mi file costs, deferred to the first read of mi) and cold from nothing. With
--before DIR (a checkout of earlier code, e.g. `git worktree add --detach DIR main`) its cold
and warm rows too, in the same run, alternating. Targets: cold <= 5 s, warm <= 1.2x the empty
root. The load average is printed before and after.
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


def sql_process(code: Path, root: Path, cache: Path, table: str = "runs") -> tuple[float, float]:
    """Wall and CPU seconds (its own and its children's) of one `trainer sql` count of `table` of
    `root` run with the code in `code` and the user cache `cache`."""
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "trainer", "sql", f"SELECT count(*) FROM {table}", "--results", str(root)],
                          cwd=code, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(code), "XDG_CACHE_HOME": str(cache)})
    elapsed = time.perf_counter() - started
    after = os.times()
    if done.returncode != 0:
        raise SystemExit(f"trainer sql failed on {root}: {done.stderr.strip()[-500:]}")
    return elapsed, after.children_user + after.children_system - before.children_user - before.children_system


def index_rows(root: Path, before: Path | None, repeat: int) -> None:
    import shutil
    import statistics

    from ibstore import index, layout

    codes = {"this code": REPO, **({"before": before} if before else {})}
    rows: dict[str, list[tuple[float, float]]] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "empty").mkdir()
        for name, code in codes.items():   # each code its own warm cache: their index versions differ
            sql_process(code, root, base / f"warm-{name}")
        for _ in range(repeat):
            for name, code in codes.items():
                cold = base / f"cold-{name}"
                shutil.rmtree(cold, ignore_errors=True)
                rows.setdefault(f"cold, {name}", []).append(sql_process(code, root, cold))
                rows.setdefault(f"warm, {name}", []).append(sql_process(code, root, base / f"warm-{name}"))
                # the first query on a Parquet table after the cold one (issue 20: its pages checked then)
                rows.setdefault(f"then first count(*) FROM mi, {name}", []).append(sql_process(code, root, cold, "mi"))
                shutil.rmtree(cold)
                rows.setdefault(f"cold count(*) FROM mi, {name}", []).append(sql_process(code, root, cold, "mi"))
            handed = base / "handed"
            shutil.rmtree(handed, ignore_errors=True)
            os.environ["XDG_CACHE_HOME"] = str(handed)
            for run_id in sorted(os.listdir(layout.runs_dir(root))):
                index.record_run(root, run_id)
            rows.setdefault("first after the writers' hand-over, this code", []).append(
                sql_process(REPO, root, handed))
            rows.setdefault("empty root, this code", []).append(sql_process(REPO, base / "empty", base / "empty-cache"))
    runs = len(os.listdir(layout.runs_dir(root)))
    print(f"trainer sql \"SELECT count(*) FROM runs\" on {root} ({runs:,} run folders), median of {repeat}")
    print(f"{os.cpu_count()} cores; load average (1, 5, 15 min) before {load_before} after {os.getloadavg()}")
    empty = statistics.median(wall for wall, _ in rows["empty root, this code"])
    print(f"{'case':48} {'wall s':>8} {'CPU s':>8} {'/ empty':>8}")
    for name, measured in rows.items():
        wall, cpu = (statistics.median(values) for values in zip(*measured))
        print(f"{name:48} {wall:8.2f} {cpu:8.2f} {wall / empty:7.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--overhead", action="store_true", help="the bounded worker's cost per query")
    parser.add_argument("--runs", type=int, default=100, help="--overhead: runs in the synthetic root")
    parser.add_argument("--repeat", type=int, default=9, help="--overhead: timings per query and way; --index: per case")
    parser.add_argument("--index", type=Path, metavar="ROOT", help="cold and warm first `trainer sql` on ROOT")
    parser.add_argument("--before", type=Path, metavar="DIR", help="--index: earlier code to compare with")
    args = parser.parse_args()
    if args.index:
        index_rows(args.index, args.before, args.repeat)
        return
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
