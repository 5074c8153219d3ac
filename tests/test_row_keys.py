"""The binning family's shortcuts to distinct rows (trainer.estimators.discrete): one radix per network
for the row keys, the 16-bit radix sort, the entropies from sorted runs. Each is compared bit for bit
with the straightforward computation: np.unique over each network's rows, counted and padded to its
width (the layout every entropy of the family sums over, `row_entropies_bits`)."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.datasets import harmonics
from trainer.estimators import discrete


def unique_row_entropies(codes: np.ndarray, classes: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(H(T), I(Y;T)) [N] of each network's rows of codes by np.unique(axis=0), no keys, no sort of ours."""
    n_networks, n, _ = codes.shape
    h_y = discrete.row_entropies_bits(np.bincount(classes, minlength=n_classes)[None])[0]

    def padded(counts):
        return np.concatenate([counts, np.zeros(n - len(counts), np.int64)])[None]

    h_t, h_ty = np.empty(n_networks), np.empty(n_networks)
    for s in range(n_networks):
        h_t[s] = discrete.row_entropies_bits(padded(np.unique(codes[s], axis=0, return_counts=True)[1]))[0]
        with_class = np.concatenate([codes[s], classes[:, None].astype(codes.dtype)], axis=1)
        h_ty[s] = discrete.row_entropies_bits(padded(np.unique(with_class, axis=0, return_counts=True)[1]))[0]
    return h_t, h_t + h_y - h_ty


def same_rows_same_keys(codes: np.ndarray, keys: np.ndarray) -> bool:
    """Whether each network's keys number its rows exactly as np.unique(axis=0) does (equal iff equal)."""
    for network_codes, network_keys in zip(codes, keys):
        by_rows = np.unique(network_codes, axis=0, return_inverse=True)[1].reshape(-1)
        by_keys = np.unique(network_keys, return_inverse=True)[1].reshape(-1)
        pairs = set(zip(by_rows.tolist(), by_keys.tolist()))
        if not len(pairs) == len(set(by_rows.tolist())) == len(set(by_keys.tolist())):
            return False
    return True


def tanh_codes(n_networks: int, units: int, bin_size: float = 0.07) -> tuple[np.ndarray, np.ndarray]:
    """Real activations: float32 tanh layers of random networks on the harmonics inputs, binned as
    binning_mi_stacked bins them (float32 quotient, floored), and the labels."""
    x, y = harmonics()
    rng = np.random.default_rng(units)
    weights = rng.normal(0, 1, (n_networks, x.shape[1], units)) / np.sqrt(x.shape[1])
    t = np.tanh(np.einsum("ni,sij->snj", x, weights)).astype(np.float32)
    return np.floor(np.divide(t, np.float32(bin_size), dtype=np.float32)), y


def adversarial_codes() -> list[np.ndarray]:
    """[N, n, units] codes: ties, values on bin edges, negative and huge codes, a constant network,
    spans at 2^53's edge, a layer one radix cannot key (so the per-unit keys take over), and rows too
    wide for one number (`ranked_row_keys`)."""
    rng = np.random.default_rng(7)
    ties = rng.integers(-3, 3, (4, 300, 6)).astype(np.float32)
    ties[:, 150:] = ties[:, :150]                                     # every row twice
    ties[1] = -2.0                                                    # one symbol
    edges = np.floor(np.divide(np.arange(-40, 40, dtype=np.float32)[:, None] * np.float32(0.07),
                               np.float32(0.07), dtype=np.float32))   # multiples of the bin size
    edges = np.stack([np.concatenate([edges, edges[::-1] + 1], axis=1)] * 2)
    huge = (rng.integers(0, 5, (3, 200, 4)) + 2.0**40).astype(np.float64)   # far from 0, small span
    huge[1] -= 2.0**41                                                # negative, far from 0
    at_the_edge = np.array([[[0.0], [2.0**52 - 2], [5.0], [0.0]]])    # span^1 * 2 = 2^53 - 2: one radix
    past_the_edge = np.array([[[0.0], [2.0**52 - 1], [5.0], [0.0]]])  # 2^53: per-unit keys
    wide = rng.integers(0, 40, (2, 100, 12)).astype(np.float32)       # 40^12: per-unit keys
    wide[:, 50:] = wide[:, :50]
    grid = np.stack(np.meshgrid(*[np.arange(-2.0, 3.0)] * 3), axis=-1).reshape(1, -1, 3)
    every_row = np.concatenate([grid, grid[:, ::7], -grid - 1], axis=1)  # every row of a span, twice some
    # Past one int64 per row: 2,000-row networks whose second unit spans ~4e15 (exact in float64, but
    # ranks of the keys so far times its span pass 2^62, so it is ranked too) and whose third spans
    # 2e30 (past float64's exact integers: ranked at once); every row twice in the first network.
    vast = np.stack([rng.integers(0, 2000, (2, 2000)), rng.integers(0, 2**52, (2, 2000)) * 2,
                     rng.choice([-1e30, -3.0, 0.0, 1e30], (2, 2000))], axis=-1).astype(np.float64)
    vast[0, 1000:] = vast[0, :1000]
    # Keys that would wrap in int64 onto another row's: 2,100 first-unit ranks times a second unit of span
    # 2^53 - 1, where rank 2048 with code 2058 is rank 0 with code 10 modulo 2^64.
    wrapping = np.zeros((1, 2100, 2))
    wrapping[0, :, 0] = np.arange(2100)
    wrapping[0, [0, 2048, 7], 1] = [10, 2058, 2.0**53 - 2]
    return [ties, edges, huge, at_the_edge, past_the_edge, wide, every_row, vast, wrapping]


@pytest.mark.parametrize("case", range(len(adversarial_codes())))
def test_row_keys_and_mi_equal_np_unique_over_rows_on_adversarial_codes(case):
    codes = adversarial_codes()[case]
    classes = np.arange(codes.shape[1]) % 3
    assert same_rows_same_keys(codes, discrete.stacked_row_keys(codes, 3))
    h_t, i_yt = discrete.stacked_plugin_mi_bits(codes, classes, 3)
    expected_h_t, expected_i_yt = unique_row_entropies(codes, classes, 3)
    np.testing.assert_array_equal(h_t, expected_h_t)        # bit for bit
    np.testing.assert_array_equal(i_yt, expected_i_yt)


def test_one_radix_keys_a_network_only_where_every_partial_sum_is_exact():
    at_the_edge, past_the_edge = adversarial_codes()[3:5]
    keys = discrete.uniform_radix_keys(at_the_edge, 2)
    np.testing.assert_array_equal(keys, [[0, 2**52 - 2, 5, 0]])
    assert discrete.uniform_radix_keys(past_the_edge, 2) is None
    assert discrete.uniform_radix_keys(adversarial_codes()[5], 2) is None


@pytest.mark.parametrize("units", [10, 7, 4, 3, 2])
def test_mi_of_real_tanh_layers_equals_np_unique_over_rows(units):
    """A cohort's layers: 10 and 7 units sort int64 keys, 4 int32, 3 the 16-bit radix sort (keys
    below 2^16), 2 counts (symbol, class) pairs densely; each split's rows as the trainer gives them."""
    codes, y = tanh_codes(5, units)
    for rows in (slice(0, 3277), slice(3277, 4096)):
        assert same_rows_same_keys(codes[:, rows], discrete.stacked_row_keys(codes[:, rows], 2))
        h_t, i_yt = discrete.stacked_plugin_mi_bits(codes[:, rows], y[rows], 2)
        expected_h_t, expected_i_yt = unique_row_entropies(codes[:, rows], y[rows], 2)
        np.testing.assert_array_equal(h_t, expected_h_t)
        np.testing.assert_array_equal(i_yt, expected_i_yt)


@pytest.mark.parametrize("top", [2**15 - 1, 2**15, 2**15 + 1])
def test_joint_keys_either_side_of_2_16_give_the_same_mi(top):
    """Joint keys (code * 2 + class) below 2^16 are sorted as uint16 by radix sort; from top = 2^15 up
    the largest is 2^16 or more and code top, class 0 would wrap onto code 0, class 0 in 16 bits."""
    rng = np.random.default_rng(top)
    codes = rng.choice([0, 1, 2, top - 2, top - 1, top], (3, 500, 1)).astype(np.float64)
    codes[:, :2, 0] = [0, top]
    classes = rng.integers(0, 2, 500)
    h_t, i_yt = discrete.stacked_plugin_mi_bits(codes, classes, 2)
    expected_h_t, expected_i_yt = unique_row_entropies(codes, classes, 2)
    np.testing.assert_array_equal(h_t, expected_h_t)
    np.testing.assert_array_equal(i_yt, expected_i_yt)


def test_entropies_of_rows_of_distinct_values_equal_their_counted_entropies():
    """Rows whose values are all distinct skip the counting of their runs (entropy log2(width)); the
    others in the same array are counted: both bit for bit the entropies of the padded np.unique counts."""
    rng = np.random.default_rng(3)
    one_pair = np.arange(500)
    one_pair[7] = 6                                              # 499 runs: one short of distinct
    sorted_rows = np.sort(np.stack([rng.permutation(500), rng.integers(0, 400, 500), one_pair,
                                    np.arange(500) * 3 - 700, rng.integers(0, 3, 500)]), axis=1)
    expected = [discrete.row_entropies_bits(np.concatenate([counts, np.zeros(500 - len(counts), np.int64)])[None])[0]
                for counts in (np.unique(row, return_counts=True)[1] for row in sorted_rows)]
    np.testing.assert_array_equal(discrete.sorted_row_entropies_bits(sorted_rows), expected)
    np.testing.assert_array_equal(discrete.sorted_row_entropies_bits(sorted_rows[[0, 3]]), [np.log2(500)] * 2)
    np.testing.assert_array_equal(discrete.sorted_row_entropies_bits(np.zeros((3, 0), np.int64)), [0.0] * 3)
    np.testing.assert_array_equal(discrete.sorted_row_entropies_bits(np.array([[4], [2]])), [0.0] * 2)
