"""Explorer speed on a large synthetic root (target: first load < 5 s, interactions < 2 s).

    python bench/bench_explorer.py [--root bench/out/root500] [--runs 500 --epochs 2000 --logged 300]

Times, side by side with a naive baseline that globs read_parquet over every file at each
interaction: the first load (scan, validation, in-memory tables, runs table), then the Runs page
and a 12-run Compare page through streamlit.testing.v1.AppTest (whole script reruns, as in the
browser) and through the query functions directly.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from bench.make_results import make_root  # noqa: E402


def timed(fn, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def naive_runs(root: Path) -> None:
    """Every run.json, and final accuracies from a glob over every metrics file."""
    records = [json.loads(p.read_text()) for p in root.glob("runs/*/run.json")]
    con = duckdb.connect()
    con.execute(f"""SELECT run_id, arg_max(accuracy, epoch) FROM read_parquet('{root}/runs/*/metrics.parquet')
                    WHERE split = 'test' GROUP BY run_id""").df()
    assert records


def naive_compare(root: Path, ids: list[str]) -> None:
    con = duckdb.connect()
    con.execute(f"SELECT * FROM read_parquet('{root}/runs/*/mi.parquet') WHERE list_contains(?, run_id) "
                "AND split = 'train'", [ids]).df()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO / "bench" / "out" / "root500")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--logged", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = args.root.resolve()
    if not (root / "runs").exists():
        print(f"generating {args.runs} runs in {root} ...", flush=True)
        make_root(root, args.runs, args.epochs, args.logged)

    from explorer.results import ResultStore
    from streamlit.testing.v1 import AppTest

    rows: list[tuple[str, float, float | None]] = []
    store = ResultStore(root)
    first = timed(lambda: (store.refresh(), store.runs()))
    runs = store.runs()
    ids = runs.loc[runs["name"] == "tanh-bias", "run_id"].tolist()[:12]
    rows.append(("first load: scan + tables + runs table", first, timed(lambda: naive_runs(root))))
    rows.append(("runs table (direct)", timed(store.runs, args.repeat), timed(lambda: naive_runs(root), args.repeat)))
    rows.append(("12-run MI for Compare (direct)",
                 timed(lambda: store.with_panels(store.mi(ids, "binning", "train"), ids), args.repeat),
                 timed(lambda: naive_compare(root, ids), args.repeat)))
    rows.append(("12-run MI over seeds (direct)",
                 timed(lambda: store.mi_over_seeds(ids, "binning", '{"bin_size": 0.07}', "train"), args.repeat), None))

    os.environ["IB_RESULTS"] = str(root)
    at = AppTest.from_file(str(REPO / "explorer" / "app.py"), default_timeout=120)
    rows.append(("app: first Runs page (new process state)", timed(at.run), None))
    rows.append(("app: Runs page rerun", timed(at.run, args.repeat), None))
    at.text_input(key="where").set_value("test_accuracy > 0.8")
    rows.append(("app: Runs page SQL filter", timed(at.run), None))
    at.query_params["runs"] = ids
    at.switch_page("app_pages/compare.py")
    rows.append(("app: 12-run Compare page", timed(at.run), None))
    assert at.caption[0].value.startswith(f"{len(ids)} of {len(runs)} runs selected"), at.caption[0].value
    rows.append(("app: Compare rerun", timed(at.run, args.repeat), None))
    at.radio(key="split").set_value("test")
    rows.append(("app: Compare, change split", timed(at.run), None))
    at.radio(key="panels").set_value("per seed group")
    rows.append(("app: Compare, per seed group", timed(at.run), None))
    assert not at.exception, [e.message for e in at.exception]

    n_runs, n_mi = len(runs), store.sql("SELECT count(*) AS n FROM mi")["n"][0]
    print(f"\nresults root: {root} ({n_runs} runs, {n_mi:,} MI rows); {os.cpu_count()} cores\n")
    print(f"{'measure':45s} {'explorer':>10s} {'naive':>10s} {'naive/explorer':>15s}")
    for name, ours, naive in rows:
        ratio = f"{naive / ours:14.1f}x" if naive else ""
        print(f"{name:45s} {ours:9.3f}s {'' if naive is None else f'{naive:9.3f}s':>10s} {ratio:>15s}")


if __name__ == "__main__":
    main()
