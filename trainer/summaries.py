"""Per-layer summaries at logged epochs: activation histograms, per-neuron
statistics and gradient signal-to-noise. Pure numpy, testable without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Output range of bounded activations; unbounded ones get a grid from the data.
BOUNDED_RANGE = {
    "tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0), "relu6": (0.0, 6.0), "softmax": (0.0, 1.0),
}
# A unit is saturated where its activation's slope is below this fraction of its maximum slope.
SATURATION_SLOPE = 0.01
STAT_NAMES = ("mean", "std", "min", "max", "frac_zero", "frac_saturated")


@dataclass(frozen=True)
class HistogramGrid:
    """Bin k covers [origin + k*width, origin + (k+1)*width); the same for every epoch of a run,
    so a layer's histograms stack into an epoch x bin heatmap."""

    origin: float
    width: float

    @classmethod
    def for_layer(cls, activation_fn: str, initial_values: np.ndarray, n_bins: int) -> "HistogramGrid":
        """Bounded activations: n_bins over their range. Unbounded ones: bins of the width that
        splits the initial network's spread into n_bins, anchored at 0; later epochs add bins."""
        if activation_fn in BOUNDED_RANGE:
            lo, hi = BOUNDED_RANGE[activation_fn]
            return cls(lo, (hi - lo) / n_bins)
        spread = float(np.ptp(initial_values)) if initial_values.size else 0.0
        return cls(0.0, spread / n_bins if spread > 0 else 1.0 / n_bins)

    def histogram(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Non-empty bins only: (bin_index, bin_lo, bin_hi, count)."""
        index = np.floor((values.ravel().astype(np.float64) - self.origin) / self.width).astype(np.int64)
        bins, counts = np.unique(index, return_counts=True)
        lo = self.origin + bins * self.width
        return bins, lo, lo + self.width, counts


def slope_relative(activation_fn: str, a: np.ndarray) -> np.ndarray:
    """The activation's derivative at each unit, written as a function of its output a,
    divided by the function's largest slope (1 for most; 1/4 for sigmoid/softmax)."""
    if activation_fn in ("tanh",):
        return 1.0 - a * a
    if activation_fn in ("sigmoid", "softmax"):
        return 4.0 * a * (1.0 - a)
    if activation_fn == "softsign":
        return np.square(1.0 - np.abs(a))
    if activation_fn == "relu":
        return (a > 0).astype(np.float64)
    if activation_fn == "relu6":
        return ((a > 0) & (a < 6)).astype(np.float64)
    if activation_fn == "hard_sigmoid":
        return ((a > 0) & (a < 1)).astype(np.float64)
    if activation_fn == "elu":          # x < 0: a = e^x - 1, slope e^x = a + 1
        return np.where(a > 0, 1.0, a + 1.0)
    if activation_fn == "selu":         # x < 0: a = l*al*(e^x - 1), slope a + l*al; max slope l*al
        scale_alpha = 1.0507009873554805 * 1.6732632423543772
        return np.where(a > 0, 1.0 / 1.6732632423543772, (a + scale_alpha) / scale_alpha)
    if activation_fn == "softplus":     # slope sigmoid(x) = 1 - e^-a
        return -np.expm1(-a)
    return np.ones_like(a, dtype=np.float64)   # linear, leaky_relu: never flat


def neuron_stats(activation_fn: str, a: np.ndarray) -> dict[str, np.ndarray]:
    """Per neuron over the inputs (a: [n, units]): mean, std, min, max, the fraction of
    inputs where it is exactly 0, and the fraction where it is saturated (slope below
    SATURATION_SLOPE of the maximum: for relu that is the same as exactly 0)."""
    a64 = a.astype(np.float64)
    return {
        "mean": a64.mean(axis=0), "std": a64.std(axis=0),
        "min": a64.min(axis=0), "max": a64.max(axis=0),
        "frac_zero": (a == 0).mean(axis=0),
        "frac_saturated": (slope_relative(activation_fn, a64) < SATURATION_SLOPE).mean(axis=0),
    }


def gradient_stats(grad_sum: np.ndarray, grad_sq_sum: np.ndarray, n_batches: int,
                   kernel: np.ndarray) -> dict[str, float]:
    """Signal-to-noise of one layer's kernel gradient over the minibatches of an epoch.

    With g_b the gradient of minibatch b: mean = (1/B) sum_b g_b,
    std = sqrt((1/B) sum_b g_b^2 - mean^2) elementwise; SNR = ||mean||_F / ||std||_F
    (Shwartz-Ziv & Tishby 2017, section 4; deep-bottleneck's gradient logger).
    """
    mean = grad_sum / n_batches
    std = np.sqrt(np.maximum(grad_sq_sum / n_batches - mean * mean, 0.0))
    mean_norm = float(np.linalg.norm(mean))
    std_norm = float(np.linalg.norm(std))
    return {
        "grad_mean_norm": mean_norm,
        "grad_std_norm": std_norm,
        "snr": mean_norm / std_norm if std_norm > 0 else float("nan"),
        "weight_norm": float(np.linalg.norm(kernel)),
    }
