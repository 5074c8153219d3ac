"""The app's interactions at 100,000 runs without a 100,000-run index: the explorer's side only.

    python bench/bench_app_copies.py ROOT [--copies 10] [--no-background]

ROOT's index must be on disk (warm). The store's `runs` frame and flat configs are ROOT's
repeated `copies` times under new run ids (10 x a 10,000-run root: 100,000 runs), so every
step that works over the whole root (the runs table and its order, varying keys, chips, the
selection) sees 100,000 runs, while queries of run data (MI, a SQL condition) read ROOT's real
runs. Each interaction is run through AppTest as bench/bench_explorer.py does; CPU seconds of
this process beside wall seconds and the load average (the machine is shared). With
`--no-background` the store's background rescans of ROOT are left out, so the CPU seconds are
the script's own. Last, one run's record changes (restored after): the app's refresh, then the
Runs page's rerun on the new snapshot.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from explorer.results import ResultStore  # noqa: E402
from ibstore import layout  # noqa: E402


def copied(copies: int) -> None:
    """ResultStore's `runs()` and `flat_configs()` give `copies` x the root's runs (kept per snapshot)."""
    runs, flat_configs = ResultStore.runs, ResultStore.flat_configs

    def many_runs(self, where=None):
        if where:
            return runs(self, where)
        one = runs(self)
        return self.of_snapshot("copied_runs", lambda _: pd.concat(
            [one] + [one.assign(run_id=one["run_id"] + f"-c{i}") for i in range(1, copies)],
            ignore_index=True)).copy()

    def many_flats(self, run_ids):
        originals = {r: re.sub(r"-c\d+$", "", r) for r in run_ids}
        flats = flat_configs(self, sorted(set(originals.values())))
        return {r: flats[original] for r, original in originals.items()}

    ResultStore.runs, ResultStore.flat_configs = many_runs, many_flats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--no-background", action="store_true")
    args = parser.parse_args()
    os.environ["IB_RESULTS"] = str(args.root)
    real_runs = ResultStore(args.root).runs()
    copied(args.copies)
    if args.no_background:
        ResultStore._refresh_in_background = lambda self: None
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "explorer" / "app.py"), default_timeout=3600)

    def timed(label: str, step) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        step()
        assert not at.exception, [e.message for e in at.exception]
        print(f"{label:40s} {time.perf_counter() - wall:7.2f} s wall ({time.process_time() - cpu:5.2f} s CPU)"
              f"  load {os.getloadavg()[0]:.1f}", flush=True)

    def button(label: str):
        return next(b for b in at.button if b.label == label)

    timed("first load", at.run)
    print(f"{len(ResultStore(args.root).runs()):,} runs ({args.copies} x {len(real_runs):,} of {args.root})")
    timed("Runs page rerun", at.run)
    timed("Runs page rerun", at.run)
    timed("Runs page SQL filter", at.text_input(key="where").set_value("final_test_accuracy > 0.8").run)
    timed("Runs page, filter cleared", at.text_input(key="where").set_value("").run)
    timed("Clear selection", button("Clear selection").click().run)
    timed("Select all shown", button("Select all shown").click().run)
    print(f"  URL: {dict(at.query_params.items())}")
    timed("Runs page rerun, all selected", at.run)
    at.query_params.clear()
    twelve = real_runs.loc[real_runs["name"] == "tanh-bias", "run_id"].tolist()[:12]
    at.query_params["runs"] = twelve
    at.switch_page("app_pages/compare.py")
    timed("12-run Compare page", at.run)
    timed("12-run Compare page again", at.run)
    timed("Compare, change split", at.radio(key="split").set_value("test").run)
    at.switch_page("app_pages/runs.py")
    timed("Runs page, 12 selected", at.run)
    from explorer import ui

    path = layout.run_json_path(args.root, twelve[0])
    original = path.read_bytes()
    temporary = path.with_name(".run.json.bench.tmp")
    try:
        record = json.loads(original)
        record["epochs_done"] += 1
        temporary.write_text(json.dumps(record))
        os.replace(temporary, path)
        timed("refresh after one run changes (ibstore)", ui.store().refresh)
        timed("Runs page after one run changes", at.run)
    finally:
        temporary.write_bytes(original)
        os.replace(temporary, path)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")


if __name__ == "__main__":
    main()
