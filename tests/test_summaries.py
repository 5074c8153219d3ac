"""Gradient SNR, activation histograms and per-neuron statistics against hand computations."""

import numpy as np
import pytest

from trainer.summaries import HistogramGrid, gradient_stats, neuron_stats


def test_gradient_stats_equal_the_direct_computation():
    rng = np.random.default_rng(0)
    batches = rng.normal(size=(7, 4, 3))           # 7 minibatch gradients of a 4x3 kernel
    kernel = rng.normal(size=(4, 3))
    stats = gradient_stats(batches.sum(0), (batches ** 2).sum(0), 7, kernel)
    mean_norm = np.sqrt((batches.mean(0) ** 2).sum())
    std_norm = np.sqrt((batches.std(0) ** 2).sum())
    assert stats["grad_mean_norm"] == pytest.approx(mean_norm)
    assert stats["grad_std_norm"] == pytest.approx(std_norm)
    assert stats["snr"] == pytest.approx(mean_norm / std_norm)
    assert stats["weight_norm"] == pytest.approx(np.sqrt((kernel ** 2).sum()))


def test_identical_minibatch_gradients_have_no_noise():
    g = np.ones((2, 2))
    stats = gradient_stats(3 * g, 3 * g * g, 3, g)
    assert stats["grad_std_norm"] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(stats["snr"])


def test_bounded_grid_covers_the_range_in_fixed_bins():
    grid = HistogramGrid.for_layer("tanh", np.zeros((1, 4, 2)), 20)
    assert (grid.origin[0], grid.width[0]) == (-1.0, 0.1)
    network, bins, lo, hi, counts = grid.histograms(np.array([[[-0.95, -0.95], [0.0, 0.99]]]))
    assert list(network) == [0, 0, 0] and list(bins) == [0, 10, 19] and list(counts) == [2, 1, 1]
    assert lo[1] == pytest.approx(0.0) and hi[1] == pytest.approx(0.1)


def test_unbounded_grid_is_fixed_by_the_initial_spread_and_grows_with_the_data():
    grid = HistogramGrid.for_layer("relu", np.array([[[0.0], [3.0]]]), 30)
    assert grid.width[0] == pytest.approx(0.1)
    _, bins, _, _, counts = grid.histograms(np.array([[0.05, 0.05, 12.34]]))
    assert list(bins) == [0, 123] and list(counts) == [2, 1]


def test_stacked_histograms_equal_each_network_counted_alone():
    """Each network has its own grid (from its own initial spread) and its own counts, whether
    the values spread over few bins (one bincount) or over far more bins than values (sorting)."""
    rng = np.random.default_rng(1)
    initial = np.abs(rng.normal(size=(3, 50, 4))) * np.array([1.0, 2.0, 0.5])[:, None, None]
    grid = HistogramGrid.for_layer("relu", initial, 10)
    for values in (np.abs(rng.normal(size=(3, 40, 4))), np.abs(rng.standard_cauchy(size=(3, 40, 4))) * 1e4):
        network, bins, lo, hi, counts = grid.histograms(values)
        for s in range(3):
            alone = np.floor(values[s].ravel() / (np.ptp(initial[s]) / 10)).astype(np.int64)
            expected_bins, expected_counts = np.unique(alone, return_counts=True)
            assert list(bins[network == s]) == list(expected_bins)
            assert list(counts[network == s]) == list(expected_counts)
            np.testing.assert_allclose(hi[network == s] - lo[network == s], np.ptp(initial[s]) / 10)
        assert list(network) == sorted(network)


def test_stacked_neuron_and_gradient_stats_equal_each_network_alone():
    rng = np.random.default_rng(2)
    a = np.tanh(rng.normal(size=(3, 20, 5)))
    stacked = neuron_stats("tanh", a)
    batches = rng.normal(size=(3, 6, 4, 5))
    gradients = gradient_stats(batches.sum(1), (batches ** 2).sum(1), 6, batches[:, 0])
    for s in range(3):
        alone = neuron_stats("tanh", a[s])
        for name, values in alone.items():
            np.testing.assert_array_equal(stacked[name][s], values)
        one = gradient_stats(batches[s].sum(0), (batches[s] ** 2).sum(0), 6, batches[s, 0])
        for name, value in one.items():
            assert gradients[name][s] == pytest.approx(float(value))


def test_neuron_stats_zero_and_saturation():
    relu = np.array([[0.0, 1.0], [0.0, 2.0], [3.0, 0.0], [0.0, 4.0]])
    stats = neuron_stats("relu", relu)
    assert list(stats["frac_zero"]) == [0.75, 0.25]
    assert list(stats["frac_saturated"]) == [0.75, 0.25]   # relu is flat exactly where it is 0
    assert list(stats["mean"]) == [0.75, 1.75] and list(stats["max"]) == [3.0, 4.0]
    tanh = np.array([[0.999], [-0.9999], [0.5], [0.0]])
    stats = neuron_stats("tanh", tanh)                       # slope 1 - a^2 < 0.01 <=> |a| > 0.995
    assert stats["frac_saturated"][0] == 0.5 and stats["frac_zero"][0] == 0.25
    assert stats["std"][0] == pytest.approx(np.std(tanh))


def test_a_layer_that_grew_far_beyond_its_initial_spread_fits_the_activations_table():
    # relu with a large learning rate: values 5000 times the initial spread, bin indices past int16
    from ibstore.schema import TABLE_SCHEMAS
    from trainer.measure import activation_tables

    initial = np.linspace(0, 1, 40).reshape(1, 20, 2)
    grid = HistogramGrid.for_layer("relu", initial, 30)
    grown = 5000 * initial
    histograms, _ = activation_tables(7, ["r"], [grown], {"train": slice(0, 20)}, ["train"], ["relu"], [grid], ["d"])
    table = histograms.of(0)
    assert table.schema == TABLE_SCHEMAS["activations"]
    assert table["bin_index"].to_numpy().max() == np.floor(grown.max() / grid.width[0]) > 2**15
    assert table["count"].to_numpy().sum() == 40


def test_a_relu_layer_grown_past_int32_bins_fits_the_activations_table():
    # sgd at learning rate 100 on harmonics: after one epoch a relu layer reaches 7.5e10, 7.5e12 bins of its
    # initial grid; an int32 bin_index refused the rows (ArrowInvalid) and failed every network of the stack
    from ibstore.schema import TABLE_SCHEMAS
    from trainer.measure import activation_tables

    initial = np.linspace(0, 1, 40).reshape(1, 20, 2)
    grid = HistogramGrid.for_layer("relu", initial, 30)
    grown = 1e11 * initial
    histograms, _ = activation_tables(1, ["r"], [grown], {"train": slice(0, 20)}, ["train"], ["relu"], [grid], ["d"])
    table = histograms.of(0)
    assert table.schema == TABLE_SCHEMAS["activations"]
    assert table["bin_index"].to_numpy().max() == np.floor(grown.max() / grid.width[0]) > 2**40
    assert table["count"].to_numpy().sum() == 40


@pytest.mark.parametrize("wild", [1e30, -1e30, np.nan, np.inf])
def test_values_without_an_int64_bin_index_are_refused_not_wrapped(wild, monkeypatch):
    """2^63 bins or more from the origin (or not finite): casting the float64 floor to int64 would give
    INT64_MIN, a garbage bin; the networks are named instead, on the stack's axis."""
    from trainer import measure
    from trainer.summaries import HistogramOverflow

    grid = HistogramGrid(np.zeros(3), np.full(3, 0.1))
    values = np.ones((3, 20, 2))
    values[1, 5, 0] = wild
    with pytest.raises(HistogramOverflow) as raised:
        grid.histograms(values)
    assert raised.value.networks.tolist() == [1]
    monkeypatch.setattr(measure, "BLOCK_VALUES", 1)         # blocks of one network: still position 1
    with pytest.raises(HistogramOverflow) as raised:
        measure.activation_rows(3, ["a", "b", "c"], [values], {"train": slice(0, 20)}, ["train"], ["relu"], [grid],
                                ["d"])
    assert raised.value.networks.tolist() == [1]
    finite = grid.take(np.array([0, 2])).histograms(values[[0, 2]])     # the others' histograms as before
    assert finite[1].tolist() == [10, 10] and finite[4].tolist() == [40, 40]


@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 64, 3277])
def test_true_counts_equal_count_nonzero_along_the_last_axis(length):
    from trainer.bit_counts import true_counts

    mask = np.random.default_rng(length).random((3, 4, length)) < 0.3
    mask[0, 0] = True
    np.testing.assert_array_equal(true_counts(mask), np.count_nonzero(mask, axis=-1))
    assert true_counts(mask).dtype == np.int64


@pytest.mark.parametrize("activation", ["tanh", "linear"])
def test_histograms_of_float32_layers_equal_the_float64_floor_of_each_value_counted(activation):
    """The few-bins count (one np.bincount over (network, bin) keys): the same bins and counts as
    floor((a - origin) / width) in float64 of every value, then counted (np.unique), with values on
    both sides of the origin (negative indices for the linear grid)."""
    rng = np.random.default_rng(7)
    initial = rng.normal(size=(4, 300, 3)).astype(np.float32)
    grid = HistogramGrid.for_layer(activation, initial, 30)
    values = np.tanh(rng.normal(scale=2.0, size=(4, 300, 3))).astype(np.float32)
    values[1, :5] = [-1.0, 1.0, 0.0]                    # the ends of tanh's range and a bin edge
    # Every bin edge of network 2 as float32 and the float32 on either side of it: values whose
    # quotient is an integer or within a rounding of one.
    edges = (grid.origin[2] + np.arange(-3, 34) * grid.width[2]).astype(np.float32)
    near = np.concatenate([np.nextafter(edges, -np.inf), edges, np.nextafter(edges, np.inf)])
    values[2].reshape(-1)[:len(near)] = np.clip(near, -1, 1) if activation == "tanh" else near
    network, bins, _, _, counts = grid.histograms(values)
    for s in range(4):
        index = np.floor((values[s].astype(np.float64).ravel() - grid.origin[s]) / grid.width[s])
        expected_bins, expected_counts = np.unique(index, return_counts=True)
        np.testing.assert_array_equal(bins[network == s], expected_bins)
        np.testing.assert_array_equal(counts[network == s], expected_counts)
    assert (bins < 0).any() == (activation == "linear")


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_few_bins_far_from_the_origin_are_counted_with_keys_beyond_int32(side):
    """Values a few bins wide but 5e9 bins from the origin (on either side): the bincount path with
    int64 keys gives the float64 floor of every value, counted; int32 keys would wrap."""
    grid = HistogramGrid(np.zeros(2), np.full(2, 1e-10))
    rng = np.random.default_rng(11)
    values = side * (0.5 + rng.integers(0, 40, (2, 30)) * 1e-10 + rng.uniform(0, 1e-10, (2, 30)))
    network, bins, _, _, counts = grid.histograms(values)
    assert counts.sum() == values.size
    for s in range(2):
        expected_bins, expected_counts = np.unique(np.floor(values[s] / 1e-10), return_counts=True)
        np.testing.assert_array_equal(bins[network == s], expected_bins)
        np.testing.assert_array_equal(counts[network == s], expected_counts)
    assert abs(bins).min() > 2**32


@pytest.mark.parametrize("n_inputs", [3277, 8192, 8193, 20000])
def test_neuron_stats_of_float32_layers_equal_numpy_mean_and_std_of_each_neuron(n_inputs):
    """Mean and std per neuron bit for bit as np.mean and np.std (dtype float64) of the neuron's
    values give them (the values widened once, summed, then the mean subtracted in place), also for
    rows longer than numpy's 8192-value casting buffers. Magnitudes from 1e-6 to 1e6: float64 sums of
    float32 values of similar sizes are exact in any order, these are not."""
    rng = np.random.default_rng(8)
    a = (rng.normal(size=(3, n_inputs, 4)) * 10.0 ** rng.uniform(-6, 6, (3, n_inputs, 4))).astype(np.float32)
    stats = neuron_stats("linear", a)
    for s in range(3):
        for unit in range(4):
            values = np.ascontiguousarray(a[s, :, unit])
            assert stats["mean"][s, unit] == np.mean(values, dtype=np.float64)
            assert stats["std"][s, unit] == np.std(values, dtype=np.float64)


def test_every_layers_neuron_stats_in_one_pass_equal_each_neurons_own_straightforward_numbers():
    """layers_neuron_stats of layers with different activations (and a layer whose networks each have
    their own) side by side: each neuron's numbers bit for bit as np.mean, np.std, np.min, np.max and
    the counts of its zeros and saturated values give them for that neuron of that layer alone."""
    from trainer.activation_facts import saturated
    from trainer.summaries import layers_neuron_stats

    rng = np.random.default_rng(9)
    layers = [np.tanh(rng.normal(scale=3.0, size=(3, 500, 4))).astype(np.float32),
              np.maximum(rng.normal(size=(3, 500, 3)), 0).astype(np.float32),
              np.maximum(rng.normal(size=(3, 500, 2)), 0).astype(np.float32)]
    fns = ["tanh", "relu", ["relu", "tanh", "relu"]]
    stats = layers_neuron_stats(fns, layers)
    assert all(column.shape == (3, 9) for column in stats.values())
    neuron = 0
    for fn, values in zip(fns, layers):
        for unit in range(values.shape[2]):
            for s in range(3):
                own = np.ascontiguousarray(values[s, :, unit])
                own_fn = fn if isinstance(fn, str) else fn[s]
                expected = {"mean": np.mean(own, dtype=np.float64), "std": np.std(own, dtype=np.float64),
                            "min": float(own.min()), "max": float(own.max()),
                            "frac_zero": np.count_nonzero(own == 0) / 500,
                            "frac_saturated": np.count_nonzero(saturated(own_fn, own)) / 500}
                for name, value in expected.items():
                    assert stats[name][s, neuron] == value, (name, neuron, s)
            neuron += 1
    assert 0 < stats["frac_saturated"][0, :4].max() and stats["frac_zero"][:, 4:].min() > 0


def test_layer_groups_are_consecutive_cover_every_layer_and_fit_a_block_unless_alone():
    from trainer.measure import BLOCK_VALUES, layer_groups

    for sizes in ([10, 7, 5, 4, 3, 2], [BLOCK_VALUES * 2, 5, BLOCK_VALUES - 5, 6], [1], [BLOCK_VALUES] * 3):
        groups = layer_groups(sizes)
        assert [layer for group in groups for layer in group] == list(range(len(sizes)))
        assert all(len(group) == 1 or sum(sizes[layer] for layer in group) <= BLOCK_VALUES for group in groups)
        # greedy: a group ends only where its next layer would not fit
        assert all(sum(sizes[layer] for layer in group) + sizes[following[0]] > BLOCK_VALUES
                   for group, following in zip(groups, groups[1:]))
    assert layer_groups([10, 7, 5, 4, 3, 2]) == [[0, 1, 2, 3, 4, 5]]


def test_activation_tables_histograms_equal_each_layers_values_floored_and_counted():
    """The activations rows of a stack (each network's lowest and highest bin from its neurons'
    min and max, every layer and split): per network, split and layer the bins and counts of
    floor((a - origin) / width) in float64 of that layer's values on that split, counted."""
    from trainer.measure import activation_tables

    rng = np.random.default_rng(12)
    layers = [np.tanh(rng.normal(scale=2.0, size=(4, 60, 5))).astype(np.float32),
              (np.maximum(rng.normal(size=(4, 60, 3)), 0) * np.array([1, 5, 0.1, 30])[:, None, None]).astype(np.float32),
              rng.normal(size=(4, 60, 2)).astype(np.float32)]
    layers[0][1, :3, 0] = [-1.0, 1.0, 0.0]
    fns = ["tanh", "relu", "linear"]
    grids = [HistogramGrid.for_layer(fn, rng.normal(size=(4, 60, values.shape[2])).astype(np.float32), 30)
             for fn, values in zip(fns, layers)]
    rows = {"train": slice(0, 45), "test": slice(45, 60)}
    histograms, _ = activation_tables(3, ["a", "b", "c", "d"], layers, rows, ["train", "test"], fns, grids,
                                      ["l0", "l1", "l2"])
    for s in range(4):
        table = histograms.of(s).to_pandas()
        for split, inputs in rows.items():
            for layer, (values, grid) in enumerate(zip(layers, grids)):
                own = table[(table["split"] == split) & (table["layer"] == layer)]
                index = np.floor((values[s, inputs].astype(np.float64).ravel() - grid.origin[s]) / grid.width[s])
                expected_bins, expected_counts = np.unique(index, return_counts=True)
                np.testing.assert_array_equal(own["bin_index"], expected_bins)
                np.testing.assert_array_equal(own["count"], expected_counts)
