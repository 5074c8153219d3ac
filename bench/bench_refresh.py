"""The explorer's refresh at 100,000 runs (issue 20), this code against an earlier export, side by side:

    python bench/bench_refresh.py ROOT --before DIR [--rounds 3] [--cache-base DIR]

ROOT a results root others may share: make it an overlay mount (see bench_explorer.py), since a
refresh row changes a run for a moment (a metrics part and run.json renamed into place, as a
writer's flush) and puts it back. DIR an export of the earlier commit (`git archive COMMIT | tar -x
-C DIR`). Each code gets its own index cache (`--cache-base`/before, /after), brought up to date
by one `trainer sql` before each measuring process (a cold scan when there is none of this code).
Each round measures both, each in a fresh process that opens the app's `ResultStore` on the warm
index, then: a refresh with nothing changed, and a refresh after one run changes (until the
`runs()` frame shows it), each 3 times (another run each time). Rounds alternate which code goes first, so the machine's load weighs on both alike; the
load average is printed beside every figure. Cells: median wall seconds (median CPU seconds);
the measuring process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _timed(work) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    work()
    return time.perf_counter() - wall, _cpu() - cpu


def measure(root: Path) -> dict[str, list[tuple[float, float]]]:
    """In a fresh process whose PYTHONPATH is the code measured."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from explorer.results import ResultStore
    from ibstore import layout
    from ibstore.record import RunRecord

    store = ResultStore(root)
    result = {"warm open (first refresh and runs frame)": [_timed(lambda: store.runs())]}
    result["refresh, nothing changed"] = [_timed(lambda: (store.refresh(), store.runs())) for _ in range(3)]
    ids = store.runs()["run_id"]
    result["refresh after one run changes"] = []
    for k in range(3):
        run_id = ids.iloc[(len(ids) // 4) * (k + 1)]
        record_path = layout.run_json_path(root, run_id)
        original = record_path.read_bytes()
        record = RunRecord.from_json_bytes(original)
        part = layout.table_part_path(root, run_id, "metrics", 999_999)
        temporary = record_path.with_name(".run.json.bench.tmp")
        try:
            pq.write_table(pa.table({"run_id": [run_id], "epoch": pa.array([record.epochs_done + 1], pa.int32()),
                                     "split": ["train"], "loss": [0.1], "accuracy": [0.99]}), part)
            temporary.write_bytes(record.model_copy(update={"epochs_done": record.epochs_done + 1}).to_json_bytes())
            os.replace(temporary, record_path)
            result["refresh after one run changes"].append(_timed(lambda: store.refresh() and store.runs()))
            shown = store.runs().set_index("run_id").loc[run_id, "epochs_done"]
            assert shown == record.epochs_done + 1, (run_id, shown)
        finally:
            part.unlink(missing_ok=True)
            temporary.write_bytes(original)
            os.replace(temporary, record_path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result["peak RSS GB"] = [(peak, peak)]
    return result


def run_code(code: Path, root: Path, cache: Path) -> dict[str, list[list[float]]]:
    env = {**os.environ, "PYTHONPATH": str(code), "XDG_CACHE_HOME": str(cache)}
    # an index of this code, on disk: a cold scan the first time (or after the code changed)
    subprocess.run([sys.executable, "-m", "trainer", "sql", "SELECT count(*) FROM runs", "--results", str(root)],
                   env=env, cwd=code, check=True, capture_output=True)
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(root), "--measure"],
                          env=env, cwd=code, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"measuring {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--before", type=Path, help="an export of the earlier code")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache-base", type=Path, default=Path("/tmp/bench-refresh-cache"))
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)   # internal: one fresh process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.root)))
        return
    codes = {"after": REPO, **({"before": args.before} if args.before else {})}
    samples: dict[str, dict[str, list]] = {code: {} for code in codes}
    loads: dict[str, list[float]] = {code: [] for code in codes}
    for number in range(args.rounds):
        order = list(codes) if number % 2 == 0 else list(reversed(codes))
        for code in order:
            loads[code].append(os.getloadavg()[0])
            print(f"round {number + 1}: {code} (load {loads[code][-1]:.1f})", flush=True)
            for name, values in run_code(codes[code], args.root, args.cache_base / code).items():
                samples[code].setdefault(name, []).extend(values)
    print(f"\n{os.cpu_count()} cores, shared; {args.rounds} rounds, each code in a fresh process per round")
    print("each cell: median wall seconds (median CPU seconds) over the samples; load average (1 min) beside")
    print(f"{'measure':42s}" + "".join(f"{code:>30s}" for code in codes))
    for name in samples["after"]:
        cells = ""
        for code in codes:
            values = samples[code][name]
            wall, cpu = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
            cell = f"{wall:7.2f} GB" if "RSS" in name else f"{wall:8.2f} ({cpu:5.2f})"
            cells += f"{cell} load {min(loads[code]):.1f}-{max(loads[code]):.1f}"
        print(f"{name:42s}{cells}")


if __name__ == "__main__":
    main()
