"""Sweep throughput (runs per minute, 1 vs 2 local workers) and the seeds-together ratio.

    python bench/bench_sweep.py                   # both (about 8 minutes on 2 cores)
    python bench/bench_sweep.py --only throughput
    python bench/bench_sweep.py --only seeds --epochs 300

Throughput: `trainer sweep` on a small cohort (relu, six initial biases, one seed
each, the default network), timed end to end as a user runs it (worker start-up
included). Seeds together: `run_experiment` on the default harmonics network with
n_runs 10 and with n_runs 1, the same epochs, one TensorFlow thread (as in a sweep
worker); the target is at most 3x the time of one seed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIASES = [-1, 0, 0.2, 0.5, 1, 2]


def sweep_seconds(cohort: Path, workers: int) -> float:
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "trainer", "sweep", str(cohort), "--workers", str(workers),
                        "--results", root], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def throughput(epochs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        cohort = Path(folder) / "bench_cohort.json"
        cohort.write_text(json.dumps({"activation_fn": "relu", "epochs": epochs, "grid": {"initial_bias": BIASES}}))
        print(f"sweep throughput: {len(BIASES)} runs (default network, {epochs} epochs, default schedule)")
        for workers in (1, 2):
            seconds = sweep_seconds(cohort, workers)
            print(f"  {workers} worker(s): {seconds:6.1f} s  = {len(BIASES) / seconds * 60:5.1f} runs per minute")


def seeds_together(epochs: int) -> None:
    from trainer.training import configure_threads, run_experiment

    configure_threads(1)
    from trainer import config

    print(f"seeds trained together: default harmonics network, {epochs} epochs, one TensorFlow thread")
    with tempfile.TemporaryDirectory() as root:  # process-wide TensorFlow/XLA start-up, paid once
        run_experiment(config.plan({"name": "warm-up", "epochs": 1})[0], Path(root), progress=False)
    times = {}
    for n_runs in (1, 10):
        (experiment,) = config.plan({"name": f"bench-{n_runs}", "epochs": epochs, "n_runs": n_runs})
        with tempfile.TemporaryDirectory() as root:
            start = time.perf_counter()
            run_experiment(experiment, Path(root), progress=False)
            times[n_runs] = time.perf_counter() - start
        print(f"  {n_runs:2d} seed(s): {times[n_runs]:6.1f} s")
    ratio = times[10] / times[1]
    print(f"  ratio 10 seeds / 1 seed: {ratio:.2f}x (target <= 3x: {'met' if ratio <= 3 else 'missed'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("throughput", "seeds"))
    parser.add_argument("--epochs", type=int, default=300, help="epochs per run (default 300)")
    args = parser.parse_args()
    if args.only in (None, "throughput"):
        throughput(args.epochs)
    if args.only in (None, "seeds"):
        seeds_together(args.epochs)


if __name__ == "__main__":
    main()
