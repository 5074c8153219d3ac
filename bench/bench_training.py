"""Training speed: our compiled loop vs Keras `fit` with a per-epoch logging callback.

    python bench/bench_training.py                 # per-epoch comparison (about a minute)
    python bench/bench_training.py --full          # also the full 8000-epoch default run

The baseline is the deep-bottleneck way: `model.fit(..., epochs=1)`-style
training with a Keras callback that, at every logged epoch, pulls the
activations of every layer on all inputs. Ours runs the same network, the same
logging schedule and additionally estimates MI and writes every table. Both
run here, in the same process, one after the other.
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

from trainer import config, datasets, schedule
from trainer.training import run_experiment

REPO = Path(__file__).resolve().parents[1]


def keras_fit_with_logging_callback(epochs: int) -> float:
    """Seconds per epoch of the deep-bottleneck-style baseline."""
    data = datasets.load("harmonics")
    (experiment,) = config.plan({"epochs": epochs})
    logged = set(schedule.logged_epochs("default", epochs))
    layers = [keras.layers.Dense(n, activation="tanh",
                                 kernel_initializer=keras.initializers.TruncatedNormal(stddev=1 / np.sqrt(n)))
              for n in experiment["config"]["architecture"]]
    model = keras.Sequential([keras.Input((12,)), *layers, keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(4e-4), "sparse_categorical_crossentropy", metrics=["accuracy"])
    probe = keras.Model(model.inputs, [layer.output for layer in model.layers])
    kept = []

    class ActivityLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 in logged:
                kept.append([a for a in probe(data.full.x, training=False)])

    start = time.perf_counter()
    model.fit(data.train.x, data.train.y, batch_size=256, epochs=epochs, verbose=0,
              validation_data=(data.test.x, data.test.y), callbacks=[ActivityLogger()])
    return (time.perf_counter() - start) / epochs


def ours(epochs: int) -> float:
    """Seconds per epoch of `run_experiment` with the default schedule, MI and all tables."""
    (experiment,) = config.plan({"name": "bench", "epochs": epochs})
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        run_experiment(experiment, Path(root), progress=False)
        return (time.perf_counter() - start) / epochs


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
    parser.add_argument("--epochs", type=int, default=300, help="epochs per side of the comparison")
    parser.add_argument("--full", action="store_true", help="also time the full 8000-epoch default run")
    args = parser.parse_args()
    baseline = keras_fit_with_logging_callback(args.epochs)
    compiled = ours(args.epochs)
    print(f"{'':42} {'ms/epoch':>9}")
    print(f"{'Keras fit + per-epoch logging callback':42} {baseline * 1000:9.1f}")
    print(f"{'trainer (compiled loop, MI, all tables)':42} {compiled * 1000:9.1f}")
    print(f"speed-up: {baseline / compiled:.1f}x  ({args.epochs} epochs each, default schedule)")
    if args.full:
        seconds, peak_mb = full_default_run()
        print(f"full default run (8000 epochs, default schedule, binning on train+test, all summaries): "
              f"{seconds:.1f} s, peak memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
