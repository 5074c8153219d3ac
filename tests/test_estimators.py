"""Mutual-information estimators (trainer.estimators): values against ground truth computed here."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.special import logsumexp

from trainer.datasets import harmonics
from trainer.estimators import (ALIASES, ESTIMATORS, EstimatorError, canonical, discrete, estimate, for_network,
                                needs_run_range)
from trainer.measure import MiRows, StackMiRows

H_Y_HARMONICS = 0.99916  # bits, p(y = 1) = 2118 / 4096


@pytest.fixture(scope="module")
def harmonics_data() -> tuple[np.ndarray, np.ndarray]:
    """The 4096 12-bit inputs and labels (checked against the original file in test_datasets)."""
    x, y = harmonics()
    return x.astype(np.float64), y


def entropy_from_counts(counts) -> float:
    p = np.asarray(counts, dtype=float) / np.sum(counts)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def binned_mi_by_unique_rows(activations: np.ndarray, labels: np.ndarray, bin_size: float) -> tuple[float, float]:
    """Straightforward reference: np.unique(axis=0) on floor(a / bin_size), H(T) - sum_y p(y) H(T|y)."""
    codes = np.floor(activations / bin_size)
    h_t = entropy_from_counts(np.unique(codes, axis=0, return_counts=True)[1])
    h_t_given_y = sum(np.mean(labels == y) * entropy_from_counts(np.unique(codes[labels == y], axis=0,
                                                                           return_counts=True)[1])
                      for y in np.unique(labels))
    return h_t, h_t - h_t_given_y


# --- the harmonics data itself ------------------------------------------------------------------


def test_harmonics_labels_have_2118_positives(harmonics_data):
    x, y = harmonics_data
    assert x.shape == (4096, 12) and y.sum() == 2118
    assert x[1].tolist() == [0] * 11 + [1]  # row r = bits of r, most significant first
    assert entropy_from_counts(np.bincount(y)) == pytest.approx(H_Y_HARMONICS, abs=1e-5)


# --- binning ----------------------------------------------------------------------------------------


def test_binning_identity_layer_gives_12_bits_and_h_y(harmonics_data):
    x, y = harmonics_data
    i_xt, i_yt = estimate("binning", x, y, bin_size=0.07)
    assert i_xt == 12.0
    assert i_yt == pytest.approx(H_Y_HARMONICS, abs=1e-4)


def test_binning_constant_layer_gives_zero(harmonics_data):
    _, y = harmonics_data
    assert estimate("binning", np.full((4096, 5), 0.3), y) == (0.0, 0.0)


def test_binning_function_of_label_alone_gives_h_y_for_both(harmonics_data):
    _, y = harmonics_data
    t = np.column_stack([np.tanh(y - 0.5), -np.tanh(y - 0.5)])  # two bins, one per class
    i_xt, i_yt = estimate("binning", t, y)
    assert i_xt == pytest.approx(H_Y_HARMONICS, abs=1e-4)
    assert i_yt == pytest.approx(H_Y_HARMONICS, abs=1e-4)


def test_binning_hand_built_distribution_has_exact_plugin_values():
    # 8 inputs, bin_size 1: T takes (0,0) x4, (1,0) x2, (0,1), (5,5): H(T) = 1/2*1 + 1/4*2 + 2 * 1/8*3 = 1.75
    t = np.array([[0.5, 0.2], [0.1, 0.9], [0.7, 0.0], [0.3, 0.4],
                  [1.5, 0.5], [1.2, 0.1], [0.0, 1.5], [5.5, 5.5]])
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    # H(Y|T) = 1/2 * H(1/2) + 1/4 * H(1/2) + 0 + 0 = 0.75, H(Y) = 1, so I(Y;T) = 0.25
    i_xt, i_yt = estimate("binning", t, y, bin_size=1.0)
    assert i_xt == pytest.approx(1.75, abs=1e-12)
    assert i_yt == pytest.approx(0.25, abs=1e-12)


def test_binning_matches_unique_rows_reference_on_tanh_layer(harmonics_data):
    x, y = harmonics_data
    t = np.tanh(x @ np.random.default_rng(0).normal(size=(12, 6)) * 0.3)
    for bin_size in (0.07, 0.2, 0.5):
        assert estimate("binning", t, y, bin_size=bin_size) == pytest.approx(
            binned_mi_by_unique_rows(t, y, bin_size), abs=1e-12)


def dense_run_lengths(sorted_rows):
    """The counts of equal values of each row of a row-wise sorted array as the dense [R, m] array
    the entropies were computed from before: at a run's first position its length, 0 elsewhere."""
    counts = np.zeros(sorted_rows.shape, np.int64)
    for r, row in enumerate(sorted_rows):
        _, first, lengths = np.unique(row, return_index=True, return_counts=True)
        counts[r, first] = lengths
    return counts


@pytest.mark.parametrize("shape,distinct", [((45, 3277), 40), ((7, 819), 819 * 4), ((3, 1), 1), ((4, 0), 1),
                                            ((0, 5), 2), ((5, 64), 1)])
def test_entropies_from_the_runs_of_sorted_rows_equal_those_of_their_dense_counts(shape, distinct):
    rng = np.random.default_rng(shape[1])
    sorted_rows = np.sort(rng.integers(0, distinct, size=shape), axis=1)
    from_runs = discrete.sorted_row_entropies_bits(sorted_rows)
    from_counts = discrete.row_entropies_bits(dense_run_lengths(sorted_rows))
    np.testing.assert_array_equal(from_runs, from_counts)    # bit for bit
    # and against the textbook formula, -sum p log2 p over each row's distinct values
    for row, entropy in zip(sorted_rows, from_runs):
        p = np.unique(row, return_counts=True)[1] / max(len(row), 1)
        assert entropy == pytest.approx(-(p * np.log2(p)).sum() if len(row) else 0.0, abs=1e-12)


def counted_run_multiplicities(sorted_rows):
    """The straightforward count: per row, how many runs (np.unique's counts) have each length 0..m,
    column 0 holding m minus the row's runs."""
    rows, width = sorted_rows.shape
    multiplicities = np.zeros((rows, width + 1), np.int64)
    for r, row in enumerate(sorted_rows):
        lengths = np.unique(row, return_counts=True)[1] if width else np.zeros(0, np.int64)
        multiplicities[r] = np.bincount(lengths, minlength=width + 1)
        multiplicities[r, 0] = width - len(lengths)
    return multiplicities


def adversarial_sorted_rows(width, distinct_fraction, seed):
    """Sorted rows with about this fraction of distinct values, and the cases a run-finder gets wrong: a
    row of one run, a row of distinct values, runs at a row's first and last positions, and a run at
    the end of a row followed by the same value starting the next row (one run in the flat array)."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.integers(0, max(1, int(width * distinct_fraction)), size=(9, width)), axis=1)
    rows[1] = 5                                                    # one run
    rows[2] = np.arange(width) * 2                                 # distinct
    rows[3, :] = np.arange(width)
    rows[3, :2] = -1                                               # a run of two at the start
    rows[3, -2:] = width                                           # ... and at the end
    rows[4, :] = width                                             # the same value as row 3's last run
    rows[5, 1:] = np.arange(width - 1)
    rows[5, 0] = 0                                                 # one repeat at the start, the rest distinct
    rows[6] = np.sort(rows[6])
    return rows


@pytest.mark.parametrize("width", [1, 2, 3, 64, 819, 3277])
@pytest.mark.parametrize("distinct_fraction", [0.01, 0.3, 0.9, 0.999, 2.0])
def test_run_multiplicities_from_starts_or_repeats_equal_the_counted_runs_of_each_row(width, distinct_fraction):
    """The runs' lengths come from the run starts or, for nearly distinct rows, from the repeats: each
    way gives every chosen row's multiplicities as np.unique's counts, and the entropies follow."""
    sorted_rows = adversarial_sorted_rows(width, distinct_fraction, width)
    repeats = np.zeros(sorted_rows.shape, bool)
    repeats[:, 1:] = sorted_rows[:, 1:] == sorted_rows[:, :-1]
    runs = width - repeats.sum(axis=1)
    chosen = np.flatnonzero(runs < width)
    expected = counted_run_multiplicities(sorted_rows)[chosen]
    np.testing.assert_array_equal(discrete.multiplicities_from_starts(~repeats[chosen], runs[chosen]), expected)
    np.testing.assert_array_equal(discrete.multiplicities_from_repeats(repeats, runs[chosen], chosen), expected)
    np.testing.assert_array_equal(discrete.run_multiplicities(repeats, runs, chosen), expected)
    np.testing.assert_array_equal(discrete.sorted_row_entropies_bits(sorted_rows),
                                  discrete.row_entropies_bits(dense_run_lengths(sorted_rows)))


@pytest.mark.parametrize("scale", [1e3, 1e12])
def test_binning_huge_code_space_falls_back_to_byte_keys(scale):
    # 9 units spanning ~2e6 (or ~2e15) bins each: a mixed-radix key would need > 2^180, beyond float64's exact
    # integers, so rows are compared as bytes (of uint32 codes, or of float64 codes beyond 2^32)
    rng = np.random.default_rng(1)
    t = np.round(rng.uniform(-scale, scale, size=(500, 9)), 1)
    t[250:] = t[:250]  # duplicated rows must still be recognised
    y = rng.integers(0, 3, 500)
    assert estimate("binning", t, y, bin_size=1e-3) == pytest.approx(binned_mi_by_unique_rows(t, y, 1e-3), abs=1e-12)


@pytest.mark.parametrize("second_span", [2**29, 2**30 - 1, 2**30, 2**32])
def test_stacked_plugin_mi_is_the_same_whether_its_keys_are_sorted_in_32_or_64_bits(second_span):
    """Joint keys (row key * classes + class) below 2^31 are sorted as int32; from 2^31 up as int64. Rows
    whose keys differ by 2^32 would be one symbol in 32 bits: four distinct rows stay 2 bits."""
    codes = np.array([[0, 0], [1, 0], [0, second_span - 1], [1, 5]], np.float64)
    classes = np.array([0, 1, 0, 1])
    h_t, i_yt = discrete.stacked_plugin_mi_bits(codes[None], classes, 2)
    assert (h_t[0], i_yt[0]) == (2.0, 1.0)
    # and equal bit for bit to the 64-bit sort, on many rows of keys on both sides of 2^31
    rng = np.random.default_rng(second_span)
    many = np.stack([rng.integers(0, 3, 400), rng.integers(0, second_span, 400)], axis=1).astype(np.float64)
    many[:200:4] = many[1:200:4]                              # repeated rows
    labels = rng.integers(0, 2, 400)
    keys = discrete.stacked_row_keys(many[None], 2)
    joint = np.sort(keys * 2 + labels, axis=1)
    expected_h_t = discrete.sorted_row_entropies_bits(joint // 2)
    expected_i_yt = expected_h_t + discrete.row_entropies_bits(np.bincount(labels)[None]) - \
        discrete.sorted_row_entropies_bits(joint)
    h_t, i_yt = discrete.stacked_plugin_mi_bits(many[None], labels, 2)
    np.testing.assert_array_equal(h_t, expected_h_t)
    np.testing.assert_array_equal(i_yt, expected_i_yt)


@pytest.mark.parametrize("n_classes,units,span", [(2, 2, 5), (3, 1, 4), (2, 3, 3), (2, 1, 32), (2, 2, 4)])
def test_stacked_plugin_mi_by_dense_counts_equals_the_sorted_runs(n_classes, units, span):
    """Where a layer's (symbol, class) pairs are no more than its rows, they are counted densely
    instead of sorted: the same entropies bit for bit as the runs of each network's sorted joint
    keys (the computation it replaces), with a network whose codes are constant, a class absent
    from some symbols, and (2, 1, 32) exactly as many pairs as rows, the largest space counted."""
    rng = np.random.default_rng(units * 100 + span)
    n = 64
    codes = rng.integers(-3, span - 3, size=(6, n, units)).astype(np.float32)
    codes[1] = 2.0                                             # one symbol
    codes[2, :, 0] = np.arange(n) % span - 3                   # every value of the first unit's span
    classes = rng.integers(0, n_classes, n)
    joint = discrete.stacked_row_keys(codes, n_classes) * n_classes + classes
    assert 0 < joint.max() < n                                  # the dense path is the one tested
    joint.sort(axis=1)
    expected_h_t = discrete.sorted_row_entropies_bits(joint // n_classes)
    expected_i_yt = expected_h_t + discrete.row_entropies_bits(np.bincount(classes, minlength=n_classes)[None]) \
        - discrete.sorted_row_entropies_bits(joint)
    h_t, i_yt = discrete.stacked_plugin_mi_bits(codes, classes, n_classes)
    np.testing.assert_array_equal(h_t, expected_h_t)
    np.testing.assert_array_equal(i_yt, expected_i_yt)
    assert h_t[1] == 0.0 and h_t[0] > 0


def test_merging_bins_never_increases_the_estimate():
    rng = np.random.default_rng(2)
    for _ in range(20):
        bin_size = 0.1
        t = (rng.integers(-8, 8, size=(300, 3)) + 0.5) * bin_size  # centres of a grid of bin_size
        y = rng.integers(0, 3, 300)
        fine = estimate("binning", t, y, bin_size=bin_size)
        coarse = estimate("binning", t, y, bin_size=2 * bin_size)  # each coarse bin = two fine bins
        assert coarse[0] <= fine[0] + 1e-12
        assert coarse[1] <= fine[1] + 1e-12


def test_n_bins_over_a_fixed_range_clips_outside_values():
    t = np.array([-5.0, -1.0, -0.99, 0.0, 0.5, 1.0, 5.0])
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    # 2 bins over [-1, 1]: {-5, -1, -0.99} in bin 0, {0, 0.5, 1, 5} in bin 1 (5 clipped, 1 is the top edge)
    i_xt, i_yt = estimate("binning", t, y, n_bins=2, range=[-1, 1])
    assert i_xt == pytest.approx(entropy_from_counts([3, 4]), abs=1e-12)
    assert i_yt == pytest.approx(entropy_from_counts([3, 4]), abs=1e-12)  # the bins are the classes
    # the layer's own range [-5, 5] puts everything but the extremes in the middle bins
    i_xt_layer, _ = estimate("binning", t, y, n_bins=2, range="layer")
    assert i_xt_layer == pytest.approx(entropy_from_counts([3, 4]), abs=1e-12)
    assert estimate("binning", t, y, n_bins=4, range="layer")[0] == pytest.approx(
        entropy_from_counts([1, 2, 3, 1]), abs=1e-12)


def test_range_run_is_substituted_by_the_caller():
    t = np.linspace(-1, 1, 50)[:, None]
    y = np.arange(50) % 2
    assert needs_run_range("binning", {"n_bins": 30, "range": "run"})
    assert not needs_run_range("binning", {"n_bins": 30, "range": "layer"})
    assert not needs_run_range("mi_estimator.binning")
    assert not needs_run_range("kde_upper")
    with pytest.raises(EstimatorError, match="range 'run' must be replaced"):
        estimate("binning", t, y, n_bins=30, range="run")
    assert estimate("binning", t, y, n_bins=30, range=[-2.0, 2.0])[0] == pytest.approx(
        entropy_from_counts(np.bincount(np.floor((t[:, 0] + 2.0) * (30 / 4.0)).astype(int))), abs=1e-12)
    # a layer that was constant over the whole run gets lo == hi: one bin
    assert estimate("binning", np.zeros((50, 2)), y, n_bins=30, range=[0.0, 0.0]) == (0.0, 0.0)


# --- adaptive (Chelombiev et al.) and quantile ------------------------------------------------------


def test_quantile_bins_hold_equal_mass():
    rng = np.random.default_rng(3)
    t = rng.exponential(size=(4096, 1))  # skewed, so equal-width bins would not hold equal mass
    y = np.arange(4096) % 2
    i_xt, _ = estimate("quantile", t, y, n_bins=4)
    assert i_xt == pytest.approx(2.0, abs=1e-12)  # 4 bins of exactly 1024 values
    assert estimate("quantile", t, y, n_bins=30)[0] == pytest.approx(math.log2(30), abs=0.01)


def test_quantile_pools_units(harmonics_data):
    x, y = harmonics_data
    # binary inputs: the median edge splits 0 from 1 in every unit, so T = X: 12 bits and H(Y)
    i_xt, i_yt = estimate("quantile", x, y, n_bins=2)
    assert i_xt == 12.0
    assert i_yt == pytest.approx(H_Y_HARMONICS, abs=1e-4)


def test_adaptive_spreads_distinct_values_not_samples():
    # 8 samples, one unit: four zeros (a dead relu's) and 1, 2, 3, 4. low = 0, n_bins = 2: distinct values
    # other than 0 are u = [1, 2, 3, 4], edges [0, u[0], u[2], u[3]] = [0, 1, 3, 4]: bins {0 x4}, {1, 2}, {3}, {4}
    t = np.array([0, 0, 0, 0, 1, 2, 3, 4], dtype=float)[:, None]
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    assert estimate("adaptive", t, y, n_bins=2, low=0)[0] == pytest.approx(
        entropy_from_counts([4, 2, 1, 1]), abs=1e-12)
    # equal mass instead: the median edge is a 1, so {0 x4} and {1, 2, 3, 4}
    assert estimate("quantile", t, y, n_bins=2)[0] == pytest.approx(1.0, abs=1e-12)
    # low below every value: 0 is an ordinary distinct value, u = [0, 1, 2, 3, 4], edges [-1, 0, 2, 4]
    assert estimate("adaptive", t, y, n_bins=2, low=-1)[0] == pytest.approx(
        entropy_from_counts([5, 2, 1]), abs=1e-12)


def test_adaptive_low_must_be_given_and_below_the_values():
    t = np.linspace(-1, 1, 20)[:, None]
    y = np.arange(20) % 2
    with pytest.raises(EstimatorError, match="low 'auto' must be replaced"):
        estimate("adaptive", t, y)
    with pytest.raises(EstimatorError, match="low must be at most the layer's minimum"):
        estimate("adaptive", t, y, low=0)
    assert estimate("adaptive", t, y, low="min") == estimate("adaptive", t, y, low=-1.0)


def test_for_network_fills_adaptive_low_from_the_activation():
    assert for_network("adaptive", {}, "relu") == {"n_bins": 30, "low": 0.0}
    assert for_network("adaptive", {"n_bins": 10}, "tanh") == {"n_bins": 10, "low": -1.000001}
    assert for_network("adaptive", {}, "softsign")["low"] == -1.000001
    assert for_network("adaptive", {}, "leaky_relu")["low"] == "min"
    assert for_network("adaptive", {"low": 0.5}, "tanh")["low"] == 0.5  # given: kept
    assert for_network("binning", {}, "relu") == {"bin_size": 0.07}


# --- IDNNs' binning -----------------------------------------------------------------------------------


def test_idnns_has_29_intervals_inside_and_one_symbol_from_1_up():
    edges = np.linspace(-1, 1, 30).astype(np.float32)
    centres = ((edges[:-1] + edges[1:]) / 2)[:, None]  # one value in each of the 29 intervals
    y = np.arange(29) % 2
    assert estimate("idnns", centres, y)[0] == pytest.approx(math.log2(29), abs=1e-12)
    # 1.0 (a saturated tanh) is a 30th symbol; values above 1 share it, and so do values below -1
    t = np.concatenate([centres, [[1.0], [5.0], [-3.0]]])
    y = np.arange(32) % 2
    assert estimate("idnns", t, y)[0] == pytest.approx(entropy_from_counts([1] * 29 + [3]), abs=1e-12)


# --- KDE bounds ---------------------------------------------------------------------------------------


def ibsgd_entropy_kl_by_loops(points: np.ndarray, variance: float) -> float:
    """ibsgd entropy_estimator_kl, written with explicit loops (nats)."""
    n, d = points.shape
    log_probs = []
    for i in range(n):
        terms = [-sum((points[i, c] - points[j, c]) ** 2 for c in range(d)) / (2 * variance) for j in range(n)]
        log_probs.append(logsumexp(terms) - math.log(n) - d / 2 * math.log(2 * math.pi * variance))
    return d / 2 - float(np.mean(log_probs))


def kde_mi_by_loops(t: np.ndarray, y: np.ndarray, variance: float, bound: str) -> tuple[float, float]:
    """ibsgd computeMI: upper uses entropy_estimator_kl, lower entropy_estimator_bd, everywhere."""
    d = t.shape[1]

    def entropy(points):
        if bound == "upper":
            return ibsgd_entropy_kl_by_loops(points, variance)
        return ibsgd_entropy_kl_by_loops(points, 4 * variance) + math.log(0.25) * d / 2

    h_t = entropy(t)
    h_t_given_x = d / 2 * (math.log(2 * math.pi * variance) + 1)
    h_t_given_y = sum(np.mean(y == c) * entropy(t[y == c]) for c in np.unique(y))
    return (h_t - h_t_given_x) / math.log(2), (h_t - h_t_given_y) / math.log(2)


@pytest.mark.parametrize("bound", ["upper", "lower"])
@pytest.mark.parametrize("variance", [1e-3, 0.05, 1.0])
def test_kde_matrix_form_equals_double_loop(bound, variance):
    rng = np.random.default_rng(4)
    t = np.tanh(rng.normal(size=(40, 3)))
    y = rng.integers(0, 3, 40)
    expected = kde_mi_by_loops(t, y, variance, bound)
    assert estimate(f"kde_{bound}", t, y, noise_variance=variance) == pytest.approx(expected, abs=1e-6)


def test_kde_matrix_form_equals_double_loop_across_several_blocks():
    # several blocks of the blocked kernel sums (128 rows each), so the mirrored triangle and classes that
    # straddle block boundaries are exercised
    rng = np.random.default_rng(5)
    t = rng.normal(size=(600, 2)) * 0.2
    y = rng.choice(3, size=600, p=[0.5, 0.3, 0.2])
    sq = ((t[:, None, :] - t[None, :, :]) ** 2).sum(-1)  # dense reference
    log_all = logsumexp(-sq / (2 * 0.01), axis=1)
    h_t = 1 + math.log(2 * math.pi * 0.01) + math.log(600) - log_all.mean()
    h_y = 0.0
    for c in (0, 1, 2):
        members = y == c
        log_own = logsumexp(-sq[np.ix_(members, members)] / (2 * 0.01), axis=1)
        h_y += members.mean() * (1 + math.log(2 * math.pi * 0.01) + math.log(members.sum()) - log_own.mean())
    h_given_x = 1 + math.log(2 * math.pi * 0.01)
    expected = ((h_t - h_given_x) / math.log(2), (h_t - h_y) / math.log(2))
    assert estimate("kde_upper", t, y, noise_variance=0.01) == pytest.approx(expected, abs=1e-6)


def test_kde_upper_is_above_lower():
    # for I(X;T) = H(T') - H(T'|X) with the same exact H(T'|X); I(Y;T) bounds a difference of two
    # bounded entropies, so its upper and lower versions need not be ordered
    rng = np.random.default_rng(6)
    for variance in (1e-4, 1e-2, 1.0):
        t = np.tanh(rng.normal(size=(500, 4)))
        y = rng.integers(0, 2, 500)
        upper = estimate("kde_upper", t, y, noise_variance=variance)
        lower = estimate("kde_lower", t, y, noise_variance=variance)
        assert upper[0] >= lower[0]


@pytest.mark.parametrize("variance", [0.05, 0.005])
def test_kde_bounds_bracket_monte_carlo_mixture_entropy(variance):
    # T' = h(X) + N(0, var I) over 30 equally likely means in 2-D is a Gaussian mixture; its entropy by Monte
    # Carlo with 100k samples has a standard error of ~0.004 bits, and we allow 5 standard errors (the bounds
    # are 0.4-1.4 bits apart here). The estimators return I(X;T) = H(T') - H(T'|X), so H(T') = I + H(T'|X).
    rng = np.random.default_rng(7)
    means = rng.uniform(-1, 1, size=(30, 2))
    labels = np.arange(30) % 2
    samples = means[rng.integers(0, 30, 100_000)] + rng.normal(scale=math.sqrt(variance), size=(100_000, 2))
    sq = ((samples[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    log_density = logsumexp(-sq / (2 * variance), axis=1) - math.log(30) - math.log(2 * math.pi * variance)
    h_true = -log_density.mean() / math.log(2)
    standard_error = log_density.std() / math.log(2) / math.sqrt(len(samples))
    h_given_x = math.log2(2 * math.pi * math.e * variance)  # (d/2) log2(2 pi e var), d = 2
    h_upper = estimate("kde_upper", means, labels, noise_variance=variance)[0] + h_given_x
    h_lower = estimate("kde_lower", means, labels, noise_variance=variance)[0] + h_given_x
    assert h_upper - h_lower > 0.1  # the bounds differ, so the test can tell them apart
    assert h_lower - 5 * standard_error <= h_true <= h_upper + 5 * standard_error


def test_kde_upper_tends_to_log2_n_as_variance_vanishes():
    rng = np.random.default_rng(8)
    t = rng.normal(size=(300, 3))
    y = rng.integers(0, 2, 300)
    previous = 0.0
    for variance in (1.0, 1e-1, 1e-2, 1e-3, 1e-6):
        i_xt = estimate("kde_upper", t, y, noise_variance=variance)[0]
        assert i_xt >= previous - 1e-9
        previous = i_xt
    assert previous == pytest.approx(math.log2(300), abs=1e-6)


@pytest.mark.parametrize("name", ["kde_upper", "kde_lower"])
def test_i_xt_of_the_kde_bounds_lies_between_0_and_log2_n(name):
    # kde: I(X;T) = ln n - mean_i ln sum_j exp(-|t_i - t_j|^2 / 2s) (4s for the lower bound), each sum between
    # 1 and n. 0 where every input lands on one point, log2 n where each stands far from all others (the
    # ceiling ibstore.phases gives these estimators), in between otherwise, whatever the noise
    rng = np.random.default_rng(9)
    y = np.arange(40) % 2
    assert estimate(name, np.full((40, 3), 0.7), y)[0] == pytest.approx(0.0, abs=1e-12)
    assert estimate(name, np.arange(40.0)[:, None] * 10, y)[0] == pytest.approx(math.log2(40), abs=1e-12)
    for scale in (1e-6, 1e-3, 1e-1, 10.0):
        t = np.round(rng.normal(size=(40, 2)), 1)      # coincident points too
        assert 0.0 <= estimate(name, t, y, noise_variance=scale)[0] <= math.log2(40) + 1e-12


def test_kde_identity_layer_of_harmonics(harmonics_data):
    x, y = harmonics_data  # distinct points at distance >= 1: the noise cannot confuse them
    for name in ("kde_upper", "kde_lower"):
        i_xt, i_yt = estimate(name, x, y)
        assert i_xt == pytest.approx(12.0, abs=1e-9)
        assert i_yt == pytest.approx(H_Y_HARMONICS, abs=1e-4)


# --- EDGE and KSG ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["edge", "ksg"])
def test_identity_layer_of_harmonics_keeps_at_least_11_5_bits(harmonics_data, name):
    x, y = harmonics_data
    assert estimate(name, x, y, inputs=x)[0] >= 11.5


def test_edge_caps_each_term_at_u_and_needs_the_inputs_for_i_xt(harmonics_data):
    # I = (1/n) sum over edges of N_ij max(min(log2(n N_ij / (N_i M_j)), U), 0.001) <= U: deep-bottleneck
    # passes U = 12 for I(X;T), which 4096 inputs (log2 n = 12) never reach, and U = 1 for I(Y;T)
    x, y = harmonics_data
    assert estimate("edge", x, y, inputs=x, U_xt=10)[0] == pytest.approx(10.0, abs=1e-12)
    assert 11.5 <= estimate("edge", x, y, inputs=x)[0] <= 12.0
    assert estimate("edge", x, y, inputs=x)[1] <= 1.0
    assert math.isnan(estimate("edge", x, y)[0])      # it hashes X: without the inputs there is no I(X;T)


def test_edge_reports_a_tenth_of_a_bit_for_an_independent_label():
    # A pitfall of the reference as published, kept: every edge's term is floored at 0.001 bits and
    # the auto bandwidth makes small cells, so a label independent of T reads ~0.1 bits at n = 4096
    # (the plug-in bias of a coarse grid would be ~0.003): compare I(Y;T) across groups, not with 0.
    rng = np.random.default_rng(9)
    t = rng.normal(size=(4096, 1))
    y = rng.integers(0, 2, 4096)
    assert 0.05 < estimate("edge", t, y)[1] < 0.2


def test_edge_is_reproducible_and_seeded():
    rng = np.random.default_rng(10)
    t = np.tanh(rng.normal(size=(1000, 3)))
    y = rng.integers(0, 2, 1000)
    assert estimate("edge", t, y) == estimate("edge", t, y)
    assert estimate("edge", t, y, seed=1) != estimate("edge", t, y, seed=2)


def test_ksg_independent_label_gives_near_zero():
    # Ross's estimator has little bias under independence (measured over 20 seeds at n = 4096, d = 3,
    # k = 2: mean -0.006 bits, standard deviation 0.012 bits), so 0.05 bits is about four standard deviations.
    rng = np.random.default_rng(11)
    t = rng.normal(size=(4096, 3))
    y = rng.integers(0, 2, 4096)
    assert abs(estimate("ksg", t, y)[1]) < 0.05


def test_ksg_entropy_of_a_gaussian():
    # differential entropy of N(0, I_2) = log2(2 pi e) = 4.094 bits; KSG Eq. 20 (max-norm) at n = 4096, k = 3
    # has a standard deviation of ~0.027 bits here (tests/test_ksg_reference.py derives it); 4.073 for this seed
    rng = np.random.default_rng(12)
    t = rng.normal(size=(4096, 2))
    assert estimate("ksg", t, np.zeros(4096, dtype=int))[0] == pytest.approx(math.log2(2 * math.pi * math.e),
                                                                             abs=0.05)


@pytest.mark.slow
def test_ksg_rows_store_the_entropy_as_h_t_bits_and_no_i_xt(tmp_path):
    """A scaled layer shows what h(T) is: doubling T adds one bit per unit, which no I(X;T) of a
    deterministic network on the same inputs can do. So the row holds it as h_t_bits, i_xt NULL."""
    from bench.make_results import write_run
    from ibstore import layout
    from ibstore.sandbox import run_query
    from ibstore.index import scan
    from trainer.measure import mi_rows

    rng = np.random.default_rng(15)
    layer = rng.normal(size=(512, 2))
    y = rng.integers(0, 2, 512)
    specs = [{"name": "ksg", "params": {"k": 2, "noise": 1e-10, "seed": 0}}, {"name": "binning", "params": {"bin_size": 0.07}}]
    (rows,) = mi_rows(["r"], 1, [layer[None], 2 * layer[None]], y, {"train": slice(0, 512)}, ["train"], ["a", "b"],
                      specs)
    ksg = [i for i, name in enumerate(rows["estimator"]) if name == "ksg"]
    assert [rows["i_xt"][i] for i in ksg] == [None, None]
    h_t = [rows["h_t_bits"][i] for i in ksg]
    assert h_t[0] == estimate("ksg", layer, y, k=2)[0]
    assert h_t[1] - h_t[0] == pytest.approx(2.0, abs=1e-9)          # 2 units, each doubled: + 2 bits
    assert [rows["i_yt"][i] for i in ksg] == [estimate("ksg", v, y, k=2)[1] for v in (layer, 2 * layer)]
    binning = [i for i, name in enumerate(rows["estimator"]) if name == "binning"]
    assert [rows["h_t_bits"][i] for i in binning] == [None, None] and None not in [rows["i_xt"][i] for i in binning]
    # files written before the column existed read as NULL through the mi view
    run_id = write_run(tmp_path, "old", {"activation_fn": "tanh", "epochs": 3}, logged=3)
    mi_file = layout.table_path(tmp_path, run_id, "mi")
    pq.write_table(pq.read_table(mi_file).drop_columns(["h_t_bits"]), mi_file)
    counts = run_query(scan(tmp_path), "SELECT count(*) AS n, count(h_t_bits) AS h FROM mi")
    assert counts["n"][0] > 0 and counts["h"][0] == 0


def test_ksg_label_determined_by_t_gives_h_y():
    rng = np.random.default_rng(13)
    y = rng.integers(0, 2, 4096)
    t = y[:, None] + 0.05 * rng.normal(size=(4096, 1))  # two well separated clusters
    assert estimate("ksg", t, y)[1] == pytest.approx(entropy_from_counts(np.bincount(y)), abs=0.02)


def test_ksg_repeated_rows_stand_on_the_jitter():
    # KSG has no rule for repeated rows: their k-th neighbour distance is the jitter's (NPEET's "small noise to
    # break degeneracy"), so h(T) falls with the noise, and is -inf without it
    rng = np.random.default_rng(14)
    t = rng.normal(size=(1000, 2))
    t[:500] = 0.0  # half the inputs collapse onto one point
    zeros = np.zeros(1000, dtype=int)
    h = estimate("ksg", t, zeros)[0]
    assert h < estimate("ksg", t[500:], zeros[500:])[0] - 10
    # half the distances shrink from ~1e-10 to ~1e-12: d/2 * log2(100) = 6.6 bits lower
    assert estimate("ksg", t, zeros, noise=1e-12)[0] - h == pytest.approx(-math.log2(100), abs=1e-6)
    assert estimate("ksg", t, zeros, noise=0)[0] == -math.inf


# --- degenerate input, for every estimator --------------------------------------------------------------


def any_estimate(name: str, t, y) -> tuple[float, float]:
    """`estimate` with the params the caller must supply (adaptive's low) set to the layer's minimum."""
    return estimate(name, t, y, low="min") if name == "adaptive" else estimate(name, t, y)


@pytest.fixture(scope="module")
def small_layer() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(15)
    return np.tanh(rng.normal(size=(200, 3))), rng.integers(0, 2, 200)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_one_class_gives_zero_i_yt(name, small_layer):
    # EDGE floors every edge's term at 0.001 bits (deep-bottleneck), so its zero is 0.001
    t, _ = small_layer
    zero = 0.001 if name == "edge" else 0.0
    assert any_estimate(name, t, np.full(len(t), 7))[1] == pytest.approx(zero, abs=1e-12)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_single_sample_gives_zero(name):
    if name == "ksg":  # a k-th nearest neighbour needs more than k samples (NPEET asserts k <= n - 1)
        with pytest.raises(EstimatorError, match="more than k = 3 samples"):
            any_estimate(name, np.array([[0.3, -0.2]] * 3), np.array([1, 0, 1]))
        return
    if name == "edge":  # deep-bottleneck projects onto floor(log2(n / 10)) directions: none below 20 inputs
        with pytest.raises(EstimatorError, match="edge needs at least 20 inputs"):
            any_estimate(name, np.array([[0.3, -0.2]]), np.array([1]))
        return
    assert any_estimate(name, np.array([[0.3, -0.2]]), np.array([1])) == pytest.approx((0.0, 0.0), abs=1e-12)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_identical_activations(name, small_layer):
    _, y = small_layer
    if name == "edge":   # every term log2(1) = 0, floored at 0.001 bits (deep-bottleneck); I(X;T) hashes inputs
        inputs = np.random.default_rng(16).normal(size=(len(y), 4))
        assert estimate(name, np.full((len(y), 3), 0.4), y, inputs=inputs) == pytest.approx((0.001, 0.001), abs=1e-12)
        return
    i_xt, i_yt = any_estimate(name, np.full((len(y), 3), 0.4), y)
    # ksg's h(T) of a constant layer is that of its jitter, uniform on a cube of side 1e-10: 3 log2(1e-10) bits
    # up to the k-NN estimate's bias at the cube's faces (0.45 bits at n = 200)
    assert i_xt == pytest.approx(3 * math.log2(1e-10) if name == "ksg" else 0.0, abs=1.0 if name == "ksg" else 1e-12)
    assert i_yt == pytest.approx(0.0, abs=0.02 if name == "ksg" else 1e-12)  # ksg: digamma terms ~1/n


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_one_dimensional_activations_are_one_unit(name, small_layer):
    t, y = small_layer
    assert any_estimate(name, t[:, 0], y) == any_estimate(name, t[:, :1], y)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_activations_raise(name, bad, small_layer):
    t, y = small_layer
    t = t.copy()
    t[3, 1] = bad
    with pytest.raises(EstimatorError, match="NaN|infinite"):
        any_estimate(name, t, y)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_bad_shapes_and_labels_raise(name, small_layer):
    t, y = small_layer
    with pytest.raises(EstimatorError, match="200 rows but labels have 199"):
        any_estimate(name, t, y[:-1])
    with pytest.raises(EstimatorError, match="one-hot"):
        any_estimate(name, t, np.eye(2)[y])
    with pytest.raises(EstimatorError, match="integer class ids"):
        any_estimate(name, t, y + 0.5)
    with pytest.raises(EstimatorError, match="no samples"):
        any_estimate(name, np.zeros((0, 3)), np.zeros(0, dtype=int))


# --- canonical() -------------------------------------------------------------------------------------------


def test_canonical_fills_defaults_and_is_json_stable():
    assert canonical("binning") == ("binning", {"bin_size": 0.07})
    assert canonical("binning", {"n_bins": 30}) == ("binning", {"n_bins": 30, "range": "layer"})
    assert canonical("binning", {"range": [-1, 1]}) == ("binning", {"n_bins": 30, "range": [-1.0, 1.0]})
    assert canonical("adaptive") == ("adaptive", {"n_bins": 30, "low": "auto"})
    assert canonical("quantile") == ("quantile", {"n_bins": 30})
    assert canonical("idnns") == ("idnns", {"n_edges": 30})
    assert canonical("kde_upper") == ("kde_upper", {"noise_variance": 0.001})
    assert canonical("ksg") == ("ksg", {"k": 3, "noise": 1e-10, "seed": 0})
    assert canonical("edge") == ("edge", {"U_xt": 12.0, "U_yt": 1.0, "L_ensemble": 10, "gamma_t": 0.1,
                                          "gamma_xy": 0.1, "eps_range_factor": 0.1, "seed": 3334})
    for name in ESTIMATORS:
        resolved = canonical(name)
        assert json.loads(json.dumps(resolved[1])) == resolved[1]
    # the same meaning compares equal
    assert canonical("binning", {"bin_size": 1}) == canonical("binning", {"bin_size": 1.0})
    assert canonical("binning", {"n_bins": 30.0, "range": (-1, 1)}) == canonical("binning", {"range": [-1.0, 1]})
    assert canonical("ksg", {"k": np.int64(2)})[1]["k"] == 2


def test_canonical_resolves_deep_bottleneck_aliases_and_discretization_range():
    assert set(ALIASES) == {"mi_estimator.binning", "mi_estimator.upper", "mi_estimator.lower", "mi_estimator.edge"}
    assert canonical("mi_estimator.binning", {}, discretization_range=0.07) == ("binning", {"bin_size": 0.07})
    assert canonical("mi_estimator.upper", {}, discretization_range=0.001) == ("kde_upper", {"noise_variance": 0.001})
    assert canonical("mi_estimator.lower", None, discretization_range=0.1) == ("kde_lower", {"noise_variance": 0.1})
    assert canonical("mi_estimator.edge", {}, discretization_range=0.07) == canonical("edge")  # ignored
    with pytest.raises(EstimatorError, match="cannot be combined"):
        canonical("binning", {"bin_size": 0.1}, discretization_range=0.07)


def test_canonical_error_messages_name_estimator_param_value_and_allowed():
    with pytest.raises(EstimatorError) as error:
        canonical("binning", {"bin_size": -1})
    assert str(error.value) == ("estimator 'binning': param 'bin_size' = -1 is not allowed; must be a number > 0 "
                                "from 1.2e-38 to 3.4e+38 (float32's normal numbers)")
    # The index a / bin_size is float32: 1e-300 is 0 there (NaN and infinite indices), 1e300 infinite.
    for outside in (1e-300, 1e-40, 1e300):
        with pytest.raises(EstimatorError, match=re.escape(f"'bin_size' = {outside} is not allowed; must be a number > 0 from")):
            canonical("binning", {"bin_size": outside})
    with pytest.raises(EstimatorError, match=r"param 'bin_size' = -0.5 is not allowed; must be a number > 0"):
        canonical("mi_estimator.binning", {}, discretization_range=-0.5)
    with pytest.raises(EstimatorError, match=r"'n_bins' = 2.5 is not allowed; must be an integer from 1 to"):
        canonical("adaptive", {"n_bins": 2.5})
    with pytest.raises(EstimatorError, match=r"'low' = 'lowest' is not allowed; must be 'auto'"):
        canonical("adaptive", {"low": "lowest"})
    with pytest.raises(EstimatorError, match=r"'n_bins' = True is not allowed"):
        canonical("adaptive", {"n_bins": True})
    with pytest.raises(EstimatorError,
                       match=r"'range' = \[1, -1\] is not allowed; must be 'layer', 'run' or \[lo, hi\]"):
        canonical("binning", {"range": [1, -1]})
    with pytest.raises(EstimatorError, match=r"'range' = 'global' is not allowed"):
        canonical("binning", {"range": "global"})
    with pytest.raises(EstimatorError, match=r"'noise_variance' = 'small' is not allowed; must be a number > 0"):
        canonical("kde_lower", {"noise_variance": "small"})
    with pytest.raises(EstimatorError, match=r"'noise_variance' = nan is not allowed"):
        canonical("kde_upper", {"noise_variance": float("nan")})
    with pytest.raises(EstimatorError, match=r"'U_xt' = 0 is not allowed; must be a number > 0"):
        canonical("edge", {"U_xt": 0})
    with pytest.raises(EstimatorError, match=r"'k' = 0 is not allowed; must be an integer from 1 to 1000"):
        canonical("ksg", {"k": 0})
    with pytest.raises(EstimatorError, match=r"'bin_size' = 0.1 cannot be combined with 'n_bins'/'range'"):
        canonical("binning", {"bin_size": 0.1, "n_bins": 30})


def test_canonical_unknown_names_list_what_is_allowed():
    with pytest.raises(EstimatorError, match=r"unknown estimator 'mine'; known estimators: binning, idnns, adaptive, "
                                             r"quantile, kde_upper, kde_lower, edge, ksg"):
        canonical("mine")
    with pytest.raises(EstimatorError, match=r"estimator 'binning': unknown param 'binsize'; "
                                             r"allowed params: bin_size, n_bins, range"):
        canonical("binning", {"binsize": 0.07})
    with pytest.raises(EstimatorError, match=r"params must be a dict"):
        canonical("ksg", [("k", 2)])
    with pytest.raises(EstimatorError, match=r"unknown param 'bin_size'"):
        estimate("ksg", np.zeros((5, 1)), np.zeros(5, dtype=int), bin_size=0.1)


@pytest.mark.slow
def test_package_does_not_import_tensorflow():
    code = "import sys, trainer.estimators; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- each estimator alone, on every split (MiRows: the rows the trainer and `trainer estimate` write) ------


@pytest.mark.parametrize("name, params", [
    ("binning", {}), ("binning", {"n_bins": 30, "range": "layer"}), ("binning", {"n_bins": 100, "range": "run"}),
    ("idnns", {}), ("adaptive", {}), ("quantile", {}), ("kde_upper", {}), ("kde_lower", {}), ("edge", {}),
    ("ksg", {})])
def test_each_estimator_alone_gives_rows_for_every_split_layer_and_epoch(name, params):
    rng = np.random.default_rng(16)
    labels = rng.integers(0, 2, 120)
    rows = {"train": slice(0, 90), "test": slice(90, 120), "full": slice(0, 120)}
    epochs = {epoch: [np.maximum(rng.normal(size=(120, 4)), 0), rng.uniform(size=(120, 2))] for epoch in (0, 1, 2)}
    mi = MiRows("r", [{"name": name, "params": params}], "relu", labels, rows, ["train", "test", "full"],
                ["dense_0", "output"])
    parts = [mi.at_epoch(epoch, layers) for epoch, layers in epochs.items()] + [mi.at_end()]
    written = [part for part in parts if part is not None]  # None: nothing to write now (never an empty part)
    assert all(len(part["epoch"]) > 0 for part in written)
    keys = {(e, layer, split) for part in written for e, layer, split in zip(part["epoch"], part["layer"], part["split"])}
    assert keys == {(e, layer, split) for e in epochs for layer in (0, 1) for split in rows}
    recorded = {p for part in written for p in part["params"]}
    assert recorded == {json.dumps(canonical(name, params)[1], sort_keys=True)}   # as configured


@pytest.mark.slow
def test_run_range_binning_alone_in_a_training_run(tmp_path):
    # Saxe et al.'s ReLU setting as the only estimator: everything is estimated when the run ends.
    # The network is live: not flagged dead (test_health has the dead one)
    import duckdb

    from trainer import config
    from trainer.training import run_experiment

    raw = {"name": "saxe", "activation_fn": "relu", "architecture": [10, 7, 5], "epochs": 2,
           "mi_splits": ["train", "test", "full"],
           "estimators": [{"name": "binning", "params": {"n_bins": 100, "range": "run"}}]}
    (run_id, status), = run_experiment(config.plan(raw)[0], tmp_path, progress=False).items()
    assert status.status == "completed"
    record = json.loads((tmp_path / "runs" / run_id / "run.json").read_text())
    assert (record["dead_network"], record["diverged"]) == (False, False)
    counts = duckdb.sql(f"SELECT split, count(*) FROM '{tmp_path}/runs/{run_id}/mi*.parquet' GROUP BY split").fetchall()
    assert dict(counts) == {"train": 12, "test": 12, "full": 12}  # 3 epochs x 4 layers each


def test_a_bin_size_whose_index_overflows_float32_fails_only_the_network_it_overflows():
    # a / 1e-35 is beyond float32's 3.4e38 for |a| > 3.4e3: those indices would be infinite,
    # merging every such value into one bin, so the estimate is refused for that network only.
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 40)
    layer = np.tanh(rng.normal(size=(3, 40, 3))).astype(np.float32)
    layer[1] *= 1e4
    spec = [{"name": "binning", "params": {"bin_size": 1e-35}}]
    rows = {"full": slice(0, 40)}
    outcomes = StackMiRows(["a", "b", "c"], spec, "tanh", labels, rows, ["full"], ["h"]).at_epoch(2, [layer], [0, 1, 2])
    assert isinstance(outcomes[1], EstimatorError)
    assert "bin_size 1e-35 is too small" in str(outcomes[1]) and "float32's range" in str(outcomes[1])
    for s in (0, 2):
        alone = MiRows("x", spec, "tanh", labels, rows, ["full"], ["h"]).at_epoch(2, [layer[s]])
        assert outcomes[s]["i_xt"] == alone["i_xt"] and alone["i_xt"][0] > 0


def test_a_jitter_or_bandwidth_range_too_large_to_compute_is_refused():
    # ksg with noise 1e300 was an IndexError deep in its neighbour counts
    with pytest.raises(EstimatorError, match=r"'noise' = 1e\+300 is not allowed; must be a number from 0 to 1"):
        canonical("ksg", {"noise": 1e300})
    with pytest.raises(EstimatorError, match=r"'eps_range_factor' = 1e\+300 is not allowed; must be a number from 0 to 100"):
        canonical("edge", {"eps_range_factor": 1e300})
    assert canonical("ksg", {"noise": 0.5})[1]["noise"] == 0.5
