"""Cohorts through `trainer sweep`, side by side in one run: the sweep rows of issue 18's table.

    python bench/bench_sweep.py                        # 300 epochs: cohort vs one network, vs JAX (minutes)
    python bench/bench_sweep.py --epochs 8000 --jax-run-epochs 300   # the full cohort; JAX projected
    python bench/bench_sweep.py --epochs 1500 --shipped  # also every cohort of data/configs/cohorts
    python bench/bench_sweep.py --skip-jax             # without the JAX baseline (no `bench` extra)
    python bench/bench_sweep.py --epochs 1500 --skip-jax --cohort activation_functions --before DIR
                                                       # one shipped cohort, here and in an older checkout

Rows, each timed end to end as a user runs it (whole processes, start-up included):
- the seed notebook's cohort (data/configs/reproductions/initial_bias_relu_notebook.json: relu
  12-10-7-5-4-3-2, 9 initial biases x 5 seeds = 45 networks, binning MI on train and test at
  the default schedule, every table written) through `trainer sweep`, with the peak resident
  memory of its largest process;
- one network of it (initial bias 0, one seed) through `trainer run`: the cohort's multiple
  of it (target <= 4x), in wall time and in CPU seconds (every process of the command), the two
  interleaved `--repeats` times (medians; the first of each may compile: an empty XLA cache);
- the same cohort written the way a user would in JAX (bench/jax_cohort.py: one vmap + jit +
  lax.scan computation, same data, init, Adam, batch, per-epoch reshuffle, no logging): import,
  compile and training, the training projected to `--epochs` when `--jax-run-epochs` is smaller: the sweep's
  wall over JAX's (target <= 0.5x), and the final test accuracy per initial bias of both
  (mean over seeds), which must agree (same epochs only);
- with `--shipped`, every cohort of data/configs/cohorts at `--epochs` epochs (`--cohort NAME`:
  only those), in each of the `--repeats` rounds after the notebook cohort: seconds per
  network-epoch, as a multiple of the notebook cohort's (target <= 3x each; medians, CPU beside);
  with `--before DIR`, each also with DIR's code (PYTHONPATH=DIR), right after this checkout's,
  against the same notebook cohort (timed with this checkout's code).
The machine's load average is printed beside the figures, since they depend on it.
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
SHIPPED = REPO / "data" / "configs" / "cohorts"
SEEDS = 5

# Runs a command and prints the peak resident memory (kB) of its largest process and the CPU seconds
# (user + system) of the command's processes, workers included.
PEAK_RSS = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "used = resource.getrusage(resource.RUSAGE_CHILDREN); print(used.ru_maxrss, used.ru_utime + used.ru_stime)")


def timed(command: list[str], code: Path = REPO) -> tuple[float, float, float]:
    """(wall seconds, peak MB of the largest process, CPU seconds) of a trainer command, run with
    `code`'s trainer."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "trainer", *command],
                            cwd=code, env={**os.environ, "PYTHONPATH": str(code)}, check=True,
                            capture_output=True, text=True)
    peak_kb, cpu = result.stdout.split()[-2:]
    return time.perf_counter() - start, int(peak_kb) / 1024, float(cpu)


def jax_cohort(epochs: int, run_epochs: int) -> tuple[float, dict]:
    """(seconds a JAX user's process takes: import JAX (fresh process), compile, train `epochs`
    (projected from `run_epochs`); the script's report). The script's own start-up (TensorFlow,
    to take the trainer's initial weights) is not counted: a JAX user would not pay it."""
    result = subprocess.run([sys.executable, str(REPO / "bench" / "jax_cohort.py"), "--epochs", str(epochs),
                             "--run-epochs", str(run_epochs), "--seeds", str(SEEDS)],
                            cwd=REPO, check=True, capture_output=True, text=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report["import_s"] + report["compile_s"] + report["projected_train_s"], report


def accuracy_by_bias(rows: list[dict]) -> dict[float, float]:
    biases = sorted({row["initial_bias"] for row in rows})
    return {bias: float(np.mean([row["test"] for row in rows if row["initial_bias"] == bias])) for bias in biases}


def swept_accuracy(root: Path) -> list[dict]:
    """(initial bias, seed, final test accuracy) of every run a sweep wrote."""
    records = [json.loads(path.read_text()) for path in root.glob("runs/*/run.json")]
    return [{"initial_bias": float(r["config"]["initial_bias"]), "seed": r["seed"], "test": r["final_test_accuracy"]}
            for r in records]


def networks_of(config_path: Path) -> int:
    from trainer import config
    return sum(len(e.seeds) for e in config.plan(json.loads(config_path.read_text())))


def ratio_row(label: str, value: float, target: float, unit: str = "x") -> str:
    return f"{label:70} {value:8.2f}{unit}  (target <= {target}{unit}: {'met' if value <= target else 'missed'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300, help="epochs per network (default 300)")
    parser.add_argument("--jax-run-epochs", type=int,
                        help="epochs the JAX baseline actually trains, projected to --epochs (default: all)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="interleaved repetitions of the one-network run and every cohort's sweep (medians)")
    parser.add_argument("--skip-jax", action="store_true", help="leave out the JAX baseline")
    parser.add_argument("--shipped", action="store_true", help="also time every cohort of data/configs/cohorts")
    parser.add_argument("--cohort", action="append", default=[],
                        help="time only this shipped cohort (repeatable; implies --shipped)")
    parser.add_argument("--before", type=Path, help="an older checkout: each shipped cohort also timed with its code")
    args = parser.parse_args()
    cohorts = [SHIPPED / f"{name}.json" for name in args.cohort] or \
        (sorted(SHIPPED.glob("*.json")) if args.shipped else [])
    codes = [("", REPO)] + ([("before: ", args.before.resolve())] if args.before else [])
    cohort = json.loads(COHORT.read_text())
    epochs = args.epochs
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "cohort.json").write_text(json.dumps({**cohort, "epochs": epochs, "n_runs": SEEDS}))
        single = {k: v for k, v in cohort.items() if k != "grid"}
        (folder / "single.json").write_text(json.dumps({**single, "epochs": epochs, "initial_bias": 0.0}))
        n = networks_of(folder / "cohort.json")
        for path in cohorts:
            (folder / path.name).write_text(json.dumps({**json.loads(path.read_text()), "epochs": epochs}))
        ones, manys = [], []
        shipped: dict[str, tuple[int, list]] = {}      # label: (networks, its runs' (wall, peak MB, CPU))
        for repeat in range(args.repeats):   # interleaved: a change in load hits every row alike
            ones.append(timed(["run", str(folder / "single.json"), "--quiet", "--results", str(folder / f"a{repeat}")]))
            manys.append(timed(["sweep", str(folder / "cohort.json"), "--results", str(folder / f"b{repeat}")]))
            for path in cohorts:
                for which, (prefix, code) in enumerate(codes):
                    results = folder / f"{path.stem}-{which}-{repeat}"
                    runs = shipped.setdefault(prefix + path.stem, (networks_of(folder / path.name), []))[1]
                    runs.append(timed(["sweep", str(folder / path.name), "--results", str(results)], code))
        (one, one_mb, one_cpu), (many, many_mb, many_cpu) = (np.median(runs, axis=0) for runs in (ones, manys))
        swept = swept_accuracy(folder / "b0")
        jax = None if args.skip_jax else jax_cohort(epochs, args.jax_run_epochs or epochs)

    print(f"load average before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores); "
          f"{epochs} epochs per network; whole processes, start-up included; medians of {args.repeats} "
          f"(wall: {', '.join(f'{w:.1f}' for w, _, _ in ones)} s and {', '.join(f'{w:.1f}' for w, _, _ in manys)} s)")
    print(f"one network (trainer run): {one:.1f} s ({one_cpu:.1f} CPU-s), peak {one_mb:.0f} MB; notebook cohort, {n} "
          f"networks (trainer sweep): {many:.1f} s ({many_cpu:.1f} CPU-s), peak {many_mb:.0f} MB, "
          f"{many / (n * epochs) * 1e3:.3f} ms per network-epoch ({many_cpu / (n * epochs) * 1e3:.3f} ms of CPU)")
    print(ratio_row(f"{n}-network cohort vs one network, {epochs} epochs, wall", many / one, 4)
          + f"; CPU {many_cpu / one_cpu:.2f}x")
    if jax is not None:
        jax_seconds, report = jax
        projected = report["run_epochs"] < epochs
        note = f" with training projected from {report['run_epochs']} epochs" if projected else ""
        print(f"JAX cohort ({report['networks']} networks, jax {report['jax']}): {jax_seconds:.1f} s{note} "
              f"(import {report['import_s']:.1f} s, compile {report['compile_s']:.1f} s, training "
              f"{report['projected_train_s']:.1f} s, {report['projected_train_cpu_s']:.1f} s of CPU)")
        print(ratio_row(f"notebook cohort through trainer sweep vs JAX, {epochs} epochs", many / jax_seconds, 0.5))
        if projected:
            print("accuracy: not compared (JAX trained fewer epochs than the sweep)")
        else:
            ours, theirs = accuracy_by_bias(swept), accuracy_by_bias(report["accuracy"])
            print("final test accuracy per initial bias, mean over seeds (trainer / JAX): " + ", ".join(
                f"{bias:g}: {ours[bias]:.3f} / {theirs[bias]:.3f}" for bias in ours))
    for name, (networks, runs) in shipped.items():
        seconds, peak_mb, cpu = np.median(runs, axis=0)
        own = seconds / (networks * epochs)
        print(ratio_row(f"cohort {name} ({networks} networks, {seconds:.1f} s, peak {peak_mb:.0f} MB): "
                        f"{own * 1e3:.3f} ms/network-epoch, vs notebook", own / (many / (n * epochs)), 3)
              + f"; CPU {cpu / networks / (many_cpu / n):.2f}x (walls {', '.join(f'{w:.1f}' for w, _, _ in runs)} s)")


if __name__ == "__main__":
    main()
