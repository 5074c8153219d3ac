"""What the trainer knows about each activation function: its output bounds and its slope.

The one table of activation facts. Used by the histogram grids (bounded activations get
fixed bins over their range, trainer.summaries), the per-neuron `frac_saturated` statistic
(trainer.summaries), the layer health state `saturated` (trainer.health) and adaptive
binning's lower edge (trainer.estimators.adaptive). Pure numpy.

A stack of networks may mix activations (issue 18): where a fact is asked of a whole stack, the
activation is `Activations`, one name for every network or each network's own, and the stack is
handled in `blocks` of consecutive networks that share one (the model applies them the same way).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SELU_SCALE = 1.0507009873554805     # Klambauer et al. 2017, as in keras.activations.selu
SELU_ALPHA = 1.6732632423543772
# A value is saturated where the activation's slope is below this fraction of its largest slope.
SATURATION_SLOPE = 0.01


@dataclass(frozen=True)
class Bounds:
    """The infimum and supremum of an activation's output (None: unbounded on that side)."""

    lower: float | None
    upper: float | None

    @property
    def closed(self) -> bool:
        """Bounded on both sides (its histogram bins can be fixed in advance)."""
        return self.lower is not None and self.upper is not None


# Keras 3's definitions: elu with alpha 1, hard_sigmoid = relu6(x + 3) / 6, leaky_relu unbounded.
BOUNDS: dict[str, Bounds] = {
    "tanh": Bounds(-1.0, 1.0), "softsign": Bounds(-1.0, 1.0),
    "sigmoid": Bounds(0.0, 1.0), "hard_sigmoid": Bounds(0.0, 1.0), "softmax": Bounds(0.0, 1.0),
    "relu6": Bounds(0.0, 6.0), "relu": Bounds(0.0, None), "softplus": Bounds(0.0, None),
    "elu": Bounds(-1.0, None), "selu": Bounds(-SELU_SCALE * SELU_ALPHA, None),
    "leaky_relu": Bounds(None, None), "linear": Bounds(None, None),
}


# One activation for every network of a stack, or each network's own in stack order.
Activations = str | Sequence[str]


def blocks(activations: Activations, n_networks: int) -> list[tuple[str, slice]]:
    """The stack's networks as runs of consecutive networks with one activation each, in order:
    (activation, their slice of the network axis). One block when they all share one."""
    if isinstance(activations, str):
        return [(activations, slice(0, n_networks))]
    if len(activations) != n_networks:
        raise ValueError(f"{len(activations)} activations for a stack of {n_networks} networks")
    runs, start = [], 0
    for name, run in itertools.groupby(activations):
        size = len(list(run))
        runs.append((name, slice(start, start + size)))
        start += size
    return runs


def take(activations: Activations, networks: Sequence[int] | slice) -> Activations:
    """The activations of these networks only (positions on the network axis, or a slice)."""
    if isinstance(activations, str):
        return activations
    if isinstance(networks, slice):
        return tuple(activations[networks])
    return tuple(activations[s] for s in networks)


def bounds(activation_fn: str) -> Bounds:
    """The output bounds of an activation (unknown names: unbounded)."""
    return BOUNDS.get(activation_fn, Bounds(None, None))


def slope_relative(activation_fn: str, a: np.ndarray) -> np.ndarray:
    """The activation's derivative at each value, written as a function of its output a,
    divided by the function's largest slope (1 for most; 1/4 for sigmoid/softmax). It tends
    to 0 exactly at the finite bounds of BOUNDS, and is 1 everywhere for unbounded ones."""
    if activation_fn == "tanh":
        return 1.0 - a * a
    if activation_fn in ("sigmoid", "softmax"):
        return 4.0 * a * (1.0 - a)
    if activation_fn == "softsign":
        return np.square(1.0 - np.abs(a))
    if activation_fn == "relu":
        return (a > 0).astype(np.float64)
    if activation_fn == "relu6":
        return ((a > 0) & (a < 6)).astype(np.float64)
    if activation_fn == "hard_sigmoid":
        return ((a > 0) & (a < 1)).astype(np.float64)
    if activation_fn == "elu":          # x < 0: a = e^x - 1, slope e^x = a + 1
        return np.where(a > 0, 1.0, a + 1.0)
    if activation_fn == "selu":         # x < 0: a = l*al*(e^x - 1), slope a + l*al; max slope l*al
        scale_alpha = SELU_SCALE * SELU_ALPHA
        return np.where(a > 0, 1.0 / SELU_ALPHA, (a + scale_alpha) / scale_alpha)
    if activation_fn == "softplus":     # slope sigmoid(x) = 1 - e^-a
        return -np.expm1(-a)
    return np.ones_like(a, dtype=np.float64)   # linear, leaky_relu: never flat


def saturated(activation_fn: Activations, a: np.ndarray) -> np.ndarray:
    """Where a value sits (numerically) at a bound of its activation: slope below SATURATION_SLOPE
    of the largest (tanh: |a| > 0.99499; relu: a == 0). Exactly `slope_relative(a in float64) <
    SATURATION_SLOPE`; for relu, and for float32 tanh, sigmoid and softmax values (FLOAT32_SATURATED),
    decided on the values as they are. With each network's own activation, `a` is [N, ...] and
    network s's values are judged by its own."""
    if not isinstance(activation_fn, str):
        parts = blocks(activation_fn, len(a))
        if len(parts) == 1:
            return saturated(parts[0][0], a)
        result = np.empty(np.shape(a), bool)
        for name, networks in parts:
            result[networks] = saturated(name, a[networks])
        return result
    if activation_fn == "relu":
        return ~(np.asarray(a) > 0)          # slope 1 where a > 0, else 0 (NaN included)
    if activation_fn in FLOAT32_SATURATED and np.asarray(a).dtype == np.float32:
        low, high = FLOAT32_SATURATED[activation_fn]
        return (a <= low) | (a >= high)
    return slope_relative(activation_fn, np.asarray(a, dtype=np.float64)) < SATURATION_SLOPE


def unsaturated_interval(activation_fn: str, dtype: np.dtype) -> tuple[float, float] | None:
    """(low, high) such that `saturated` holds for no value of this dtype strictly between them (None:
    not known here): a row of values whose min is above low and max below high has none saturated,
    found from its min and max alone (a NaN makes them NaN, and the comparisons false)."""
    if activation_fn in FLOAT32_SATURATED and np.dtype(dtype) == np.float32:
        return FLOAT32_SATURATED[activation_fn]
    return None


def _saturation_edge(activation_fn: str, start: float, outward: float) -> np.float32:
    """The float32 nearest `start` on its side `outward` (+inf or -inf, toward the activation's bound)
    from which every float32 is saturated in float64: the first that is, walking from `start`."""
    def test(t: np.float32) -> bool:
        return bool(slope_relative(activation_fn, np.array([t], np.float64))[0] < SATURATION_SLOPE)
    t, outward = np.float32(start), np.float32(outward)
    while not test(t):
        t = np.nextafter(t, outward)
    while test(np.nextafter(t, -outward)):
        t = np.nextafter(t, -outward)
    return t


# Float32 values are saturated exactly where a <= low or a >= high (each the last float32 at which
# `slope_relative` in float64 is below SATURATION_SLOPE, walking out from the root of the slope's
# formula), a comparison on the values as they come instead of their float64 conversion and formula.
# Exact for every float32 (NaN: neither); tested at each threshold and one float32 either side.
# tanh, 1 - a*a: for a float32 a, a*a is exact in float64 (48 significant bits), and so is 1 - a*a
#   wherever it can be near the threshold (a*a in [0.5, 2], Sterbenz's lemma): exact arithmetic,
#   decreasing in |a| (|a| > 1 and infinities: negative, saturated).
# sigmoid, softmax, 4a * (1 - a): 4a is exact; on [2^-30, 1/2] 1 - a is a multiple of 2^-53 in
#   (1/2, 1], exact, and on [1/2, 1] exact by Sterbenz's lemma, so the float64 product is the exact
#   one rounded, and rounding keeps its order: the slope computed is non-decreasing in a on
#   [2^-30, 1/2] and non-increasing on [1/2, 1]. Below 2^-30 it is at most 4a < SATURATION_SLOPE,
#   saturated like every a <= low; below 0 and above 1 (infinities included) it is negative.
TANH_SATURATED_FROM = _saturation_edge("tanh", np.sqrt(1.0 - SATURATION_SLOPE), np.inf)
SIGMOID_SATURATED_BELOW = _saturation_edge("sigmoid", (1 - np.sqrt(1 - SATURATION_SLOPE)) / 2, -np.inf)
SIGMOID_SATURATED_ABOVE = _saturation_edge("sigmoid", (1 + np.sqrt(1 - SATURATION_SLOPE)) / 2, np.inf)
FLOAT32_SATURATED: dict[str, tuple[np.float32, np.float32]] = {
    "tanh": (-TANH_SATURATED_FROM, TANH_SATURATED_FROM),
    "sigmoid": (SIGMOID_SATURATED_BELOW, SIGMOID_SATURATED_ABOVE),
    "softmax": (SIGMOID_SATURATED_BELOW, SIGMOID_SATURATED_ABOVE),
}
