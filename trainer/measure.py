"""Rows for the mi, activations and activation_stats tables from one logged epoch.

Shared by the training loop and by `trainer estimate` (re-estimation from
saved activations), so both write exactly the same rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ibstore.schema import TABLE_SCHEMAS
from trainer import estimators
from trainer.summaries import STAT_NAMES, HistogramGrid, neuron_stats


def split_rows(n_train: int, n_total: int) -> dict[str, slice]:
    """Rows of each split in the full input array (train first, then test)."""
    return {"train": slice(0, n_train), "test": slice(n_train, n_total), "full": slice(0, n_total)}


def params_text(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def mi_rows(run_id: str, epoch: int, layers: list[np.ndarray], labels: np.ndarray,
            rows: dict[str, slice], splits: list[str], layer_names: list[str],
            estimator_specs: list[dict[str, Any]],
            layer_ranges: list[tuple[float, float]] | None = None) -> dict[str, list]:
    """I(X;T) and I(Y;T) in bits per split, layer and estimator, as mi table columns (ksg: h(T)
    in h_t_bits and i_xt NULL, see `estimators.first_value_column`).

    Each spec's params are those recorded in the row's `params` column; they must be
    complete for this network (`estimators.for_network`). A spec with `range: "run"`
    is estimated with its layer's whole-run (lo, hi) from `layer_ranges`, which must
    then be given (see RunRange); its row still records "run".
    """
    result = {name: [] for name in TABLE_SCHEMAS["mi"].names}
    for spec in estimator_specs:
        for split in splits:
            for layer, values in enumerate(layers):
                params = dict(spec["params"])
                if estimators.needs_run_range(spec["name"], params):
                    params["range"] = list(layer_ranges[layer])
                first, i_yt = estimators.estimate(spec["name"], values[rows[split]], labels[rows[split]], **params)
                row = {"run_id": run_id, "epoch": epoch, "layer": layer, "layer_name": layer_names[layer],
                       "units": values.shape[1], "split": split, "estimator": spec["name"],
                       "params": params_text(spec["params"]), "i_xt": None, "i_yt": i_yt, "h_t_bits": None,
                       estimators.first_value_column(spec["name"]): first}
                for name, value in row.items():
                    result[name].append(value)
    return result


class MiRows:
    """The mi rows of one run, epoch by epoch: the one place that knows which estimates wait
    for the end of the run.

    Used alike by the training loop and by `trainer estimate`: call `at_epoch` for each
    logged epoch in order, then `at_end` once. Estimators that bin over the layer's range
    over the whole run (binning with `range: "run"`, Saxe et al. 2018 for ReLU) cannot be
    computed before the run is over: their epochs are kept in a RunRange and estimated by
    `at_end`. Params that depend on the network (adaptive's `low`) are filled in from the
    hidden activation function once, here, and recorded as filled in.
    """

    def __init__(self, run_id: str, estimator_specs: list[dict[str, Any]], activation_fn: str,
                 labels: np.ndarray, rows: dict[str, slice], splits: list[str], layer_names: list[str]):
        self.run_id, self.labels, self.rows, self.splits, self.layer_names = run_id, labels, rows, splits, layer_names
        specs = [{"name": spec["name"], "params": estimators.for_network(spec["name"], spec["params"], activation_fn)}
                 for spec in estimator_specs]
        self.now = [s for s in specs if not estimators.needs_run_range(s["name"], s["params"])]
        self.deferred = [s for s in specs if estimators.needs_run_range(s["name"], s["params"])]
        self.run_range = RunRange() if self.deferred else None

    def at_epoch(self, epoch: int, layers: list[np.ndarray]) -> dict[str, list] | None:
        """Rows of the estimates that can be made now (None if there are none); the layers are
        kept for the deferred ones."""
        if self.run_range is not None:
            self.run_range.add(epoch, layers)
        return self._rows(epoch, layers, self.now) if self.now else None

    def at_end(self) -> dict[str, list] | None:
        """Rows of the deferred estimates for every kept epoch (None if there are none)."""
        if self.run_range is None or not self.run_range.kept:
            return None
        parts = [self._rows(epoch, layers, self.deferred, self.run_range.ranges) for epoch, layers in self.run_range.kept]
        return {name: [value for part in parts for value in part[name]] for name in parts[0]}

    def _rows(self, epoch, layers, specs, ranges=None) -> dict[str, list]:
        return mi_rows(self.run_id, epoch, layers, self.labels, self.rows, self.splits, self.layer_names, specs, ranges)


def activation_rows(epoch: int, layers: list[np.ndarray], rows: dict[str, slice], splits: list[str],
                    activation_fns: list[str], grids: list[HistogramGrid]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Per network of the stack: the columns of its histogram rows (non-empty bins) and of its
    per-neuron statistics rows (without run_id). `layers`: per layer [N, n_inputs, units];
    `grids`: per layer, the N networks' bins. Computed for all networks at once per layer and split.
    """
    n_networks = layers[0].shape[0]
    histogram: dict[str, list] = {k: [] for k in ("network", "layer", "split", "bin_index", "bin_lo", "bin_hi", "count")}
    stats: dict[str, list] = {k: [] for k in ("layer", "neuron", "split", *STAT_NAMES)}
    for split_code, split in enumerate(splits):
        for layer, values in enumerate(layers):
            part = values[:, rows[split]]
            columns = grids[layer].histograms(part)
            for name, column in zip(("network", "bin_index", "bin_lo", "bin_hi", "count"), columns):
                histogram[name].append(column)
            histogram["layer"].append(np.full(len(columns[0]), layer))
            histogram["split"].append(np.full(len(columns[0]), split_code))
            per_neuron = neuron_stats(activation_fns[layer], part)     # each [N, units]
            for name in STAT_NAMES:
                stats[name].append(per_neuron[name])
            stats["layer"].append(np.full(part.shape[2], layer))
            stats["neuron"].append(np.arange(part.shape[2]))
            stats["split"].append(np.full(part.shape[2], split_code))
    split_names = np.array(splits, dtype=object)
    stats = {k: np.concatenate(v, axis=-1) for k, v in stats.items()}
    shared = {"layer": stats["layer"], "neuron": stats["neuron"], "split": split_names[stats["split"]]}
    histogram = {k: np.concatenate(v) for k, v in histogram.items()}
    order = np.argsort(histogram["network"], kind="stable")      # per network, in (split, layer) order
    histogram = {k: v[order] for k, v in histogram.items()}
    bounds = np.searchsorted(histogram["network"], np.arange(n_networks + 1))
    result = []
    for s in range(n_networks):
        mine = slice(bounds[s], bounds[s + 1])
        result.append((
            {"epoch": epoch, "layer": histogram["layer"][mine], "split": split_names[histogram["split"][mine]],
             **{k: histogram[k][mine] for k in ("bin_index", "bin_lo", "bin_hi", "count")}},
            {"epoch": epoch, **shared, **{name: stats[name][s] for name in STAT_NAMES}},
        ))
    return result


@dataclass
class RunRange:
    """Whole-run (min, max) of each layer over every logged epoch and input, with those
    epochs' activations kept until the range is final (MiRows.at_end)."""

    ranges: list[tuple[float, float]] = field(default_factory=list)
    kept: list[tuple[int, list[np.ndarray]]] = field(default_factory=list)

    def add(self, epoch: int, layers: list[np.ndarray]) -> None:
        current = [(float(v.min()), float(v.max())) for v in layers]
        self.ranges = current if not self.ranges else [
            (min(a[0], b[0]), max(a[1], b[1])) for a, b in zip(self.ranges, current)]
        self.kept.append((epoch, layers))
