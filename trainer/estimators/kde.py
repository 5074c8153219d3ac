"""Gaussian-mixture bounds ("KDE"): pairwise-distance bounds on the entropy of T + noise.

Saxe et al. (2018) measure a deterministic layer T = h(X) as if Gaussian noise were
added: T' = h(X) + N(0, noise_variance * I). Over n equally likely inputs, T' is a
mixture of n Gaussians with means h(x_i), whose entropy Kolchinsky & Tracey (2017,
"Estimating mixture entropy with pairwise distances", Entropy 19:361, Sec. 4) bound
from both sides by pairwise distances between the components. The formulas are
those of ibsgd's `kde.py` (entropy_estimator_kl, entropy_estimator_bd,
kde_condentropy), which deep-bottleneck copied.
"""

from __future__ import annotations

import functools
import hashlib
import itertools

import numpy as np

from trainer.estimators.inputs import layer_inputs
from trainer.estimators.params import positive_number

PARAMS = {"noise_variance": positive_number(1e-3)}
BLOCK_ROWS = 128
# How many bytes of kernel sums RecentLayerSums keeps for the other bound: 64 MB holds every layer and
# split of a logged epoch many times over at 4096 inputs (128 kB a layer), a few at 60,000 and 10 classes.
MEMO_BYTES = 2**26


def kde_upper_mi(activations, labels, *, noise_variance: float) -> tuple[float, float]:
    """(I(X;T), I(Y;T)) in bits from the KL-divergence upper bound on H(T + noise).

    I(X;T) = H_KL(T) - H(T|X) and I(Y;T) = H_KL(T) - sum_y p(y) H_KL(T|Y=y), the
    class-conditional entropy bounded the same way over the inputs of class y (as in
    ibsgd's computeMI). See `kl_entropy_nats` and `gaussian_entropy_nats`; in bits.
    As noise_variance -> 0 on distinct activations I(X;T) -> log2 n.
    """
    return mixture_bound_mi(activations, labels, noise_variance, "upper")


def kde_lower_mi(activations, labels, *, noise_variance: float) -> tuple[float, float]:
    """(I(X;T), I(Y;T)) in bits from the Bhattacharyya lower bound on H(T + noise).

    As kde_upper_mi with `bd_entropy_nats` for H(T) and for every H(T|Y=y).
    """
    return mixture_bound_mi(activations, labels, noise_variance, "lower")


def mixture_bound_mi(activations, labels, noise_variance: float, bound: str) -> tuple[float, float]:
    """(I(X;T), I(Y;T)) in bits with the upper (KL) or lower (Bhattacharyya) mixture entropy bound."""
    t, classes, n_classes = layer_inputs(activations, labels)
    n, dims = t.shape
    order = np.argsort(classes, kind="stable")  # each class becomes one contiguous block of rows
    class_starts = np.searchsorted(classes[order], np.arange(n_classes + 1))
    sums = recent_layer_sums.get(t[order], class_starts, noise_variance)[bound]
    entropy_nats = kl_entropy_nats if bound == "upper" else bd_entropy_nats
    h_t = entropy_nats(np.log(sums.sum(axis=1)), dims, noise_variance)
    h_t_given_y = sum((stop - start) / n * entropy_nats(np.log(sums[start:stop, label]), dims, noise_variance)
                      for label, (start, stop) in enumerate(itertools.pairwise(class_starts)))
    h_t_given_x = gaussian_entropy_nats(dims, noise_variance)
    return float((h_t - h_t_given_x) / np.log(2)), float((h_t - h_t_given_y) / np.log(2))


class RecentLayerSums:
    """The kernel class sums of both bounds for the layers asked about last (MEMO_BYTES of them).

    The trainer asks for kde_upper on every layer and split of a logged epoch, then for kde_lower on
    each again, and the pairwise distances and their scaling are a large share of either's cost: so the
    pass that serves one bound also computes the other's sums (one more float32 exp and class sums
    over the triangle) and keeps them for the later call. The key is a BLAKE2b digest of the layer's bytes (as sorted by class),
    its class boundaries and the noise variance, so a hit is the very same computation (a
    collision of 256-bit digests is not a practical possibility) and never stale.
    """

    def __init__(self) -> None:
        self.sums: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, t: np.ndarray, class_starts: np.ndarray, noise_variance: float) -> dict[str, np.ndarray]:
        digest = hashlib.blake2b(np.ascontiguousarray(t).tobytes(), digest_size=32)
        digest.update(np.asarray(t.shape, dtype=np.int64).tobytes())
        digest.update(class_starts.astype(np.int64).tobytes())
        digest.update(np.float64(noise_variance).tobytes())
        key = digest.digest()
        if key not in self.sums:
            self.sums[key] = kernel_class_sums(t, class_starts, noise_variance)
            while sum(upper.nbytes + lower.nbytes for upper, lower in self.sums.values()) > MEMO_BYTES \
                    and len(self.sums) > 1:
                del self.sums[next(iter(self.sums))]      # the oldest
        upper, lower = self.sums[key]
        return {"upper": upper, "lower": lower}


recent_layer_sums = RecentLayerSums()


def kl_entropy_nats(log_kernel_sums: np.ndarray, dims: int, variance: float) -> float:
    """KL upper bound on the entropy of (1/n) sum_j N(h_j, variance * I), in nats.

    H_KL = d/2 + (d/2) log(2 pi var) + log n - (1/n) sum_i log sum_j exp(-||h_i - h_j||^2 / (2 var)),
    i.e. sum_i c_i H(p_i) - sum_i c_i log sum_j c_j exp(-KL(p_i || p_j)) with c = 1/n
    (Kolchinsky & Tracey 2017, Sec. 4; Kolchinsky, Tracey & Wolpert, "Nonlinear
    information bottleneck", Eq. 10; ibsgd `entropy_estimator_kl`).
    `log_kernel_sums[i]` is log sum_j exp(-||h_i - h_j||^2 / (2 var)) over the n points.
    """
    return dims / 2 + dims / 2 * np.log(2 * np.pi * variance) + np.log(len(log_kernel_sums)) \
        - log_kernel_sums.mean()


def bd_entropy_nats(log_kernel_sums_4var: np.ndarray, dims: int, variance: float) -> float:
    """Bhattacharyya lower bound on the entropy of (1/n) sum_j N(h_j, variance * I), in nats.

    The Bhattacharyya distance of two such Gaussians is ||h_i - h_j||^2 / (8 var), so
    H_BD = H_KL(4 var) + (d/2) log(1/4) (Kolchinsky & Tracey 2017, Sec. 4; ibsgd
    `entropy_estimator_bd`). `log_kernel_sums_4var` uses the kernel variance 4 var.
    """
    return kl_entropy_nats(log_kernel_sums_4var, dims, 4 * variance) + dims / 2 * np.log(0.25)


def gaussian_entropy_nats(dims: int, variance: float) -> float:
    """H(T|X) = entropy of N(0, variance * I_d) = (d/2)(log(2 pi var) + 1) nats (ibsgd `kde_condentropy`)."""
    return dims / 2 * (np.log(2 * np.pi * variance) + 1)


def kernel_class_sums(t: np.ndarray, class_starts: np.ndarray, noise_variance: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(S_upper, S_lower): S[i, c] = sum_{j in class c} exp(-||t_i - t_j||^2 / (2 kernel_variance)), j = i
    included, with kernel_variance = noise_variance for the upper bound and 4 noise_variance for the
    lower one (`bd_entropy_nats`), both from one pass over the distances.

    The rows of `t` are sorted by class, class c being rows class_starts[c]:class_starts[c + 1].
    So log S[i].sum() is the row's log-sum-exp over all points and log S[i, y_i] the
    one over its own class; every exponent is <= 0 and the self term is exp(0) = 1,
    so the sums never underflow and need no max-shift (scipy.special.logsumexp would
    subtract a max of 0). The kernel matrix is symmetric and is built in blocks of
    rows of its upper triangle, never whole: exact squared distances from
    scipy.spatial.distance.cdist (float64, single-threaded; a BLAS product form
    ||a||^2 + ||b||^2 - 2ab is faster alone but cancels digits and its threads stall
    badly when other processes share the CPU), scaled by -1/(2 var) into float32, then exp in
    float32 (relative error ~1e-7, vectorised, faster than float64; bench/RESULTS.md); the lower
    bound's exponents are those times 1/4, exact in binary floating point, so each bound's
    kernel is bit for bit what a pass for it alone gives. Then class sums over contiguous
    column and row ranges.
    """
    # Imported here: importing scipy.spatial is a noticeable part of a process's start (bench/RESULTS.md),
    # and every trainer process imports the estimators (the config checks their params) while few runs use kde.
    from scipy.spatial.distance import cdist

    n = len(t)
    sums = np.zeros((2, len(class_starts) - 1, n))   # class-major while summing: contiguous adds
    squared, exponents, kernel = block_buffers(n)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        shape = (stop - start, n - start)  # rows start:stop, columns start:n
        size = shape[0] * shape[1]
        block_squared = cdist(t[start:stop], t[start:], "sqeuclidean", out=squared[:size].reshape(shape))
        block_exponents = np.multiply(block_squared, -0.5 / noise_variance, out=exponents[:size].reshape(shape),
                                      casting="same_kind")
        block_kernel = np.exp(block_exponents, out=kernel[:size].reshape(shape))
        add_class_sums(sums[0], block_kernel, class_starts, start, stop)
        block_exponents *= 0.25     # the lower bound's kernel variance 4 var
        np.exp(block_exponents, out=block_kernel)
        add_class_sums(sums[1], block_kernel, class_starts, start, stop)
    return np.ascontiguousarray(sums[0].T), np.ascontiguousarray(sums[1].T)


@functools.lru_cache(maxsize=1)
def block_buffers(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat buffers for one block of `kernel_class_sums` over n points: squared distances (float64),
    exponents and kernel (float32), BLOCK_ROWS x n each; every block uses a contiguous view of
    their start. Kept for the next call with the same n (the layers of a logged epoch share n):
    fresh arrays of this size cost page faults on first touch, a measurable part of a pass (bench/RESULTS.md)."""
    return (np.empty(BLOCK_ROWS * n), np.empty(BLOCK_ROWS * n, dtype=np.float32),
            np.empty(BLOCK_ROWS * n, dtype=np.float32))


def add_class_sums(sums: np.ndarray, kernel: np.ndarray, class_starts: np.ndarray, start: int, stop: int) -> None:
    """Add one block of the kernel's upper triangle (rows start:stop, columns start:n) to the class
    sums [classes, n], and its mirror image below the diagonal."""
    for label, (low, high) in enumerate(itertools.pairwise(class_starts.tolist())):
        # for the block's rows i: the columns j >= start of class c (an empty range would add zeros)
        column_low, column_high = max(low, start) - start, max(high, start) - start
        if column_high > column_low:
            sums[label, start:stop] += kernel[:, column_low:column_high].sum(axis=1)
        # by symmetry, for the rows j >= stop: the block's rows i of class c
        row_low, row_high = min(max(low, start), stop) - start, min(max(high, start), stop) - start
        if row_high > row_low:
            sums[label, stop:] += kernel[row_low:row_high, stop - start:].sum(axis=0)
