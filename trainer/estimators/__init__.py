"""Mutual-information estimators for the information plane (pure numpy/scipy).

Every estimator takes one layer's activations T, numpy [n, units], of n distinct and
equally likely inputs X, and their integer labels Y [n], and returns
(I(X;T), I(Y;T)) in bits, with I(X;T) = H(T) - H(T|X) and
I(Y;T) = H(T) - sum_y p(y) H(T|Y=y). One module per family:

    binning    floor(a / bin_size), or n_bins over a range       binning.py
    idnns      IDNNs' np.digitize over linspace(-1, 1, 30)       binning.py
    adaptive   Chelombiev et al. 2019: equal numbers of distinct
               values per bin, per layer and epoch               adaptive.py
    quantile   equal-mass bins (ties counted) per layer and call adaptive.py
    kde_upper  Gaussian-mixture KL upper bound (Saxe et al.)     kde.py
    kde_lower  Gaussian-mixture Bhattacharyya lower bound        kde.py
    edge       deep-bottleneck's EDGE (Noshad et al. 2019): hashes
               T against the inputs X themselves (`inputs`)       edge.py
    ksg        k-nearest neighbours (KSG Eq. 20 as NPEET, Ross)  ksg.py
               (its first value is the differential entropy h(T), not I(X;T):
               scale-dependent, can be negative; the mi rows store it as h_t_bits
               and leave i_xt NULL)

Use `estimate(name, activations, labels, inputs=None, **params)`; `canonical(name, params)` gives
the complete, validated params that identify an estimate (store them with it).
Two params are filled in by the caller, who knows the network: binning's
`range: "run"` (see `needs_run_range`) and adaptive's `low: "auto"` (see
`for_network`).
Degenerate input: one class gives I(Y;T) = 0 (up to ~1/n for ksg; edge: 0.001, the floor
of each of its terms); a single sample gives (0, 0) (nothing varies, so no information;
ksg needs more than k samples and edge at least 20, else EstimatorError); constant
activations give I(X;T) = 0 and I(Y;T) = 0 (edge: 0.001 each; ksg: h(T) of its jitter,
and I(Y;T) within ~1/n of 0); 1-D activations are one unit; NaN or infinite
activations, mismatched lengths and non-integer labels raise EstimatorError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from trainer.estimators import adaptive, binning, edge, kde, ksg
from trainer.estimators.errors import EstimatorError
from trainer.estimators.inputs import stacked_layer_inputs
from trainer.estimators.params import AUTO, resolver

__all__ = ["ALIASES", "ESTIMATORS", "EstimatorError", "canonical", "estimate", "estimate_stacked",
           "first_value_column", "for_network", "needs_run_range", "NEEDS_INPUTS"]

ESTIMATORS: dict[str, Callable[..., tuple[float, float]]] = {
    "binning": binning.binning_mi,
    "idnns": binning.idnns_mi,
    "adaptive": adaptive.adaptive_mi,
    "quantile": adaptive.quantile_mi,
    "kde_upper": kde.kde_upper_mi,
    "kde_lower": kde.kde_lower_mi,
    "edge": edge.edge_mi,
    "ksg": ksg.ksg_mi,
}

# The estimators that hash the inputs X themselves (deep-bottleneck's EDGE) and take them as `inputs`
# [n, d], in the rows of the activations; the others treat the n inputs as n distinct values.
NEEDS_INPUTS = frozenset({"edge"})

# The estimators with a pass over N stacked networks at once (values [N, n, units], checked;
# classes; n_classes; params) -> ([N], [N]); the others run network by network.
STACKED: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "binning": binning.binning_mi_stacked,
    "idnns": binning.idnns_mi_stacked,
    "adaptive": adaptive.adaptive_mi_stacked,
    "quantile": adaptive.quantile_mi_stacked,
}

ALIASES: dict[str, str] = {
    "mi_estimator.binning": "binning",
    "mi_estimator.upper": "kde_upper",
    "mi_estimator.lower": "kde_lower",
    "mi_estimator.edge": "edge",
}

PARAMS: dict[str, Callable[[str, Mapping[str, Any]], dict[str, Any]]] = {
    "binning": binning.canonical_params,
    "idnns": resolver(binning.IDNNS_PARAMS),
    "adaptive": resolver(adaptive.PARAMS),
    "quantile": resolver(adaptive.QUANTILE_PARAMS),
    "kde_upper": resolver(kde.PARAMS),
    "kde_lower": resolver(kde.PARAMS),
    "edge": resolver(edge.PARAMS),
    "ksg": resolver(ksg.PARAMS),
}

# The mi column that holds the first value an estimator returns: I(X;T), except for ksg, whose
# k-NN estimate of it is the differential entropy h(T) of the layer (a deterministic, continuous
# T has infinite I(X;T); h(T) depends on the scale of T and can be negative), stored as such.
FIRST_VALUE_COLUMN: dict[str, str] = {"ksg": "h_t_bits"}

# What deep-bottleneck's config key `discretization_range` meant for each estimator.
DISCRETIZATION_RANGE_PARAM = {"binning": "bin_size", "kde_upper": "noise_variance", "kde_lower": "noise_variance"}


def canonical(name: str, params: Mapping[str, Any] | None = None,
              discretization_range: float | None = None) -> tuple[str, dict[str, Any]]:
    """(canonical name, complete params) for an estimator name (or alias) and params.

    Resolves the deep-bottleneck aliases (ALIASES), fills every default and validates
    and normalises every param, so two configs that mean the same estimate give equal,
    JSON-serialisable results. `discretization_range` is deep-bottleneck's legacy
    config key: it sets `bin_size` for binning and `noise_variance` for kde_upper and
    kde_lower, and is ignored by the other estimators (legacy configs carry it
    whatever the estimator). Raises EstimatorError naming the estimator, the param,
    the bad value and what is allowed.
    """
    if not isinstance(name, str) or ALIASES.get(name, name) not in ESTIMATORS:
        raise EstimatorError(f"unknown estimator {name!r}; known estimators: {', '.join(ESTIMATORS)} "
                             f"(deep-bottleneck aliases: {', '.join(ALIASES)})")
    name = ALIASES.get(name, name)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise EstimatorError(f"estimator {name!r}: params must be a dict of param name to value, got {params!r}")
    legacy_key = DISCRETIZATION_RANGE_PARAM.get(name)
    if discretization_range is not None and legacy_key is not None:
        if params:
            raise EstimatorError(f"estimator {name!r}: discretization_range = {discretization_range!r} (the legacy "
                                 f"{legacy_key!r}) cannot be combined with params {dict(params)!r}; use params only")
        params = {legacy_key: discretization_range}
    return name, PARAMS[name](name, params)


def needs_run_range(name: str, params: Mapping[str, Any] | None = None) -> bool:
    """True if the estimate needs the layer's activation range over the whole run.

    That is binning with `range: "run"` (Saxe et al. 2018: bins between the minimum
    and maximum activation of the layer over all of training). Such an estimate can
    only be made once the run is over: the trainer keeps the layer's activations and
    at the end of the run (trainer.measure: `StackMiRows.at_end`, `mi_rows`) calls
    `estimate_stacked` with `run_ranges`, per network the min and max of that
    layer's activations over the whole run (all logged epochs and splits), in place
    of params["range"].
    """
    name, params = canonical(name, params)
    return name == "binning" and params.get("range") == "run"


def for_network(name: str, params: Mapping[str, Any], activation_fn: str) -> dict[str, Any]:
    """The canonical params with what depends on the network filled in: what the estimate uses
    (the rows record the canonical params, `low` still "auto": trainer.measure.mi_rows).

    `adaptive` with low "auto" gets the lower bound of the network's hidden activation
    function (`adaptive.low_for_activation`: 0 for relu-like, -1.000001 for tanh-like,
    else "min"), used for every layer including the softmax output, as Chelombiev
    et al.'s code does. Other params are returned unchanged.
    """
    name, params = canonical(name, params)
    if name == "adaptive" and params["low"] == AUTO:
        params = {**params, "low": adaptive.low_for_activation(activation_fn)}
    return params


def first_value_column(name: str) -> str:
    """The mi column for the first value of `estimate(name, ...)`: "i_xt", or "h_t_bits" for ksg."""
    return FIRST_VALUE_COLUMN.get(canonical(name)[0], "i_xt")


def estimate(name: str, activations, labels, inputs=None, **params: Any) -> tuple[float, float]:
    """(I(X;T), I(Y;T)) in bits of one layer with the named estimator (see the module docstring);
    for ksg (h(T), I(Y;T)): its first value is a differential entropy (`first_value_column`).

    `activations`: numpy [n, units] (or [n]) for n distinct inputs; `labels`: integer
    class ids [n]; `inputs`: those inputs [n, d], which NEEDS_INPUTS estimators hash (without
    them their I(X;T) is NaN). The params are canonicalised first (`canonical`), so aliases and
    defaults work and a bad param raises EstimatorError.
    """
    name, params = canonical(name, params)
    return ESTIMATORS[name](activations, labels, **_with_inputs(name, inputs), **params)


def _with_inputs(name: str, inputs) -> dict[str, Any]:
    return {"inputs": inputs} if name in NEEDS_INPUTS else {}


def estimate_stacked(name: str, values, labels, run_ranges: np.ndarray | None = None,
                     known_finite: bool = False, inputs=None, **params: Any) -> tuple[np.ndarray, np.ndarray]:
    """`estimate` for N networks' activations of one layer at once: values [N, n, units], the same
    labels [n] (and inputs [n, d]); returns (first values [N], I(Y;T) [N]), each network's exactly
    as `estimate` gives it alone. `run_ranges` [N, 2]: each network's (lo, hi) for binning's `range: "run"`.

    The binning family (STACKED) runs as vectorised passes over the network axis; the other
    estimators network by network. Raises EstimatorError if any network's values are not
    accepted (estimate each network alone to learn which). `known_finite`: every value is known
    to be finite (no NaN or infinity), so the binning family's pass does not check it again
    (`stacked_layer_inputs`); the other estimators check their input as `estimate` does.
    """
    name, params = canonical(name, params)
    if run_ranges is not None:
        params["range"] = np.asarray(run_ranges, dtype=np.float64)
    if name in STACKED:
        t, classes, n_classes = stacked_layer_inputs(values, labels, known_finite)
        return STACKED[name](t, classes, n_classes, **params)
    pairs = [ESTIMATORS[name](network_values, labels, **_with_inputs(name, inputs), **params)
             for network_values in values]
    return np.array([p[0] for p in pairs], dtype=np.float64), np.array([p[1] for p in pairs], dtype=np.float64)
