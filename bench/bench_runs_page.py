"""What the Runs page does per interaction at 100,000 runs, apart from scanning the root.

    python bench/bench_runs_page.py ROOT [--copies 10]

The `runs` frame and flattened configs of ROOT (index on disk) are repeated `copies` times
under new run ids (10 x a 10,000-run root: 100,000 runs), then each step a Runs page rerun
takes over the whole root is timed on them: the table in reading order, the badges, the
varying keys, the page of rows and a pick on it, the sidebar's list and chip names. CPU
seconds beside wall seconds (the machine is shared). The scan itself (ibstore) is measured by
bench_explorer.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer import runs_table, sidebar, ui
from explorer.results import ResultStore
from ibstore import configdiff


def timed(label: str, fn):
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    print(f"{label:44s} {time.perf_counter() - wall:7.3f} s wall ({time.process_time() - cpu:6.3f} s CPU)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    store = ResultStore(args.root)
    runs = store.runs()
    flats = store.flat_configs(list(runs["run_id"]))
    copies = [runs.assign(run_id=runs["run_id"] + f"-c{i}") for i in range(args.copies)]
    big = pd.concat(copies, ignore_index=True)
    big_flats = [flat for _ in range(args.copies) for flat in flats.values()]
    print(f"{len(big):,} runs ({args.copies} x {len(runs):,} of {args.root})")
    varying = timed("varying keys of every run (once per snapshot)", lambda: configdiff.varying_flat_keys(big_flats))
    flags = timed("badges of every run", lambda: ui.run_flags(big))
    table = timed("the table in reading order", lambda: runs_table.runs_table(big, varying, flags))
    shown = list(table["run_id"])
    rows = runs_table.page_rows(len(shown), 50)
    selection = shown[:12]
    timed("a pick on page 50", lambda: runs_table.picked_selection(shown, shown[rows], [3], selection))
    timed("the page's rows as Arrow (what is sent)", lambda: __import__("pyarrow").Table.from_pandas(table.iloc[rows]))
    timed("every row as Arrow (what was sent before)", lambda: __import__("pyarrow").Table.from_pandas(table))
    timed("the sidebar's list", lambda: sidebar.sidebar_options(list(big["run_id"]), selection))
    timed("parallel coordinates' sample", lambda: runs_table.drawn_sample(table))


if __name__ == "__main__":
    main()
