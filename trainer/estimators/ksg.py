"""k-nearest-neighbour estimators: Kozachenko-Leonenko entropy and Ross's discrete-continuous MI.

I(X;T) is the differential entropy of T estimated from nearest-neighbour distances
(Kozachenko & Leonenko 1987; Kraskov, Stoegbauer & Grassberger 2004, Eq. 20), taking
H(T|X) = 0 for a deterministic network as the binning estimator does; the default
k = 2 follows the kNN comparison in the appendix of Saxe et al. (2018). I(Y;T) is
Ross's (2014) estimator for a discrete Y and a continuous T, the one behind
sklearn's mutual_info_classif. Neighbour queries use scipy's cKDTree on all cores.

The first value is therefore a *differential* entropy h(T), not I(X;T): it changes with
the scale of the activations (doubling them adds one bit per unit), can be negative and
is not bounded by log2 n (for a deterministic, continuous T the true I(X;T) is infinite),
so the trainer
stores it in the mi column `h_t_bits` and leaves `i_xt` NULL for ksg.
"""

from __future__ import annotations

import numpy as np

from trainer.estimators.discrete import entropy_bits, row_ids
from trainer.estimators.inputs import layer_inputs
from trainer.estimators.params import integer_between, non_negative_number

PARAMS = {
    "k": integer_between(1, 1000, 2),
    "noise": non_negative_number(1e-10),
    "seed": integer_between(0, 2**32 - 1, 0),
}
# Far above the rounding of distances (~1e-16 relative), far below the default jitter (1e-10).
RADIUS_SLACK = 1e-13


def ksg_mi(activations, labels, k: int = 2, noise: float = 1e-10, seed: int = 0) -> tuple[float, float]:
    """(h(T), I(Y;T)) in bits from k-nearest-neighbour statistics (Euclidean distance).

    h(T), which the binning estimators' reasoning would call I(X;T), by `mixed_entropy_bits`: the Kozachenko-Leonenko estimate for the
    rows that occur once and the plug-in entropy for rows that repeat (a differential
    entropy: it depends on the scale of T, is not bounded by log2 n and can be
    negative). On the 4096 harmonics inputs (12-bit binary, all distinct, every
    k-th-neighbour distance 1) it is 11.81 bits for k = 2.
    I(Y;T) by `ross_mi_bits` on T plus low-amplitude Gaussian noise (`jittered`), the
    standard remedy for tied distances on lattice data (Kraskov, Stoegbauer &
    Grassberger 2004, Sec. II: "add low-amplitude noise"; sklearn's
    mutual_info_classif does the same with 1e-10): noise = 0 turns it off (ties are
    then counted within the radius). On the raw harmonics inputs I(Y;T) is 0.62 bits
    with the jitter (0.58 without), where the truth is H(Y) = 0.999: the labels
    change between inputs one bit apart, and a k-NN estimate sees only how pure each
    point's neighbourhood is (its bias, which the jitter cannot remove).
    """
    t, classes, n_classes = layer_inputs(activations, labels)
    return mixed_entropy_bits(t, k), ross_mi_bits(jittered(t, noise, seed), classes, n_classes, k)


def jittered(t: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """t + noise * max(1, mean |t_u|) * N(0, 1) per unit u (seeded): sklearn's amplitude rule, so the
    jitter stays far below the activations' resolution whatever their scale, yet breaks exact ties."""
    if noise == 0:
        return t
    scale = noise * np.maximum(1.0, np.abs(t).mean(axis=0))
    return t + scale * np.random.default_rng(seed).standard_normal(t.shape)


def mixed_entropy_bits(t: np.ndarray, k: int) -> float:
    """Entropy in bits of T with both atoms (repeated rows) and a continuous part.

    Exactly repeated rows make kNN distances 0 and the differential entropy -inf, so
    the empirical distribution is split into the rows that occur once (fraction q)
    and the repeated rows (atoms), and
      H(T) = H_b(q) + q h_KL(once-rows) + (1 - q) H_plugin(atoms),
    the entropy of a discrete-continuous mixture relative to Lebesgue plus counting
    measure. h_KL is `kozachenko_leonenko_bits` over the once-rows; with k or fewer
    of them they count as atoms too. Continuous activations of distinct inputs give
    q = 1 and plain Kozachenko-Leonenko; identical activations give 0; a handful of
    collisions move the estimate a little (tiny jitter instead would drag it towards
    -inf, the further the smaller the jitter).
    """
    ids = row_ids(t)
    repeats = np.bincount(ids)[ids] > 1
    n_once = len(t) - int(repeats.sum())
    if n_once <= k:
        return entropy_bits(np.bincount(ids))
    q = n_once / len(t)
    h_once = kozachenko_leonenko_bits(t[~repeats], k)
    if q == 1:
        return h_once
    h_atoms = entropy_bits(np.bincount(ids[repeats]))
    return entropy_bits(np.array([n_once, len(t) - n_once])) + q * h_once + (1 - q) * h_atoms


def kozachenko_leonenko_bits(points: np.ndarray, k: int) -> float:
    """Kozachenko-Leonenko differential entropy in bits of n > k distinct points in d dimensions.

    h = psi(n) - psi(k) + log V_d + (d / n) sum_i log r_i  (nats), r_i the Euclidean
    distance from point i to its k-th nearest neighbour and V_d = pi^(d/2) / Gamma(d/2 + 1)
    the volume of the unit d-ball (Kraskov et al. 2004, Eq. 20, there written with
    eps_i = 2 r_i and the volume of the ball of diameter 1).
    """
    # Imported here: scipy.spatial costs about 0.3 s of CPU to import (see estimators.kde).
    from scipy.spatial import cKDTree
    from scipy.special import digamma, gammaln

    n, dims = points.shape
    distances, _ = cKDTree(points).query(points, k=k + 1, workers=-1)  # the nearest is the point itself
    log_unit_ball = dims / 2 * np.log(np.pi) - gammaln(dims / 2 + 1)
    h_nats = digamma(n) - digamma(k) + log_unit_ball + dims * np.mean(np.log(distances[:, -1]))
    return float(h_nats / np.log(2))


def ross_mi_bits(t: np.ndarray, classes: np.ndarray, n_classes: int, k: int) -> float:
    """Ross's nearest-neighbour estimate of I(Y;T) in bits, Y discrete, T continuous.

    I = psi(N) - <psi(N_y)> + <psi(k_i)> - <psi(m_i)>  (nats; Ross 2014, "Mutual
    information between discrete and continuous data sets", PLoS ONE 9:e87357),
    with, for each point i, r_i the distance to its k-th nearest neighbour of the
    same class, and k_i and m_i the numbers of other points within distance <= r_i
    of its class and of any class. Ross fixes k_i = k and counts m_i strictly inside
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
    # Imported here: scipy.spatial costs about 0.3 s of CPU to import (see estimators.kde).
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
