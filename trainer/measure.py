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
    """I(X;T) and I(Y;T) in bits per split, layer and estimator.

    Estimators configured with `range: "run"` need each layer's whole-run
    (min, max): with `layer_ranges` only they are computed, without it only the others.
    """
    result = {name: [] for name in TABLE_SCHEMAS["mi"].names}
    for spec in estimator_specs:
        deferred = estimators.needs_run_range(spec["name"], spec["params"])
        if deferred != (layer_ranges is not None):
            continue
        for split in splits:
            for layer, values in enumerate(layers):
                params = dict(spec["params"])
                if deferred:
                    params["range"] = list(layer_ranges[layer])
                i_xt, i_yt = estimators.estimate(spec["name"], values[rows[split]], labels[rows[split]], **params)
                row = {"run_id": run_id, "epoch": epoch, "layer": layer, "layer_name": layer_names[layer],
                       "units": values.shape[1], "split": split, "estimator": spec["name"],
                       "params": params_text(spec["params"]), "i_xt": i_xt, "i_yt": i_yt}
                for name, value in row.items():
                    result[name].append(value)
    return result


def activation_rows(run_id: str, epoch: int, layers: list[np.ndarray], rows: dict[str, slice],
                    splits: list[str], activation_fns: list[str],
                    grids: list[HistogramGrid]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Columns of the histogram rows (non-empty bins) and of the per-neuron statistics rows."""
    histogram: dict[str, list] = {k: [] for k in ("layer", "split", "bin_index", "bin_lo", "bin_hi", "count")}
    stats: dict[str, list] = {k: [] for k in ("layer", "neuron", "split", *STAT_NAMES)}
    for split in splits:
        for layer, values in enumerate(layers):
            part = values[rows[split]]
            bins, lo, hi, counts = grids[layer].histogram(part)
            for name, column in zip(("bin_index", "bin_lo", "bin_hi", "count"), (bins, lo, hi, counts)):
                histogram[name].append(column)
            histogram["layer"].append(np.full(len(bins), layer))
            histogram["split"] += [split] * len(bins)
            per_neuron = neuron_stats(activation_fns[layer], part)
            for name in STAT_NAMES:
                stats[name].append(per_neuron[name])
            stats["layer"].append(np.full(part.shape[1], layer))
            stats["neuron"].append(np.arange(part.shape[1]))
            stats["split"] += [split] * part.shape[1]
    concatenated = [{k: (v if k == "split" else np.concatenate(v)) for k, v in table.items()}
                    for table in (histogram, stats)]
    return tuple({"run_id": run_id, "epoch": epoch, **table} for table in concatenated)


@dataclass
class RunRange:
    """Whole-run (min, max) of each layer, with the activations kept for estimators that
    bin over that range (Saxe et al. 2018 for ReLU); they are estimated when the run ends."""

    ranges: list[tuple[float, float]] = field(default_factory=list)
    kept: list[tuple[int, list[np.ndarray]]] = field(default_factory=list)

    def add(self, epoch: int, layers: list[np.ndarray]) -> None:
        current = [(float(v.min()), float(v.max())) for v in layers]
        self.ranges = current if not self.ranges else [
            (min(a[0], b[0]), max(a[1], b[1])) for a, b in zip(self.ranges, current)]
        self.kept.append((epoch, layers))
