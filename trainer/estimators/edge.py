"""EDGE: ensemble dependency-graph estimator (Noshad, Zeng & Hero 2019).

Noshad, Zeng & Hero, "Scalable mutual information estimation using dependence
graphs", ICASSP 2019 (arXiv:1801.09125). The points are hashed into buckets by a
randomly shifted grid of bandwidth epsilon (H1), the buckets of T and of the other
variable form the two sides of a bipartite dependency graph whose edge weights are
co-occurrence counts, and the MI is the average over the edges of a capped log
density ratio; the paper combines several bandwidths with weights that cancel the
leading bias terms (this module averages them, see `edge_mi`).
"""

from __future__ import annotations

import math

import numpy as np

from trainer.estimators.discrete import code_ids
from trainer.estimators.inputs import layer_inputs
from trainer.estimators.params import AUTO, auto_or_positive_number, integer_between, non_negative_number

PARAMS = {
    "epsilon": auto_or_positive_number(),
    "n_ensemble": integer_between(1, 1000, 10),
    "epsilon_spread": non_negative_number(0.1),
    "U": auto_or_positive_number(),
    "seed": integer_between(0, 2**32 - 1, 0),
}


def edge_mi(activations, labels, epsilon: str | float = AUTO, n_ensemble: int = 10, epsilon_spread: float = 0.1,
            U: str | float = AUTO, seed: int = 0) -> tuple[float, float]:
    """(I(X;T), I(Y;T)) in bits by the EDGE estimator, as implemented here.

    Base estimator, for bandwidth eps_l and random shift b_l:
      bucket(t) = floor((t_u + b_u) / w_u) per unit u, with w_u = eps_l * std(t_u)
      (a unit with std 0 is one bucket) and b_u ~ Uniform[0, w_u) (seeded by `seed`);
      with M_j inputs in bucket j, N_y in class y and N_jy in both (n inputs):
      I(Y;T) = sum_{j,y} (N_jy / n) min(log2(n N_jy / (M_j N_y)), U),
      I(X;T) = sum_j (M_j / n) min(log2(n / M_j), U), the same formula with X as the
      other side: the n inputs are distinct, so each is its own vertex (N_ij = N_i = 1).
    Ensemble: the plain mean of the n_ensemble base estimates with
    eps_l = eps * (1 + epsilon_spread * l / (n_ensemble - 1)), l = 0..n_ensemble-1
    (the reference code's `epsilon_vector='range'`) and independent shifts.

    Params: `epsilon` is the bandwidth in units of each unit's standard deviation;
    "auto" is n^(-1/(2d)) for d units, a rule of this package (cells shrink as n grows
    and widen with the dimension; on the 12-bit harmonics inputs every input gets its
    own cell). `U` caps the pointwise MI in bits; "auto" is max(10, ceil(log2 n)),
    which never binds here since no pointwise term exceeds log2 n. The reference
    default U = 10 caps I(X;T) at 10 bits on the 4096 harmonics inputs.

    Differences from the paper and from the reference code (mrtnoshad/EDGE, as used by
    deep-bottleneck): the second hash H2 into O(n) buckets is replaced by exact bucket
    ids (as if H2 had no collisions); no p-stable random projection before hashing
    (the reference projects more than 6 dimensions onto floor(log2(n / 10)) random
    directions); the labels are the Y vertices as they are (deep-bottleneck: smoothness
    gamma_Y ~ 0); the pointwise log ratio is capped above at U but not floored (the
    reference floors it at 0.001 bits, which biases independent variables upwards);
    the ensemble is a plain mean, not the optimally weighted ensemble of the paper
    (weights from a convex program that cancel the leading bias terms; the reference
    code itself defaults to the median). With distinct inputs, I(X;T) is therefore the
    capped plug-in entropy of the hashed T, averaged over shifts and bandwidths, and
    I(Y;T) carries the upward bias of plug-in MI: about (K - 1)(C - 1) / (2 n ln 2)
    bits for K occupied buckets and C classes when T and Y are independent.
    """
    t, classes, n_classes = layer_inputs(activations, labels)
    n, dims = t.shape
    base_epsilon = n ** (-1.0 / (2 * dims)) if epsilon == AUTO else epsilon
    stds = t.std(axis=0)
    unit_widths = base_epsilon * np.where(stds > 0, stds, 1.0)
    cap_bits = max(10.0, math.ceil(math.log2(n))) if U == AUTO else U
    rng = np.random.default_rng(seed)
    estimates = []
    for scale in 1 + epsilon_spread * np.linspace(0.0, 1.0, n_ensemble):
        widths = unit_widths * scale
        shifts = rng.uniform(0.0, 1.0, dims) * widths
        buckets = code_ids(np.floor((t + shifts) / widths))
        estimates.append(dependency_graph_mi_bits(buckets, classes, n_classes, cap_bits))
    i_xt, i_yt = np.mean(estimates, axis=0)
    return float(i_xt), float(i_yt)


def dependency_graph_mi_bits(buckets: np.ndarray, classes: np.ndarray, n_classes: int,
                             cap_bits: float) -> tuple[float, float]:
    """One base EDGE estimate (I(X;T), I(Y;T)) in bits from bucket ids and class ids."""
    n = len(buckets)
    bucket_counts = np.bincount(buckets)
    class_counts = np.bincount(classes, minlength=n_classes)
    i_xt = np.sum(bucket_counts / n * np.minimum(np.log2(n / bucket_counts), cap_bits))
    joint_counts = np.bincount(buckets * n_classes + classes)
    edges = np.flatnonzero(joint_counts)
    edge_counts = joint_counts[edges]
    ratio = n * edge_counts / (bucket_counts[edges // n_classes] * class_counts[edges % n_classes])
    i_yt = np.sum(edge_counts / n * np.minimum(np.log2(ratio), cap_bits))
    return float(i_xt), float(i_yt)
