"""The estimators cohort against the notebook cohort through `trainer sweep`, per network-epoch.

    python bench/bench_estimators_cohort.py --epochs 1500 [--before DIR] [--repeats N]

Issue 18's target for every shipped cohort: no more than 3x the notebook cohort's cost per
network-epoch. Rows, each a whole `trainer sweep` in a fresh results root (start-up included):
data/configs/cohorts/estimators.json (tanh and relu, every estimator at ibsgd's schedule) at
`--epochs` epochs, here and, with `--before`, in an older checkout, alternating `--repeats`
times; then the notebook cohort (data/configs/reproductions/initial_bias_relu_notebook.json,
45 networks) once, here. Each row gives wall seconds and the CPU seconds of the sweep's whole
process tree (its spawned workers are its children), per network-epoch: on 2 cores shared with
other jobs the CPU is the steadier figure. The load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ESTIMATORS = REPO / "data" / "configs" / "cohorts" / "estimators.json"
NOTEBOOK = REPO / "data" / "configs" / "reproductions" / "initial_bias_relu_notebook.json"
NOTEBOOK_SEEDS = 5


def sweep(code: Path, config: Path, root: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process tree) of `trainer sweep config` with `code` on PYTHONPATH."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "trainer", "sweep", str(config), "--results", str(root)], cwd=code,
                   env={**os.environ, "PYTHONPATH": str(code)}, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=1, help="sweeps of the estimators cohort here (and before)")
    parser.add_argument("--before", type=Path, help="an older checkout to time side by side (PYTHONPATH=it)")
    args = parser.parse_args()
    estimators = {**json.loads(ESTIMATORS.read_text()), "epochs": args.epochs}
    notebook = {**json.loads(NOTEBOOK.read_text()), "epochs": args.epochs, "n_runs": NOTEBOOK_SEEDS}
    rows: dict[str, list[tuple[float, float]]] = {}
    networks = {"estimators after": 2, "estimators before": 2, "notebook": len(notebook["grid"]["initial_bias"])
                * NOTEBOOK_SEEDS}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "estimators.json").write_text(json.dumps(estimators))
        (folder / "notebook.json").write_text(json.dumps(notebook))
        checkouts = [("estimators after", REPO)] + ([("estimators before", args.before.resolve())] if args.before else [])
        for repeat in range(args.repeats):
            for label, code in checkouts:
                load = os.getloadavg()[0]
                wall, cpu = sweep(code, folder / "estimators.json", folder / f"{label}-{repeat}".replace(" ", "-"))
                rows.setdefault(label, []).append((wall, cpu))
                print(f"{label:18} wall {wall:7.1f} s, CPU {cpu:7.1f} s (load {load:.1f} -> {os.getloadavg()[0]:.1f})",
                      flush=True)
        load = os.getloadavg()[0]
        rows["notebook"] = [sweep(REPO, folder / "notebook.json", folder / "notebook")]
        print(f"{'notebook':18} wall {rows['notebook'][0][0]:7.1f} s, CPU {rows['notebook'][0][1]:7.1f} s "
              f"(load {load:.1f} -> {os.getloadavg()[0]:.1f})")
    print(f"\n{args.epochs} epochs; ms per network-epoch (medians), and as a multiple of the notebook cohort's")
    per = {label: [statistics.median(r[i] for r in runs) / (networks[label] * args.epochs) * 1e3 for i in (0, 1)]
           for label, runs in rows.items()}
    for label, (wall, cpu) in per.items():
        print(f"{label:18} wall {wall:8.2f} ({wall / per['notebook'][0]:5.1f}x)   "
              f"CPU {cpu:8.2f} ({cpu / per['notebook'][1]:5.1f}x)")


if __name__ == "__main__":
    main()
