"""EDGE: ensemble dependency-graph estimator, as deep-bottleneck computes it.

Noshad, Zeng & Hero, "Scalable mutual information estimation using dependence
graphs", ICASSP 2019 (arXiv:1801.09125), in the code of deep-bottleneck
(github.com/neuroinfo-os/deep-bottleneck, deep_bottleneck/mi_estimator/edge.py at
bb88a13: `NoshadEDGE` L176-271, a copy of github.com/mrtnoshad/EDGE, called by
`EDGE._compute_mi_per_epoch_and_layer` L303-304 from `compute_mi` L334-335). Both
variables are projected on random Gaussian directions, hashed into the cells of a
grid whose width comes from k-nearest-neighbour distances, and the MI is the
average over the edges of the bipartite graph of co-occurring cells of a capped
and floored log density ratio; the median over an ensemble of bandwidths and
shifts is the estimate. `edge_mi` below gives the formula.
"""

from __future__ import annotations

import math

import numpy as np

from trainer.estimators.discrete import row_ids
from trainer.estimators.errors import EstimatorError
from trainer.estimators.inputs import layer_inputs
from trainer.estimators.params import integer_between, non_negative_number, positive_number

PARAMS = {
    "U_xt": positive_number(12.0),
    "U_yt": positive_number(1.0),
    "L_ensemble": integer_between(1, 1000, 10),
    "gamma_t": positive_number(0.1),
    "gamma_xy": positive_number(0.1),
    "eps_range_factor": non_negative_number(0.1, high=100.0),
    "seed": integer_between(0, 2**32 - 1, 3334),
}

MIN_INPUTS = 20         # below it the reference's projection has floor(log2(n / 10)) < 1 dimensions
KNN_QUERIES = 500       # find_knn's r


def edge_mi(activations, labels, *, U_xt: float, U_yt: float, L_ensemble: int, gamma_t: float, gamma_xy: float,
            eps_range_factor: float, seed: int, inputs=None) -> tuple[float, float]:
    """(I(X;T), I(Y;T)) in bits, exactly as deep-bottleneck's EDGE estimator computes them.

    deep-bottleneck calls NoshadEDGE(T, Y', U, L_ensemble=10, gamma=[0.1, 0.1],
    normalize_epsilon=False, epsilon=[0, 0], ensemble_estimation='median') with the
    layer's activations as float32 for T, and Y' = the labels [n, 1] with U = 1 for
    I(Y;T), Y' = the inputs X [n, d] with U = 12 for I(X;T). NoshadEDGE's logarithm
    is math.log(., 2), so its values are bits, returned as they are. One call, for a
    variable A = T (n x d_A) and the other B = Y' (n x d_B):

      projection (gen_W): W [d_A, m_A] with m_A = min(d_A, floor(log2(n / 10))) and
        W_uc ~ Normal(0, 1 / (s_u sqrt(d_A))), s_u = np.std of column u (1 if it is
        below 1e-4), drawn by np.random.seed(seed) then W, then V for B likewise;
        A' = A W, B' = B V (always: deep-bottleneck's hashing is 'p-stable').
      bandwidth (find_knn, gen_eps): per column c of A', np.random.seed(seed), 500
        rows drawn with replacement (np.random.choice), e_c = their mean distance to
        their k-th nearest value of the column (the query itself included) + 1e-4,
        k = floor(0.43 n^(2/3 + 0.17 m_A / (m_A + 1)) exp(-1 / max(10^4, m_A^4)));
        eps_A = e * 3 m_A * 0.9 gamma_t (B: 0.9 gamma_xy) -- NoshadEDGE scales gamma
        by 0.9 (L179).
      ensemble j = 0..L-1: eps_j = eps * linspace(1, 1 + eps_range_factor, L)[j],
        shift b_j = (j / L) eps_j (stochastic=False), cell(a') = floor((a' + b_j) / eps_j);
        with N_i rows in cell i of A', M_j in cell j of B', N_ij in both:
        I_j = (1/n) sum_{edges ij} N_ij max(min(log2(n N_ij / (N_i M_j)), U), 0.001)
      estimate = median_j I_j.

    The floor 0.001 applies to every edge, so independent or constant variables give
    at least 0.001 bits (identical activations give exactly 0.001), and U caps each
    term: I(Y;T) <= 1 bit with the default U_yt = 1.

    Params, deep-bottleneck's values as defaults: `U_xt` (12), `U_yt` (1) the caps of
    the two calls; `L_ensemble` (10); `gamma_t` and `gamma_xy` (0.1 each: NoshadEDGE's
    gamma[0] for T and gamma[1] for X or Y); `eps_range_factor` (0.1, NoshadEDGE's
    default); `seed` (3334, the seed gen_W and find_knn set: draws are those of
    np.random.RandomState(seed), in the reference's order). The rest is fixed as
    deep-bottleneck runs it: automatic epsilon, epsilon_vector 'range', median,
    'p-stable' hashing, no stochastic shifts, no epsilon normalisation.

    `inputs`: the inputs X [n, d] (or [n]) of the rows, in the same order; the
    reference hashes them like T. Without them I(X;T) is not computed: NaN.
    `labels` are hashed by their values, as deep-bottleneck passes them.
    Fewer than 20 rows raise EstimatorError (the reference's projection would have
    no dimension).
    """
    layer_inputs(activations, labels)                           # validation only
    t = np.asarray(activations, dtype=np.float32)               # compute_mi L332
    t = t.reshape(len(t), -1)
    n = len(t)
    if n < MIN_INPUTS:
        raise EstimatorError(f"edge needs at least {MIN_INPUTS} inputs (deep-bottleneck projects on "
                             f"floor(log2(n / 10)) directions), got {n}")
    y = np.asarray(labels).reshape(n, 1)
    # Both of deep-bottleneck's calls draw T's projection first from the same seed, so T's side (its
    # projection and bandwidths, most of the work) is the same in both: computed once.
    rng = np.random.RandomState(seed)
    t_side = hashed_side(t, rng, seed)
    after_t = rng.get_state()
    i_yt = noshad_edge_bits(t_side, hashed_side(y, rng, seed), U_yt, L_ensemble, gamma_t, gamma_xy, eps_range_factor)
    if inputs is None:
        return math.nan, i_yt
    rng.set_state(after_t)
    i_xt = noshad_edge_bits(t_side, hashed_side(checked_inputs(inputs, n), rng, seed), U_xt, L_ensemble, gamma_t,
                            gamma_xy, eps_range_factor)
    return i_xt, i_yt


def checked_inputs(inputs, n: int) -> np.ndarray:
    """The inputs as [n, d] in their own dtype (the reference takes data.examples as they are)."""
    x = np.asarray(inputs)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or x.ndim not in (1, 2) or len(x) != n:
        raise EstimatorError(f"edge: inputs must be numeric [n, d] with n = {n} rows, got {x.dtype} {x.shape}")
    x = x.reshape(n, -1)
    if not np.isfinite(x).all():
        raise EstimatorError("edge: inputs contain NaN or infinite values")
    return x


def noshad_edge_bits(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], U: float,
                     L_ensemble: int, gamma_a: float, gamma_b: float, eps_range_factor: float) -> float:
    """NoshadEDGE(a, b, U, gamma=[gamma_a, gamma_b], ...) as deep-bottleneck calls it, in bits, from
    each variable's `hashed_side` (its projection and k-NN bandwidths)."""
    (a_proj, knn_a), (b_proj, knn_b) = a, b
    eps_a = knn_a * (3 * a_proj.shape[1]) * (gamma_a * 0.9)                 # L213-217; gamma * 0.9: L179
    eps_b = knn_b * (3 * b_proj.shape[1]) * (gamma_b * 0.9)
    scales = np.linspace(1, 1 + eps_range_factor, L_ensemble)               # L228
    shifts = np.linspace(0, 1, L_ensemble, endpoint=False)                  # L247-248
    estimates = [dependency_graph_bits(a_proj, b_proj, eps_a * scale, eps_b * scale, shift, U)
                 for scale, shift in zip(scales, shifts)]
    return float(np.median(estimates))                                      # L261


def hashed_side(values: np.ndarray, rng: np.random.RandomState, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One variable's projection (gen_W, L22-63: Gaussian [d, m], m = min(d, floor(log2(n / 10))),
    column u's scale 1 / (s_u sqrt(d)), s_u = np.std of column u or 1 below 1e-4, drawn next from
    `rng`: NoshadEDGE draws W for A, then V for B) and its bandwidths (`knn_bandwidths`)."""
    n, dims = values.shape
    shrunk = min(dims, math.floor(math.log(1.0 * n / 10, 2)))
    stds = np.array([np.std(values[:, [i]]) for i in range(dims)])           # per column, in its dtype
    stds = np.tile(stds.reshape(dims, 1), (1, shrunk))
    stds[stds < 0.0001] = 1
    projected = np.dot(values, rng.normal(np.zeros((dims, shrunk)), 1.0 / (stds * np.sqrt(dims)), (dims, shrunk)))
    return projected, knn_bandwidths(projected, seed)                        # L200


def knn_bandwidths(projected: np.ndarray, seed: int) -> np.ndarray:
    """gen_eps (L86-92): per column, find_knn's mean k-th nearest-neighbour distance, + 1e-4.

    find_knn (L67-82) fits sklearn's NearestNeighbors on the column; in one dimension its
    (k-d tree) distances are |a - q| exactly (sqrt of a square), so the k-th smallest
    |column - q| over all rows (the query row included) is the same number. That number is
    found among the 2k values around q in sorted order: moving away from q on either side the
    distances only grow, so its k nearest are at most k places below and k - 1 above where q
    would be inserted (the same floats, 10x fewer of them than the whole column).
    """
    n, dims = projected.shape
    k = math.floor(0.43 * n ** (2 / 3 + 0.17 * (dims / (dims + 1))) * math.exp(-1.0 / max(10000, dims ** 4)))
    window = min(2 * k, n)
    widths = []
    for column in projected.T:
        queries = np.random.RandomState(seed).choice(column, size=KNN_QUERIES)
        ordered = np.sort(column)
        start = np.clip(np.searchsorted(ordered, queries) - k, 0, n - window)
        near = ordered[start[:, None] + np.arange(window)]
        kth = np.partition(np.abs(near - queries[:, None]), k - 1, axis=1)[:, k - 1]
        widths.append(np.mean(kth))
    return np.array(widths) + 0.0001


def dependency_graph_bits(a_proj: np.ndarray, b_proj: np.ndarray, eps_a: np.ndarray, eps_b: np.ndarray,
                          shift: float, U: float) -> float:
    """Compute_MI (L156-173) for one bandwidth and shift: H1-hash both sides (floor((x + b) / eps)),
    count the cells and their co-occurrences, average the capped and floored log2 ratio over the rows."""
    n = len(a_proj)
    cells_a = row_ids(np.floor((a_proj + shift * eps_a) / eps_a))           # -0.0 and 0.0: one cell
    cells_b = row_ids(np.floor((b_proj + shift * eps_b) / eps_b))
    count_a, count_b = np.bincount(cells_a), np.bincount(cells_b)
    edges, count_ab = np.unique(cells_a * len(count_b) + cells_b, return_counts=True)
    count_ab = count_ab.astype(np.float64)
    ratio = count_ab * n / (count_a[edges // len(count_b)] * count_b[edges % len(count_b)])
    terms = np.maximum(np.minimum(np.log2(ratio), U), 0.001)
    return float(np.sum(count_ab * terms) / n)
