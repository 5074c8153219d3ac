"""Validation of one layer's activations and labels, shared by every estimator."""

from __future__ import annotations

import numpy as np

from trainer.estimators.errors import EstimatorError


def layer_inputs(activations, labels) -> tuple[np.ndarray, np.ndarray, int]:
    """Check and normalise one layer's activations and the labels of the same inputs.

    Returns `(t, classes, n_classes)`: `t` float64 [n, units] (1-D activations
    become one unit), `classes` int64 [n] renumbered 0..n_classes-1 in sorted
    label order. Raises EstimatorError for NaN or infinite activations, non-integer
    or non-1-D labels, mismatched lengths and empty input.
    """
    t = np.asarray(activations)
    if t.dtype == object or not (np.issubdtype(t.dtype, np.number) or t.dtype == bool):
        raise EstimatorError(f"activations must be a numeric array, got dtype {t.dtype}")
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2:
        raise EstimatorError(f"activations must be [n, units] (or 1-D), got shape {t.shape}")
    t = t.astype(np.float64, copy=False)
    check_not_empty(t.shape)
    finite = np.isfinite(t)
    if not finite.all():
        n_nan = int(np.isnan(t).sum())
        raise EstimatorError(f"activations contain {n_nan} NaN and {t.size - int(finite.sum()) - n_nan} "
                             f"infinite values (of {t.size}); mutual information is undefined "
                             f"(has the network diverged?)")
    return (t, *label_classes(labels, len(t)))


def check_not_empty(shape: tuple[int, ...]) -> None:
    """Raise EstimatorError if activations of this [..., n, units] shape have no samples or no units."""
    if shape[-2] == 0 or shape[-1] == 0:
        raise EstimatorError(f"activations have no samples or no units: shape {shape[-2:]}")


def label_classes(labels, n_rows: int) -> tuple[np.ndarray, int]:
    """Check the labels of n_rows inputs: (classes int64 [n] renumbered 0..n_classes-1 in sorted
    label order, n_classes)."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise EstimatorError(f"labels must be a 1-D array of integer class ids, got shape {y.shape} "
                             f"(one-hot labels? pass labels.argmax(axis=1))")
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise EstimatorError(f"labels must be integer class ids, got dtype {y.dtype}")
    if len(y) != n_rows:
        raise EstimatorError(f"activations have {n_rows} rows but labels have {len(y)}; "
                             f"they must describe the same inputs")
    if np.issubdtype(y.dtype, np.integer) and y.size and y.min() == 0 and y.max() < len(y):
        # Labels that already are 0..k-1, every one present (the trainer's, every call): np.unique's
        # names are 0..k-1 and its inverse the labels themselves, found by a count instead of a sort.
        seen = np.bincount(y.astype(np.intp, copy=False)) > 0
        if seen.all():
            return y.astype(np.int64), len(seen)
    names, classes = np.unique(y, return_inverse=True)
    return classes.astype(np.int64, copy=False).reshape(-1), len(names)


def stacked_layer_inputs(values, labels, known_finite: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """`layer_inputs` for N networks' activations of one layer at once ([N, n, units]).

    Returns `(t, classes, n_classes)` with `t` [N, n, units] float32 as the trainer's activations
    come (every estimator of the binning family compares and bins float32 values exactly as their
    float64 conversion) or else float64. Raises EstimatorError if
    any network's values or the labels are not what `layer_inputs` accepts; the caller then
    checks each network alone to learn which one (and to fail only that one).
    `known_finite`: the caller has already found every value finite (the trainer, from the
    per-neuron statistics' min and max of the same rows): float values are not checked again.
    """
    t = np.asarray(values)
    if t.ndim != 3 or t.shape[0] == 0:
        raise EstimatorError(f"stacked activations must be [networks, n, units], got shape {t.shape}")
    if t.dtype in (np.float32, np.float64) and t.size and (known_finite or all_finite(t)):
        # The trainer's layers: only the labels are left to check (network 0's float64 copy and finite
        # mask, which the general path makes for its messages, would be passes more).
        return (t, *label_classes(labels, t.shape[1]))
    _, classes, n_classes = layer_inputs(t[0], labels)      # dtype, shapes and labels, once
    if t.dtype != np.float32:
        t = t.astype(np.float64, copy=False)
    if not np.isfinite(t).all():
        raise EstimatorError("stacked activations: a network has NaN or infinite values")
    return t, classes, n_classes


def all_finite(t: np.ndarray) -> bool:
    """Whether no value is NaN or infinite, from the min and max alone: a NaN makes both NaN
    (np.min and np.max propagate it), an infinity is the min or the max. Two reductions that write
    nothing, where np.isfinite writes a mask and reads it again. `t` must not be empty."""
    return bool(np.isfinite(t.min()) and np.isfinite(t.max()))
