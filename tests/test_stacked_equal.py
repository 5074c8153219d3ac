"""MI and summaries of a stack of networks computed in one vectorised pass equal each network's own.

A short real training of 3 networks stacked (every estimator, activations saved) writes its tables;
each network's rows are then computed again from its own saved activations alone (a stack of one)
and must match bit for bit. The vectorised binning family is also checked against a port, written
here, of the per-network code it replaced (np.unique over rows, entropies by a dot product): equal
to 1e-12, since only the order of the float sum over counts changed (the stacked code sorts each
network's counts first, which makes a network's entropy independent of the stack around it).
"""

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ibstore.record import Status
from trainer import config, datasets, estimators, measure, saved
from trainer.activation_facts import (
    SATURATION_SLOPE,
    TANH_SATURATED_FROM,
    saturated,
    slope_relative,
)
from trainer.measure import MiRows, StackMiRows, activation_tables, split_rows
from trainer.summaries import STAT_NAMES, HistogramGrid
from trainer.training import run_experiment, run_group

SPECS = [
    {"name": "binning", "params": {"bin_size": 0.07}},
    {"name": "binning", "params": {"n_bins": 30, "range": "layer"}},
    {"name": "binning", "params": {"n_bins": 12, "range": [-0.5, 1.5]}},
    {"name": "binning", "params": {"n_bins": 100, "range": "run"}},
    {"name": "idnns", "params": {}},
    {"name": "adaptive", "params": {}},
    {"name": "quantile", "params": {"n_bins": 10}},
    {"name": "kde_upper", "params": {}},
    {"name": "kde_lower", "params": {}},
    {"name": "edge", "params": {}},
    {"name": "ksg", "params": {}},
]
BINNING_FAMILY = [spec for spec in SPECS if spec["name"] in estimators.STACKED]
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module", params=["relu", "mixed"])
def stacked_group(request, tmp_path_factory):
    """Three networks trained stacked for 3 epochs, every one logged, activations saved: relu
    networks of one experiment, or three experiments of one shape with different activations
    (adaptive's `low` then differs between them, as do the histogram grids and saturation)."""
    root = tmp_path_factory.mktemp("stacked")
    rng = np.random.default_rng(3)
    data = root / "data.npz"
    np.savez(data, x=rng.normal(size=(240, 5)).astype(np.float32), y=rng.integers(0, 3, 240))
    raw = {"name": "eq", "dataset": "file", "dataset_path": str(data), "architecture": [6, 4],
           "activation_fn": "relu", "epochs": 3, "log_schedule": {"every": 1},
           "mi_splits": ["train", "test", "full"], "estimators": SPECS,
           "save_activations": True, "learning_rate": 0.05}
    if request.param == "relu":
        (experiment,) = config.plan(raw)
        statuses = run_experiment(experiment, root, seeds=SEEDS, progress=False)
        configs = {experiment.run_id(seed): experiment.config for seed in SEEDS}
    else:
        members = [(config.plan({**raw, "activation_fn": fn})[0], [seed], False)
                   for fn, seed in zip(("tanh", "relu", "sigmoid"), SEEDS)]
        statuses = run_group(members, root, progress=False)
        configs = {experiment.run_id(seed): experiment.config for experiment, (seed,), _ in members}
    assert {outcome.status for outcome in statuses.values()} == {Status.COMPLETED}
    assert statuses.keys() == configs.keys()
    return root, configs


def table(root, run_id, name, by):
    return pq.read_table(root / "runs" / run_id / f"{name}.parquet").to_pandas().sort_values(by).reset_index(drop=True)


@pytest.mark.slow  # its fixture trains a stacked group
def test_every_table_of_a_stacked_network_equals_its_rows_computed_alone(stacked_group):
    root, configs = stacked_group
    for run_id, cfg in configs.items():
        labels, n_train, layer_names = saved.load_index(root, run_id)
        rows = split_rows(n_train, len(labels))
        epochs = saved.saved_epochs(root, run_id)
        assert epochs == [0, 1, 2, 3]
        layers = {epoch: saved.load_epoch(root, run_id, epoch) for epoch in epochs}
        inputs = datasets.load_data(cfg).full.x    # EDGE hashes the inputs, as the training loop gives them
        alone = MiRows(run_id, cfg.estimators, cfg.activation_fn, labels, rows, cfg.mi_splits, layer_names, inputs)
        parts = [alone.at_epoch(epoch, layers[epoch]) for epoch in epochs] + [alone.at_end()]
        expected = {k: [v for part in parts if part for v in part[k]] for k in parts[0]}
        mi_keys = ["estimator", "params", "epoch", "layer", "split"]
        written = table(root, run_id, "mi", mi_keys)
        ours = pd.DataFrame(expected).sort_values(mi_keys).reset_index(drop=True)
        assert len(written) == len(ours) == len(epochs) * len(SPECS) * 3 * len(layer_names)
        assert set(written.estimator) == {spec["name"] for spec in SPECS}
        for column in ("i_xt", "i_yt", "h_t_bits", "layer_name", "units"):
            np.testing.assert_array_equal(written[column].to_numpy(), ours[column].to_numpy(), err_msg=column)

        functions = [cfg.activation_fn] * (len(layer_names) - 1) + ["softmax"]
        grids = [HistogramGrid.for_layer(fn, values[None], cfg.histogram_bins)
                 for fn, values in zip(functions, layers[0])]
        histograms, stats = [], []
        for epoch in epochs:
            histogram, per_neuron = activation_tables(epoch, [run_id], [v[None] for v in layers[epoch]], rows,
                                                      cfg.mi_splits, functions, grids, layer_names)
            histograms.append(histogram.of(0).to_pandas())
            stats.append(per_neuron.of(0).to_pandas())
        for name, frames, keys in (("activations", histograms, ["epoch", "split", "layer", "bin_index"]),
                                   ("activation_stats", stats, ["epoch", "split", "layer", "neuron"])):
            written = table(root, run_id, name, keys)
            ours = pd.concat(frames).sort_values(keys).reset_index(drop=True)
            assert len(written) == len(ours) > 0, name
            for column in ours.columns:
                np.testing.assert_array_equal(written[column].to_numpy(), ours[column].to_numpy(),
                                              err_msg=f"{name}.{column}")


# --- the vectorised binning family against a port of the per-network code it replaced -------------------


def old_entropy_bits(counts):
    counts = counts[counts > 0]
    total = counts.sum()
    return float(max(np.log2(total) - counts @ np.log2(counts) / total, 0.0))


def old_plugin_mi_bits(codes, labels):
    """The per-network estimate as it was: rows numbered by np.unique(axis=0), bincounts, dot products."""
    symbols = np.unique(codes, axis=0, return_inverse=True)[1].reshape(-1)
    classes = np.unique(labels, return_inverse=True)[1].reshape(-1)
    n_classes = classes.max() + 1
    h_t = old_entropy_bits(np.bincount(symbols))
    h_y = old_entropy_bits(np.bincount(classes, minlength=n_classes))
    h_ty = old_entropy_bits(np.bincount(symbols * n_classes + classes))
    return h_t, h_t + h_y - h_ty


def old_codes(name, params, t):
    """One network's bin codes as the per-network estimators made them (t float64 [n, units])."""
    if name == "idnns":
        edges = np.linspace(-1, 1, params["n_edges"]).astype(np.float32)
        codes = np.digitize(t, edges) - 1
        codes[codes < 0] = params["n_edges"] - 1
        return codes
    if name == "quantile":
        ordered = np.sort(t, axis=None)
        return np.searchsorted(ordered[np.arange(1, params["n_bins"]) * ordered.size // params["n_bins"]], t,
                               side="right")
    if name == "adaptive":
        low = float(t.min()) if params["low"] == "min" else float(params["low"])
        distinct = np.unique(t)
        distinct = distinct[distinct != low]
        edges = [low]
        if distinct.size:
            picks = (np.arange(params["n_bins"]) * (distinct.size / params["n_bins"])).astype(np.int64)
            edges += [*distinct[picks], distinct[-1]]
        return np.digitize(t, np.asarray(edges))
    if "bin_size" in params:
        return np.floor(t.astype(np.float32) / np.float32(params["bin_size"]))
    low, high = (float(t.min()), float(t.max())) if params["range"] == "layer" else params["range"]
    if high <= low:
        return np.zeros(t.shape, np.int64)
    return np.clip(np.floor((t - low) * (params["n_bins"] / (high - low))), 0, params["n_bins"] - 1)


def stacks():
    """Stacks of 3 networks' layers that exercise every path: relu with dead units and exact zeros,
    tanh-like values, a dead and a constant network, and a wide layer whose code space passes 2^53 (byte keys)."""
    rng = np.random.default_rng(21)
    relu = np.maximum(rng.normal(size=(3, 300, 5)), 0).astype(np.float32)
    relu[1, :, 2] = 0.0
    tanh = np.tanh(rng.normal(scale=2, size=(3, 300, 4))).astype(np.float32)
    constant = relu.copy()
    constant[1] = 0.0            # a dead network: adaptive has no distinct value above low = 0
    constant[2] = 0.25
    wide = np.abs(rng.normal(scale=30, size=(3, 300, 40))).astype(np.float32)
    return {"relu": relu, "tanh": tanh, "constant": constant, "wide": wide}


@pytest.mark.parametrize("spec", BINNING_FAMILY + [{"name": "adaptive", "params": {"low": "min", "n_bins": 7}}],
                         ids=lambda spec: f"{spec['name']}{spec['params']}")
@pytest.mark.parametrize("kind", ["relu", "tanh", "constant", "wide"])
def test_vectorised_binning_family_equals_the_per_network_code_it_replaced(spec, kind):
    values = stacks()[kind]
    labels = np.random.default_rng(5).integers(0, 3, values.shape[1])
    activation = "tanh" if kind == "tanh" else "relu"
    params = estimators.for_network(spec["name"], spec["params"], activation)
    run_ranges = None
    if params.get("range") == "run":
        run_ranges = np.stack([values.min(axis=(1, 2)) - 0.5, values.max(axis=(1, 2))], axis=1).astype(np.float64)
    first, i_yt = estimators.estimate_stacked(spec["name"], values, labels, run_ranges=run_ranges, **params)
    assert first.shape == i_yt.shape == (3,)
    for s in range(3):
        own = dict(params)
        if run_ranges is not None:
            own["range"] = list(run_ranges[s])
        expected = old_plugin_mi_bits(old_codes(spec["name"], own, values[s].astype(np.float64)), labels)
        assert (first[s], i_yt[s]) == pytest.approx(expected, abs=1e-12, rel=0), s
        alone = estimators.estimate_stacked(spec["name"], values[s:s + 1], labels,
                                            run_ranges=None if run_ranges is None else run_ranges[s:s + 1], **params)
        assert (alone[0][0], alone[1][0]) == (first[s], i_yt[s])     # bit for bit, whatever the stack
    if kind == "constant":
        assert first[1] == i_yt[1] == first[2] == i_yt[2] == 0.0
    assert np.all(first <= math.log2(values.shape[1]) + 1e-12)


def test_a_network_with_nan_activations_fails_alone_in_the_stack():
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 2, 50)
    layers = [np.tanh(rng.normal(size=(3, 50, 4))), rng.uniform(size=(3, 50, 2))]
    layers[0][1, 7, 0] = np.nan
    mi = StackMiRows(["a", "b", "c"], BINNING_FAMILY, "tanh", labels, {"full": slice(0, 50)}, ["full"], ["h", "o"])
    outcomes = mi.at_epoch(4, layers, [0, 1, 2])
    assert isinstance(outcomes[1], estimators.EstimatorError) and "1 NaN" in str(outcomes[1])
    for s in (0, 2):
        alone = MiRows("x", BINNING_FAMILY, "tanh", labels, {"full": slice(0, 50)}, ["full"], ["h", "o"])
        expected = alone.at_epoch(4, [values[s] for values in layers])
        assert outcomes[s]["i_xt"] == expected["i_xt"] and outcomes[s]["i_yt"] == expected["i_yt"]
        assert set(outcomes[s]["run_id"]) == {"abc"[s]}
    (ended,) = mi.at_end([0])
    assert len(ended["epoch"]) == 2 and set(ended["params"]) == {'{"n_bins": 100, "range": "run"}'}


# --- histograms, per-neuron statistics and saturation against the per-network code they replaced ----------


def old_histogram(values, origin, width):
    """One network's non-empty bins as the per-network code made them: (bin_index, count)."""
    index = np.floor((values.astype(np.float64).ravel() - origin) / width).astype(np.int64)
    return np.unique(index, return_counts=True)


def old_saturated(activation_fn, values):
    return slope_relative(activation_fn, values.astype(np.float64)) < SATURATION_SLOPE


def summary_stacks():
    """relu with exact zeros and a dead unit, tanh with values on both sides of its saturation
    threshold and exactly on bin edges, a softmax, and a relu network spread over far more bins
    than it has values (the sort path)."""
    rng = np.random.default_rng(34)
    relu = np.maximum(rng.normal(size=(3, 200, 5)), 0).astype(np.float32)
    relu[0, :, 1] = 0.0
    tanh = np.tanh(rng.normal(scale=3, size=(3, 200, 4))).astype(np.float32)
    edge = np.nextafter(TANH_SATURATED_FROM, np.float32(0))
    tanh[:, :6, 0] = [TANH_SATURATED_FROM, -TANH_SATURATED_FROM, edge, -edge, 1.0, -1.0]
    tanh[:, 6:10, 1] = np.float32(-1 + 2 / 30 * 7)          # on a bin edge of the fixed tanh grid
    softmax = rng.dirichlet([1, 1], size=(3, 200)).astype(np.float32)
    spread = np.abs(rng.standard_cauchy(size=(3, 200, 3))).astype(np.float32) * 1e4
    return {"relu": relu, "tanh": tanh, "softmax": softmax, "spread": spread}


RUN_IDS = ["r0", "r1", "r2"]


def network_rows(tables, position):
    """One network's rows of each StackRows, as numpy columns."""
    return tuple({name: np.array(values) for name, values in rows.of(position).to_pydict().items()}
                 for rows in tables)


@pytest.mark.parametrize("kind", ["relu", "tanh", "softmax", "spread"])
def test_histograms_and_neuron_stats_of_a_stack_equal_each_network_alone_and_the_old_code(kind):
    values = summary_stacks()[kind]
    function = "relu" if kind == "spread" else kind
    grid = HistogramGrid.for_layer(function, values[:, :20], 30)      # grid from "epoch 0", then bins added
    rows = {"train": slice(0, 150), "test": slice(150, 200)}
    stacked = activation_tables(3, RUN_IDS, [values], rows, ["train", "test"], [function], [grid], ["dense"])
    for s in range(3):
        alone = network_rows(activation_tables(3, RUN_IDS[s:s + 1], [values[s:s + 1]], rows, ["train", "test"],
                                               [function], [grid.take([s])], ["dense"]), 0)
        for mine, own in zip(network_rows(stacked, s), alone):
            assert mine.keys() == own.keys()
            for name in mine:
                np.testing.assert_array_equal(mine[name], own[name], err_msg=name)
        histogram, stats = network_rows(stacked, s)
        assert set(histogram["run_id"]) == set(stats["run_id"]) == {RUN_IDS[s]}
        assert set(histogram["layer_name"]) == {"dense"} and set(histogram["epoch"]) == {3}
        for split, part in rows.items():
            here = histogram["split"] == split
            bins, counts = old_histogram(values[s, part], grid.origin[s], grid.width[s])
            np.testing.assert_array_equal(histogram["bin_index"][here], bins)
            np.testing.assert_array_equal(histogram["count"][here], counts)
            np.testing.assert_array_equal(histogram["bin_lo"][here], grid.origin[s] + bins * grid.width[s])
            mine = {name: stats[name][stats["split"] == split] for name in STAT_NAMES}
            own = values[s, part]
            by_neuron = np.ascontiguousarray(own.T)      # as the old code summed: along each neuron's values
            np.testing.assert_array_equal(mine["mean"], by_neuron.mean(axis=1, dtype=np.float64))
            np.testing.assert_array_equal(mine["std"], by_neuron.std(axis=1, dtype=np.float64))
            np.testing.assert_array_equal(mine["frac_saturated"], old_saturated(function, own).mean(axis=0))
            np.testing.assert_array_equal(mine["frac_zero"], (own == 0).mean(axis=0))


@pytest.mark.parametrize("kind", ["relu", "tanh", "softmax", "spread"])
def test_summaries_cut_into_blocks_of_networks_equal_the_whole_stack_at_once(kind, monkeypatch):
    values = summary_stacks()[kind]
    function = "relu" if kind == "spread" else kind
    grid = HistogramGrid.for_layer(function, values[:, :20], 30)
    rows = {"train": slice(0, 150), "test": slice(150, 200)}
    monkeypatch.setattr(measure, "BLOCK_VALUES", 2**40)
    whole = activation_tables(3, RUN_IDS, [values], rows, ["train", "test"], [function], [grid], ["dense"])
    monkeypatch.setattr(measure, "BLOCK_VALUES", 150 * values.shape[2])    # one network a block
    assert measure.network_blocks(3, 150 * values.shape[2]) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    blocked = activation_tables(3, RUN_IDS, [values], rows, ["train", "test"], [function], [grid], ["dense"])
    for mine, own in zip(blocked, whole):
        assert mine.table.equals(own.table)
        np.testing.assert_array_equal(mine.bounds, own.bounds)


@pytest.mark.parametrize("function", ["relu", "tanh"])
def test_saturated_decided_on_float32_values_equals_the_float64_slope(function):
    rng = np.random.default_rng(2)
    edge = TANH_SATURATED_FROM
    values = np.concatenate([rng.uniform(-1.5, 1.5, 100_000), [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -1.0],
                             [np.nextafter(edge, np.float32(0)), edge, np.nextafter(edge, np.float32(2))]])
    values = np.concatenate([values, -values]).astype(np.float32)
    if function == "relu":
        values = np.where(values < 0, 0, values).astype(np.float32)
    np.testing.assert_array_equal(saturated(function, values), old_saturated(function, values))
    if function == "tanh":    # the threshold is the float32 where 1 - a^2 first drops below 1 % (|a| > 0.99499)
        assert old_saturated("tanh", np.array([edge])) and not old_saturated("tanh", np.array([np.nextafter(edge, 0)]))
        assert 0.99498 < edge < 0.995
