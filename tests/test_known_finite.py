"""The MI estimates skip their check for NaN and infinite activations when the per-neuron statistics
of the same rows found every min and max finite: that verdict equals checking every value."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.estimators import EstimatorError, estimate_stacked
from trainer.measure import activation_rows, split_rows
from trainer.network_rows import all_finite
from trainer.summaries import HistogramGrid

rng = np.random.default_rng(18)
N_NETWORKS, N_INPUTS = 5, 61
FUNCTIONS = ["tanh", "relu", "softmax"]


def stack() -> list[np.ndarray]:
    return [np.tanh(rng.normal(0, 2, (N_NETWORKS, N_INPUTS, 6))).astype(np.float32),
            np.maximum(rng.normal(0, 1, (N_NETWORKS, N_INPUTS, 4)), 0).astype(np.float32),
            rng.dirichlet([0.5, 0.5], (N_NETWORKS, N_INPUTS)).astype(np.float32)]


def bad_stacks():
    """A stack with one NaN or infinity at the first, a middle or the last input (train or test rows)
    of some network, layer and neuron; and the clean stack."""
    yield None, stack()
    for bad in (np.nan, np.inf, -np.inf):
        for layer, position in [(0, (0, 0, 0)), (1, (4, N_INPUTS - 1, 3)), (2, (2, 40, 1)), (0, (3, 39, 5))]:
            layers = stack()
            layers[layer][position] = bad
            yield (bad, layer, position), layers


@pytest.mark.parametrize("splits", [["train", "test"], ["full"], ["train"], ["test"]])
def test_the_statistics_find_finite_exactly_when_every_value_the_mi_reads_is(splits, monkeypatch):
    """network_rows.all_finite of the activation_stats rows against np.isfinite of every value of the
    splits' rows (a bad value outside them, e.g. in the test rows with splits ["train"], does not count).
    The histograms (which cannot bin a NaN) are of the values with the bad ones made 0: not tested here."""
    histograms = HistogramGrid.histograms
    monkeypatch.setattr(HistogramGrid, "histograms",
                        lambda grid, values, extremes=None: histograms(grid, np.nan_to_num(values, posinf=0, neginf=0)))
    rows = split_rows(40, N_INPUTS)
    seen = set()
    for case, layers in bad_stacks():
        grids = [HistogramGrid.for_layer(fn, values, 30) for fn, values in zip(FUNCTIONS, layers)]
        with np.errstate(invalid="ignore"):
            _, neuron_stats, _ = activation_rows(1, [f"r{s}" for s in range(N_NETWORKS)], layers, rows, splits,
                                                 FUNCTIONS, grids, ["a", "b", "c"])
        expected = all(np.isfinite(values[:, rows[split]]).all() for values in layers for split in splits)
        assert all_finite(neuron_stats) == expected, case
        seen.add(expected)
    assert seen == {True, False}


def test_known_finite_estimates_equal_the_checked_ones_and_unknown_bad_values_still_raise():
    values, labels = stack()[0], rng.integers(0, 2, N_INPUTS)
    for name in ("binning", "quantile", "kde_upper"):
        checked = estimate_stacked(name, values, labels)
        known = estimate_stacked(name, values, labels, known_finite=True)
        np.testing.assert_array_equal(checked[0], known[0])
        np.testing.assert_array_equal(checked[1], known[1])
    broken = values.copy()
    broken[1, 3, 2] = np.nan
    with pytest.raises(EstimatorError, match="NaN"):
        estimate_stacked("binning", broken, labels)
