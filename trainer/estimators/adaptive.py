"""Adaptive binning: bins chosen per layer and epoch from the activations themselves.

Two estimators of this family:

    adaptive   Chelombiev, Houghton & O'Donnell 2019: equal numbers of *distinct*
               activation values per bin, above a lower bound `low` (their code)
    quantile   equal numbers of activation values (ties included) per bin

On tanh the two agree (every activation value is distinct); on relu, where many
values are exactly 0, they differ by up to ~2 bits in I(X;T).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainer.activation_facts import bounds
from trainer.estimators.binning import rowwise_digitize
from trainer.estimators.discrete import stacked_plugin_mi_bits
from trainer.estimators.errors import EstimatorError
from trainer.estimators.inputs import layer_inputs
from trainer.estimators.params import AUTO, Param, as_number, integer_between

LAYER_MINIMUM = "min"
# The lower edge Chelombiev et al.'s `set_up_bins` uses (ivansche/adaptive_estimators,
# idnns/information/information_process.py): 0 for relu and softplus, -1.000001 for tanh and ELU
# (activation codes 0 and 3 there), i.e. by the activation's lower bound (trainer.activation_facts):
# bounded below by 0 gives 0, by -1 gives -1.000001; any other the layer's own minimum ("min").
TANH_LIKE_LOW = -1.000001
LOW_BY_LOWER_BOUND: dict[float, float] = {0.0: 0.0, -1.0: TANH_LIKE_LOW}


def convert_low(value: Any) -> str | float:
    """'auto', 'min' or a finite number."""
    if isinstance(value, str):
        if value not in (AUTO, LAYER_MINIMUM):
            raise ValueError(value)
        return value
    return as_number(value)


PARAMS = {
    "n_bins": integer_between(1, 1_000_000, 30),
    "low": Param(AUTO, f"{AUTO!r} (set from the activation function by the trainer), "
                       f"{LAYER_MINIMUM!r} (the layer's minimum) or a number", convert_low),
}
QUANTILE_PARAMS = {"n_bins": integer_between(1, 1_000_000, 30)}


def low_for_activation(activation_fn: str) -> float | str:
    """The `low` the trainer gives `adaptive` for a network with this hidden activation:
    0 (bounded below by 0), -1.000001 (tanh-like) or "min" (the layer's minimum)."""
    return LOW_BY_LOWER_BOUND.get(bounds(activation_fn).lower, LAYER_MINIMUM)


def adaptive_mi(activations, labels, *, n_bins: int, low: str | float) -> tuple[float, float]:
    """(I(X;T), I(Y;T)) in bits of one layer with Chelombiev et al.'s adaptive (maximum-entropy) bins.

    Exactly their `set_up_bins(..., per_layer_bins=True, maxentropy=True)` followed by
    `calc_information_sampling` (Chelombiev, Houghton & O'Donnell 2019, "Adaptive
    estimators show information compression in deep neural networks", ICLR; code
    ivansche/adaptive_estimators): with u the sorted distinct activation values of the
    layer (all units pooled) other than `low`, U = len(u) and n = n_bins, the edges are
      [low] + [u[floor(k * (U / n))] for k = 0..n-1] + [u[U - 1]]
    (no inner edges when U = 0), each value is replaced by the edge below it
    (np.digitize), and I(X;T) = H(T), I(Y;T) = H(T) - sum_y p(y) H(T|Y=y) are plug-in
    entropies in bits of the rows of binned values (their `calc_information_from_mat`;
    H(T|X) = 0 for distinct inputs). So each bin holds about U / n distinct values,
    however often each occurs; a value equal to `low` (a dead relu's 0) gets the
    bin [low, u[0]) to itself, and the largest value a bin of its own.

    `low` is the lower bound of the activation's range: 0 for relu, -1.000001 for tanh
    in their code; "min" takes the layer's minimum; "auto" must be replaced by the
    caller (the trainer uses `low_for_activation`). Their code maps values below `low`
    onto the top edge (np.digitize gives index 0, and bins[-1] wraps round); here such
    values are an error instead, as they mean `low` is wrong for this layer.
    """
    t, classes, n_classes = layer_inputs(activations, labels)
    i_xt, i_yt = adaptive_mi_stacked(t[None], classes, n_classes, n_bins=n_bins, low=low)
    return float(i_xt[0]), float(i_yt[0])


def adaptive_mi_stacked(t: np.ndarray, classes: np.ndarray, n_classes: int, *, n_bins: int,
                        low: str | float) -> tuple[np.ndarray, np.ndarray]:
    """`adaptive_mi` of N networks' layers at once: t [N, n, units] float32 or float64 (checked, see
    `stacked_layer_inputs`), classes [n] 0..n_classes-1. Returns ([N], [N]).

    Each network's sorted distinct values come from one sort of all networks' values; a
    network without distinct values (other than `low`) gets +inf for every edge but `low`,
    which no (finite) value reaches, so its codes are those of its edge list [low]."""
    if low == AUTO:
        raise EstimatorError("estimator 'adaptive': low 'auto' must be replaced by the caller with the "
                             "activation's lower bound (0 for relu, -1.000001 for tanh; "
                             "trainer.estimators.adaptive.low_for_activation) or 'min'")
    n_networks = len(t)
    minimum = t.min(axis=(1, 2))
    lows = minimum if low == LAYER_MINIMUM else np.full(n_networks, float(low))
    if np.any(minimum < lows):
        worst = int(np.argmax(lows - minimum))
        raise EstimatorError(f"estimator 'adaptive': low = {lows[worst]} but the layer has values down to "
                             f"{minimum[worst]}; low must be at most the layer's minimum (use 'min')")
    values = np.sort(t.reshape(n_networks, -1), axis=1)
    distinct = np.ones(values.shape, bool)
    distinct[:, 1:] = values[:, 1:] != values[:, :-1]
    distinct &= values != lows[:, None]
    n_distinct = distinct.sum(axis=1)                                         # U per network
    # Every network's distinct values in order, one network after the other; network s's start at offset[s].
    packed = np.append(values[distinct], np.inf)      # +inf: what a network without distinct values picks
    offset = np.where(n_distinct > 0, np.cumsum(n_distinct) - n_distinct, len(packed) - 1)
    picks = (np.arange(n_bins)[None, :] * (n_distinct / n_bins)[:, None]).astype(np.int64)  # int(k * (U / n))
    inner = packed[offset[:, None] + picks]
    top = packed[offset + np.maximum(n_distinct - 1, 0)]
    edges = np.concatenate([lows[:, None], inner, top[:, None]], axis=1)
    codes = rowwise_digitize(edges, t)   # edges may repeat: equal edges give one (the last) index
    return stacked_plugin_mi_bits(codes, classes, n_classes)


def quantile_mi(activations, labels, *, n_bins: int) -> tuple[float, float]:
    """(I(X;T), I(Y;T)) in bits of one layer, with equal-mass bins chosen for this layer and call.

    The n_bins - 1 inner bin edges are quantiles of all m = n * units activation
    values of the layer (units pooled): edge_j = the value of rank floor(j m / n_bins)
    in sorted order, j = 1..n_bins-1, so each bin holds about m / n_bins values. A
    value equal to an edge goes to the bin above it; repeated values (a saturated
    tanh, a dead ReLU) cannot be split, so such a bin holds more than its share and
    some edges coincide. Unlike `adaptive_mi` (Chelombiev et al.), which spreads the
    *distinct* values evenly, ties count with their multiplicity here. Entropies as
    in the binning estimator: I(X;T) = H(T), I(Y;T) = H(T) + H(Y) - H(T,Y), plug-in
    over the binned rows.
    """
    t, classes, n_classes = layer_inputs(activations, labels)
    i_xt, i_yt = quantile_mi_stacked(t[None], classes, n_classes, n_bins=n_bins)
    return float(i_xt[0]), float(i_yt[0])


def quantile_mi_stacked(t: np.ndarray, classes: np.ndarray, n_classes: int, *, n_bins: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """`quantile_mi` of N networks' layers at once (t [N, n, units]; see `adaptive_mi_stacked`)."""
    sorted_values = np.sort(t.reshape(len(t), -1), axis=1)
    inner_edges = sorted_values[:, np.arange(1, n_bins) * sorted_values.shape[1] // n_bins]
    return stacked_plugin_mi_bits(rowwise_digitize(inner_edges, t), classes, n_classes)
