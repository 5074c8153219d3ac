"""Ways to write the stacked dense layers, side by side in one process: CPU per network-minibatch.

    python bench/bench_dense_layouts.py [--networks 45] [--rounds 5]

A standalone compiled loop of 130 minibatch steps (forward, backward by autodiff, an SGD
update) of N relu networks 12-10-7-5-4-3-2 with a softmax cross-entropy, batch 256 gathered
by a per-network order, one thread; XLA-compiled like trainer.compiled. The layouts:
- batch-major: `einsum("sbi,sio->sbo")`, activations [N, batch, units] (the trainer before);
- batch-last: `einsum("sio,sib->sob")`, activations [N, units, batch], differentiated by TensorFlow;
- batch-last, dh summed: the same forward with the input gradient summed unit by unit in one
  elementwise loop (trainer.model.stacked_dense);
- multiply-sum: `reduce_sum(h[..., None] * kernel[:, None], -2)`, batch-major;
- stand-in: each product replaced by an elementwise one of the same output shape, so its time
  is the step without products (a floor, not a network).
Rounds alternate the layouts; the median per layout is printed with the load average beside it.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from trainer.model import stacked_dense  # noqa: E402
from trainer.tensorflow_without_keras import tf  # noqa: E402

SIZES = [12, 10, 7, 5, 4, 3, 2]
BATCH, N_TRAIN, STEPS = 256, 3328, 130


def batch_major(h, kernel):
    return tf.einsum("sbi,sio->sbo", h, kernel)


def multiply_sum(h, kernel):
    return tf.reduce_sum(h[:, :, :, None] * kernel[:, None], axis=2)


def stand_in(h, kernel):
    units = kernel.shape[2]
    wide = h if h.shape[2] >= units else tf.tile(h, [1, 1, 2])
    return wide[..., :units] * kernel[:, None, 0, :]


def batch_last(h, kernel):
    return tf.einsum("sio,sib->sob", kernel, h)


def forward(dense, x, weights, last: bool):
    """Logits [N, batch, classes]; inside batch-last when `last`."""
    h = tf.linalg.matrix_transpose(x) if last else x
    for index, (kernel, bias) in enumerate(zip(weights[0::2], weights[1::2])):
        pre = dense(h, kernel) + (bias[:, :, None] if last else bias[:, None])
        h = tf.nn.relu(pre) if index < len(SIZES) - 2 else pre
    return tf.linalg.matrix_transpose(h) if last else h


def compiled_loop(dense, last: bool, x_train, y_train, order):
    n_networks = order.shape[0]

    def run(weights):
        def step(k, weights):
            index = tf.slice(order, [0, (k % (N_TRAIN // BATCH)) * BATCH], [n_networks, BATCH])
            x, y = tf.gather(x_train, index), tf.gather(y_train, index)
            with tf.GradientTape() as tape:
                tape.watch(weights)
                logits = forward(dense, x, weights, last)
                loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
            gradients = tape.gradient(loss, weights)
            return k + 1, [w - 1e-4 * g for w, g in zip(weights, gradients)]
        return tf.while_loop(lambda k, _: k < STEPS, step, (tf.constant(0), weights))[1]
    return tf.function(run, jit_compile=True, autograph=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=45)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rng = np.random.default_rng(0)
    n = args.networks
    weights = []
    for fan_in, units in zip(SIZES, SIZES[1:]):
        weights += [tf.constant(rng.normal(0, 1 / np.sqrt(units), (n, fan_in, units)).astype(np.float32)),
                    tf.constant(np.zeros((n, units), np.float32))]
    x_train = tf.constant(rng.standard_normal((N_TRAIN, SIZES[0])).astype(np.float32))
    y_train = tf.constant(rng.integers(0, SIZES[-1], N_TRAIN).astype(np.int32))
    order = tf.constant(np.stack([rng.permutation(N_TRAIN) for _ in range(n)]).astype(np.int32))
    layouts = {"batch-major einsum": (batch_major, False), "batch-last einsum": (batch_last, True),
               "batch-last, dh summed": (stacked_dense, True),
               "multiply-sum": (multiply_sum, False), "stand-in (no products)": (stand_in, False)}
    loops = {name: compiled_loop(dense, last, x_train, y_train, order) for name, (dense, last) in layouts.items()}
    trained = {name: loop(weights) for name, loop in loops.items()}    # compiles
    seconds: dict[str, list[float]] = {name: [] for name in loops}
    loads = []
    for _ in range(args.rounds):
        for name, loop in loops.items():
            start = time.process_time()
            loop(weights)[0].numpy()
            seconds[name].append(time.process_time() - start)
            loads.append(os.getloadavg()[0])
    print(f"{n} networks x {STEPS} minibatch steps, median of {args.rounds} rounds; load average "
          f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores; one thread")
    reference = trained["batch-major einsum"]
    for name in loops:
        difference = max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(trained[name], reference))
        note = "" if name.startswith("stand-in") else f", weights differ from batch-major by {difference:.1e}"
        print(f"  {name}: {np.median(seconds[name]) / (STEPS * n) * 1e3:.4f} ms CPU per network-minibatch{note}")


if __name__ == "__main__":
    main()
