"""Time the MI estimators on one layer and compare with straightforward reference approaches.

Run by hand: `python bench/bench_estimators.py [--repeats-scale X]`. The layer is the
tanh of a random projection of the 4096 harmonics inputs to 10 units. Every
estimator is timed per call (median and min of repeats, wall clock; on a shared
machine the min is the better guide to the cost itself) in the same run as:
- binning the deep-bottleneck / ibsgd way: floor(a / bin_size), then rows counted
  with np.unique(axis=0), or with the np.ascontiguousarray(...).view(np.void) +
  np.unique trick of ibsgd's simplebinmi, and one entropy per class;
- the KDE bounds as ibsgd computes them: a compiled TensorFlow function (ibsgd used
  keras.backend.function) on the full pairwise-distance matrix in float32, called
  once for the layer and once per class, and the same in dense numpy float64 with
  scipy.special.logsumexp.

`python bench/bench_estimators.py --epoch [--before DIR] [--repeats N]` times one logged epoch of
the shipped estimators cohort instead (data/configs/cohorts/estimators.json: every estimator of its
list on the six layers of a 12-10-7-5-4-3-2 network, tanh and relu, on all 4096 inputs, called in
the trainer's order: each estimator on every layer, then the next), as CPU seconds of the whole
process per estimator, in fresh processes here and in an older checkout, interleaved
(bench/side_by_side.py). The networks have random weights (seeded), scaled so that the tanh layers
are partly saturated and the relu layers partly dead, as in training.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
from scipy.special import logsumexp
from side_by_side import add_arguments, report

from trainer.datasets import harmonics
from trainer.estimators import canonical, estimate, estimate_stacked, for_network

COHORT = Path(__file__).resolve().parents[1] / "data" / "configs" / "cohorts" / "estimators.json"
SIZES = [12, 10, 7, 5, 4, 3, 2]
FRESH_LAYERS = 100   # more than the layers kde keeps sums for

BIN_SIZE = 0.07
NOISE_VARIANCE = 1e-3
def time_ms(function, repeats: int) -> tuple[float, float]:
    """(median, min) wall-clock milliseconds per call; the min shows the cost without interference."""
    function()  # warm-up (and tracing, for TensorFlow)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times), 1e3 * min(times)


# --- reference approaches -------------------------------------------------------------------------------


def entropy_nats(counts: np.ndarray) -> float:
    p = counts / counts.sum()
    return float(-np.sum(p * np.log(p)))


def binning_unique_axis0(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """floor(a / bin_size), rows counted with np.unique(axis=0), H(T) - sum_y p(y) H(T|y)."""
    def h(rows):
        return entropy_nats(np.unique(np.floor(rows / BIN_SIZE).astype(int), axis=0, return_counts=True)[1])
    h_t = h(t)
    h_t_given_y = sum(np.mean(y == label) * h(t[y == label]) for label in np.unique(y))
    return h_t / np.log(2), (h_t - h_t_given_y) / np.log(2)


def binning_void_view(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """As ibsgd's simplebinmi: rows viewed as np.void, then np.unique with counts."""
    def h(rows):
        codes = np.ascontiguousarray(np.floor(rows / BIN_SIZE).astype(int))
        keys = codes.view(np.dtype((np.void, codes.dtype.itemsize * codes.shape[1])))
        return entropy_nats(np.unique(keys, return_counts=True)[1])
    h_t = h(t)
    h_t_given_y = sum(np.mean(y == label) * h(t[y == label]) for label in np.unique(y))
    return h_t / np.log(2), (h_t - h_t_given_y) / np.log(2)


def kde_dense(entropy_function, t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """ibsgd computeMI with a full-matrix entropy function (upper bound), in bits."""
    dims = t.shape[1]
    h_t = entropy_function(t)
    h_t_given_x = dims / 2 * (np.log(2 * np.pi * NOISE_VARIANCE) + 1)
    h_t_given_y = sum(np.mean(y == label) * entropy_function(t[y == label]) for label in np.unique(y))
    return float(h_t - h_t_given_x) / np.log(2), float(h_t - h_t_given_y) / np.log(2)


def numpy_entropy_kl(t: np.ndarray) -> float:
    """ibsgd entropy_estimator_kl on the full float64 distance matrix with scipy logsumexp."""
    n, dims = t.shape
    sq = np.sum(t * t, axis=1)
    dists = sq[:, None] + sq[None, :] - 2 * t @ t.T
    log_probs = logsumexp(-dists / (2 * NOISE_VARIANCE), axis=1) - np.log(n) \
        - dims / 2 * np.log(2 * np.pi * NOISE_VARIANCE)
    return dims / 2 - float(np.mean(log_probs))


def tensorflow_entropy_kl():
    """ibsgd entropy_estimator_kl as one compiled TensorFlow function (float32, like Keras' floatx)."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def entropy(x):
        dims = tf.cast(tf.shape(x)[1], tf.float32)
        n = tf.cast(tf.shape(x)[0], tf.float32)
        x2 = tf.reduce_sum(tf.square(x), axis=1, keepdims=True)
        dists = x2 + tf.transpose(x2) - 2 * tf.matmul(x, x, transpose_b=True)
        normconst = dims / 2 * tf.math.log(2 * np.pi * NOISE_VARIANCE)
        log_probs = tf.reduce_logsumexp(-dists / (2 * NOISE_VARIANCE), axis=1) - tf.math.log(n) - normconst
        return dims / 2 - tf.reduce_mean(log_probs)

    return lambda t: float(entropy(tf.constant(t, dtype=tf.float32)))


# --- one logged epoch of the estimators cohort ----------------------------------------------------------


def cohort_layers(activation: str) -> list[np.ndarray]:
    """float32 activations [4096, units] of the six layers of a seeded random 12-10-7-5-4-3-2 network
    (weights N(0, 4 / fan_in): a gain of 2 saturates part of the tanh units and kills part of the relu
    ones), softmax output."""
    x, _ = harmonics()
    rng = np.random.default_rng(0)
    hidden = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}[activation]
    layers, h = [], x.astype(np.float64)
    for index, (n_in, n_out) in enumerate(itertools.pairwise(SIZES)):
        z = h @ rng.normal(0.0, 2.0 / np.sqrt(n_in), (n_in, n_out)) + rng.normal(0.0, 0.1, n_out)
        if index == len(SIZES) - 2:
            z = np.exp(z - z.max(axis=1, keepdims=True))
            h = z / z.sum(axis=1, keepdims=True)
        else:
            h = hidden(z)
        layers.append(h.astype(np.float32))
    return layers


def measure_logged_epoch() -> dict[str, float]:
    """CPU seconds of one logged epoch per activation and estimator (summed over the layers), in the
    trainer's order; binning's run range is each layer's own (lo, hi)."""
    import scipy.spatial.distance  # noqa: F401  (kde and ksg import it on first use: not part of an epoch)

    _, y = harmonics()
    specs = json.loads(COHORT.read_text())["estimators"]
    result = {}
    for activation in ("tanh", "relu"):
        layers = [values[None] for values in cohort_layers(activation)]
        total = 0.0
        for spec in specs:
            name, params = canonical(spec["name"], spec["params"])
            params = for_network(name, params, activation)
            if params.get("range") == "run":
                params.pop("range")
                ranges = [np.array([[values.min(), values.max()]]) for values in layers]
            else:
                ranges = [None] * len(layers)
            start = time.process_time()
            for values, run_range in zip(layers, ranges):
                estimate_stacked(name, values, y, run_ranges=run_range, **params)
            seconds = time.process_time() - start
            label = f"{activation} {name}" + (" run range" if run_range is not None else "")
            result[label] = result.get(label, 0.0) + seconds
            total += seconds
        result[f"{activation} all"] = total
    return result


# --- the benchmark -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats-scale", type=float, default=1.0, help="multiply every repeat count")
    parser.add_argument("--epoch", action="store_true", help="time one logged epoch of the estimators cohort")
    parser.add_argument("--repeats", type=int, default=3, help="with --epoch: measurements here (and before)")
    add_arguments(parser)
    args = parser.parse_args()
    if args.epoch:
        report(__file__, args, measure_logged_epoch, ["--epoch"], "one logged epoch of the estimators cohort "
               "(6 layers, 4096 inputs; kde_upper's pass serves kde_lower too where the code shares it)",
               "CPU ms", scale=1e3, digits=1)
        return

    def repeats(count: int) -> int:
        return max(3, int(count * args.repeats_scale))

    x, y = harmonics()
    weights = np.random.default_rng(0).normal(size=(12, 10)).astype(np.float32)
    t = np.tanh(x @ weights)  # float32 like Keras activations
    t64 = t.astype(np.float64)
    print(f"layer: tanh(x @ W), {t.shape[0]} inputs x {t.shape[1]} units, labels {int(y.sum())} positive; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (timings are wall clock)\n")

    tf_entropy_kl = tensorflow_entropy_kl()
    # kde keeps both bounds' sums of recent layers (kde.RecentLayerSums): every timed kde call gets a
    # layer it has not seen lately, so it pays the whole pass; kde_lower right after kde_upper on the
    # same layer costs next to nothing (see --epoch)
    fresh_layers = itertools.cycle([t + np.float32(1e-6 * i) for i in range(FRESH_LAYERS)])
    rows = [
        ("binning", lambda: estimate("binning", t, y, bin_size=BIN_SIZE), 200, [
            ("np.unique(axis=0) rows", lambda: binning_unique_axis0(t, y), 20),
            ("void view + np.unique (ibsgd)", lambda: binning_void_view(t, y), 50),
        ]),
        ("idnns", lambda: estimate("idnns", t, y), 200, []),
        ("adaptive", lambda: estimate("adaptive", t, y, low=-1.000001), 100, []),  # tanh's low, as the trainer sets it
        ("quantile", lambda: estimate("quantile", t, y), 100, []),
        ("kde_upper", lambda: estimate("kde_upper", next(fresh_layers), y, noise_variance=NOISE_VARIANCE), 20, [
            ("TF function, dense float32 (ibsgd)", lambda: kde_dense(tf_entropy_kl, t, y), 10),
            ("numpy dense float64 + logsumexp", lambda: kde_dense(numpy_entropy_kl, t64, y), 3),
        ]),
        ("kde_lower", lambda: estimate("kde_lower", next(fresh_layers), y, noise_variance=NOISE_VARIANCE), 20, []),
        ("edge", lambda: estimate("edge", t, y), 20, []),
        ("ksg", lambda: estimate("ksg", t, y), 10, []),
    ]
    header = f"{'estimator':10} {'median':>8} {'min':>8}  {'I(X;T)':>7} {'I(Y;T)':>7}   " \
             f"{'reference approach':35} {'median':>8} {'min':>8} {'speed-up':>8}  {'I(X;T)':>7} {'I(Y;T)':>7}"
    print("times in ms per call; speed-up = reference median / our median\n")
    print(header + "\n" + "-" * len(header))
    for name, ours, count, references in rows:
        ours_median, ours_min = time_ms(ours, repeats(count))
        i_xt, i_yt = ours()
        line = f"{name:10} {ours_median:8.2f} {ours_min:8.2f}  {i_xt:7.4f} {i_yt:7.4f}"
        if not references:
            print(line)
        for index, (label, reference, reference_count) in enumerate(references):
            reference_median, reference_min = time_ms(reference, repeats(reference_count))
            ref_xt, ref_yt = reference()
            prefix = line if index == 0 else " " * len(line)
            print(f"{prefix}   {label:35} {reference_median:8.2f} {reference_min:8.2f} "
                  f"{reference_median / ours_median:7.1f}x  {ref_xt:7.4f} {ref_yt:7.4f}")


if __name__ == "__main__":
    main()
