"""The estimators' shortcuts against the direct computation they replace (values computed here).

kde: one pass over a layer's distances serves both bounds, and the other bound's sums are kept
for a later call on the same layer (kde.RecentLayerSums); ksg: Ross's neighbour counts come from
one k-NN query of the whole tree, asked again with more neighbours where it does not settle a
point (ksg.ross_counts).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import logsumexp

from trainer.estimators import EstimatorError, estimate, kde, ksg


def kde_mi_dense(t: np.ndarray, y: np.ndarray, variance: float, bound: str) -> tuple[float, float]:
    """ibsgd's computeMI on the dense float64 distance matrix: I(X;T) = H(T) - H(T|X),
    I(Y;T) = H(T) - sum_y p(y) H(T|Y=y), H by entropy_estimator_kl (upper) or _bd (lower), in bits."""
    d = t.shape[1]

    def entropy(points: np.ndarray) -> float:
        kernel_variance = variance if bound == "upper" else 4 * variance
        squared = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
        log_probs = logsumexp(-squared / (2 * kernel_variance), axis=1) - math.log(len(points)) \
            - d / 2 * math.log(2 * math.pi * kernel_variance)
        return d / 2 - float(np.mean(log_probs)) + (0.0 if bound == "upper" else d / 2 * math.log(0.25))

    h_t = entropy(t)
    h_t_given_x = d / 2 * (math.log(2 * math.pi * variance) + 1)
    h_t_given_y = sum(np.mean(y == c) * entropy(t[y == c]) for c in np.unique(y))
    return (h_t - h_t_given_x) / math.log(2), (h_t - h_t_given_y) / math.log(2)


def test_the_lower_bounds_exponents_are_a_quarter_of_the_upper_ones_bit_for_bit():
    # the shared pass scales the float32 exponents -d^2 / (2 var) by 1/4 for the variance 4 var; a pass for
    # the lower bound alone rounds -d^2 / (2 * 4 var) to float32 directly: the same bits
    squared = np.random.default_rng(9).exponential(1e-2, 100_000)
    for variance in (1e-3, 0.05, 1.0, 3e-7):
        shared = np.multiply(squared, -0.5 / variance).astype(np.float32) * np.float32(0.25)
        alone = np.multiply(squared, -0.5 / (4 * variance)).astype(np.float32)
        assert np.array_equal(shared.view(np.int32), alone.view(np.int32))


def test_kde_bounds_share_one_pass_keyed_by_the_layers_content():
    # a kept pass must serve only the very same layer, classes and noise variance
    rng = np.random.default_rng(6)
    t = np.tanh(rng.normal(size=(50, 3)))
    y = rng.integers(0, 2, 50)
    estimate("kde_upper", t, y, noise_variance=0.05)
    assert estimate("kde_lower", t, y, noise_variance=0.05) == pytest.approx(kde_mi_dense(t, y, 0.05, "lower"), abs=1e-6)
    t[0] += 0.5   # the same array object, other content
    assert estimate("kde_lower", t, y, noise_variance=0.05) == pytest.approx(kde_mi_dense(t, y, 0.05, "lower"), abs=1e-6)
    assert estimate("kde_upper", t, y, noise_variance=0.1) == pytest.approx(kde_mi_dense(t, y, 0.1, "upper"), abs=1e-6)
    y[:25] = 1 - y[:25]
    assert estimate("kde_upper", t, y, noise_variance=0.1) == pytest.approx(kde_mi_dense(t, y, 0.1, "upper"), abs=1e-6)


def passes_in_the_trainers_order(monkeypatch, layers: list[np.ndarray], y: np.ndarray) -> int:
    """kde_upper on every layer, then kde_lower on every layer (as the trainer asks), each against the
    dense port; how many passes over the distances they made."""
    passes = []
    real_pass = kde.kernel_class_sums
    monkeypatch.setattr(kde, "kernel_class_sums", lambda *args: passes.append(1) or real_pass(*args))
    for bound in ("upper", "lower"):
        for t in layers:
            assert estimate(f"kde_{bound}", t, y, noise_variance=0.05) == pytest.approx(
                kde_mi_dense(t, y, 0.05, bound), abs=1e-6)
    return len(passes)


def test_kde_lower_after_upper_on_every_layer_reuses_each_layers_pass(monkeypatch):
    # each layer's pass serves both bounds
    rng = np.random.default_rng(7)
    layers = [np.tanh(rng.normal(size=(40, units))) for units in (4, 3, 2)]
    y = rng.integers(0, 2, 40)
    assert passes_in_the_trainers_order(monkeypatch, layers, y) == len(layers)


def test_kde_keeps_no_more_than_its_byte_budget(monkeypatch):
    # with room for one layer's sums, each layer evicts the one before: every call makes its own pass
    rng = np.random.default_rng(10)
    layers = [np.tanh(rng.normal(size=(30, units))) for units in (3, 2)]
    y = rng.integers(0, 2, 30)
    monkeypatch.setattr(kde, "MEMO_BYTES", 1)
    assert passes_in_the_trainers_order(monkeypatch, layers, y) == 2 * len(layers)
    assert len(kde.recent_layer_sums.sums) == 1


@pytest.mark.parametrize("n_points, n_distinct, k", [(300, 7, 2), (300, 300, 3), (12, 12, 2), (40, 3, 1)])
def test_ksg_ross_counts_equal_brute_force_counts_with_ties(n_points, n_distinct, k):
    # exact repeats (r_i = 0, many points at one distance) make the first k-NN lists too short, so the
    # points are asked again with more neighbours; 12 points: the list is every point
    rng = np.random.default_rng(8)
    if n_distinct < n_points:
        t = rng.integers(0, 3, size=(n_distinct, 2)).astype(float)[rng.integers(0, n_distinct, n_points)]
    else:
        t = rng.normal(size=(n_points, 2))
    classes = rng.integers(0, 2, n_points)
    k_of_class = np.minimum(k, np.bincount(classes) - 1)
    distances = np.sqrt(((t[:, None, :] - t[None, :, :]) ** 2).sum(-1))
    others = ~np.eye(n_points, dtype=bool)
    same = (classes[:, None] == classes[None, :]) & others
    radii = np.array([np.sort(distances[i, same[i]])[k_of_class[classes[i]] - 1] for i in range(n_points)]) \
        * (1 + ksg.RADIUS_SLACK)
    within = distances <= radii[:, None]
    same_counts, all_counts = ksg.ross_counts(t, classes, k_of_class)
    assert same_counts.tolist() == (within & same).sum(axis=1).tolist()
    assert all_counts.tolist() == (within & others).sum(axis=1).tolist()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stacked_finite_check_by_min_and_max_finds_every_nan_and_infinity(dtype):
    """stacked_layer_inputs checks the trainer's float layers by their min and max instead of a
    finite mask: it accepts and rejects exactly what np.isfinite(...).all() does, wherever the bad
    value sits, and a layer it accepts comes back as it was, with layer_inputs' classes."""
    from trainer.estimators.inputs import layer_inputs, stacked_layer_inputs
    rng = np.random.default_rng(11)
    values = np.tanh(rng.normal(size=(4, 30, 3))).astype(dtype)
    labels = rng.integers(3, 6, 30)
    t, classes, n_classes = stacked_layer_inputs(values, labels)
    assert t is values
    _, alone_classes, alone_n = layer_inputs(values[2], labels)
    assert np.array_equal(classes, alone_classes) and n_classes == alone_n == 3
    for bad in (np.nan, np.inf, -np.inf):
        for position in [(0, 0, 0), (3, 29, 2), (2, 11, 1)]:
            broken = values.copy()
            broken[position] = bad
            assert not np.isfinite(broken).all()
            with pytest.raises(EstimatorError, match="NaN|infinite"):
                stacked_layer_inputs(broken, labels)
    with pytest.raises(EstimatorError, match="30 rows but labels have 29"):
        stacked_layer_inputs(values, labels[:-1])
    with pytest.raises(EstimatorError, match="no samples"):
        stacked_layer_inputs(values[:, :0], labels[:0])


def test_label_classes_equal_np_unique_for_labels_that_already_are_classes_and_for_others():
    """Labels that are 0..k-1 with every class present are their own classes (counted, not sorted):
    the same classes and count as np.unique's inverse, and other labels go through np.unique."""
    from trainer.estimators.inputs import label_classes
    rng = np.random.default_rng(12)
    cases = [rng.integers(0, 2, 300), rng.integers(0, 7, 300).astype(np.uint8), np.array([0]),
             np.array([1, 0, 2, 2, 1]), np.array([0, 2, 2, 0]),           # class 1 missing: renumbered
             np.array([3, 4, 4, 5]), np.array([-1, 0, 1]), np.array([0, 1, 10**12]),
             np.array([True, False, True]), rng.integers(0, 3, 300).astype(np.int16)]
    for labels in cases:
        names, inverse = np.unique(labels, return_inverse=True)
        classes, n_classes = label_classes(labels, len(labels))
        assert classes.dtype == np.int64 and n_classes == len(names)
        np.testing.assert_array_equal(classes, inverse.reshape(-1))
