"""k-nearest-neighbour estimators: KSG's entropy (Kraskov et al. 2004, Eq. 20) and Ross's MI.

The first value is h(T) by Kraskov, Stoegbauer & Grassberger (2004), Eq. 20, exactly as NPEET's
`entropy()` computes it (Greg Ver Steeg's code, shipped in ravidziv/IDNNs as
idnns/information/entropy_estimators.py, e53f054): max-norm distances, the d log 2 volume term of
the unit max-norm ball, k = 3 by default and a tiny uniform jitter added to every coordinate.
H(T|X) = 0 for a deterministic network, as the binning estimator assumes, but h(T) is a
*differential* entropy, not I(X;T): it changes with the scale of the activations (doubling them
adds one bit per unit), can be negative and is not bounded by log2 n (for a deterministic,
continuous T the true I(X;T) is infinite), so the trainer stores it in the mi column `h_t_bits`
and leaves `i_xt` NULL for ksg.

The second value, I(Y;T), is Ross's (2014) estimator for a discrete Y and a continuous T, the
KSG construction for a discrete variable and the one behind sklearn's mutual_info_classif.
Neighbour queries use scipy's cKDTree on all cores.

The default k = 3 is NPEET's (and sklearn's n_neighbors). The former k = 2 was credited to a kNN
comparison in the appendix of Saxe et al. (2018); their code (artemyk/ibsgd) has no kNN estimator
and the claim could not be confirmed, so the reference code's default is used.
"""

from __future__ import annotations

import numpy as np

from trainer.estimators.errors import EstimatorError
from trainer.estimators.inputs import layer_inputs
from trainer.estimators.params import integer_between, non_negative_number

PARAMS = {
    "k": integer_between(1, 1000, 3),
    "noise": non_negative_number(1e-10, high=1.0),      # a jitter: 1e300 overflowed the neighbour counts
    "seed": integer_between(0, 2**32 - 1, 0),
}
# Far above the rounding of distances (~1e-16 relative), far below the default jitter (1e-10).
RADIUS_SLACK = 1e-13


def ksg_mi(activations, labels, *, k: int, noise: float, seed: int) -> tuple[float, float]:
    """(h(T), I(Y;T)) in bits from k-nearest-neighbour statistics.

    h(T), which the binning estimators' reasoning would call I(X;T), by `ksg_entropy_bits`:
    NPEET's entropy(x, k, base=2) with its jitter drawn reproducibly (`noise` is NPEET's
    `intens`, the draws come from np.random.RandomState(seed)). A differential entropy: it
    depends on the scale of T, is not bounded by log2 n and can be negative. On the 4096
    harmonics inputs (12-bit binary, all distinct, every point at max-norm distance 1 from
    every other) it is psi(4096) - psi(k) + 12 log 2 nats = 22.67 bits for k = 3.
    I(Y;T) by `ross_mi_bits` on T plus low-amplitude Gaussian noise (`jittered`), the
    standard remedy for tied distances on lattice data (Kraskov, Stoegbauer &
    Grassberger 2004, Sec. II: "add low-amplitude noise"; sklearn's
    mutual_info_classif does the same with 1e-10): noise = 0 turns it off (ties are
    then counted within the radius). On the raw harmonics inputs I(Y;T) is 0.63 bits
    with the jitter (0.58 without), where the truth is H(Y) = 0.999: the labels
    change between inputs one bit apart, and a k-NN estimate sees only how pure each
    point's neighbourhood is (its bias, which the jitter cannot remove).
    Raises EstimatorError for k >= n (NPEET asserts k <= n - 1).
    """
    t, classes, n_classes = layer_inputs(activations, labels)
    return ksg_entropy_bits(t, k, noise, seed), ross_mi_bits(jittered(t, noise, seed), classes, n_classes, k)


def jittered(t: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """t + noise * max(1, mean |t_u|) * N(0, 1) per unit u (seeded): sklearn's amplitude rule, so the
    jitter stays far below the activations' resolution whatever their scale, yet breaks exact ties."""
    if noise == 0:
        return t
    scale = noise * np.maximum(1.0, np.abs(t).mean(axis=0))
    return t + scale * np.random.default_rng(seed).standard_normal(t.shape)


def ksg_entropy_bits(t: np.ndarray, k: int, noise: float, seed: int) -> float:
    """Kraskov et al. (2004) Eq. 20 in bits, as NPEET's entropy(x, k, base=2) computes it.

    Every row first gets noise * U[0, 1) added per coordinate (NPEET: `p + intens *
    nr.rand(len(x[0]))` row after row; here the same draws, np.random.RandomState(seed).rand(n, d),
    which yields them in that order). Then
      h = psi(n) - psi(k) + d log 2 + (d / n) sum_i log r_i  (nats),
    r_i the max-norm (Chebyshev) distance from point i to its k-th nearest neighbour (scipy
    cKDTree, p = inf; the point itself is the 0-th), and d log 2 the log volume of the
    max-norm ball of radius 1 (Eq. 20's eps_i = 2 r_i with unit volume c_d = 1).

    Repeated rows make r_i = 0 and the estimate -inf: the jitter is what keeps it finite, and
    then repeated rows count as points a jitter apart, so a layer whose inputs collapse onto a
    few values gets a large negative h (a constant layer gives about d log2(noise) bits, the
    entropy of the jitter's own cube). With noise = 0 and repeated rows the result is -inf
    (NPEET's math.log would raise instead).
    """
    # Imported here: scipy.spatial is slow to import (see estimators.kde).
    from scipy.spatial import cKDTree
    from scipy.special import digamma

    n, dims = t.shape
    if k > n - 1:
        raise EstimatorError(f"ksg needs more than k = {k} samples to find k neighbours, got {n}")
    if noise:
        t = t + noise * np.random.RandomState(seed).rand(n, dims)
    distances, _ = cKDTree(t).query(t, k=[k + 1], p=np.inf, workers=-1)
    with np.errstate(divide="ignore"):
        mean_log = np.mean(np.log(distances[:, 0]))
    h_nats = digamma(n) - digamma(k) + dims * np.log(2) + dims * mean_log
    return float(h_nats / np.log(2))


def ross_mi_bits(t: np.ndarray, classes: np.ndarray, n_classes: int, k: int) -> float:
    """Ross's nearest-neighbour estimate of I(Y;T) in bits, Y discrete, T continuous.

    I = psi(N) - <psi(N_y)> + <psi(k_i)> - <psi(m_i)>  (nats; Ross 2014, "Mutual
    information between discrete and continuous data sets", PLoS ONE 9:e87357),
    with, for each point i, r_i the distance to its k-th nearest neighbour of the
    same class, and k_i and m_i the numbers of other points within distance <= r_i
    of its class and of any class. Distances are Euclidean (cKDTree's p = 2): Ross's
    paper treats a one-dimensional T, where every norm agrees; the entropy above uses
    the max-norm, as KSG and NPEET do. Ross fixes k_i = k and counts m_i strictly inside
    r_i plus the k-th neighbour; counting both within <= r_i is the same for distinct
    distances and also handles ties: repeated rows (r_i = 0, as in Gao et al. 2017)
    and lattice data such as binary inputs. Radii are widened by a relative 1e-13 so
    that rounding cannot drop the k-th neighbour. A class with a single member is
    left out (N is the number of points kept) and k is lowered to N_y - 1 for classes
    with at most k members. The estimate is not clipped at 0: small negative values
    are estimator noise. The counts come from `ross_counts`.
    """
    from scipy.special import digamma

    class_sizes = np.bincount(classes, minlength=n_classes)
    kept = class_sizes[classes] > 1
    if not kept.any():
        return 0.0
    t, classes = t[kept], classes[kept]
    same_class_counts, all_counts = ross_counts(t, classes, np.minimum(k, class_sizes - 1))
    mi_nats = (digamma(len(t)) - np.mean(digamma(class_sizes[classes]))
               + np.mean(digamma(same_class_counts)) - np.mean(digamma(all_counts)))
    return float(mi_nats / np.log(2))


def ross_counts(t: np.ndarray, classes: np.ndarray, k_of_class: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k_i, m_i) of `ross_mi_bits` for every point: the other points of its class, and of any
    class, within r_i = (1 + RADIUS_SLACK) x the distance to its k-th nearest neighbour of its
    class (k = k_of_class[class], every class having more than k members).

    Exact, from the nearest neighbours of each point among all points (one cKDTree query): a
    point's list of its K nearest settles it when it holds its k-th same-class neighbour and
    its K-th distance exceeds r_i (every point within r_i is then in the list), or when K is all
    the points. The points it does not settle are asked again with 4 K, until none is left.
    One query of the whole tree replaces a tree per class, its k-NN query and two
    radius counts (scipy's query_ball_point), which cost several times more.
    """
    # Imported here: scipy.spatial is slow to import (see estimators.kde).
    from scipy.spatial import cKDTree

    n = len(t)
    tree = cKDTree(t)
    same_class_counts = np.empty(n, dtype=np.int64)
    all_counts = np.empty(n, dtype=np.int64)
    pending = np.arange(n)
    n_nearest = 4 * (int(k_of_class.max()) + 1)
    while len(pending):
        n_nearest = min(n_nearest, n)
        distances, neighbours = tree.query(t[pending], k=[*range(1, n_nearest + 1)], workers=-1)
        others = neighbours != pending[:, None]
        same = others & (classes[neighbours] == classes[pending][:, None])
        k_needed = k_of_class[classes[pending]]
        same_rank = np.cumsum(same, axis=1)
        found = same_rank[:, -1] >= k_needed
        kth = np.argmax(same_rank >= k_needed[:, None], axis=1)    # the column of the k-th same-class neighbour
        radii = distances[np.arange(len(pending)), kth] * (1 + RADIUS_SLACK)
        settled = found & ((n_nearest == n) | (distances[:, -1] > radii))
        within = distances[settled] <= radii[settled, None]
        same_class_counts[pending[settled]] = (within & same[settled]).sum(axis=1)
        all_counts[pending[settled]] = (within & others[settled]).sum(axis=1)
        pending = pending[~settled]
        n_nearest *= 4
    return same_class_counts, all_counts
