"""Binning estimators: discretise each unit, count the distinct rows (Shwartz-Ziv & Tishby 2017).

The standard estimator of the information-plane papers: `binning` (a bin size, or
n equal bins over a range) and `idnns` (IDNNs' own np.digitize edges). A
deterministic network on n distinct, equally likely inputs X makes the binned
layer T a function of X, so H(T|X) = 0 and I(X;T) = H(T); I(Y;T) = H(T) - sum_y p(y) H(T|Y=y). All entropies
are plug-in entropies of the binned rows (trainer.estimators.discrete).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from trainer.estimators.discrete import stacked_plugin_mi_bits
from trainer.estimators.errors import EstimatorError
from trainer.estimators.inputs import layer_inputs
from trainer.estimators.params import Param, as_number, integer_between, reject_unknown, resolver

RANGE_CHOICES = ("layer", "run")
# Values per block of `rowwise_digitize`: a block's arrays (about 37 bytes a value) stay in a core's
# L2 cache; a stack of 23 layers searched at once took much longer (bench/RESULTS.md, issue 18 stop 35).
SEARCH_BLOCK = 2**14


def binning_mi(activations, labels, *, bin_size: float | None = None, n_bins: int | None = None,
               range: str | list[float] | None = None) -> tuple[float, float]:
    """(I(X;T), I(Y;T)) in bits of one layer, by binning its activations.

    Two ways to bin; the canonical params (`canonical`, which holds the defaults) give exactly one:
    - `bin_size` (deep-bottleneck / ibsgd `simplebinmi.bin_calc_information2`): bin index
      floor(a / bin_size), unbounded, the grid anchored at 0, computed as ibsgd computes it on
      Keras' activations: a and bin_size as float32, the quotient in float32.
    - `n_bins` over `range` (Saxe et al. 2018 for ReLU: 100 bins between the layer's
      min and max over the whole run, no public code, computed in float64; for IDNNs' exact
      edges see `idnns_mi`): n_bins equal bins
      over [lo, hi], bin index floor((a - lo) / (hi - lo) * n_bins). Values outside a
      fixed range are clipped into the first or last bin (so a value a > hi counts as
      in the last bin; a == hi is in the last bin too). `range` is [lo, hi], "layer"
      (min..max of all units of these activations; lo == hi makes one bin) or
      "run", which the caller must replace by [lo, hi] of the whole run first (see
      trainer.estimators.needs_run_range).

    Then I(X;T) = H(T), I(Y;T) = H(T) + H(Y) - H(T,Y), plug-in entropies over the rows
    of bin indices (Shwartz-Ziv & Tishby 2017, "Opening the black box of deep neural
    networks via information"; Saxe et al. 2018, "On the information bottleneck
    theory of deep learning").
    """
    t, classes, n_classes = layer_inputs(activations, labels)
    i_xt, i_yt = binning_mi_stacked(t[None], classes, n_classes, bin_size=bin_size, n_bins=n_bins, range=range)
    return float(i_xt[0]), float(i_yt[0])


def binning_mi_stacked(t: np.ndarray, classes: np.ndarray, n_classes: int, *, bin_size: float | None = None,
                       n_bins: int | None = None, range: str | list[float] | np.ndarray | None = None,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """`binning_mi` of N networks' layers at once: t [N, n, units] float32 or float64 (checked, see
    `stacked_layer_inputs`), classes [n] 0..n_classes-1. `range` may also be an [N, 2]
    array of per-network (lo, hi) (each network's run range). Returns ([N], [N])."""
    if n_bins is None:
        # As ibsgd runs it: np.floor(d / binsize) on Keras' float32 activations, so the division is
        # float32 (a value on a bin edge can land one bin away from the float64 quotient).
        with np.errstate(over="ignore"):        # checked on the next line
            codes = np.divide(t, np.float32(bin_size), dtype=np.float32)     # t cast to float32 first
        if not np.isfinite(codes).all():
            # An infinite index would merge every value beyond float32's range into one bin.
            raise EstimatorError(f"estimator 'binning': bin_size {bin_size:g} is too small for these activations "
                                 f"(largest |a| {float(np.abs(t).max()):g}): a / bin_size exceeds float32's range; "
                                 f"use a larger bin_size")
        np.floor(codes, out=codes)
    else:
        low, high = value_range(t, range)
        codes = grid_codes(t, n_bins, low, high)
    return stacked_plugin_mi_bits(codes, classes, n_classes)


def idnns_mi(activations, labels, *, n_edges: int) -> tuple[float, float]:
    """(I(X;T), I(Y;T)) in bits of one layer, binned exactly as IDNNs bins it.

    ravidziv/IDNNs (idnns/information/information_process.py, `get_information` and
    `calc_information_for_layer`; the "30 bins" of Shwartz-Ziv & Tishby 2017, also
    ibsgd's `simplebinmi.bin_calc_information`): edges = np.linspace(-1, 1, n_edges)
    cast to float32, each value replaced by edges[np.digitize(a, edges) - 1]. So there
    are n_edges - 1 intervals [e_k, e_k+1) inside [-1, 1) (29 for the default 30) and
    one more symbol, the top edge 1.0, for values >= 1 (a saturated float32 tanh or
    softmax reaches 1.0 exactly) and also, because index -1 wraps round to the last
    edge, for values below -1 (none for tanh and softmax; relu values above 1 all
    share it, the known pitfall of fixed [-1, 1] bins). Then the plug-in entropies of
    the binned rows, as for `binning_mi`.
    """
    t, classes, n_classes = layer_inputs(activations, labels)
    i_xt, i_yt = idnns_mi_stacked(t[None], classes, n_classes, n_edges=n_edges)
    return float(i_xt[0]), float(i_yt[0])


def idnns_mi_stacked(t: np.ndarray, classes: np.ndarray, n_classes: int, *, n_edges: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """`idnns_mi` of N networks' layers at once (t [N, n, units]; see `binning_mi_stacked`)."""
    edges = np.linspace(-1, 1, n_edges).astype(np.float32)
    codes = rowwise_digitize(edges[None], t.reshape(1, -1)).reshape(t.shape) - 1    # np.digitize(t, edges) - 1
    codes[codes < 0] = n_edges - 1  # IDNNs' edges[-1]: below -1 is the same symbol as >= 1
    return stacked_plugin_mi_bits(codes, classes, n_classes)


def grid_codes(t: np.ndarray, n_bins: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Bin indices 0..n_bins-1 of n_bins equal bins over [low, high] per network (t [N, n, units],
    low and high [N]); outside values clipped; a network with high <= low gets one bin."""
    low, high = low[:, None, None], high[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        codes = np.floor((t - low) * (n_bins / (high - low)))
    return np.where(high > low, np.clip(codes, 0, n_bins - 1), 0).astype(np.int64)


def value_range(t: np.ndarray, range_param: str | list[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo [N], hi [N]) for a `range` param and t [N, n, units]: each network's own min and max
    ("layer"), the given pair for all, or per-network pairs [N, 2]."""
    if isinstance(range_param, str) and range_param == "layer":
        return t.min(axis=(1, 2)).astype(np.float64), t.max(axis=(1, 2)).astype(np.float64)
    if isinstance(range_param, str) and range_param == "run":
        raise EstimatorError("estimator 'binning': range 'run' must be replaced by the caller with [lo, hi], "
                             "the layer's min and max over the whole run (see needs_run_range)")
    pairs = np.broadcast_to(np.asarray(range_param, dtype=np.float64), (len(t), 2))
    return pairs[:, 0], pairs[:, 1]


def convert_range(value: Any) -> str | list[float]:
    """'layer', 'run' or [lo, hi] with finite lo <= hi (as a list of two floats).

    lo == hi is allowed because the range substituted for "run" is that of a layer
    which may have been constant over the whole run (one bin, no information).
    """
    if isinstance(value, str):
        if value not in RANGE_CHOICES:
            raise ValueError(value)
        return value
    low, high = (as_number(bound) for bound in value)
    if not low <= high:
        raise ValueError(value)
    return [low, high]


FLOAT32 = np.finfo(np.float32)


def float32_bin_size(value: Any) -> float:
    """A bin size float32 holds as a normal number: the index a / bin_size is computed in float32,
    so 1e-300 would be 0 there (every index infinite or NaN) and 1e300 infinite."""
    number = as_number(value)
    if not float(FLOAT32.tiny) <= number <= float(FLOAT32.max):
        raise ValueError(value)
    return number


BIN_SIZE_PARAMS = {"bin_size": Param(0.07, f"a number > 0 from {FLOAT32.tiny:.2g} to {FLOAT32.max:.2g} "
                                           f"(float32's normal numbers)", float32_bin_size)}
IDNNS_PARAMS = {"n_edges": integer_between(2, 1_000_000, 30)}
GRID_PARAMS = {
    "n_bins": integer_between(1, 1_000_000, 30),
    "range": Param("layer", "'layer', 'run' or [lo, hi] with finite numbers lo <= hi", convert_range),
}


def canonical_params(estimator: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Either {"bin_size"} or {"n_bins", "range"}: giving n_bins or range selects the grid."""
    reject_unknown(estimator, raw, {**BIN_SIZE_PARAMS, **GRID_PARAMS})
    if any(key in raw for key in GRID_PARAMS):
        if "bin_size" in raw:
            raise EstimatorError(f"estimator {estimator!r}: param 'bin_size' = {raw['bin_size']!r} cannot be "
                                 f"combined with 'n_bins'/'range'; give either bin_size, or n_bins and range")
        return resolver(GRID_PARAMS)(estimator, raw)
    return resolver(BIN_SIZE_PARAMS)(estimator, raw)


def rowwise_digitize(edges: np.ndarray, t: np.ndarray) -> np.ndarray:
    """np.digitize(t[s], edges[s]) for every network s (edges [N, E] non-decreasing, t [N, ...] finite,
    float32 or float64): the number of network s's edges <= each value, as
    np.searchsorted(edges[s], value, side="right") gives it (int64).

    A branchless binary search of all networks at once: each network's edges padded with +inf to a
    power of two W > E (one flat table [N * W]), then log2(W) rounds in which every value looks up the
    edge `step` places on and moves past it if that edge is <= the value: the comparisons of a binary
    search, as whole-array passes, over blocks of SEARCH_BLOCK values that stay in the CPU's cache.
    Compared in t's own dtype: a float64 edge becomes the smallest float32 >= it (`ceil_to`), which a
    float32 value reaches exactly when it reaches the edge."""
    n_networks, n_edges = edges.shape
    if t.shape[0] != n_networks:    # mode="wrap" below would read another network's edges
        raise ValueError(f"rowwise_digitize: {n_networks} rows of edges for {t.shape[0]} networks")
    values = t.reshape(-1)
    per_network = values.size // n_networks if n_networks else 0
    width = 1 << n_edges.bit_length()           # > E: a search ends at most on the padding's last +inf
    table = np.full((n_networks, width), np.inf, dtype=values.dtype)
    table[:, :n_edges] = ceil_to(edges, values.dtype)
    table = table.ravel()
    codes = np.empty(values.size, np.int64)
    block_size = max(1, min(SEARCH_BLOCK, values.size))
    offsets = np.arange(block_size)
    start, position, step_taken = (np.empty(block_size, np.intp) for _ in range(3))
    probe, passed = np.empty(block_size, values.dtype), np.empty(block_size, bool)
    for begin in range(0, values.size, block_size):
        block = values[begin:begin + block_size]
        n = len(block)
        np.add(offsets[:n], begin, out=start[:n])
        np.floor_divide(start[:n], per_network, out=start[:n])          # each value's network ...
        np.multiply(start[:n], width, out=start[:n])                    # ... and its table's first place
        position[:n] = start[:n]
        step = width // 2
        while step:
            # The edge at position + step - 1, always in the table: mode="wrap" only skips mode="raise"'s
            # check of every index, and intp indices need no conversion.
            np.take(table[step - 1:], position[:n], out=probe[:n], mode="wrap")
            np.less_equal(probe[:n], block, out=passed[:n])
            position[:n] += np.multiply(passed[:n], np.intp(step), out=step_taken[:n])
            step //= 2
        np.subtract(position[:n], start[:n], out=codes[begin:begin + n])
    return codes.reshape(t.shape)


def ceil_to(edges: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Each edge as the smallest number of `dtype` >= it (edges of that dtype, +inf and numbers past its
    range included): a value v of `dtype` has v >= edge exactly when v >= ceil_to(edge)."""
    with np.errstate(over="ignore"):            # past float32's range: +-inf, corrected below for -inf
        rounded = edges.astype(dtype)
    below = rounded < edges
    rounded[below] = np.nextafter(rounded[below], np.asarray(np.inf, dtype))
    return rounded
