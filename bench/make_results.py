"""Synthetic results roots in the trainer's exact format (run.json + the five Parquet tables).

Values are shaped like real harmonics runs (tanh/relu, Adam 4e-4): I(X;T) starts
near log2(rows) and falls with depth, I(Y;T) rises towards H(Y) ~ 0.999 bits,
accuracy rises from 0.5 to ~0.95; a relu net with negative initial bias is dead
(zero gradients, constant MI). Used by the benchmark and by the test fixtures.

    python bench/make_results.py OUT --runs 500 --epochs 2000 --logged 300
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ibstore import layout
from ibstore.record import RunRecord
from ibstore.schema import SCHEMA_VERSION, TABLE_SCHEMAS

H_Y = 0.99916
ROWS = {"train": 3277, "test": 819, "full": 4096}
START = datetime(2026, 11, 27, 6, 0, tzinfo=timezone.utc)

DEFAULT_CONFIG: dict[str, Any] = {
    "dataset": "harmonics", "dataset_path": None, "label_column": "label", "test_fraction": 0.2,
    "split_seed": 0, "model": "feedforward", "architecture": [10, 7, 5, 4, 3],
    "activation_fn": "tanh", "initial_bias": 0.0, "kernel_init_stddev": None,
    "max_norm_weights": False, "optimizer": "adam", "learning_rate": 0.0004, "batch_size": 256,
    "epochs": 8000, "seed": 0, "n_runs": 1,
    "estimators": [{"name": "binning", "params": {"bin_size": 0.07}}],
    "mi_splits": ["train", "test"], "log_schedule": "default", "stop_at_accuracy": None,
    "histogram_bins": 30, "save_activations": False, "save_checkpoints": False,
}


def run_ids(name: str, config: dict[str, Any]) -> tuple[str, str]:
    """(run_id, group_id): the group hashes the config without the seed."""
    unseeded = {k: v for k, v in config.items() if k != "seed"}
    digest = hashlib.sha256(json.dumps(unseeded, sort_keys=True).encode()).hexdigest()[:8]
    group_id = f"{name}-{digest}"
    return f"{group_id}-s{config['seed']}", group_id


def logged_epochs(epochs: int, count: int) -> np.ndarray:
    """About `count` distinct epochs from 0 to `epochs`: every epoch early, log-spaced later."""
    if count >= epochs + 1:
        return np.arange(epochs + 1)
    n = count
    while True:
        grid = np.unique(np.round(np.geomspace(1, epochs + 1, n)).astype(int) - 1)
        if len(grid) >= count:
            return grid
        n += count - len(grid)


def write_run(root: Path, name: str, overrides: dict[str, Any] | None = None, *, seed: int = 0,
              cohort: str | None = None, status: str = "completed", epochs_done: int | None = None,
              logged: int = 40, tables: tuple[str, ...] = tuple(TABLE_SCHEMAS),
              heartbeat_age_s: float = 0.0) -> str:
    """Write one synthetic run (all seeds share the group); returns its run_id."""
    config = {**DEFAULT_CONFIG, **(overrides or {}), "seed": seed}
    run_id, group_id = run_ids(name, config)
    epochs = config["epochs"]
    done = epochs if epochs_done is None else epochs_done
    run_dir = layout.run_dir(root, run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16))
    logged_all = logged_epochs(epochs, logged)
    data = synthetic_tables(run_id, config, logged_all[logged_all <= done], done, rng)
    for table in tables:
        pq.write_table(pa.Table.from_pydict(data[table], schema=TABLE_SCHEMAS[table]),
                       layout.table_path(root, run_id, table), compression="zstd")
    finished = START + timedelta(seconds=2.0 * done)
    heartbeat = datetime.now(timezone.utc) - timedelta(seconds=heartbeat_age_s) if status == "running" else finished
    meta = {
        "run_id": run_id, "group_id": group_id, "name": name, "cohort": cohort, "config": config,
        "seed": seed, "status": status, "error": "loss is NaN" if status == "diverged" else None,
        "started_at": START.isoformat(), "finished_at": None if status == "running" else finished.isoformat(),
        "heartbeat_at": heartbeat.isoformat(timespec="seconds"), "epochs_done": done, "epochs_total": epochs,
        "versions": {"python": "3.11.7", "tensorflow": "2.21.0", "package": "0.1.0", "git_commit": "abc123"},
        "host": "bench", "schema_version": SCHEMA_VERSION, "split_seed": config["split_seed"],
        "ignored_keys": [], **final_metrics(data["metrics"]),
        "dead_network": None if status == "running" else bool(is_dead(config)),
        "diverged": None if status == "running" else status == "diverged",
    }
    layout.run_json_path(root, run_id).write_bytes(RunRecord(**meta).to_json_bytes())
    return run_id


def final_metrics(metrics: dict[str, list]) -> dict[str, float | None]:
    """The record's final_* fields as the writer keeps them: the last epoch's values, best test accuracy."""
    last = max(metrics["epoch"], default=None)
    finals: dict[str, float | None] = {"best_test_accuracy": max(
        (a for a, s in zip(metrics["accuracy"], metrics["split"]) if s == "test"), default=None)}
    for split in ("train", "test"):
        rows = [i for i, (e, s) in enumerate(zip(metrics["epoch"], metrics["split"])) if e == last and s == split]
        finals[f"final_{split}_accuracy"] = metrics["accuracy"][rows[0]] if rows else None
        finals[f"final_{split}_loss"] = metrics["loss"][rows[0]] if rows else None
    return finals


def is_dead(config: dict[str, Any]) -> bool:
    """A relu net with a negative initial bias never learns (the synthetic data's dead network)."""
    return config["activation_fn"] == "relu" and config["initial_bias"] < 0


def synthetic_tables(run_id: str, config: dict[str, Any], logged: np.ndarray, done: int,
                     rng: np.random.Generator) -> dict[str, dict[str, list]]:
    units = list(config["architecture"]) + [2]
    n_layers = len(units)
    names = [f"dense_{i}" for i in range(n_layers - 1)] + ["output"]
    relu = config["activation_fn"] == "relu"
    dead = is_dead(config)
    tau = max(config["epochs"] / 12, 1.0)
    progress = 0.0 if dead else 1.0

    def fit(e: np.ndarray) -> np.ndarray:
        return progress * (1.0 - np.exp(-e / tau))

    epochs_all = np.arange(done + 1)
    metrics: dict[str, list] = {k: [] for k in TABLE_SCHEMAS["metrics"].names}
    for split, top in (("train", 0.95), ("test", 0.9)):
        acc = np.clip(0.5 + (top - 0.5) * fit(epochs_all) + rng.normal(0, 0.005, len(epochs_all)), 0, 1)
        _extend(metrics, run_id=run_id, epoch=epochs_all, split=split, accuracy=acc,
                loss=0.1 + 0.6 * (1 - fit(epochs_all)) + rng.normal(0, 0.003, len(epochs_all)))

    mi: dict[str, list] = {k: [] for k in TABLE_SCHEMAS["mi"].names}
    late = progress * np.clip((logged - tau) / (4 * tau), 0, 1) ** 1.5
    for estimator in config["estimators"]:
        params = json.dumps(estimator["params"], sort_keys=True)
        for split in config["mi_splits"]:
            cap = math.log2(ROWS[split])
            for layer in range(n_layers):
                depth = layer / (n_layers - 1)
                base = 0.99 - 0.35 * depth ** 1.5 - (0.25 if layer == n_layers - 1 else 0)
                compression = 0.0 if relu and layer < n_layers - 1 else 0.25 * depth
                i_xt = cap * np.clip(base + 0.02 * fit(logged) - compression * late, 0.05, 1)
                y0 = 0.55 - 0.3 * depth
                i_yt = H_Y * (y0 + (0.99 - y0) * fit(logged) ** (1 + depth))
                noise = rng.normal(0, 0.01, (2, len(logged)))
                _extend(mi, run_id=run_id, epoch=logged, layer=layer, layer_name=names[layer],
                        units=units[layer], split=split, estimator=estimator["name"], params=params,
                        i_xt=np.minimum(i_xt + noise[0], cap), i_yt=np.clip(i_yt + noise[1], 0, H_Y))

    gradients: dict[str, list] = {k: [] for k in TABLE_SCHEMAS["gradients"].names}
    for layer in range(n_layers):
        scale = 0.0 if dead else 0.05 * (1 + layer)
        mean = scale * (np.exp(-logged / (2 * tau)) + 0.02) * (1 + rng.normal(0, 0.05, len(logged)))
        std = scale * (0.2 + 0.3 * (1 - np.exp(-logged / tau))) * (1 + rng.normal(0, 0.05, len(logged)))
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = np.where(std > 0, mean / std, np.nan)
        weight = math.sqrt(units[layer]) * (1 + 0.6 * fit(logged))
        _extend(gradients, run_id=run_id, epoch=logged, layer=layer, grad_mean_norm=np.abs(mean),
                grad_std_norm=np.abs(std), snr=np.abs(snr), weight_norm=weight)

    activations: dict[str, list] = {k: [] for k in TABLE_SCHEMAS["activations"].names}
    stats: dict[str, list] = {k: [] for k in TABLE_SCHEMAS["activation_stats"].names}
    bins = config["histogram_bins"]
    for split in config["mi_splits"]:
        rows = ROWS[split]
        for layer in range(n_layers):
            spread = 0.3 + 1.5 * fit(logged) * (layer + 1) / n_layers   # [epochs]
            center = config["initial_bias"] + 0.2 * np.sin(layer + fit(logged))
            lo, width = (0.0, 1.0 / bins) if layer == n_layers - 1 else (-1.0, 2.0 / bins)
            if relu and layer < n_layers - 1:
                lo, width = 0.0, 3.0 / bins
            edges = lo + width * np.arange(bins + 1)
            z = (edges[None, :] - center[:, None]) / spread[:, None]
            mass = np.diff(0.5 * (1 + _erf(z / math.sqrt(2))), axis=1)
            counts = np.round(mass / np.maximum(mass.sum(axis=1, keepdims=True), 1e-12) * rows * units[layer])
            epoch_i, bin_i = np.nonzero(counts)
            _extend(activations, run_id=run_id, epoch=logged[epoch_i], layer=layer, split=split,
                    bin_index=bin_i, bin_lo=edges[bin_i], bin_hi=edges[bin_i + 1],
                    count=counts[epoch_i, bin_i].astype(np.int64))
            neurons = units[layer]
            grid_e, grid_n = np.meshgrid(logged, np.arange(neurons), indexing="ij")
            shift = rng.normal(0, 0.3, neurons)[None, :] * spread[:, None]
            mean = np.tanh(center[:, None] + shift) if not relu else np.maximum(center[:, None] + shift, 0)
            frac_zero = np.full(mean.shape, 0.999 if dead else 0.0) if relu else np.zeros(mean.shape)
            if relu and not dead:
                frac_zero = np.clip(0.5 - mean, 0, 1)
            saturated = frac_zero if relu else np.clip(np.abs(mean) - 0.6, 0, 1) * fit(grid_e)
            _extend(stats, run_id=run_id, epoch=grid_e.ravel(), layer=layer, neuron=grid_n.ravel(),
                    split=split, mean=mean.ravel(), std=np.repeat(spread, neurons) * 0.5,
                    min=mean.ravel() - spread.repeat(neurons), max=mean.ravel() + spread.repeat(neurons),
                    frac_zero=frac_zero.ravel(), frac_saturated=np.asarray(saturated).ravel())
    return {"metrics": metrics, "mi": mi, "gradients": gradients,
            "activations": activations, "activation_stats": stats}


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[float])(x)


def _extend(columns: dict[str, list], **values: Any) -> None:
    """Append equally long columns; scalars are repeated to the length of the arrays."""
    length = max(len(v) for v in values.values() if isinstance(v, np.ndarray))
    for key, value in values.items():
        if isinstance(value, np.ndarray):
            columns[key].extend(np.broadcast_to(value, (length,)).tolist())
        else:
            columns[key].extend([value] * length)


def make_root(root: Path, runs: int, epochs: int = 2000, logged: int = 300, seeds: int = 5) -> list[str]:
    """A cohort grid (activation x initial bias x learning rate) with `seeds` seeds per config."""
    biases = [-1.0, -0.5, 0.0, 0.2, 0.5, 1.0, 2.0]
    rates = [0.0004, 0.001, 0.004, 0.01]
    ids = []
    i = 0
    while len(ids) < runs:
        act = ("tanh", "relu")[i % 2]
        bias = biases[(i // 2) % len(biases)]
        rate = rates[(i // (2 * len(biases))) % len(rates)]
        width = 10 + i // (2 * len(biases) * len(rates))
        overrides = {"activation_fn": act, "initial_bias": bias, "learning_rate": rate,
                     "architecture": [width, 7, 5, 4, 3], "epochs": epochs}
        for seed in range(min(seeds, runs - len(ids))):
            ids.append(write_run(root, f"{act}-bias", overrides, seed=seed, cohort="initial_bias",
                                 logged=logged))
        i += 1
    return ids


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--logged", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    ids = make_root(args.out, args.runs, args.epochs, args.logged, args.seeds)
    print(f"wrote {len(ids)} runs to {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
