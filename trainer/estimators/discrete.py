"""Plug-in (maximum-likelihood) entropies of discrete symbols, and fast ids for rows.

A layer's discretised activations are one symbol per input: the row of its bin
indices. `code_ids` numbers the distinct rows without `np.unique(axis=0)` (which is
slow): the row of integer codes becomes one mixed-radix number when the product of
the column ranges allows it, else one opaque byte string (`np.void`, `row_ids`),
and these 1-D keys go through `np.unique`.
"""

from __future__ import annotations

import math

import numpy as np

EXACT_FLOAT_INTEGERS = 2**53


def code_ids(codes: np.ndarray) -> np.ndarray:
    """Ids 0..K-1 of the K distinct rows of a 2-D array of integer-valued codes (any dtype).

    Key of a row: sum_c (code_c - min_c) * prod_{c' > c} span_c', with span_c the
    range of column c, computed in float64 (one BLAS matrix-vector product), which
    is exact while the product of the spans is below 2^53. Larger code spaces (wide
    layers) use `byte_keys` of the shifted codes in the smallest unsigned integer
    type that holds them (sorting 1-byte rows is far faster than 8-byte ones).
    Works on one transposed copy: per-column reductions are several times faster on
    contiguous columns, and fresh large temporaries are costly.
    """
    columns = np.array(codes.T, dtype=np.float64, order="C")
    columns -= columns.min(axis=1)[:, None]
    spans = columns.max(axis=1) + 1
    if math.prod(spans.tolist()) < EXACT_FLOAT_INTEGERS:
        strides = np.append(np.cumprod(spans[:0:-1])[::-1], 1.0)
        keys = strides @ columns
    else:
        largest = spans.max() - 1
        dtype = np.min_scalar_type(int(largest)) if largest < 2**32 else np.float64
        keys = byte_keys(columns.T.astype(dtype, order="C"))
    return np.unique(keys, return_inverse=True)[1].reshape(-1)


def row_ids(rows: np.ndarray) -> np.ndarray:
    """Ids 0..K-1 of the K distinct rows of any 2-D array: exactly equal rows get equal ids."""
    return np.unique(byte_keys(rows), return_inverse=True)[1].reshape(-1)


def byte_keys(rows: np.ndarray) -> np.ndarray:
    """Each row as one np.void scalar (its raw bytes); float -0.0 is folded into +0.0 first."""
    if rows.dtype.kind == "f":
        rows = rows + 0.0  # -0.0 + 0.0 == +0.0, so both zeros get the same bytes
    rows = np.ascontiguousarray(rows)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).reshape(-1)


def entropy_bits(counts: np.ndarray) -> float:
    """Plug-in entropy H = -sum_i p_i log2 p_i, p_i = c_i / N, computed as log2 N - sum_i c_i log2 c_i / N."""
    counts = counts[counts > 0]
    total = counts.sum()
    return float(max(np.log2(total) - counts @ np.log2(counts) / total, 0.0))


def plugin_mi_bits(symbols: np.ndarray, classes: np.ndarray, n_classes: int) -> tuple[float, float]:
    """(I(X;T), I(Y;T)) in bits for a deterministic discrete T of n distinct inputs X.

    T is given as symbol ids, Y as class ids 0..n_classes-1, all inputs equally likely.
    I(X;T) = H(T) - H(T|X) = H(T), since H(T|X) = 0 for a deterministic map;
    I(Y;T) = H(T) - sum_y p(y) H(T|Y=y) = H(T) + H(Y) - H(T,Y) (the same plug-in
    quantity, computed from the joint counts with one np.bincount).
    """
    h_t = entropy_bits(np.bincount(symbols))
    h_y = entropy_bits(np.bincount(classes, minlength=n_classes))
    h_ty = entropy_bits(np.bincount(symbols * n_classes + classes))
    return h_t, h_t + h_y - h_ty
