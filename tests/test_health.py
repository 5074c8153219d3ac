"""Layer health and the dead_network / diverged flags (trainer.health), alone and as the trainer records them."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from trainer.health import LayerHealth, NetworkHealth, layer_health

ALIVE, SATURATED, DEAD = LayerHealth.ALIVE, LayerHealth.SATURATED, LayerHealth.DEAD
rng = np.random.default_rng(0)


# --- one layer, hand-made ----------------------------------------------------------------------------------


def test_a_layer_identical_on_every_input_is_dead_even_with_a_gradient():
    # tanh with initial bias 10 in float32: every value is exactly 1.0, whatever the (tiny) gradient says.
    values = np.ones((1, 64, 5), np.float32)
    assert layer_health("tanh", values, np.array([1e-19]), np.array([1e-19])) == [DEAD]
    # the same for a relu layer that is 0 on every input, and for one constant but non-zero
    assert layer_health("relu", np.zeros((1, 64, 5)), np.array([0.3]), np.array([0.1])) == [DEAD]
    assert layer_health("relu", np.full((1, 64, 5), 0.7), np.array([0.3]), np.array([0.1])) == [DEAD]


def test_a_layer_is_dead_exactly_where_every_input_equals_the_first():
    """The constant test compares in full only the networks whose last input equals the first: the
    same states as comparing every network in full (the code before), including a network equal on
    its first and last inputs but not between, NaN (never constant), -0.0 against 0.0 (equal), and a
    layer of one input."""
    def every_value_compared(values):
        flat = values.reshape(len(values), values.shape[1], -1)
        return list(np.all(flat == flat[:, :1], axis=(1, 2)))

    values = rng.normal(size=(7, 50, 3)).astype(np.float32)
    values[1] = 0.25                                         # constant
    values[2] = values[2, :1]
    values[2, 20, 1] = 0.5                                   # first == last, one value between differs
    values[3] = 0.0
    values[3, 10:20] = -0.0                                  # constant: -0.0 == 0.0
    values[4] = np.nan                                       # NaN everywhere: not constant
    values[5] = values[5, :1]
    values[5, -1] = values[5, 0]                             # constant, built another way
    expected = every_value_compared(values)
    assert expected == [False, True, False, True, False, True, False]
    states = layer_health("tanh", values, np.ones(7), np.ones(7))
    assert [state is DEAD for state in states] == expected
    one_input = values[:, :1]
    assert every_value_compared(one_input) == [True, True, True, True, False, True, True]
    assert [s is DEAD for s in layer_health("tanh", one_input, np.ones(7), np.ones(7))] == \
        every_value_compared(one_input)


def test_a_layer_with_exactly_zero_kernel_gradient_is_dead():
    values = rng.normal(size=(2, 64, 5))
    assert layer_health("tanh", values, np.array([0.0, 0.0]), np.array([0.0, 1e-30])) == [DEAD, ALIVE]


def test_saturation_counts_values_at_the_bounds():
    # tanh: slope 1 - a^2 < 0.01 exactly where |a| > sqrt(0.99) = 0.994987...
    n = 1000
    varied = np.linspace(0.996, 0.9999, n)          # all saturated, all different
    assert layer_health("tanh", varied[None, :, None], np.ones(1), np.ones(1)) == [SATURATED]
    eleven_inside = varied.copy()
    eleven_inside[:11] = 0.99                        # 98.9 % at the bound: below 99 %
    assert layer_health("tanh", eleven_inside[None, :, None], np.ones(1), np.ones(1)) == [ALIVE]
    ten_inside = varied.copy()
    ten_inside[:10] = -0.5                           # exactly 99 %
    assert layer_health("tanh", ten_inside[None, :, None], np.ones(1), np.ones(1)) == [SATURATED]
    # an unbounded activation never saturates
    assert layer_health("leaky_relu", varied[None, :, None], np.ones(1), np.ones(1)) == [ALIVE]
    # relu's bound is 0: a layer of 995 zeros and 5 positive values is saturated, not dead
    mostly_zero = np.zeros(n)
    mostly_zero[:5] = [1, 2, 3, 4, 5]
    assert layer_health("relu", mostly_zero[None, :, None], np.ones(1), np.ones(1)) == [SATURATED]


def test_saturated_states_equal_the_mean_of_the_mask_network_by_network():
    """The saturated fraction is counted on packed bits: the same states as np.mean of each network's
    bool mask (the computation it replaces), for float32 tanh and float64 sigmoid layers whose
    fractions sit just below, at and just above 99 %, and a value count that is not a multiple of 8."""
    from trainer.activation_facts import saturated
    from trainer.health import SATURATED_FRACTION
    for activation, dtype, at_bound in (("tanh", np.float32, 0.9999), ("sigmoid", np.float64, 1.0 - 1e-9)):
        n_networks, n, units = 40, 125, 5                # 625 values a network
        values = np.full((n_networks, n, units), at_bound, dtype)
        inside = rng.integers(1, 13, n_networks)         # 1..12 values off the bound (none: dead)
        inside[:3] = [6, 7, 5]                           # 99.04 %, 98.88 %, 99.2 %
        for s, k in enumerate(inside):
            values[s].reshape(-1)[rng.choice(n * units, k, replace=False)] = 0.25
        expected = [saturated(activation, v).mean() >= SATURATED_FRACTION for v in values]
        assert 0 < sum(expected) < n_networks
        states = layer_health(activation, values, np.ones(n_networks), np.ones(n_networks))
        assert [state is SATURATED for state in states] == expected


# --- the network flags, hand-made ---------------------------------------------------------------------------


def observe(health: NetworkHealth, epoch: int, states, train_accuracy: float = 0.6, loss: float = 0.69) -> None:
    health.observe_metrics(loss, loss, train_accuracy)
    health.observe_layers(epoch, states)


def test_epoch_zero_does_not_count():
    health = NetworkHealth()
    observe(health, 0, [DEAD, DEAD])
    assert health.flags() == {"dead_network": False, "saturated_network": False, "dead_layers": [], "diverged": False}


def test_the_first_layer_alone_dead_is_a_dead_network():
    # Only layer 0 is dead (0 on every input); the layers above are alive and the softmax learns the
    # class prior: nothing it learns depends on the input. The former rule (every layer's gradient 0) missed it.
    health = NetworkHealth()
    for epoch in (1, 2, 5):
        observe(health, epoch, [DEAD, ALIVE, SATURATED])
    assert health.flags() == {"dead_network": True, "saturated_network": False, "dead_layers": [0], "diverged": False}
    assert health.dead_since == 1


def test_dead_from_some_epoch_to_the_end_and_not_before():
    health = NetworkHealth()
    timeline = {1: [ALIVE, ALIVE], 2: [ALIVE, DEAD], 3: [ALIVE, ALIVE], 4: [DEAD, ALIVE], 6: [DEAD, DEAD]}
    for epoch, states in timeline.items():
        observe(health, epoch, states)
    assert health.flags()["dead_network"] is True and health.flags()["dead_layers"] == [0, 1]
    assert health.dead_since == 4                   # the dead layer at epoch 2 came back at epoch 3
    observe(health, 7, [SATURATED, ALIVE])          # a layer that comes back: not dead
    assert health.flags()["dead_network"] is False and health.dead_since is None


def test_a_layer_saturated_or_dead_to_the_end_is_a_saturated_network_unless_dead():
    # What a tanh network with initial bias 5 does: its first layer saturated at every logged epoch,
    # its last hidden one turning between dead, saturated and alive. Never dead at every epoch from
    # some epoch on, so dead_network misses it; at chance all the same.
    health = NetworkHealth()
    timeline = {1: [SATURATED, DEAD], 2: [SATURATED, ALIVE], 3: [SATURATED, DEAD], 5: [SATURATED, SATURATED]}
    for epoch, states in timeline.items():
        observe(health, epoch, states, train_accuracy=0.52)
    assert (health.flags()["dead_network"], health.flags()["saturated_network"]) == (False, True)
    assert health.stuck_since == 1
    observe(health, 6, [ALIVE, ALIVE])               # every layer back: neither
    assert health.flags()["saturated_network"] is False and health.stuck_since is None
    observe(health, 7, [ALIVE, SATURATED])           # saturated from epoch 7 to the end
    assert health.flags()["saturated_network"] is True and health.stuck_since == 7
    # a dead network is dead, not saturated: the flags never both hold
    observe(health, 8, [DEAD, SATURATED])
    assert (health.flags()["dead_network"], health.flags()["saturated_network"]) == (True, False)
    # a network that fits its training data exactly is neither
    observe(health, 9, [ALIVE, SATURATED], train_accuracy=1.0)
    assert (health.flags()["dead_network"], health.flags()["saturated_network"]) == (False, False)


def test_a_checkpoint_keeps_when_the_layers_saturated():
    health = NetworkHealth()
    for epoch in (1, 2):
        observe(health, epoch, [SATURATED, ALIVE])
    resumed = NetworkHealth.restored(health.state())
    observe(resumed, 3, [SATURATED, ALIVE])
    assert resumed.stuck_since == 1 and resumed.flags()["saturated_network"] is True
    # a checkpoint written before the flag existed: judged from the resumed epochs on
    older = {key: value for key, value in health.state().items() if key != "stuck_since"}
    assert NetworkHealth.restored(older).stuck_since is None


def test_a_fitted_network_is_not_dead():
    # Every training example classified correctly: the (clipped) loss gives no gradient, and that is success.
    health = NetworkHealth()
    observe(health, 1, [ALIVE, ALIVE], train_accuracy=0.9)
    observe(health, 2, [DEAD, DEAD], train_accuracy=1.0, loss=1.2e-7)
    assert health.flags()["dead_network"] is False


def test_non_finite_loss_is_diverged():
    health = NetworkHealth()
    health.observe_metrics(0.5, math.inf, 0.5)
    health.observe_layers(1, [ALIVE])
    assert health.flags() == {"dead_network": False, "saturated_network": False, "dead_layers": [], "diverged": True}


# --- as the trainer records them ---------------------------------------------------------------------------


def planned(**config) -> list:
    """The experiments of tiny harmonics runs (every epoch logged)."""
    from trainer import config as config_module

    return config_module.plan({"name": "health", "architecture": [10, 7, 5, 4, 3], "epochs": 3,
                               "log_schedule": {"every": 1},
                               "estimators": [{"name": "binning", "params": {"bin_size": 0.07}}], **config})


def trained(root, experiments) -> dict[str, dict]:
    """`experiments` (of one shape) trained as one stack: each run's run.json record with its gradient
    rows, by run id."""
    from trainer.training import run_group

    statuses = run_group([(e, list(e.seeds), False) for e in experiments], root, progress=False)
    records = {}
    for run_id in statuses:
        folder = root / "runs" / run_id
        record = json.loads((folder / "run.json").read_text())
        parts = [pd.read_parquet(p) for p in folder.glob("gradients*.parquet")]
        record["gradient_rows"] = pd.concat(parts) if parts else None
        records[run_id] = record
    return records


def train(tmp_path, **config) -> list[dict]:
    """Tiny harmonics runs (every epoch logged) trained together; their records (`trained`)."""
    return list(trained(tmp_path, planned(**config)).values())


# The cases of the default shape and length, trained as one stack: one set-up and compilation instead
# of one per test. Stacking leaves each network's numbers as alone (tests/test_stack_independence.py,
# on live networks; tests/test_training.py, a diverging one beside a steady one); for these dead and
# saturated ones every table was checked equal, bit for bit, to each case trained alone when they
# were first stacked.
ONE_STACK = {
    "tanh, large bias": {"activation_fn": "tanh", "grid": {"initial_bias": [5, 10]}},
    "relu, negative bias": {"activation_fn": "relu", "grid": {"initial_bias": [-1, -0.5]}},
    "relu, bias 0.5 at lr 0.1": {"activation_fn": "relu", "initial_bias": 0.5, "learning_rate": 0.1, "seed": 1},
    "relu, the notebook's cohort": {"activation_fn": "relu", "grid": {"initial_bias": [0, 0.2, 0.5, 1, 2, 5]}},
}


@pytest.fixture(scope="module")
def one_stack(tmp_path_factory) -> tuple:
    """ONE_STACK trained: (its root, {case: its records})."""
    root = tmp_path_factory.mktemp("health")
    cases = {case: planned(**config) for case, config in ONE_STACK.items()}
    records = trained(root, [e for experiments in cases.values() for e in experiments])
    assert len(records) == 11
    return root, {case: [records[e.run_id(seed)] for e in experiments for seed in e.seeds]
                  for case, experiments in cases.items()}


@pytest.mark.slow
def test_tanh_with_a_large_initial_bias_is_flagged_dead(one_stack):
    # The case: hidden gradients ~1e-19 or exactly 0, I(X;T) = 0, but the softmax keeps learning.
    records = one_stack[1]["tanh, large bias"]
    assert sorted(r["config"]["initial_bias"] for r in records) == [5, 10]
    for record in records:
        rows = record["gradient_rows"]
        last = rows[rows.epoch == 3].sort_values("layer")
        assert last["grad_mean_norm"].iloc[-1] > 0                  # the output layer's gradient is not 0
        assert (record["status"], record["dead_network"], record["diverged"]) == ("completed", True, False)
        assert record["dead_layers"] and record["dead_layers"] == \
            [int(layer) for layer, state in zip(last.layer, last.health) if state == "dead"]
        assert pd.isna(last["health"].iloc[-1])                     # no state for the output layer


@pytest.mark.slow
def test_tanh_networks_stuck_at_a_bound_are_flagged_saturated_when_not_dead(tmp_path):
    # tanh, initial bias 5, 40 epochs: every seed stays at chance. Most are dead; a few have their last
    # hidden layer turn between dead and saturated, so they are not dead, and their first layer sits at
    # tanh's bound at every logged epoch: saturated. The two flags never hold together. Which seeds are
    # saturated is the CPU's: seed 3 of 4 on one machine, seeds 4 and 7 of 8 on another (float32
    # rounding decides where a unit at tanh's bound moves), so 8 seeds, and the rule, not a seed.
    from ibstore.index import scan
    from ibstore.sandbox import run_query

    records = sorted(train(tmp_path, activation_fn="tanh", initial_bias=5, epochs=40, n_runs=8),
                     key=lambda record: record["seed"])
    assert all(r["dead_network"] != r["saturated_network"] for r in records)      # one flag each
    saturated = [r for r in records if r["saturated_network"]]
    assert saturated and len(saturated) < len(records)
    assert all(r["final_test_accuracy"] < 0.51 for r in records)
    for record in saturated:
        rows = record["gradient_rows"]
        assert set(rows.loc[rows.layer == 0, "health"]) == {"saturated"}
        hidden = rows[rows.layer < 5]
        assert "dead" in set(hidden["health"])               # dead on and off, somewhere: so not dead at the end
        assert "dead" not in set(hidden.loc[hidden.epoch == hidden.epoch.max(), "health"])
    runs = run_query(scan(tmp_path), "SELECT seed, saturated_network FROM runs ORDER BY seed")
    assert list(runs["saturated_network"]) == [r["saturated_network"] for r in records]
    # The statistics keep a saturated run. Its tanh units in dense_3 and dense_4 sit near 1 with a range
    # over the inputs of 0 to 4 float32 steps (2^-24 each just below 1; 8 on an AMD EPYC) from epoch to epoch, within
    # phases.UNIT_ROUNDING, and I(X;T) is 0 at every epoch: that
    # flicker is no unit dying (a sceptic's: stop 60 had named these layers as such), and there is no fall
    from explorer import cohort_tables

    units = run_query(scan(tmp_path), "SELECT a.layer, a.max - a.min AS spread, abs(a.max) AS size "
                                      "FROM activation_stats a JOIN runs r USING (run_id) "
                                      f"WHERE r.seed = {saturated[0]['seed']} AND a.split = 'train' "
                                      "AND a.layer IN (3, 4)")
    from ibstore.phases import UNIT_ROUNDING
    assert (units["spread"] > 0).any() and (units["spread"] <= UNIT_ROUNDING / 2).all(), units.max()   # <= 8 steps
    phases = run_query(scan(tmp_path), "SELECT * FROM phases WHERE split = 'train'")
    kept = phases[phases["dead_network"] == False]     # noqa: E712 (a column of booleans)
    assert (kept["units_died"] == 0).all() and (kept["compression_bits"] == 0).all()
    assert cohort_tables.units_died_note(phases, {phases["group_id"].iloc[0]: "initial_bias=5"}) is None


@pytest.mark.slow
def test_relu_with_a_negative_initial_bias_is_flagged_dead(one_stack):
    from ibstore.sandbox import run_query
    from ibstore.index import scan

    root, cases = one_stack
    records = cases["relu, negative bias"]
    assert len(records) == 2
    for record in records:
        assert (record["dead_network"], record["diverged"]) == (True, False)
        rows = record["gradient_rows"]
        assert set(rows.loc[rows.layer < 5, "health"]) == {"dead"}
    # in SQL: the flags, the dead layers and the loss on runs; the states on gradients (of these runs)
    these = "run_id IN (" + ", ".join(f"'{record['run_id']}'" for record in records) + ")"
    runs = run_query(scan(root), f"SELECT dead_network, dead_layers, loss FROM runs WHERE {these}")
    assert list(runs["dead_network"]) == [True, True] and set(runs["loss"]) == {"keras_clipped"}
    assert [list(layers) for layers in runs["dead_layers"]] == [[0, 1, 2, 3, 4]] * 2
    states = run_query(scan(root), "SELECT coalesce(health, 'NULL') AS health, count(*) AS n FROM gradients "
                                   f"WHERE {these} GROUP BY ALL ORDER BY ALL")
    assert dict(zip(states["health"], states["n"])) == {"dead": 2 * 3 * 5, "NULL": 2 * 3}   # NULL: output layer


@pytest.mark.slow
def test_a_relu_network_with_one_dead_hidden_layer_and_a_learning_output_is_flagged_dead(one_stack):
    # relu, bias 0.5, Adam at lr 0.1, seed 1: by epoch 3 hidden layer 3 is 0 on every input, layer 4 is a
    # constant above 0, and the output kernel's gradient is not 0 (the former rule called it alive).
    root, cases = one_stack
    record, = cases["relu, bias 0.5 at lr 0.1"]
    rows = record["gradient_rows"]
    last = rows[rows.epoch == 3].sort_values("layer")
    assert last["grad_mean_norm"].iloc[-1] > 0
    stats = pd.concat(pd.read_parquet(p) for p in (root / "runs" / record["run_id"]).glob("activation_stats*"))
    top = stats[(stats.epoch == 3) & (stats.split == "train")].groupby("layer")["max"].max()
    assert top[3] == 0 and top[4] > 0
    assert record["dead_network"] is True and 3 in record["dead_layers"]


@pytest.mark.slow
def test_a_relu_network_whose_first_layer_alone_dies_is_flagged_dead_and_the_layer_named(tmp_path):
    # The relu case in a fresh training: relu 2-5-4, initial bias 1, Adam at lr 0.3, seed 4 learns in
    # epoch 1, then its first layer is 0 on every input. Only that layer is zero: the layers above carry a
    # constant (their input is constant), and layer 2's and the output's kernels still get a gradient
    # (learning the class prior), so neither the former rule (every gradient 0) nor "every hidden gradient
    # 0" would call it dead. Found by a search over architectures, biases, rates and seeds (report of
    # issue 15); the first layer rarely dies alone in the default 10-7-5-4-3 net.
    from ibstore.index import scan
    from ibstore.sandbox import run_query

    record, = train(tmp_path, activation_fn="relu", architecture=[2, 5, 4], initial_bias=1.0, learning_rate=0.3,
                    seed=4)
    gradients = record["gradient_rows"].set_index(["epoch", "layer"]).sort_index()
    assert gradients.loc[(1, 0), "health"] != "dead" and gradients.loc[(1, 0), "grad_mean_norm"] > 0
    assert gradients.loc[(3, 2), "grad_mean_norm"] > 0 and gradients.loc[(3, 3), "grad_mean_norm"] > 0
    stats = pd.concat(pd.read_parquet(p) for p in (tmp_path / "runs" / record["run_id"]).glob("activation_stats*"))
    last = stats[stats.epoch == 3]
    top = last.groupby("layer")["max"].max()
    assert top[0] == 0 and top[1] > 0 and top[2] > 0                  # the first layer alone is 0 on every input
    above = last[last.layer.isin([1, 2])]
    assert (above["min"] == above["max"]).all()                      # ... and the layers above are constant
    assert (record["status"], record["dead_network"], record["diverged"]) == ("completed", True, False)
    assert record["dead_layers"] == [0, 1, 2]
    # in SQL, by name
    named = run_query(scan(tmp_path), "SELECT g.layer_name FROM runs r, unnest(r.dead_layers) AS d(layer) "
                                      "JOIN gradients g ON g.run_id = r.run_id AND g.layer = d.layer "
                                      "WHERE g.epoch = 3 ORDER BY g.layer")
    assert list(named["layer_name"]) == ["dense_0", "dense_1", "dense_2"]


@pytest.mark.slow
def test_the_live_networks_of_the_seed_notebooks_cohort_are_not_flagged(one_stack):
    # relu, initial bias 0 ... 5 (the notebook's cohort), trained together as one stack.
    records = one_stack[1]["relu, the notebook's cohort"]
    assert len(records) == 6
    for record in records:
        assert (record["config"]["initial_bias"], record["dead_network"], record["saturated_network"],
                record["dead_layers"]) == (record["config"]["initial_bias"], False, False, [])
        assert "dead" not in set(record["gradient_rows"]["health"].dropna())


@pytest.mark.slow
def test_huge_learning_rate_is_flagged_diverged(tmp_path):
    record, = train(tmp_path, activation_fn="relu", optimizer="sgd", learning_rate=1e20, architecture=[10, 7, 5])
    assert record["status"] == "diverged" and record["gradient_rows"] is None   # diverged in epoch 1
    assert (record["diverged"], record["dead_network"]) == (True, False)


@pytest.mark.slow
def test_a_relu_network_that_dies_after_a_few_epochs_is_flagged_dead(tmp_path):
    # docs/reproductions.md: relu, initial bias -0.2, seed 1 trains for three epochs, then every
    # kernel gradient is exactly zero and it stays at chance.
    record, = train(tmp_path, activation_fn="relu", initial_bias=-0.2, seed=1, epochs=8)
    by_epoch = record["gradient_rows"].groupby("epoch")[["grad_mean_norm", "grad_std_norm"]].max().max(axis=1)
    assert by_epoch.loc[1] > 0 and by_epoch.loc[8] == 0     # it learned, then died
    assert record["dead_network"] is True
    # The phases view counts, per layer, the units that varied over the split's inputs at some logged
    # epoch from the group's (here the run's own) peak epoch on and are constant at its end: read here
    # from the trainer's own per-neuron statistics with pandas.
    from ibstore.index import scan
    from ibstore.sandbox import run_query

    phases = run_query(scan(tmp_path), "SELECT layer, split, group_peak_epoch, final_epoch, units_died FROM phases")
    folder = tmp_path / "runs" / record["run_id"]
    neurons = pd.concat(pd.read_parquet(path) for path in folder.glob("activation_stats*.parquet"))
    for row in phases.itertuples():
        layer = neurons[(neurons.layer == row.layer) & (neurons.split == row.split)]
        after_peak = layer[layer.epoch >= row.group_peak_epoch].pivot(index="epoch", columns="neuron",
                                                                       values=["min", "max"])
        varies = after_peak["min"] < after_peak["max"]
        assert row.units_died == int((varies.any() & ~varies.loc[row.final_epoch]).sum())
    assert phases["units_died"].sum() > 0          # its units died after the peak


@pytest.mark.parametrize("splits,tiled", [(["train", "test"], True), (["test", "train"], True), (["full"], True),
                                          (["train", "full"], True), (["train"], False), (["test"], False)])
def test_saturated_counts_of_the_neuron_statistics_equal_the_layer_healths_own_count(splits, tiled):
    """The loop hands layer_health the saturated values the per-neuron statistics counted over splits that
    cover every input once (trainer.measure.activation_rows): per network and layer the same number as
    layer_health counts itself, on mixed activations, values at and either side of the bounds, a 0.99 layer,
    and a row count that is not a multiple of 8; with no such splits, none (layer_health counts)."""
    from trainer.activation_facts import TANH_SATURATED_FROM, saturated
    from trainer.bit_counts import true_counts
    from trainer.measure import activation_rows, split_rows
    from trainer.summaries import HistogramGrid
    n_networks, n = 6, 203
    hidden = np.tanh(rng.normal(0, 3, (n_networks, n, 7))).astype(np.float32)
    hidden[0] = np.float32(1.0)                                   # every value at the bound
    hidden[1, ::2, :3] = TANH_SATURATED_FROM                     # the first saturated float32 ...
    hidden[1, 1::2, :3] = np.nextafter(TANH_SATURATED_FROM, np.float32(0))      # ... and the one below
    hidden[2, :, 1] = -TANH_SATURATED_FROM
    hidden[3].reshape(-1)[: int(0.99 * n * 7)] = -1.0             # 99 % at the bound
    relu = np.maximum(rng.normal(0, 1, (n_networks, n, 4)), 0).astype(np.float32)
    relu[4] = 0.0
    output = rng.dirichlet([0.3, 0.3], (n_networks, n)).astype(np.float32)
    functions = [("tanh", "tanh", "sigmoid", "tanh", "tanh", "tanh"), "relu", "softmax"]
    layers = [hidden, relu, output]
    grids = [HistogramGrid.for_layer(fn, values, 30) for fn, values in zip(functions, layers)]
    _, _, counts = activation_rows(1, [f"r{s}" for s in range(n_networks)], layers, split_rows(150, n), splits,
                                   functions, grids, ["a", "b", "c"])
    if not tiled:
        assert counts is None
        return
    for fn, values, count in zip(functions, layers, counts):
        np.testing.assert_array_equal(count, true_counts(saturated(fn, values).reshape(n_networks, -1)))
        assert layer_health(fn, values, np.ones(n_networks), np.ones(n_networks), count) == \
            layer_health(fn, values, np.ones(n_networks), np.ones(n_networks))
    assert SATURATED in layer_health(functions[0], hidden, np.ones(n_networks), np.ones(n_networks), counts[0])
