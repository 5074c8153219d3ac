"""The stacked step's achieved FLOP rate beside this machine's single-core float32 peak.

    python bench/bench_flops.py                    # 45 networks, 400 epochs (about a minute)
    python bench/bench_flops.py --networks 1 --epochs 2000

One thread throughout (TensorFlow's pools, and BLAS for the peak), as a sweep worker runs.
FLOPs of one network-epoch of the compiled chunk, counting the matrix products only (the
elementwise work, activations, softmax and Adam, adds roughly a tenth and is not counted): for
a dense layer of fan-in a and b units, 2ab per example forward, 2ab for the kernel gradient
and 2ab for the input gradient (none for the first layer, whose input needs none); training
runs over every padded minibatch row (13 x 256 = 3328 for harmonics' 3277), the evaluation
after each epoch forward over all 4096 inputs. For 12-10-7-5-4-3-2: sum ab = 263, so
3328 x (6 x 263 - 2 x 120) + 4096 x 2 x 263 = 6.61 MFLOP per network-epoch.
The peak is the best of 5 float32 products of 2048 x 2048 matrices (numpy's BLAS and
TensorFlow's), 2 n^3 FLOPs each.
"""

from __future__ import annotations

import argparse
import os
import time

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"       # before numpy loads its BLAS
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HARMONICS_INPUTS, HARMONICS_FEATURES, HARMONICS_CLASSES = 4096, 12, 2


def flops_per_network_epoch(architecture: list[int], padded_rows: int, evaluated_rows: int) -> int:
    """Matrix-product FLOPs of one network-epoch: training forward + backward, then evaluation."""
    sizes = [HARMONICS_FEATURES, *architecture, HARMONICS_CLASSES]
    products = [a * b for a, b in zip(sizes, sizes[1:])]
    training = padded_rows * (6 * sum(products) - 2 * products[0])
    return training + evaluated_rows * 2 * sum(products)


def peak_gflops(n: int = 2048, repeats: int = 5) -> tuple[float, float]:
    """(numpy, TensorFlow) single-threaded float32 matrix-product GFLOP/s, best of `repeats`."""
    import tensorflow as tf
    a, b = (np.random.default_rng(0).standard_normal((n, n)).astype(np.float32) for _ in range(2))
    numpy_best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    ta, tb = tf.constant(a), tf.constant(b)
    tf_best = min(_seconds(lambda: tf.linalg.matmul(ta, tb).numpy()) for _ in range(repeats))
    return 2 * n**3 / numpy_best / 1e9, 2 * n**3 / tf_best / 1e9


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=45, help="networks stacked (default: the notebook cohort's 45)")
    parser.add_argument("--epochs", type=int, default=400, help="epochs trained with nothing logged between")
    args = parser.parse_args()
    from trainer.training import configure_threads
    configure_threads(1)
    from bench_training import NEVER, ours   # noqa: E402  (bench/ is on the path when run as a script)

    architecture, batch, n_train = [10, 7, 5, 4, 3], 256, 3277
    flops = flops_per_network_epoch(architecture, -(-n_train // batch) * batch, HARMONICS_INPUTS)
    _, epoch_seconds = ours(args.epochs, NEVER, n_runs=args.networks)
    _, epoch_cpu_seconds = ours(args.epochs, NEVER, n_runs=args.networks, clock=time.process_time)
    per_network_epoch = epoch_seconds / args.networks
    per_network_epoch_cpu = epoch_cpu_seconds / args.networks
    numpy_peak, tf_peak = peak_gflops()
    peak = max(numpy_peak, tf_peak)
    print(f"load average {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores); one thread")
    print(f"stacked step, {args.networks} networks x {args.epochs} epochs (training epochs, nothing logged), "
          f"{flops / 1e6:.2f} MFLOP (matrix products) per network-epoch: {per_network_epoch * 1e3:.3f} ms wall = "
          f"{flops / per_network_epoch / 1e9:.2f} GFLOP/s, {per_network_epoch_cpu * 1e3:.3f} ms of CPU = "
          f"{flops / per_network_epoch_cpu / 1e9:.2f} GFLOP/s ({flops / per_network_epoch_cpu / 1e9 / peak:.1%} of "
          f"the single-core float32 peak: {numpy_peak:.1f} GFLOP/s numpy, {tf_peak:.1f} GFLOP/s TensorFlow)")


if __name__ == "__main__":
    main()
