"""The seed notebook's cohort written the way a user would in JAX: the baseline of issue 18.

    python bench/jax_cohort.py --epochs 8000 --run-epochs 300   # trains 300 epochs, projects 8000

The cohort of data/configs/reproductions/initial_bias_relu_notebook.json (9 initial biases x
`--seeds` seeds, relu 12-10-7-5-4-3-2, Adam lr 0.0004, batch 256, a new minibatch order every
epoch) as one computation: `jax.vmap` over the networks of a `lax.scan` over epochs of a
`lax.scan` over minibatches, under one `jax.jit`. Same data split and same initial weights as
the trainer (taken from `trainer.model.StackedMLP`, the only use of TensorFlow here, before the
clock starts); Adam in the order of TensorFlow's fused kernel (Keras' constants), the last
minibatch of 205 rows padded to 256 and masked, as the trainer does; the orders come from
`jax.random.permutation` per network and epoch. No logging: nothing is computed per epoch
but the training itself; test accuracy once at the end, for the sanity check against the
trainer.

Prints one JSON object: seconds to import JAX (in a fresh process), to compile, to train
`--run-epochs` epochs (wall and this process's CPU), the training time projected to
`--epochs` (linear in epochs), and each network's (initial bias,
seed, final train and test accuracy). Needs the `bench` extra (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
COHORT = REPO / "data" / "configs" / "reproductions" / "initial_bias_relu_notebook.json"
ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7   # as trainer.optimizers


def trainer_start(seeds: int):
    """(the shape's config, per-network (bias, seed), per-layer initial [N, ...] kernels and biases, data)
    exactly as the trainer builds them for the cohort stacked."""
    from trainer import config
    from trainer.model import NetworkSettings, StackedMLP
    from trainer.training import load_data

    cohort = json.loads(COHORT.read_text())
    experiments = config.plan({**cohort, "n_runs": seeds})
    first = experiments[0].config
    data = load_data(first)
    settings = [NetworkSettings.of(e.config, seed) for e in experiments for seed in e.seeds]
    model = StackedMLP(first, data.train.x.shape[1], data.n_classes, settings)
    layers = [(layer.kernel.numpy(), layer.bias.numpy()) for layer in model.layers]
    networks = [(s.initial_bias, s.seed) for s in settings]
    return first, networks, layers, data


def build(n_train: int, batch_size: int, learning_rate: float):
    """The jitted cohort trainer: (params, epochs, keys) -> params, and the accuracy function."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    from jax.tree_util import tree_map

    n_batches = -(-n_train // batch_size)
    padded = n_batches * batch_size
    row_weights = (jnp.arange(padded) < n_train).astype(jnp.float32).reshape(n_batches, batch_size)

    def logits_of(params, x):
        h = x
        for kernel, bias in params[:-1]:
            h = jax.nn.relu(h @ kernel + bias)
        kernel, bias = params[-1]
        return h @ kernel + bias

    def loss(params, x, y, weights):
        log_p = jax.nn.log_softmax(logits_of(params, x))
        per_example = -jnp.take_along_axis(log_p, y[:, None], axis=1)[:, 0]
        return jnp.sum(per_example * weights) / jnp.sum(weights)

    def train_one(params, key, x_train, y_train, epochs):
        zeros = tree_map(jnp.zeros_like, params)

        def minibatch(state, batch):
            params, m, v, step = state
            index, weights = batch
            grads = jax.grad(loss)(params, x_train[index], y_train[index], weights)
            step = step + 1.0
            # Adam in the order of TensorFlow's ResourceApplyAdam (trainer.optimizers).
            alpha = learning_rate * jnp.sqrt(1 - ADAM_BETA_2 ** step) / (1 - ADAM_BETA_1 ** step)
            m = tree_map(lambda m, g: m + (g - m) * (1 - ADAM_BETA_1), m, grads)
            v = tree_map(lambda v, g: v + (g * g - v) * (1 - ADAM_BETA_2), v, grads)
            params = tree_map(lambda p, m, v: p - m * alpha / (jnp.sqrt(v) + ADAM_EPSILON), params, m, v)
            return (params, m, v, step), None

        def epoch(state, number):
            order = jax.random.permutation(jax.random.fold_in(key, number), n_train)
            order = jnp.concatenate([order, jnp.zeros(padded - n_train, order.dtype)]).reshape(n_batches, -1)
            state, _ = lax.scan(minibatch, state, (order, row_weights))
            return state, None

        (params, _, _, _), _ = lax.scan(epoch, (params, zeros, zeros, 0.0), jnp.arange(epochs))
        return params

    @jax.jit
    def accuracy(params, x, y):
        predicted = jnp.argmax(jax.vmap(logits_of, in_axes=(0, None))(params, x), axis=-1)
        return jnp.mean(predicted == y[None, :], axis=1)

    cohort = jax.jit(jax.vmap(train_one, in_axes=(0, 0, None, None, None)), static_argnums=4)
    return cohort, accuracy


def jax_import_seconds() -> float:
    """Wall seconds of `import jax` in a fresh process (here Keras may have imported it already)."""
    timing = "import time; start = time.perf_counter(); import jax.numpy; print(time.perf_counter() - start)"
    return float(subprocess.run([sys.executable, "-c", timing], check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8000, help="epochs the cohort trains (projected to)")
    parser.add_argument("--run-epochs", type=int, help="epochs actually trained (default --epochs)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per initial bias")
    args = parser.parse_args()
    run_epochs = args.run_epochs or args.epochs
    config, networks, layers, data = trainer_start(args.seeds)

    import jax
    import jax.numpy as jnp
    imported, imported_cpu = time.perf_counter(), time.process_time()
    cohort, accuracy = build(len(data.train.y), config.batch_size, config.learning_rate)
    params = [(jnp.asarray(kernel), jnp.asarray(bias)) for kernel, bias in layers]
    keys = jax.random.split(jax.random.key(0), len(networks))
    x_train, y_train = jnp.asarray(data.train.x), jnp.asarray(data.train.y.astype(np.int32))
    compiled = cohort.lower(params, keys, x_train, y_train, run_epochs).compile()
    ready, ready_cpu = time.perf_counter(), time.process_time()
    trained = jax.block_until_ready(compiled(params, keys, x_train, y_train))
    done, done_cpu = time.perf_counter(), time.process_time()
    train_accuracy = np.asarray(accuracy(trained, x_train, data.train.y.astype(np.int32)))
    test_accuracy = np.asarray(accuracy(trained, jnp.asarray(data.test.x), data.test.y.astype(np.int32)))
    print(json.dumps({
        "jax": jax.__version__, "networks": len(networks), "epochs": args.epochs, "run_epochs": run_epochs,
        "import_s": jax_import_seconds(), "compile_s": ready - imported, "compile_cpu_s": ready_cpu - imported_cpu,
        "train_s": done - ready, "train_cpu_s": done_cpu - ready_cpu,
        "projected_train_s": (done - ready) * args.epochs / run_epochs,
        "projected_train_cpu_s": (done_cpu - ready_cpu) * args.epochs / run_epochs,
        "accuracy": [{"initial_bias": bias, "seed": seed, "train": float(a), "test": float(b)}
                     for (bias, seed), a, b in zip(networks, train_accuracy, test_accuracy)]}))


if __name__ == "__main__":
    main()
