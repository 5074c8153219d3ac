"""rowwise_digitize (the idnns, adaptive and quantile estimators' binning) against
np.searchsorted(side="right") network by network, bit for bit, where a search written over whole
arrays could go wrong: float64 edges between two float32 numbers, values on the edges, repeated and
infinite edges, no edges, blocks that end inside a network, float64 layers, and the real edges of
the adaptive estimator."""

import numpy as np
import pytest

from trainer.estimators import binning
from trainer.estimators.binning import ceil_to, rowwise_digitize


def searchsorted_per_network(edges: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.stack([np.searchsorted(row_edges, values, side="right") for row_edges, values in zip(edges, t)])


def assert_as_searchsorted(edges: np.ndarray, t: np.ndarray) -> None:
    codes = rowwise_digitize(edges, t)
    expected = searchsorted_per_network(edges, t)
    assert codes.dtype == expected.dtype and codes.shape == t.shape
    np.testing.assert_array_equal(codes, expected)


def float32_neighbours(x: float, count: int = 3) -> np.ndarray:
    """The float32 numbers nearest x, `count` either side of float32(x), with float32(x) itself."""
    centre = np.float32(x)
    below, above = [centre], [centre]
    for _ in range(count):
        below.append(np.nextafter(below[-1], np.float32(-np.inf)))
        above.append(np.nextafter(above[-1], np.float32(np.inf)))
    return np.array(sorted(set(below + above)), np.float32)


def test_float64_edges_between_float32_numbers():
    # -1.000001 (the adaptive estimator's tanh low) and 0.1 are not float32 numbers: float32(x) lies on
    # one side of each, and a value there must count the edge exactly when it is >= the float64 edge.
    lows = [-1.000001, 0.1, -0.1, 1e-30, 3.3e38]
    values = np.concatenate([float32_neighbours(x) for x in lows])
    t = np.stack([values, values[::-1]])[:, :, None]                   # [2, m, 1]
    edges = np.array([sorted(lows), [-2.0, -1.000001, 0.1, 0.1000000001, 1e39]])
    assert float(np.float32(-1.000001)) != -1.000001 and float(np.float32(0.1)) != 0.1
    assert_as_searchsorted(edges, t)


def test_ceil_to_is_the_smallest_float32_not_below_the_edge():
    edges = np.array([-1.000001, 0.1, 1.0, 1e39, -1e39, np.inf, 0.0, -0.0, 2.0**-149 / 3])
    rounded = ceil_to(edges, np.dtype(np.float32))
    assert rounded.dtype == np.float32
    assert np.all(rounded.astype(np.float64) >= edges)
    with np.errstate(over="ignore"):
        smaller = np.nextafter(rounded, np.float32(-np.inf))
    assert np.all((smaller.astype(np.float64) < edges) | (rounded == -np.finfo(np.float32).max))
    assert rounded[3] == np.inf and rounded[4] == -np.finfo(np.float32).max


def test_values_on_the_edges_repeated_and_infinite_edges():
    rng = np.random.default_rng(0)
    values = rng.choice(np.linspace(-1, 1, 9, dtype=np.float32), size=(3, 50, 4))
    edges = np.array([
        np.linspace(-1, 1, 9),                                        # every value sits on an edge
        [-1.000001, -0.5, -0.5, -0.5, 0.0, 0.0, 0.25, 1.0, 1.0],       # repeated edges
        [-1.000001, np.inf, np.inf, np.inf, np.inf, np.inf, np.inf, np.inf, np.inf],   # a network without distinct values
    ])
    assert_as_searchsorted(edges, values)


@pytest.mark.parametrize("n_edges", [0, 1, 2, 3, 7, 8, 31, 32, 33, 64])
def test_every_table_width(n_edges):
    rng = np.random.default_rng(n_edges)
    t = rng.normal(size=(3, 40, 3)).astype(np.float32)
    edges = np.sort(rng.normal(size=(3, n_edges)), axis=1)
    assert_as_searchsorted(edges, t)


def test_blocks_ending_inside_a_network(monkeypatch):
    rng = np.random.default_rng(1)
    t = rng.normal(size=(5, 13, 3)).astype(np.float32)                # 39 values a network
    edges = np.sort(rng.normal(size=(5, 6)), axis=1)
    for block in (1, 7, 38, 39, 40, 1000):
        monkeypatch.setattr(binning, "SEARCH_BLOCK", block)
        assert_as_searchsorted(edges, t)


def test_float64_layers_and_empty_layers():
    rng = np.random.default_rng(2)
    t = rng.normal(size=(2, 30, 2))
    edges = np.sort(np.concatenate([rng.normal(size=(2, 5)), t[:, :3, 0]], axis=1), axis=1)   # some values are edges
    assert_as_searchsorted(edges, t)
    assert rowwise_digitize(edges, np.zeros((2, 0, 2), np.float32)).shape == (2, 0, 2)


def test_the_adaptive_estimators_own_edges():
    # The edges adaptive_mi_stacked makes on tanh- and relu-like layers, with float32 values on them
    # and the tanh low -1.000001 below them: the codes it bins by are np.digitize's.
    rng = np.random.default_rng(3)
    tanh_like = np.tanh(rng.normal(scale=3, size=(4, 4096, 5))).astype(np.float32)
    relu_like = np.maximum(rng.normal(size=(4, 4096, 5)), 0).astype(np.float32)
    for t, low in ((tanh_like, -1.000001), (relu_like, 0.0)):
        values = np.sort(t.reshape(len(t), -1), axis=1)
        distinct = [np.unique(row[row != low]) for row in values]
        edges = np.array([[low, *row[(np.arange(30) * (len(row) / 30)).astype(int)], row[-1]] for row in distinct])
        assert_as_searchsorted(edges, t)


def test_edges_for_another_number_of_networks_are_refused():
    with pytest.raises(ValueError, match="2 rows of edges for 3 networks"):
        rowwise_digitize(np.zeros((2, 4)), np.zeros((3, 5, 2), np.float32))
