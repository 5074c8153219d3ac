"""Explorer and `trainer sql` speed and memory as the results root grows (issue 12's targets).

    python bench/bench_explorer.py [--sizes 500 2000 10000 100000] [--base /tmp/ib-bench30] [--cache DIR]
                                   [--warm-only 100000]

For each size N, a root of N finished runs (2000 epochs, 30 logged by default, 6 layers: what
bench/make_results.py writes; a smaller root is copied from a bigger one when that exists;
`BASE/rootN` may be a link to a root written before, e.g. to /tmp/scale-100k) is measured,
each line in a fresh process:

- explorer first load, cold index (no index on disk) and warm (index on disk): the app's first
  script run through streamlit.testing.v1.AppTest (Runs page, as a browser's first visit);
- Runs page rerun and SQL filter, "Select all shown" (every run: the URL then names the filter)
  and a rerun with every run selected, 12-run Compare page and a change of split on it (AppTest);
- refresh after one run changes (its run.json and a new metrics part, as a writer's flush): the
  app's `ResultStore.refresh()` and its `runs()` frame, which then shows the change, then the Runs
  page's rerun on the new snapshot (what the explorer works out again);
- `trainer sql "SELECT count(*) FROM runs"` and a 12-run MI query, as subprocess wall times
  (warm index; this includes starting Python);
- peak RSS of the explorer process after those interactions.

Wall times on a shared machine depend on its load: the load average is printed with the
table, and each time's CPU seconds beside it. The refresh rows change one run for a moment (and
put it back): to measure a root others share without touching it, make `BASE/rootN` an overlay
mount of it (`mount -t overlay overlay -o lowerdir=ROOT,upperdir=U,workdir=W BASE/rootN`), so the
change lands in U.

    python bench/bench_explorer.py --pages [--before DIR] [--base /tmp/ib-bench]

Page render times (issue 16): each of the nine pages drawn through AppTest, its first draw and
a rerun (what every interaction costs; on the Phases page also a change of band, of reference
group and of split, which recomputes the statistics), on 10 runs x 8000 epochs (300 logged, all
selected), on 500 runs (2000 epochs, 12 selected) and on 3 configs x 50 seeds (all 150 selected:
the chart pages draw 60, the Phases page reads them all); with `--before DIR` (an export of an
earlier commit, e.g. `git archive COMMIT | tar -x -C DIR`) the same for that code, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.make_results import make_root, planned_run_ids  # noqa: E402

# issue 20's targets at 100,000 runs (at 10,000 the warm first load had 5 s)
TARGETS = {"first load, warm index": 3.0, "Runs page rerun": 1.0, "Runs page SQL filter": 1.0,
           "Runs page, select all shown": 1.0, "Runs page rerun, all selected": 1.0,
           "12-run Compare page": 1.0, "Compare, change split": 1.0, "refresh after one run changes": 1.0,
           "Runs page after one run changes": 1.0,
           "trainer sql count(*) FROM runs": 1.0, "trainer sql 12-run MI": 1.0}


def ensure_root(base: Path, runs: int, epochs: int, logged: int) -> Path:
    """`base/rootN`: copied from a bigger root of the same plan in `base` if there is one, else
    generated."""
    root = base / f"root{runs}"
    if (root / "runs").is_dir() and len(os.listdir(root / "runs")) >= runs:
        return root
    sizes = sorted(int(path.name[4:]) for path in base.glob("root*") if path.name[4:].isdigit())
    bigger = [base / f"root{n}" for n in sizes if n > runs and (base / f"root{n}" / "runs").is_dir()]
    if bigger:
        print(f"copying {runs} runs from {bigger[0]} ...", flush=True)
        for run_id in planned_run_ids(runs, epochs, logged):
            shutil.copytree(bigger[0] / "runs" / run_id, root / "runs" / run_id, dirs_exist_ok=True)
    else:
        print(f"generating {runs} runs in {root} ...", flush=True)
        started = time.perf_counter()
        make_root(root, runs, epochs, logged)
        print(f"  {time.perf_counter() - started:.1f} s", flush=True)
    return root


def forget_index(root: Path, cache: Path) -> None:
    shutil.rmtree(root / ".index", ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)


def timed(fn, repeat: int = 1) -> tuple[float, float]:
    """Median wall and CPU seconds of `fn()` (CPU of this process and of the children it waited for)."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), _cpu()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# --- in the measuring process ----------------------------------------------------------------

def measure_app(root: Path, repeat: int) -> dict[str, object]:
    """The app through AppTest in this (fresh) process: first load, then interactions."""
    os.environ["IB_RESULTS"] = str(root)
    from streamlit.testing.v1 import AppTest

    from ibstore import index_file

    notes = []    # what the first scan did with the index on disk (loaded, or why it was rebuilt)
    load = index_file.load
    index_file.load = lambda *args: (lambda loaded: notes.append(loaded[1]) or loaded)(load(*args))
    at = AppTest.from_file(str(REPO / "explorer" / "app.py"), default_timeout=3600)   # a cold 100,000-run scan
    result = {"first load": timed(at.run), "index": notes[0] if notes else "?"}
    assert not at.exception, [e.message for e in at.exception]
    result["Runs page rerun"] = timed(at.run, repeat)
    at.text_input(key="where").set_value("final_test_accuracy > 0.8")
    result["Runs page SQL filter"] = timed(at.run)
    assert not at.exception, [e.message for e in at.exception]
    at.text_input(key="where").set_value("").run()
    next(b for b in at.button if b.label == "Clear selection").click().run()
    result["Runs page, select all shown"] = timed(next(b for b in at.button if b.label == "Select all shown").click().run)
    assert not at.exception and at.query_params.get("select") == "shown", [e.message for e in at.exception]
    result["Runs page rerun, all selected"] = timed(at.run, repeat)

    from explorer.results import ResultStore

    store = ResultStore(root)
    runs = store.runs()
    ids = runs.loc[runs["name"] == "tanh-bias", "run_id"].tolist()[:12]
    at.query_params.clear()
    at.query_params["runs"] = ids      # a link to 12 runs
    at.switch_page("app_pages/compare.py")
    result["12-run Compare page"] = timed(at.run)
    assert not at.exception, [e.message for e in at.exception]
    at.radio(key="split").set_value("test")
    result["Compare, change split"] = timed(at.run)
    assert not at.exception, [e.message for e in at.exception]

    from explorer import ui

    at.switch_page("app_pages/runs.py").run()
    result["refresh after one run changes"], result["Runs page after one run changes"] = measure_refresh(
        ui.store(), root, ids[0], at.run)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result["peak RSS GB"] = (peak, peak)
    return result


def measure_refresh(store, root: Path, run_id: str, then) -> tuple[tuple[float, float], tuple[float, float]]:
    """A writer's flush on one run (a metrics part, then run.json), then the app's store's refresh
    until it shows, and `then()` (the page's rerun on the new snapshot: what the explorer works out
    again); the run is put back as it was afterwards."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ibstore import layout
    from ibstore.record import RunRecord

    record_path = layout.run_json_path(root, run_id)
    original = record_path.read_bytes()
    record = RunRecord.from_json_bytes(original)
    part = layout.table_part_path(root, run_id, "metrics", 999_999)
    store.refresh()
    try:
        pq.write_table(pa.table({"run_id": [run_id], "epoch": pa.array([record.epochs_done + 1], pa.int32()),
                                 "split": ["train"], "loss": [0.1], "accuracy": [0.99]}), part)
        changed = record.model_copy(update={"epochs_done": record.epochs_done + 1})
        temporary = record_path.with_name(".run.json.bench.tmp")
        temporary.write_bytes(changed.to_json_bytes())
        os.replace(temporary, record_path)
        elapsed = timed(lambda: store.refresh() and store.runs())   # until the runs frame shows it
        shown = store.runs().set_index("run_id").loc[run_id, "epochs_done"]
        assert shown == record.epochs_done + 1, shown
        return elapsed, timed(then)
    finally:
        part.unlink(missing_ok=True)
        temporary = record_path.with_name(".run.json.bench.tmp")
        temporary.write_bytes(original)
        os.replace(temporary, record_path)


def trainer_sql(root: Path, query: str, repeat: int) -> tuple[float, float]:
    command = [sys.executable, "-m", "trainer", "sql", query, "--results", str(root)]

    def run() -> None:
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 0, done.stderr
    run()   # the first call may save the index
    return timed(run, repeat)


PAGES = ["runs", "compare", "config", "training", "gradients", "phases", "activations", "movie", "sql"]
# runs, epochs, selected, seeds per config; the 50-seed cohort is what the Phases page reads whole
PAGE_ROOTS = {"10 runs x 8000 epochs": (10, 8000, 10, 5), "500 runs": (500, 2000, 12, 5),
              "3 configs x 50 seeds": (150, 2000, 150, 50)}


def measure_pages(root: Path, code: Path, selected: int) -> dict[str, tuple[float, float]]:
    """First draw and rerun of every page, for `selected` runs of `root`, with the app in `code`."""
    os.environ["IB_RESULTS"] = str(root)
    sys.path.insert(0, str(code))     # the explorer measured is `code`'s (ibstore is the same in both)
    from streamlit.testing.v1 import AppTest

    from explorer.results import ResultStore

    assert Path(sys.modules["explorer"].__file__).is_relative_to(code)
    ids = list(ResultStore(root).runs()["run_id"])[:selected]
    at = AppTest.from_file(str(code / "explorer" / "app.py"), default_timeout=600)
    at.query_params["runs"] = ids
    at.run()
    result = {}
    for page in PAGES:
        if not (code / "explorer" / "app_pages" / f"{page}.py").is_file():
            continue                  # an earlier export without this page
        at.switch_page(f"app_pages/{page}.py")
        result[f"{page}, first draw"] = timed(at.run)
        assert not at.exception, (page, [e.message for e in at.exception])
        result[f"{page}, rerun"] = timed(at.run)
        if page == "phases":          # interactions: what the drawing changes, what the statistics change
            result["phases, change band"] = timed(at.radio(key="band").set_value("min-max").run)
            result["phases, change reference"] = timed(at.selectbox(key="reference").select_index(0).run)
            result["phases, change split"] = timed(at.radio(key="split").set_value("test").run)
            assert not at.exception, (page, [e.message for e in at.exception])
    return result


def bench_pages(base: Path, before: Path | None) -> None:

    codes = {"after": REPO, **({"before": before} if before else {})}
    table: dict[str, dict[str, tuple[float, float]]] = {}
    loads = [os.getloadavg()[0]]
    for label, (runs, epochs, selected, seeds) in PAGE_ROOTS.items():
        root = base / f"pages-{runs}x{epochs}" if seeds == 5 else base / f"pages-{runs}x{epochs}-{seeds}seeds"
        if not (root / "runs").is_dir():
            print(f"generating {root} ...", flush=True)
            make_root(root, runs, epochs, 300, seeds=seeds, processes=1)
        for version, code in codes.items():
            env = {**os.environ, "PYTHONPATH": str(code), "XDG_CACHE_HOME": str(base / "cache")}
            done = subprocess.run([sys.executable, __file__, "--measure-pages", str(root), "--code", str(code),
                                   "--selected", str(selected)], capture_output=True, text=True, env=env, cwd=code)
            if done.returncode != 0:
                raise SystemExit(f"measuring {version} on {root} failed:\n{done.stderr[-3000:]}")
            for name, value in json.loads(done.stdout.strip().splitlines()[-1]).items():
                table.setdefault(f"{label}: {name}", {})[version] = value
            loads.append(os.getloadavg()[0])
    print(f"\n{os.cpu_count()} cores, shared; load average (1 min) {min(loads):.1f} to {max(loads):.1f} during the runs")
    print("each cell: wall seconds (CPU seconds); target 1 s per interaction (a rerun)")
    print(f"{'page':50s}" + "".join(f"{v:>16s}" for v in codes))
    for name, values in table.items():
        print(f"{name:50s}" + "".join(f"{values[v][0]:8.2f} ({values[v][1]:5.2f})" for v in codes if v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 10_000, 100_000])
    parser.add_argument("--base", type=Path, default=Path("/tmp/ib-bench30"))
    parser.add_argument("--cache", type=Path, help="the index cache (XDG_CACHE_HOME) measured with, removed for "
                                                    "a cold load (default: BASE/cache)")
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--logged", type=int, default=30, help="logged epochs per run (30: 100,000 runs fit on disk)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warm-only", type=int, nargs="*", default=[], metavar="SIZE",
                        help="sizes measured with the index on disk only (a cold scan of their root is not "
                             "repeated: e.g. an index kept up to date while the root was written)")
    parser.add_argument("--pages", action="store_true", help="page render times (issue 16) instead")
    parser.add_argument("--before", type=Path, help="with --pages: an export of earlier code to compare with")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)   # internal: one fresh process
    parser.add_argument("--measure-pages", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, default=REPO, help=argparse.SUPPRESS)
    parser.add_argument("--selected", type=int, default=12, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_app(args.measure, args.repeat)))
        return
    if args.measure_pages:
        print(json.dumps(measure_pages(args.measure_pages, args.code, args.selected)))
        return
    if args.pages:
        bench_pages(args.base, args.before)
        return

    cache = args.cache or args.base / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(REPO)}
    table: dict[str, dict[int, tuple[float, float]]] = {}
    loads = [os.getloadavg()[0]]
    for size in sorted(args.sizes):
        root = ensure_root(args.base, size, args.epochs, args.logged)
        print(f"measuring {size} runs ...", flush=True)
        rows = {}
        for index_state in ("warm",) if size in args.warm_only else ("cold", "warm"):
            if index_state == "cold":
                forget_index(root, cache)
            measured = measure_in_new_process(root, args.repeat, env)
            print(f"  {index_state} index: {measured.pop('index')[:150]}", flush=True)
            rows[f"first load, {index_state} index"] = measured.pop("first load")
            if index_state == "warm":
                rows.update(measured)
        ids = planned_run_ids(size, args.epochs, args.logged)[:60:5]   # 12 runs, one seed of each of 12 configs
        rows["trainer sql count(*) FROM runs"] = trainer_sql(root, "SELECT count(*) FROM runs", args.repeat)
        in_list = ", ".join(f"'{run_id}'" for run_id in ids)
        rows["trainer sql 12-run MI"] = trainer_sql(
            root, f"SELECT run_id, epoch, layer, i_xt, i_yt FROM mi WHERE run_id IN ({in_list}) AND split = 'train'",
            args.repeat)
        for name, value in rows.items():
            table.setdefault(name, {})[size] = value
        loads.append(os.getloadavg()[0])
        print_table(table, [n for n in sorted(args.sizes) if n <= size], loads, args.warm_only)


def measure_in_new_process(root: Path, repeat: int, env: dict[str, str]) -> dict[str, tuple[float, float]]:
    """measure_app in a fresh process; once more after a pause if it fails (on a shared working
    tree, someone's half-saved edit can break the app for a moment)."""
    for attempt in (1, 2):
        done = subprocess.run([sys.executable, __file__, "--measure", str(root), "--repeat", str(repeat)],
                              capture_output=True, text=True, env=env, cwd=REPO)
        if done.returncode == 0:
            return json.loads(done.stdout.strip().splitlines()[-1])
        print(f"measuring {root} failed (attempt {attempt}):\n{done.stderr[-2000:]}", flush=True)
        time.sleep(60)
    raise SystemExit(1)


def print_table(table: dict[str, dict[int, tuple[float, float]]], sizes: list[int], loads: list[float],
                warm_only: list[int]) -> None:
    print(f"\n{os.cpu_count()} cores; load average (1 min) {min(loads):.1f} to {max(loads):.1f} during the runs")
    print("each cell: wall seconds (CPU seconds of the process and its children); growth and target: wall")
    print(f"{'measure':34s}" + "".join(f"{f'{n:,} runs':>16s}" for n in sizes) + f"{'growth':>8s}{'target':>9s}")
    for name, values in table.items():
        cells = "".join(_cell(name, values.get(n), n in warm_only) for n in sizes)
        measured = [n for n in sizes if n in values]   # a --warm-only size has no cold row
        growth = values[measured[-1]][0] / values[measured[0]][0] if values[measured[0]][0] else float("nan")
        target = TARGETS.get(name) or (2.0 if "RSS" in name else None)
        print(f"{name:34s}{cells}{growth:7.1f}x{'' if target is None else f'{target:8.1f}':>9s}")
    print(f"(growth: {sizes[-1]:,} runs / {sizes[0]:,} runs, {sizes[-1] / sizes[0]:.0f}x the runs)", flush=True)
    if any(n in warm_only for n in sizes):
        print("not run: the cold load of a --warm-only size (its root's cold scan is not repeated: it reads "
              "every run folder, about 10x the 10,000-run cold load at 100,000 runs)", flush=True)


def _cell(name: str, value: tuple[float, float] | None, warm_only: bool) -> str:
    if value is None:
        return f"{'not run' if warm_only and 'cold' in name else '-':>16s}"
    if "RSS" in name:
        return f"{value[0]:11.2f} GB  "
    return f"{value[0]:8.2f} ({value[1]:5.2f})"


if __name__ == "__main__":
    main()
