"""Training speed: our compiled loop vs Keras `fit` with a per-epoch logging callback.

    python bench/bench_training.py                 # per-epoch comparison (about a minute)
    python bench/bench_training.py --full          # also the full 8000-epoch default run

The baseline is the deep-bottleneck way: one `model.fit` with a Keras callback
that pulls the activations of every layer on all inputs after every epoch.
Ours is measured per training epoch and per logged epoch (which adds the
activations, binning MI on train and test, histograms and per-neuron
statistics). Both run here, in the same process, one after the other.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from trainer import config, datasets
from trainer.training import run_experiment

REPO = Path(__file__).resolve().parents[1]


def keras_fit_with_logging_callback(epochs: int) -> float:
    """Median seconds per epoch of the deep-bottleneck-style baseline: `model.fit` with a
    callback that pulls the activations of every layer on all inputs after every epoch."""
    data = datasets.load("harmonics")
    (experiment,) = config.plan({"epochs": epochs})
    layers = [keras.layers.Dense(n, activation="tanh",
                                 kernel_initializer=keras.initializers.TruncatedNormal(stddev=1 / np.sqrt(n)))
              for n in experiment["config"]["architecture"]]
    model = keras.Sequential([keras.Input((12,)), *layers, keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(4e-4), "sparse_categorical_crossentropy", metrics=["accuracy"])
    probe = keras.Model(model.inputs, [layer.output for layer in model.layers])
    ends = []

    class ActivityLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            [np.asarray(a) for a in probe(data.full.x, training=False)]
            ends.append(time.perf_counter())

    model.fit(data.train.x, data.train.y, batch_size=256, epochs=epochs, verbose=0,
              validation_data=(data.test.x, data.test.y), callbacks=[ActivityLogger()])
    return float(np.median(np.diff(ends)))


def ours(epochs: int, log_schedule) -> float:
    """Wall seconds of `run_experiment` (binning MI on train and test, every table written)."""
    (experiment,) = config.plan({"name": "bench", "epochs": epochs, "log_schedule": log_schedule})
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        run_experiment(experiment, Path(root), progress=False)
        return time.perf_counter() - start


def full_default_run() -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of `trainer run data/configs/basic.json`."""
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "trainer", "run", "data/configs/basic.json", "--quiet",
                        "--results", root], cwd=REPO, check=True)
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs of the Keras baseline")
    parser.add_argument("--full", action="store_true", help="also time the full 8000-epoch default run")
    args = parser.parse_args()
    baseline = keras_fit_with_logging_callback(args.epochs)
    never = {"every": 10**9}   # only epoch 0 and the last are logged
    # Marginal costs: differences of two runs cancel start-up (tracing) and the fixed logged epochs.
    training_epoch = (ours(1000, never) - ours(100, never)) / 900
    logged_epoch = (ours(200, {"every": 1}) - ours(200, never)) / 199 + training_epoch
    print(f"{'':58} {'ms/epoch':>9} {'speed-up':>9}")
    print(f"{'Keras fit + callback pulling all activations every epoch':58} {baseline * 1e3:9.1f}")
    print(f"{'trainer, training epoch (train + evaluate + metrics)':58} {training_epoch * 1e3:9.1f} "
          f"{baseline / training_epoch:8.1f}x")
    print(f"{'trainer, logged epoch (+ activations, MI, summaries)':58} {logged_epoch * 1e3:9.1f} "
          f"{baseline / logged_epoch:8.1f}x")
    if args.full:
        seconds, peak_mb = full_default_run()
        print(f"full default run (8000 epochs, default schedule, binning on train+test, all summaries): "
              f"{seconds:.1f} s, peak memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
