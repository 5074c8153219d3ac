"""Rows for the mi, activations and activation_stats tables from one logged epoch.

Shared by the training loop and by `trainer estimate` (re-estimation from
saved activations), so both write exactly the same rows.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np

from ibstore.schema import TABLE_SCHEMAS
from trainer import estimators
from trainer.activation_facts import Activations, take
from trainer.stack_rows import StackRows, labels
from trainer.summaries import STAT_NAMES, HistogramGrid, HistogramOverflow, layers_neuron_stats


def split_rows(n_train: int, n_total: int) -> dict[str, slice]:
    """Rows of each split in the full input array (train first, then test)."""
    return {"train": slice(0, n_train), "test": slice(n_train, n_total), "full": slice(0, n_total)}


def params_text(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


# What a network gets from StackMiRows: its rows, None (nothing to write now), or the error
# its activations raised.
Outcome = dict[str, list] | None | Exception


def mi_rows(run_ids: list[str], epoch: int, layers: list[np.ndarray], labels: np.ndarray,
            rows: dict[str, slice], splits: list[str], layer_names: list[str],
            estimator_specs: list[dict[str, Any]], layer_ranges: list[np.ndarray] | None = None,
            known_finite: bool = False, inputs: np.ndarray | None = None) -> list[dict[str, list]]:
    """Per network of a stack: I(X;T) and I(Y;T) in bits per split, layer and estimator, as mi
    table columns (ksg: h(T) in h_t_bits and i_xt NULL, see `estimators.first_value_column`).

    `layers`: per layer [N, n_inputs, units], network s's run `run_ids[s]`; every estimate is
    made for all N networks in one call (`estimators.estimate_stacked`), and each network's
    numbers are those it gets alone. Each spec's `params` are those the estimate uses, complete
    for the networks (`estimators.for_network`); its `recorded`, if given, is what the rows'
    `params` column holds (the params as configured, adaptive's `low` still "auto"), else
    `params`. A spec with `range: "run"` is estimated with each network's whole-run (lo, hi) of
    its layer from `layer_ranges` (per layer [N, 2]), which must then be given (see RunRange);
    its row still records "run". `known_finite`: every value of the splits' rows is known to be
    finite (`estimators.estimate_stacked`). `inputs`: the data's inputs [n_inputs, d] in the rows of
    `labels`, for the estimators that hash them (`estimators.NEEDS_INPUTS`).
    """
    cells = [(split, layer) for split in splits for layer in range(len(layers))]   # the row order of a spec
    blocks = []       # per spec: its name, params text, first-value column, estimates [cells, N] each
    for spec in estimator_specs:
        params = dict(spec["params"])
        run_range = estimators.needs_run_range(spec["name"], params)
        estimates = [estimators.estimate_stacked(spec["name"], layers[layer][:, rows[split]], labels[rows[split]],
                                                 run_ranges=layer_ranges[layer] if run_range else None,
                                                 known_finite=known_finite,
                                                 inputs=None if inputs is None else inputs[rows[split]], **params)
                     for split, layer in cells]
        blocks.append((spec["name"], params_text(spec.get("recorded", spec["params"])),
                       estimators.first_value_column(spec["name"]),
                       np.array([first for first, _ in estimates]), np.array([i_yt for _, i_yt in estimates])))
    # The columns every network shares, built once; per network only its run_id and numbers differ.
    n = len(cells)
    shared = {"epoch": [epoch] * (n * len(blocks)),
              "layer": [layer for _ in blocks for _, layer in cells],
              "layer_name": [layer_names[layer] for _ in blocks for _, layer in cells],
              "units": [layers[layer].shape[2] for _ in blocks for _, layer in cells],
              "split": [split for _ in blocks for split, _ in cells],
              "estimator": [name for name, *_ in blocks for _ in cells],
              "params": [text for _, text, *_ in blocks for _ in cells]}
    result = []
    for s, run_id in enumerate(run_ids):
        numbers: dict[str, list] = {"i_xt": [], "i_yt": [], "h_t_bits": []}
        for _, _, column, first, i_yt in blocks:
            for name in ("i_xt", "h_t_bits"):
                numbers[name] += first[:, s].tolist() if name == column else [None] * n
            numbers["i_yt"] += i_yt[:, s].tolist()
        row = {"run_id": [run_id] * (n * len(blocks)), **shared, **numbers}
        result.append({name: list(row[name]) for name in TABLE_SCHEMAS["mi"].names})
    return result


class StackMiRows:
    """The mi rows of the runs of a stack of networks, epoch by epoch: the one place that knows
    which estimates wait for the end of a run.

    Call `at_epoch` for each logged epoch in order with the networks logged then (positions in
    `run_ids`), and `at_end` once for the networks whose run ends. Each network gets its rows,
    None (nothing to write now), or the EstimatorError its activations raised: the networks are
    estimated together, and if that fails, each alone, so a bad network fails by itself.
    Estimators that bin over the layer's range over the whole run (binning with `range: "run"`,
    Saxe et al. 2018 for ReLU) cannot be computed before the run is over: their epochs are kept
    in a RunRange and estimated by `at_end`. Params that depend on the network (adaptive's `low`)
    are filled in from each network's hidden activation function once, here; the rows record
    them as configured ("auto", as binning records "run"), so one estimator is one `params` text
    across activations and their seed groups can be compared. Networks whose filled-in specs
    are equal (all, unless a param depends on the activation and the stack mixes activations)
    are estimated together.
    """

    def __init__(self, run_ids: list[str], estimator_specs: list[dict[str, Any]], activation_fn: Activations,
                 labels: np.ndarray, rows: dict[str, slice], splits: list[str], layer_names: list[str],
                 inputs: np.ndarray | None = None):
        self.run_ids, self.labels, self.rows, self.splits, self.layer_names, self.inputs = \
            run_ids, labels, rows, splits, layer_names, inputs
        kinds: dict[str, int] = {}      # filled-in specs as text -> kind
        self.now: list[list[dict[str, Any]]] = []        # per kind, the specs estimated at each epoch
        self.deferred: list[list[dict[str, Any]]] = []   # ... and those waiting for the run's end
        self.kind_of: list[int] = []    # per network
        for fn in [activation_fn] * len(run_ids) if isinstance(activation_fn, str) else activation_fn:
            specs = [{"name": spec["name"], "params": estimators.for_network(spec["name"], spec["params"], fn),
                      "recorded": estimators.canonical(spec["name"], spec["params"])[1]}
                     for spec in estimator_specs]
            text = params_text({"specs": specs})
            if text not in kinds:
                kinds[text] = len(kinds)
                self.now.append([s for s in specs if not estimators.needs_run_range(s["name"], s["params"])])
                self.deferred.append([s for s in specs if estimators.needs_run_range(s["name"], s["params"])])
            self.kind_of.append(kinds[text])
        self.run_range = RunRange(len(run_ids), len(layer_names)) if any(self.deferred) else None

    def at_epoch(self, epoch: int, layers: list[np.ndarray], networks: list[int],
                 known_finite: bool = False) -> list[Outcome]:
        """Per network in `networks` (its layers: per layer [len(networks), n, units]), the rows
        of the estimates that can be made now; the layers are kept for the deferred ones.
        `known_finite`: the caller found every value of the splits' rows finite (`mi_rows`)."""
        if self.run_range is not None:
            self.run_range.add(epoch, layers, networks)
        return self._by_kind(epoch, layers, networks, self.now, known_finite=known_finite)

    def at_end(self, networks: list[int]) -> list[Outcome]:
        """Per network in `networks`, the rows of its deferred estimates for every kept epoch."""
        if self.run_range is None:
            return [None] * len(networks)
        parts: dict[int, list[Outcome]] = {s: [] for s in networks}
        for epoch, layers, logged in self.run_range.kept:
            here = [s for s in networks if s in logged]
            if not here:
                continue
            positions = [logged.index(s) for s in here]
            mine = [values[positions] for values in layers]
            ranges = [np.stack([self.run_range.ranges[layer][s] for s in here]) for layer in range(len(layers))]
            for s, outcome in zip(here, self._by_kind(epoch, mine, here, self.deferred, ranges)):
                parts[s].append(outcome)
        return [joined(parts[s]) for s in networks]

    def _by_kind(self, epoch, layers, networks, specs_of_kind, ranges=None, known_finite=False) -> list[Outcome]:
        """`_rows` of the networks of each kind together, with that kind's specs (None: it has none)."""
        kinds = [self.kind_of[s] for s in networks]
        if len(set(kinds)) == 1:    # one kind: the stack as it is, no copy
            specs = specs_of_kind[kinds[0]]
            return self._rows(epoch, layers, networks, specs, ranges, known_finite) if specs else [None] * len(networks)
        outcomes: list[Outcome] = [None] * len(networks)
        for kind in sorted(set(kinds)):
            positions = [p for p, k in enumerate(kinds) if k == kind]
            if not specs_of_kind[kind]:
                continue
            own_layers = [values[positions] for values in layers]
            own_ranges = None if ranges is None else [r[positions] for r in ranges]
            own = self._rows(epoch, own_layers, [networks[p] for p in positions], specs_of_kind[kind], own_ranges,
                             known_finite)
            for p, outcome in zip(positions, own):
                outcomes[p] = outcome
        return outcomes

    def _rows(self, epoch, layers, networks, specs, ranges=None, known_finite=False) -> list[Outcome]:
        def rows_of(chosen: list[int], chosen_layers, chosen_ranges) -> list[dict[str, list]]:
            return mi_rows([self.run_ids[s] for s in chosen], epoch, chosen_layers, self.labels, self.rows,
                           self.splits, self.layer_names, specs, chosen_ranges, known_finite, self.inputs)
        try:
            return rows_of(networks, layers, ranges)
        except estimators.EstimatorError as error:
            if len(networks) == 1:
                return [error]
        outcomes: list[Outcome] = []
        for position, s in enumerate(networks):       # which network? each alone: only it fails
            own = [values[position:position + 1] for values in layers]
            own_ranges = None if ranges is None else [r[position:position + 1] for r in ranges]
            try:
                outcomes.append(rows_of([s], own, own_ranges)[0])
            except estimators.EstimatorError as error:
                outcomes.append(error)
        return outcomes


def joined(parts: list[Outcome]) -> Outcome:
    """The rows of several parts as one (None if there are none; the first error if any)."""
    errors = [part for part in parts if isinstance(part, Exception)]
    if errors:
        return errors[0]
    parts = [part for part in parts if part]
    if not parts:
        return None
    return {name: [value for part in parts for value in part[name]] for name in parts[0]}


class MiRows:
    """The mi rows of one run (a stack of one network, see StackMiRows), used by `trainer
    estimate` and for a single network: estimate errors are raised."""

    def __init__(self, run_id: str, estimator_specs: list[dict[str, Any]], activation_fn: str,
                 labels: np.ndarray, rows: dict[str, slice], splits: list[str], layer_names: list[str],
                 inputs: np.ndarray | None = None):
        self.stack = StackMiRows([run_id], estimator_specs, activation_fn, labels, rows, splits, layer_names,
                                 inputs)

    def at_epoch(self, epoch: int, layers: list[np.ndarray]) -> dict[str, list] | None:
        """Rows of the estimates that can be made now (None if there are none)."""
        return raised(self.stack.at_epoch(epoch, [values[None] for values in layers], [0])[0])

    def at_end(self) -> dict[str, list] | None:
        """Rows of the deferred estimates for every kept epoch (None if there are none)."""
        return raised(self.stack.at_end([0])[0])


def raised(outcome: Outcome) -> dict[str, list] | None:
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def activation_tables(epoch: int, run_ids: list[str], layers: list[np.ndarray], rows: dict[str, slice],
                      splits: list[str], activation_fns: list[Activations], grids: list[HistogramGrid],
                      layer_names: list[str]) -> tuple[StackRows, StackRows]:
    """The activations (histograms: non-empty bins) and activation_stats (per neuron) rows of a
    stack, network s's run `run_ids[s]`. `layers`: per layer [N, n_inputs, units]; `grids`: per
    layer, the N networks' bins; `activation_fns`: per layer, the networks' activation(s).
    Computed for all networks at once per split (histograms per layer, per-neuron statistics of
    every layer in one pass); a network's rows are in (split, layer) order, then by bin or neuron.
    """
    return activation_rows(epoch, run_ids, layers, rows, splits, activation_fns, grids, layer_names)[:2]


def activation_rows(epoch: int, run_ids: list[str], layers: list[np.ndarray], rows: dict[str, slice],
                    splits: list[str], activation_fns: list[Activations], grids: list[HistogramGrid],
                    layer_names: list[str]) -> tuple[StackRows, StackRows, list[np.ndarray] | None]:
    """`activation_tables`, and per layer each network's number of saturated values over all its inputs
    ([N] int64, what trainer.health.layer_health counts) when some of the splits cover every input
    once (`tiling_splits`), from the per-neuron statistics' counts; None otherwise. Raises
    HistogramOverflow (positions on the stack's network axis) where a network's values have no
    int64 bin index."""
    n_networks = layers[0].shape[0]
    tiling = tiling_splits(rows, splits, layers[0].shape[1])
    saturated_counts = [np.zeros(n_networks, np.int64) for _ in layers] if tiling is not None else None
    histogram: dict[str, list] = {k: [] for k in ("network", "layer", "split", "bin_index", "bin_lo", "bin_hi", "count")}
    stats: dict[str, list] = {k: [] for k in ("layer", "neuron", "split", *STAT_NAMES)}
    for split_code, split in enumerate(splits):
        parts = [values[:, rows[split]] for values in layers]
        # The neurons of consecutive layers that fit in a block together in one pass (layers_neuron_stats).
        split_stats: dict[str, list] = {name: [] for name in (*STAT_NAMES, "saturated")}
        for group in layer_groups([part.size for part in parts]):
            per_neuron: dict[str, list] = {name: [] for name in split_stats}
            for block in network_blocks(n_networks, sum(parts[layer][0].size for layer in group)):
                own_activations = [take(activation_fns[layer], block) for layer in group]
                for name, column in layers_neuron_stats(own_activations, [parts[layer][block] for layer in group]).items():
                    per_neuron[name].append(column)               # each [block, units of the group's layers]
            for name in split_stats:
                split_stats[name].append(np.concatenate(per_neuron[name]))
        for name in STAT_NAMES:
            stats[name].append(np.concatenate(split_stats[name], axis=-1))     # [N, units of every layer]
        units = [part.shape[2] for part in parts]
        if tiling is not None and split in tiling:
            saturated = np.concatenate(split_stats["saturated"], axis=-1)
            for layer, (lo, hi) in enumerate(itertools.pairwise(np.cumsum([0, *units]))):
                saturated_counts[layer] += saturated[:, lo:hi].sum(axis=1)
        # A network's min and max over a layer are those of its neurons' (exact, NaN kept): no pass
        # over the values for the histogram's lowest and highest bins.
        ends = np.cumsum([0, *units])
        for layer, part in enumerate(parts):
            lowest = stats["min"][-1][:, ends[layer]:ends[layer + 1]].min(axis=1)
            highest = stats["max"][-1][:, ends[layer]:ends[layer + 1]].max(axis=1)
            for block in network_blocks(n_networks, part[0].size):
                try:
                    columns = grids[layer].take(block).histograms(part[block], (lowest[block], highest[block]))
                except HistogramOverflow as error:      # the networks' positions in the whole stack
                    raise HistogramOverflow(error.networks + block.start) from None
                histogram["network"].append(columns[0] + block.start)
                for name, column in zip(("bin_index", "bin_lo", "bin_hi", "count"), columns[1:]):
                    histogram[name].append(column)
                histogram["layer"].append(np.full(len(columns[0]), layer))
                histogram["split"].append(np.full(len(columns[0]), split_code))
        stats["layer"].append(np.repeat(np.arange(len(parts)), units))
        stats["neuron"].append(np.concatenate([np.arange(count) for count in units]))
        stats["split"].append(np.full(sum(units), split_code))
    histogram = {k: np.concatenate(v) for k, v in histogram.items()}
    order = np.argsort(histogram["network"], kind="stable")      # per network, in (split, layer) order
    histogram = {k: v[order] for k, v in histogram.items()}
    activations = StackRows.build("activations", {
        **histogram, "run_id": labels(run_ids, histogram["network"]), "epoch": np.full(len(order), epoch),
        "layer_name": labels(layer_names, histogram["layer"]), "split": labels(splits, histogram["split"])},
        histogram["network"], n_networks)
    stats = {k: np.concatenate(v, axis=-1) for k, v in stats.items()}   # shared: [K]; numbers: [N, K]
    n_rows = len(stats["layer"])
    network = np.repeat(np.arange(n_networks), n_rows)
    activation_stats = StackRows.build("activation_stats", {
        "run_id": labels(run_ids, network), "epoch": np.full(len(network), epoch),
        **{k: np.tile(stats[k], n_networks) for k in ("layer", "neuron")},
        "split": labels(splits, np.tile(stats["split"], n_networks)),
        **{name: stats[name].reshape(-1) for name in STAT_NAMES}}, network, n_networks)
    return activations, activation_stats, saturated_counts


def tiling_splits(rows: dict[str, slice], splits: list[str], n_inputs: int) -> list[str] | None:
    """Splits among `splits` whose rows together are every input once ("full" alone, or "train" and
    "test"), or None if there are none."""
    spans = {split: rows[split].indices(n_inputs) for split in splits}
    if any(span == (0, n_inputs, 1) for span in spans.values()):
        return [next(split for split, span in spans.items() if span == (0, n_inputs, 1))]
    parts = sorted((span, split) for split, span in spans.items())
    if parts and all(step == 1 for (_, _, step), _ in parts) and parts[0][0][0] == 0 \
            and parts[-1][0][1] == n_inputs and all(a[0][1] == b[0][0] for a, b in itertools.pairwise(parts)):
        return [split for _, split in parts]
    return None


# Values of one block of networks summarised at a time (see `network_blocks`): 2 MB of float64
# temporaries, within the L2/L3 caches; smaller blocks cost more in calls than they save (2^16 to
# 2^19 measured on the default cohort's layers, bench/RESULTS.md).
BLOCK_VALUES = 2**18


def network_blocks(n_networks: int, values_per_network: int) -> list[slice]:
    """The network axis cut into blocks of about BLOCK_VALUES values: the float64 temporaries
    of a block's histogram and statistics passes (8 bytes a value) then stay in the CPU's cache
    instead of going to memory and back once per pass. Every number is computed per network (row
    by row), so the blocks change none (tested: a stack equals each network alone)."""
    size = max(1, BLOCK_VALUES // max(1, values_per_network))
    return [slice(start, min(start + size, n_networks)) for start in range(0, n_networks, size)]


def layer_groups(values_per_layer: list[int]) -> list[list[int]]:
    """Consecutive layers whose values (of the whole stack) together stay within BLOCK_VALUES, each
    group's per-neuron statistics one pass (a layer beyond it alone). A small stack's layers share
    one pass instead of paying a pass's fixed costs per layer; a large stack's layers each keep
    their own blocks of networks (their values then fill a block alone)."""
    groups: list[list[int]] = [[]]
    total = 0
    for layer, count in enumerate(values_per_layer):
        if groups[-1] and total + count > BLOCK_VALUES:
            groups.append([])
            total = 0
        groups[-1].append(layer)
        total += count
    return groups


class RunRange:
    """Each network's whole-run (min, max) of each layer over every logged epoch and input, with
    those epochs' activations kept until the ranges are final (StackMiRows.at_end)."""

    def __init__(self, n_networks: int, n_layers: int):
        self.ranges = [np.tile([np.inf, -np.inf], (n_networks, 1)) for _ in range(n_layers)]   # per layer [N, 2]
        self.kept: list[tuple[int, list[np.ndarray], list[int]]] = []

    def add(self, epoch: int, layers: list[np.ndarray], networks: list[int]) -> None:
        for ranges, values in zip(self.ranges, layers):
            ranges[networks, 0] = np.minimum(ranges[networks, 0], values.min(axis=(1, 2)))
            ranges[networks, 1] = np.maximum(ranges[networks, 1], values.max(axis=(1, 2)))
        self.kept.append((epoch, layers, list(networks)))
