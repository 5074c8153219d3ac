"""Saturation decided on float32 values by thresholds, and per-neuron saturated counts decided by a
neuron's min and max: the same verdicts and counts as the straightforward float64 computation."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.activation_facts import (
    FLOAT32_SATURATED,
    SATURATION_SLOPE,
    saturated,
    slope_relative,
)
from trainer.bit_counts import true_counts
from trainer.summaries import saturated_counts

rng = np.random.default_rng(18)


def float64_verdict(activation_fn: str, a: np.ndarray) -> np.ndarray:
    """The definition: the slope of the float64 value below SATURATION_SLOPE of the largest."""
    with np.errstate(invalid="ignore", over="ignore"):
        return slope_relative(activation_fn, a.astype(np.float64)) < SATURATION_SLOPE


def around(t: np.float32, steps: int) -> np.ndarray:
    """The `steps` float32 either side of t and t itself."""
    bits = np.array([t], np.float32).view(np.int32)[0]
    below = np.arange(bits - steps, bits + steps + 1, dtype=np.int32).view(np.float32) if t > 0 else \
        -np.arange(-bits - steps, -bits + steps + 1, dtype=np.int32).view(np.float32)
    return below


@pytest.mark.parametrize("activation_fn", sorted(FLOAT32_SATURATED))
def test_float32_thresholds_give_the_float64_verdict_of_every_value_tried(activation_fn):
    """At each threshold, one float32 either side (the first not saturated), 10^5 float32 around it,
    the special values and 10^6 random float32 bit patterns (every exponent): the same verdict."""
    low, high = FLOAT32_SATURATED[activation_fn]
    tiny = np.finfo(np.float32).smallest_subnormal
    special = np.array([0.0, -0.0, tiny, -tiny, 2.0**-30, 2.0**-31, 0.5, 1.0, -1.0, 1.5, -1.5,
                        np.finfo(np.float32).max, -np.finfo(np.float32).max, np.inf, -np.inf, np.nan], np.float32)
    bits = rng.integers(-2**31, 2**31, 10**6, dtype=np.int64).astype(np.int32).view(np.float32)
    for values in (special, bits, around(low, 50_000), around(high, 50_000)):
        np.testing.assert_array_equal(saturated(activation_fn, values), float64_verdict(activation_fn, values))
    for t, inward in ((low, np.float32(np.inf)), (high, np.float32(-np.inf))):
        assert saturated(activation_fn, np.array([t]))[0]                          # the threshold saturates
        assert not saturated(activation_fn, np.array([np.nextafter(t, inward)]))[0]   # the next float inward does not
        assert float64_verdict(activation_fn, np.array([t]))[0]
        assert not float64_verdict(activation_fn, np.array([np.nextafter(t, inward)]))[0]


def neuron_rows(activation_fn: str, dtype) -> np.ndarray:
    """[networks, neurons, inputs]: rows well inside the unsaturated range, rows whose min or max is at a
    threshold or one float32 inside it, rows with NaN, infinities, -0.0, negatives (relu), saturated rows."""
    n_networks, n_neurons, n = 3, 24, 37
    if activation_fn in FLOAT32_SATURATED:
        low, high = FLOAT32_SATURATED[activation_fn]
    else:
        low, high = np.float32(-0.5), np.float32(0.5)
    middle = (float(low) + float(high)) / 2
    rows = (middle + rng.uniform(-0.3, 0.3, (n_networks, n_neurons, n)) * (float(high) - float(low))).astype(dtype)
    inward_low, inward_high = np.nextafter(low, np.float32(np.inf)), np.nextafter(high, np.float32(-np.inf))
    for neuron, value in enumerate([low, high, inward_low, inward_high, np.nan, np.inf, -np.inf, -0.0, 0.0,
                                    -1e-30, 1e-30, np.float32(-3.0), np.float32(3.0)]):
        rows[neuron % n_networks, neuron, neuron % n] = value
    rows[1, 14] = low                                   # every value at a bound
    rows[2, 15, :20] = 0.0                             # relu: half zeros, min 0
    rows[0, 16] = np.maximum(rows[0, 16], 0)
    rows[0, 16, 3] = -0.0
    if activation_fn == "relu":
        rows[:, 17:] = np.maximum(rows[:, 17:], 0)      # the trainer's relu rows: min >= 0
        rows[:, 17:, ::3] = 0.0
        rows[:, 21:] = np.abs(rows[:, 21:]) + 1         # no zeros
    return rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation_fn", ["tanh", "sigmoid", "softmax", "relu", "linear", "elu",
                                           ("tanh", "relu", "softmax")])
def test_saturated_counts_from_min_and_max_equal_every_value_counted(activation_fn, dtype):
    """summaries.saturated_counts, which skips the rows their min and max decide, against counting the
    saturated mask of every value (mixed activations: each network by its own)."""
    fns = activation_fn if isinstance(activation_fn, tuple) else (activation_fn,) * 3
    rows = np.concatenate([neuron_rows(fn, dtype)[s:s + 1] for s, fn in enumerate(fns)])
    with np.errstate(invalid="ignore"):
        counts = saturated_counts(activation_fn, rows, rows.min(axis=-1), rows.max(axis=-1),
                                  true_counts(rows == 0))
    expected = np.stack([true_counts(float64_verdict(fn, rows[s])) for s, fn in enumerate(fns)])
    np.testing.assert_array_equal(counts, expected)
    assert counts.dtype == np.int64
    if activation_fn != "linear":                   # (never saturated)
        assert counts.any() and (counts == 0).any()     # both kinds of rows are there
