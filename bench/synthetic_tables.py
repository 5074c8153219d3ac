"""The five tables of a synthetic run (bench/make_results.py), shaped like real harmonics runs.

I(X;T) starts near log2(rows) and falls with depth, I(Y;T) rises towards H(Y) ~ 0.999 bits,
accuracy rises from 0.5 to ~0.95; a relu net with negative initial bias is dead (zero
gradients, constant MI). Every array is [layer, epoch, ...] and flattened at the end.

A config's seeds differ only in their noise: what they share (`Shape`: the curves before noise,
every column without noise as an Arrow array, the activation histograms, which hold no noise)
is made once per config and kept for its next seed; a seed draws its noise in a fixed order
and makes only its noisy columns and its run_id.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.special import erf

from ibstore.schema import TABLE_SCHEMAS
from trainer.measure import params_text

H_Y = 0.99916
ROWS = {"train": 3277, "test": 819, "full": 4096}
# the harmonics' classes per split (split_seed 0), whose plug-in entropies are about H_Y
CLASS_COUNTS = {"train": [1569, 1708], "test": [409, 410], "full": [1978, 2118]}


def is_dead(config: dict[str, Any]) -> bool:
    """A relu net with a negative initial bias never learns (the synthetic data's dead network)."""
    return config["activation_fn"] == "relu" and config["initial_bias"] < 0


def column(field: pa.Field, rows: int, value: Any) -> pa.Array:
    """`value` broadcast to `rows`: a text column is (index array, labels) or one string, None is
    all NULL, an Arrow array is taken as it is."""
    if isinstance(value, pa.Array):
        return value
    if value is None:
        return pa.nulls(rows, field.type)
    if isinstance(value, str):
        return pa.repeat(pa.scalar(value), rows)
    if isinstance(value, tuple):
        indices, labels = value
        return pa.array(labels, pa.string()).take(np.broadcast_to(indices, (rows,)))
    # numpy in the column's own type, and the type named: no conversion or inference inside
    # pyarrow (without the type a float64 column of 4,000 rows took ~50 us)
    return pa.array(np.ascontiguousarray(np.broadcast_to(value, (rows,)), dtype=field.type.to_pandas_dtype()),
                    field.type)


def fixed(name: str, rows: int, **columns: Any) -> dict[str, pa.Array]:
    """Columns of table `name` that no seed changes, as Arrow arrays."""
    fields = {field.name: field for field in TABLE_SCHEMAS[name]}
    return {key: column(fields[key], rows, value) for key, value in columns.items()}


def table(name: str, rows: int, run_id: str, columns: dict[str, Any]) -> pa.Table:
    """Table `name` of one run: every column but run_id from `columns` (see `column`)."""
    return pa.Table.from_arrays(
        [column(field, rows, run_id if field.name == "run_id" else columns[field.name])
         for field in TABLE_SCHEMAS[name]], schema=TABLE_SCHEMAS[name])


class Shape:
    """What the seeds of one config (with the same logged epochs and epochs done) share."""

    def __init__(self, config: dict[str, Any], logged: np.ndarray, done: int) -> None:
        units = np.array(list(config["architecture"]) + [2])
        n_layers, n_logged = len(units), len(logged)
        self.n_layers, self.n_logged, self.done = n_layers, n_logged, done
        names = [f"dense_{i}" for i in range(n_layers - 1)] + ["output"]
        self.relu = relu = config["activation_fn"] == "relu"
        self.dead = dead = is_dead(config)
        tau = max(config["epochs"] / 12, 1.0)
        progress = 0.0 if dead else 1.0
        hidden = np.arange(n_layers) < n_layers - 1               # [layer]
        layer = np.arange(n_layers)[:, None]                      # [layer, 1]
        by_layer = np.repeat(np.arange(n_layers), n_logged)       # rows of an [layer, epoch] table

        def fit(e: np.ndarray) -> np.ndarray:
            return progress * (1.0 - np.exp(-e / tau))

        epochs_all = np.arange(done + 1)
        self.accuracy = [0.5 + (top - 0.5) * fit(epochs_all) for top in (0.95, 0.9)]   # train, test
        self.loss = 0.1 + 0.6 * (1 - fit(epochs_all))
        self.metrics_rows = 2 * (done + 1)
        self.metrics = fixed("metrics", self.metrics_rows, epoch=np.tile(epochs_all, 2),
                             split=(np.repeat([0, 1], done + 1), ["train", "test"]))

        late = progress * np.clip((logged - tau) / (4 * tau), 0, 1) ** 1.5
        depth = layer / (n_layers - 1)                                             # [layer, 1]
        base = 0.99 - 0.35 * depth ** 1.5 - 0.25 * ~hidden[:, None]
        compression = np.where(relu & hidden[:, None], 0.0, 0.25 * depth)
        y0 = 0.55 - 0.3 * depth
        self.layer_rows = n_layers * n_logged
        self.mi = []   # per estimator and split: (fixed columns, cap, I(X;T), I(Y;T)), [layer, epoch]
        for estimator in config["estimators"]:
            params = params_text(estimator["params"])
            for split in config["mi_splits"]:
                cap = math.log2(ROWS[split])
                self.mi.append((
                    fixed("mi", self.layer_rows, epoch=np.tile(logged, n_layers), layer=by_layer,
                          layer_name=(by_layer, names), units=np.repeat(units, n_logged), split=split,
                          estimator=estimator["name"], params=params, h_t_bits=None),
                    cap, cap * np.clip(base + 0.02 * fit(logged) - compression * late, 0.05, 1),
                    H_Y * (y0 + (0.99 - y0) * fit(logged) ** (1 + depth))))

        scale = np.where(dead, 0.0, 0.05 * (1 + layer))                             # [layer, 1]
        self.grad_mean = scale * (np.exp(-logged / (2 * tau)) + 0.02)
        self.grad_std = scale * (0.2 + 0.3 * (1 - np.exp(-logged / tau)))
        self.gradients = fixed(
            "gradients", self.layer_rows, epoch=np.tile(logged, n_layers), layer=by_layer,
            layer_name=(by_layer, names), weight_norm=(np.sqrt(units)[:, None] * (1 + 0.6 * fit(logged))).ravel(),
            health=(np.repeat(np.where(hidden, int(dead), 2), n_logged), ["alive", "dead", None]))

        bins = config["histogram_bins"]
        spread = 0.3 + 1.5 * fit(logged) * (layer + 1) / n_layers                  # [layer, epoch]
        center = config["initial_bias"] + 0.2 * np.sin(layer + fit(logged))
        lo = np.where(hidden, 0.0 if relu else -1.0, 0.0)[:, None]                 # [layer, 1]
        width = np.where(hidden, (3.0 if relu else 2.0) / bins, 1.0 / bins)[:, None]
        edges = lo[:, :, None] + width[:, :, None] * np.arange(bins + 1)           # [layer, 1, bin edge]
        z = (edges - center[:, :, None]) / spread[:, :, None]
        mass = np.diff(0.5 * (1 + erf(z / math.sqrt(2))), axis=2)                  # [layer, epoch, bin]
        share = mass / np.maximum(mass.sum(axis=2, keepdims=True), 1e-12)
        histograms = []
        for split in config["mi_splits"]:
            counts = np.round(share * ROWS[split] * units[:, None, None])
            layer_i, epoch_i, bin_i = np.nonzero(counts)
            histograms.append(table("activations", len(layer_i), "", {
                "epoch": logged[epoch_i], "layer": layer_i, "layer_name": (layer_i, names), "split": split,
                "bin_index": bin_i, "bin_lo": edges[layer_i, 0, bin_i], "bin_hi": edges[layer_i, 0, bin_i + 1],
                "count": counts[layer_i, epoch_i, bin_i].astype(np.int64)}))
        self.histograms = concat("activations", histograms)

        neuron_of = np.repeat(np.arange(n_layers), units)                          # [neuron over layers]
        self.n_neurons = len(neuron_of)
        self.neuron_spread = spread[neuron_of].T                                    # [epoch, neuron]
        self.neuron_center = center[neuron_of].T
        self.fit_logged = fit(logged)[:, None]                                     # [epoch, 1]
        first = np.concatenate([[0], np.cumsum(units)[:-1]])                        # [layer]
        # rows ordered by layer, then epoch, then neuron, like the trainer's
        index = (np.arange(n_logged)[None, :, None] * len(neuron_of)
                 + (first[:, None, None] + np.arange(units.max())[None, None, :]))      # [layer, epoch, neuron]
        valid = np.broadcast_to(np.arange(units.max())[None, None, :] < units[:, None, None], index.shape)
        self.flat = index[valid]
        self.spread_n = self.neuron_spread.ravel()[self.flat]
        self.stats_rows = len(self.flat)
        self.stats = [fixed("activation_stats", self.stats_rows,
                            epoch=np.broadcast_to(logged[None, :, None], index.shape)[valid],
                            layer=np.broadcast_to(np.arange(n_layers)[:, None, None], index.shape)[valid],
                            neuron=np.broadcast_to(np.arange(units.max())[None, None, :], index.shape)[valid],
                            split=split, std=self.spread_n * 0.5)
                      for split in config["mi_splits"]]


def concat(name: str, parts: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(parts) if parts else TABLE_SCHEMAS[name].empty_table()


_SHAPES: dict[tuple, Shape] = {}   # the last config's


def shape_of(config: dict[str, Any], logged: np.ndarray, done: int) -> Shape:
    """The config's `Shape`, made again only when the config (its seed aside) changes."""
    key = (json.dumps({k: v for k, v in config.items() if k != "seed"}, sort_keys=True), logged.tobytes(), done)
    if key not in _SHAPES:
        _SHAPES.clear()
        _SHAPES[key] = Shape(config, logged, done)
    return _SHAPES[key]


def synthetic_tables(run_id: str, config: dict[str, Any], logged: np.ndarray, done: int,
                     rng: np.random.Generator) -> dict[str, pa.Table]:
    """The five tables of one run: its config's `Shape` and noise drawn from `rng`."""
    shape = shape_of(config, logged, done)
    accuracy, loss = [], []
    for curve in shape.accuracy:   # train, test
        accuracy.append(np.clip(curve + rng.normal(0, 0.005, done + 1), 0, 1))
        loss.append(shape.loss + rng.normal(0, 0.003, done + 1))
    metrics = table("metrics", shape.metrics_rows, run_id,
                    {**shape.metrics, "accuracy": np.concatenate(accuracy), "loss": np.concatenate(loss)})

    mi = []
    for columns, cap, i_xt, i_yt in shape.mi:
        noise = rng.normal(0, 0.01, (2, shape.n_layers, shape.n_logged))
        i_xt = np.minimum(i_xt + noise[0], cap).ravel()
        if columns["estimator"][0].as_py() == "ksg":   # as the trainer: h(T) in h_t_bits, no I(X;T)
            i_xt_columns = {"i_xt": None, "h_t_bits": i_xt}
        else:
            i_xt_columns = {"i_xt": i_xt}
        mi.append(table("mi", shape.layer_rows, run_id, {
            **columns, **i_xt_columns, "i_yt": np.clip(i_yt + noise[1], 0, H_Y).ravel()}))

    mean = shape.grad_mean * (1 + rng.normal(0, 0.05, (shape.n_layers, shape.n_logged)))
    std = shape.grad_std * (1 + rng.normal(0, 0.05, (shape.n_layers, shape.n_logged)))
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(std > 0, mean / std, np.nan)
    gradients = table("gradients", shape.layer_rows, run_id, {
        **shape.gradients, "grad_mean_norm": np.abs(mean).ravel(), "grad_std_norm": np.abs(std).ravel(),
        "snr": np.abs(snr).ravel()})

    stats = []
    for columns in shape.stats:
        # per neuron (all layers' neurons side by side): [epoch, neuron]
        pre = shape.neuron_center + rng.normal(0, 0.3, shape.n_neurons)[None, :] * shape.neuron_spread
        mean = np.maximum(pre, 0) if shape.relu else np.tanh(pre)
        if shape.relu:
            frac_zero = np.full(mean.shape, 0.999) if shape.dead else np.clip(0.5 - mean, 0, 1)
            saturated = frac_zero
        else:
            frac_zero = np.zeros(mean.shape)
            saturated = np.clip(np.abs(mean) - 0.6, 0, 1) * shape.fit_logged
        at = mean.ravel()[shape.flat]
        stats.append(table("activation_stats", shape.stats_rows, run_id, {
            **columns, "mean": at, "min": at - shape.spread_n, "max": at + shape.spread_n,
            "frac_zero": frac_zero.ravel()[shape.flat], "frac_saturated": saturated.ravel()[shape.flat]}))
    return {"metrics": metrics, "mi": concat("mi", mi), "gradients": gradients,
            "activations": shape.histograms.set_column(
                0, "run_id", pa.repeat(pa.scalar(run_id), len(shape.histograms))),
            "activation_stats": concat("activation_stats", stats)}
