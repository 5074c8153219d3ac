"""A stack that mixes hidden activations (issue 18): every summary of a network is computed with its
own activation, and equals that network's summary computed alone.

The stacks here are unsorted with a repeated activation (tanh, relu, tanh, sigmoid): three blocks
of one activation and a network whose neighbours have another. Trained end to end:
tests/test_stacked_equal.py (the "mixed" group) and tests/test_stack_independence.py.
"""

import numpy as np
import pytest

from trainer import estimators
from trainer.estimators import estimate
from trainer.activation_facts import (
    TANH_SATURATED_FROM,
    blocks,
    saturated,
    slope_relative,
    take,
)
from trainer.health import LayerHealth, layer_health
from trainer.measure import MiRows, StackMiRows, activation_tables
from trainer.summaries import HistogramGrid

MIXED = ("tanh", "relu", "tanh", "sigmoid")
RUN_IDS = ["a", "b", "c", "d"]
ROWS = {"train": slice(0, 150), "test": slice(150, 200)}


def mixed_layer() -> np.ndarray:
    """[4, 200, 4] float32: each network's values in its activation's range, with saturated values,
    exact zeros for relu and a bound of sigmoid."""
    rng = np.random.default_rng(18)
    pre = rng.normal(scale=3, size=(4, 200, 4))
    values = np.stack([np.tanh(pre[0]), np.maximum(pre[1], 0), np.tanh(pre[2]), 1 / (1 + np.exp(-pre[3]))])
    values = values.astype(np.float32)
    values[0, :2, 0] = [TANH_SATURATED_FROM, np.nextafter(TANH_SATURATED_FROM, np.float32(0))]
    values[3, :3, 1] = [0.0, 1.0, 0.5]
    return values


def test_blocks_are_the_runs_of_consecutive_networks_with_one_activation():
    assert blocks(MIXED, 4) == [("tanh", slice(0, 1)), ("relu", slice(1, 2)), ("tanh", slice(2, 3)),
                                ("sigmoid", slice(3, 4))]
    assert blocks(("relu", "relu", "tanh"), 3) == [("relu", slice(0, 2)), ("tanh", slice(2, 3))]
    assert blocks("elu", 5) == [("elu", slice(0, 5))]
    assert take(MIXED, [3, 0]) == ("sigmoid", "tanh") and take(MIXED, slice(1, 3)) == ("relu", "tanh")
    assert take("relu", [1]) == "relu"
    with pytest.raises(ValueError, match="3 activations for a stack of 4 networks"):
        blocks(MIXED[:3], 4)


def test_saturated_judges_each_network_by_its_own_activation():
    values = mixed_layer()
    mask = saturated(MIXED, values)
    for s, fn in enumerate(MIXED):
        np.testing.assert_array_equal(mask[s], saturated(fn, values[s]))
        # the float64 slope, from its definition, below 1 % of the largest
        np.testing.assert_array_equal(mask[s], slope_relative(fn, values[s].astype(np.float64)) < 0.01)
    assert mask[0, 0, 0] and not mask[0, 1, 0]            # tanh's threshold, on the network that is tanh
    assert mask[1].mean() > 0.3 and not mask[3, 2, 1]     # relu's zeros; sigmoid's 0.5 is not saturated


def test_histogram_grids_of_a_mixed_stack_are_each_networks_own():
    values = mixed_layer()
    grid = HistogramGrid.for_layer(MIXED, values, 30)
    for s, fn in enumerate(MIXED):
        own = HistogramGrid.for_layer(fn, values[s:s + 1], 30)
        assert (grid.origin[s], grid.width[s]) == (own.origin[0], own.width[0])
    assert (grid.origin[0], grid.width[0]) == (-1.0, 2 / 30)      # tanh: fixed bins over [-1, 1]
    assert (grid.origin[3], grid.width[3]) == (0.0, 1 / 30)       # sigmoid: over [0, 1]
    assert grid.origin[1] == 0.0 and grid.width[1] == pytest.approx(np.ptp(values[1]) / 30)   # relu: its spread


def test_histograms_and_neuron_stats_of_a_mixed_stack_equal_each_network_alone():
    values = mixed_layer()
    output = np.random.default_rng(2).dirichlet([1, 1], size=(4, 200)).astype(np.float32)
    functions = [MIXED, ("softmax",) * 4]
    grids = [HistogramGrid.for_layer(fn, layer[:, :20], 30) for fn, layer in zip(functions, (values, output))]
    stacked = activation_tables(5, RUN_IDS, [values, output], ROWS, ["train", "test"], functions, grids, ["h", "o"])
    for s, fn in enumerate(MIXED):
        alone = activation_tables(5, RUN_IDS[s:s + 1], [values[s:s + 1], output[s:s + 1]], ROWS, ["train", "test"],
                                  [fn, "softmax"], [grid.take([s]) for grid in grids], ["h", "o"])
        for mine, own in zip(stacked, alone):
            assert mine.of(s).equals(own.of(0))
        stats = stacked[1].of(s).to_pydict()
        hidden_train = [i for i, (layer, split) in enumerate(zip(stats["layer"], stats["split"]))
                        if layer == 0 and split == "train"]
        expected = (slope_relative(fn, values[s, ROWS["train"]].astype(np.float64)) < 0.01).mean(axis=0)
        np.testing.assert_array_equal(np.array(stats["frac_saturated"])[hidden_train], expected)


def test_layer_health_of_a_mixed_stack_is_each_networks_own():
    values = mixed_layer()
    values[2] = np.where(values[2] > 0, 1.0, -1.0)        # a tanh network at its bounds: saturated
    values[3, :, :] = 0.7                                  # constant: dead
    ones = np.ones(4)
    states = layer_health(MIXED, values, ones, ones)
    assert states == [layer_health(fn, values[s:s + 1], ones[:1], ones[:1])[0] for s, fn in enumerate(MIXED)]
    assert states[2] is LayerHealth.SATURATED and states[3] is LayerHealth.DEAD
    assert layer_health("relu", values[2:3], ones[:1], ones[:1]) == [LayerHealth.ALIVE]   # not saturated for relu


def test_mi_rows_of_a_mixed_stack_equal_each_network_alone_with_its_own_adaptive_low():
    values = mixed_layer()
    output = np.random.default_rng(3).dirichlet([1, 1], size=(4, 200)).astype(np.float32)
    labels = np.random.default_rng(4).integers(0, 2, 200)
    specs = [{"name": "adaptive", "params": {"n_bins": 10}}, {"name": "binning", "params": {"n_bins": 30}},
             {"name": "binning", "params": {"n_bins": 20, "range": "run"}}]
    layers = [values, output]
    stack = StackMiRows(RUN_IDS, specs, MIXED, labels, {"full": slice(0, 200)}, ["full"], ["h", "o"])
    # Two kinds: adaptive's low is -1.000001 for the tanh networks (0 and 2, apart), 0 for relu and sigmoid.
    assert stack.kind_of == [0, 1, 0, 1] and len(stack.now) == len(stack.deferred) == 2
    at_epoch = stack.at_epoch(7, layers, [0, 1, 2, 3])
    at_end = stack.at_end([0, 1, 2, 3])
    lows = set()
    for s, fn in enumerate(MIXED):
        alone = MiRows(RUN_IDS[s], specs, fn, labels, {"full": slice(0, 200)}, ["full"], ["h", "o"])
        assert at_epoch[s] == alone.at_epoch(7, [layer[s] for layer in layers])
        assert at_end[s] == alone.at_end()
        assert set(at_epoch[s]["run_id"]) == {RUN_IDS[s]}
        # each network is estimated with its own activation's low; every row records the spec as
        # configured, so the adaptive rows of tanh and relu runs are one estimator to compare
        low = estimators.for_network("adaptive", {"n_bins": 10}, fn)["low"]
        assert at_epoch[s]["i_xt"][0] == estimate("adaptive", values[s], labels, n_bins=10, low=low)[0]
        assert at_epoch[s]["params"][0] == '{"low": "auto", "n_bins": 10}'
        lows.add(str(low))
    assert lows == {"-1.000001", "0.0"}


@pytest.mark.slow   # trains
def test_tanh_and_relu_runs_of_one_adaptive_spec_are_compared(tmp_path):
    # Chelombiev et al. compare tanh with relu under adaptive binning, each with its activation's
    # lower edge. The rows used to record the filled-in low (-1.000001 against 0), which made them
    # two estimators, each seen in one group only: no comparison was ever made.
    import json

    from explorer.results import ResultStore
    from trainer import cli

    config = tmp_path / "adaptive.json"
    config.write_text(json.dumps({"name": "a", "cohort": "a", "epochs": 30, "n_runs": 2, "architecture": [6, 4],
                                  "log_schedule": {"every": 5}, "mi_splits": ["full"],
                                  "estimators": [{"name": "adaptive", "params": {"n_bins": 30}}],
                                  "grid": {"activation_fn": ["tanh", "relu"]}}))
    assert cli.main(["run", str(config), "--results", str(tmp_path / "r"), "--workers", "1"]) == 0
    store = ResultStore(tmp_path / "r")
    runs = store.runs()
    assert set(store.mi()["params"]) == {'{"low": "auto", "n_bins": 30}'}
    tanh, relu = (runs.loc[runs["activation_fn"] == fn, "group_id"].iloc[0] for fn in ("tanh", "relu"))
    compared = store.compare_groups(tanh, relu)
    adaptive = compared[(compared["estimator"] == "adaptive") & (compared["quantity"] == "final_i_xt")]
    assert sorted(adaptive["layer"]) == [0, 1, 2] and (adaptive["n_a"] == 2).all() and (adaptive["n_b"] == 2).all()
