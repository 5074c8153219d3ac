"""Counting the True values of boolean masks on packed bits (per-neuron statistics, layer health)."""

from __future__ import annotations

import numpy as np


def true_counts(mask: np.ndarray) -> np.ndarray:
    """How many values are True along the last axis (int64, as np.count_nonzero(mask, axis=-1)):
    the mask packed 8 values to a byte and the bits of each byte counted, a pass over an eighth of
    the values, where counting along an axis widens and adds every value."""
    return np.bitwise_count(np.packbits(mask, axis=-1)).sum(axis=-1, dtype=np.int64)
