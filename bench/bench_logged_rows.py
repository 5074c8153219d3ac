"""The host-side rows of one logged epoch for a stack of networks: MI per estimator, histograms and
per-neuron statistics, as the training loop computes them (CPU seconds, no TensorFlow).

    python bench/bench_logged_rows.py                              # this checkout
    python bench/bench_logged_rows.py --before /tmp/perf2-before   # and an older checkout, side by side

The stack is the seed notebook's cohort at one logged epoch: 45 relu networks 12-10-7-5-4-3-2 on
the 4096 harmonics inputs (3277 train), each with its own random weights and initial bias, MI on
train and test. With `--before DIR` the same measurement runs on DIR's code in a subprocess
(PYTHONPATH=DIR), interleaved with this checkout's `--repeats` times; the medians and their ratio are
printed with the machine's load average. Code without `StackMiRows` (before issue 18, round 2) is
timed network by network, as its training loop called it.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import time

import numpy as np
from side_by_side import add_arguments, report

SIZES = [12, 10, 7, 5, 4, 3, 2]
ESTIMATORS = {
    "binning": {"bin_size": 0.07},
    # A fine bin: the wide layers' rows span more codes than one float64 number holds (their keys are
    # built in int64 with ranks, trainer.estimators.discrete.ranked_row_keys).
    "binning-fine": {"bin_size": 0.001},
    "binning-layer": {"n_bins": 30, "range": "layer"},
    "idnns": {"n_edges": 30},
    "adaptive": {"n_bins": 30},
    "quantile": {"n_bins": 30},
}


def stack_layers(n_networks: int, x: np.ndarray) -> list[np.ndarray]:
    """Per layer [N, n, units] float32 activations of random relu networks (softmax output)."""
    rng = np.random.default_rng(0)
    values, layers = np.broadcast_to(x, (n_networks, *x.shape)), []
    for i, (a, b) in enumerate(itertools.pairwise(SIZES)):
        kernel = rng.normal(0, 1 / np.sqrt(a), (n_networks, a, b)).astype(np.float32)
        bias = rng.uniform(-0.5, 0.5, (n_networks, 1, b)).astype(np.float32)
        pre = values @ kernel + bias
        if i < len(SIZES) - 2:
            values = np.maximum(pre, 0)
        else:
            exp = np.exp(pre - pre.max(axis=2, keepdims=True))
            values = exp / exp.sum(axis=2, keepdims=True)
        layers.append(values.astype(np.float32))
    return layers


def measure(n_networks: int, repeats: int) -> dict[str, float]:
    """Median CPU seconds of each estimator's rows and of the summaries, for the whole stack."""
    from trainer import datasets
    from trainer import measure as rows_module
    from trainer.summaries import HistogramGrid

    data = datasets.load("harmonics")
    layers = stack_layers(n_networks, data.full.x)
    rows = rows_module.split_rows(len(data.train.y), len(data.full.y))
    names = [f"l{i}" for i in range(len(layers))]
    run_ids = [f"r{s}" for s in range(n_networks)]
    stacked = hasattr(rows_module, "StackMiRows")

    def mi(spec: dict) -> None:
        if stacked:
            rows_module.StackMiRows(run_ids, [spec], "relu", data.full.y, rows, ["train", "test"], names).at_epoch(
                1, layers, list(range(n_networks)))
        else:
            for s, run_id in enumerate(run_ids):
                rows_module.MiRows(run_id, [spec], "relu", data.full.y, rows, ["train", "test"], names).at_epoch(
                    1, [values[s] for values in layers])

    functions = ["relu"] * (len(layers) - 1) + ["softmax"]
    grids = [HistogramGrid.for_layer(fn, values, 30) for fn, values in zip(functions, layers)]
    specs = {label: {"name": label.split("-")[0], "params": params} for label, params in ESTIMATORS.items()}
    tasks = {label: functools.partial(mi, spec) for label, spec in specs.items()}
    if hasattr(rows_module, "activation_tables"):     # the Arrow rows of every network at once (issue 18, round 5)
        tasks["histograms + per-neuron stats"] = lambda: rows_module.activation_tables(
            1, run_ids, layers, rows, ["train", "test"], functions, grids, names)
    else:
        tasks["histograms + per-neuron stats"] = lambda: rows_module.activation_rows(
            1, layers, rows, ["train", "test"], functions, grids)
    result = {}
    for label, task in tasks.items():
        times = []
        for _ in range(repeats):
            start = time.process_time()
            task()
            times.append(time.process_time() - start)
        result[label] = float(np.median(times))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=45)
    parser.add_argument("--repeats", type=int, default=3)
    add_arguments(parser)
    args = parser.parse_args()
    report(__file__, args, lambda: measure(args.networks, args.repeats), ["--networks", str(args.networks), "--repeats", "1"],
           f"{args.networks} stacked relu networks, one logged epoch, MI on train and test", "CPU seconds")


if __name__ == "__main__":
    main()
