"""Adaptive (equal-mass) binning estimator (Chelombiev, Houghton & O'Donnell 2019)."""

from __future__ import annotations

import numpy as np

from trainer.estimators.discrete import code_ids, plugin_mi_bits
from trainer.estimators.inputs import layer_inputs
from trainer.estimators.params import integer_between

PARAMS = {"n_bins": integer_between(1, 1_000_000, 30)}


def adaptive_mi(activations, labels, n_bins: int = 30) -> tuple[float, float]:
    """(I(X;T), I(Y;T)) in bits of one layer, with equal-mass bins chosen for this layer and call.

    The n_bins - 1 inner bin edges are quantiles of all m = n * units activation
    values of the layer (units pooled): edge_j = the value of rank floor(j m / n_bins)
    in sorted order, j = 1..n_bins-1, so each bin holds about m / n_bins values and
    the binning follows the activations as they saturate or spread during training
    (Chelombiev, Houghton & O'Donnell 2019, "Adaptive estimators show information
    compression in deep neural networks", ICLR). A value equal to an edge goes to
    the bin above it; repeated values (a saturated tanh, a dead ReLU) cannot be
    split, so such a bin holds more than its share and some edges coincide. The
    entropies are then those of the binning estimator: I(X;T) = H(T),
    I(Y;T) = H(T) + H(Y) - H(T,Y), plug-in over the binned rows.
    """
    t, classes, n_classes = layer_inputs(activations, labels)
    sorted_values = np.sort(t, axis=None)
    inner_edges = sorted_values[np.arange(1, n_bins) * sorted_values.size // n_bins]
    codes = np.searchsorted(inner_edges, t, side="right")
    return plugin_mi_bits(code_ids(codes), classes, n_classes)
