"""A cohort through `trainer sweep` against one network through `trainer run`, side by side.

    python bench/bench_sweep.py                     # 300 epochs (a few minutes on 2 cores)
    python bench/bench_sweep.py --epochs 300 8000   # also the long cohort (minutes more)

The cohort has the seed notebook's shape (data/configs/reproductions/
initial_bias_relu_notebook.json): relu 12-10-7-5-4-3-2, 9 initial biases x 5 seeds =
45 runs, binning MI on train and test at the default schedule, every table written. The
single run is the same config with one initial bias and one seed. Both are timed end to
end as a user runs them (process start-up included), with the peak resident memory of
the largest process (for the sweep: its parent or one of its workers). The target is
the cohort within 5x the wall time of the single network.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
COHORT = REPO / "data" / "configs" / "reproductions" / "initial_bias_relu_notebook.json"
SEEDS = 5

# Runs a command and prints the peak resident memory (kB) of its largest process.
PEAK_RSS = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak MB of the largest process) of a trainer command."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "trainer", *command],
                            cwd=REPO, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, int(result.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[300], help="epochs per run (default 300)")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved repetitions; medians are printed")
    args = parser.parse_args()
    cohort = json.loads(COHORT.read_text())
    n_biases = len(cohort["grid"]["initial_bias"])
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores), medians of {args.repeats}")
    for epochs in args.epochs:
        ones, manys = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as folder:
                folder = Path(folder)
                (folder / "cohort.json").write_text(json.dumps({**cohort, "epochs": epochs, "n_runs": SEEDS}))
                single = {k: v for k, v in cohort.items() if k != "grid"}
                (folder / "single.json").write_text(json.dumps({**single, "epochs": epochs, "initial_bias": 0.0}))
                ones.append(timed(["run", str(folder / "single.json"), "--quiet", "--results", str(folder / "a")]))
                manys.append(timed(["sweep", str(folder / "cohort.json"), "--results", str(folder / "b")]))
        (one, one_mb), (many, many_mb) = (np.median(np.array(times), axis=0) for times in (ones, manys))
        n = n_biases * SEEDS
        print(f"{epochs} epochs: one network (trainer run) {one:.1f} s, peak {one_mb:.0f} MB; "
              f"cohort {n_biases} biases x {SEEDS} seeds = {n} networks (trainer sweep) {many:.1f} s, "
              f"peak {many_mb:.0f} MB: {many / one:.2f}x one network, {many / n:.2f} s per network "
              f"(target <= 5x: {'met' if many / one <= 5 else 'missed'})")


if __name__ == "__main__":
    main()
