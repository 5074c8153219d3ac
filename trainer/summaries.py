"""Per-layer summaries at logged epochs: activation histograms, per-neuron
statistics and gradient signal-to-noise. Pure numpy, testable without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.activation_facts import Activations, blocks, bounds, saturated, unsaturated_interval
from trainer.bit_counts import true_counts

STAT_NAMES = ("mean", "std", "min", "max", "frac_zero", "frac_saturated")

# Bin indices are int64 (ibstore.schema, activations.bin_index): a float64 floor in [-2^63, 2^63) casts exactly.
INDEX_LIMIT = 2.0**63


class HistogramOverflow(ValueError):
    """Some networks' values have no int64 bin index on their grid: NaN, infinite, or 2^63 bins or
    more from its origin (a layer whose activations exploded). `networks`: their positions."""

    def __init__(self, networks: np.ndarray):
        self.networks = np.asarray(networks)
        super().__init__(f"activations not finite or 2^63 histogram bins or more from the origin "
                         f"(networks {self.networks.tolist()})")


@dataclass(frozen=True)
class HistogramGrid:
    """One layer's histogram bins for each of N stacked networks: network s's bin k covers
    [origin[s] + k*width[s], origin[s] + (k+1)*width[s]); the same for every epoch of a run,
    so a layer's histograms stack into an epoch x bin heatmap."""

    origin: np.ndarray     # [N]
    width: np.ndarray      # [N]

    @classmethod
    def for_layer(cls, activation_fn: Activations, initial_values: np.ndarray, n_bins: int) -> "HistogramGrid":
        """Bounded activations: n_bins over their range. Unbounded ones: bins of the width that
        splits the initial network's spread (over its inputs and units) into n_bins, anchored
        at 0; later epochs add bins. `initial_values`: [N, n, units]; `activation_fn`: the
        networks' one activation or each network's own."""
        n_networks = initial_values.shape[0]
        flat = initial_values.reshape(n_networks, -1).astype(np.float64)
        spread = np.ptp(flat, axis=1) if flat.shape[1] else np.zeros(n_networks)
        origin, width = np.zeros(n_networks), np.where(spread > 0, spread / n_bins, 1.0 / n_bins)
        for name, networks in blocks(activation_fn, n_networks):
            if bounds(name).closed:
                lo, hi = bounds(name).lower, bounds(name).upper
                origin[networks], width[networks] = lo, (hi - lo) / n_bins
        return cls(origin, width)

    def take(self, networks: np.ndarray) -> "HistogramGrid":
        """The grids of these networks only (positions on the network axis)."""
        return HistogramGrid(self.origin[networks], self.width[networks])

    def histograms(self, values: np.ndarray, extremes: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> tuple[np.ndarray, ...]:
        """Non-empty bins of every network's values ([N, ...]), as columns sorted by network,
        then bin: (network, bin_index, bin_lo, bin_hi, count). Bin index floor((a - origin) / width),
        in float64. `extremes`: each network's min and max of these values ([N] each) when known
        (from the per-neuron statistics); found here otherwise. Raises HistogramOverflow if some
        network's values have no int64 bin index (not finite, or 2^63 bins or more from the origin)."""
        n_networks = values.shape[0]
        flat = values.reshape(n_networks, -1)
        if flat.size == 0:
            network = bins = counts = np.zeros(0, np.int64)
        else:
            # The quotient is monotone in a, so each network's lowest and highest bin are those of its
            # min and max (given, or found on the values): no pass over the bin indices.
            if extremes is None:
                extremes = flat.min(axis=1), flat.max(axis=1)
            ends = self.bin_index(np.stack(extremes, axis=1))
            beyond = ~np.all((ends >= -INDEX_LIMIT) & (ends < INDEX_LIMIT), axis=1)     # NaN too
            if beyond.any():    # the casts below would wrap them to garbage bins
                raise HistogramOverflow(np.flatnonzero(beyond))
            low, span = ends[:, 0].min(), ends[:, 1].max() - ends[:, 0].min() + 1
            if np.isfinite(span) and n_networks * span <= 4 * flat.size + 1024:
                # Few bins (always for bounded activations): one count over (network, bin) by np.bincount
                # (on numpy 2.4 faster than np.add.at on the cohort's layers; bench/RESULTS.md, stop 29).
                span, low = int(span), int(low)
                quotient = self.quotient(flat)
                if low < 0:     # truncating to an integer is the floor of numbers >= 0 only
                    np.floor(quotient, out=quotient)
                # int32 when every bin index and key fits (not for a relu layer grown 2^30 bins past its
                # grid): the cast from float64 to int32 is much cheaper than to int64 (bench/RESULTS.md).
                fits = max(-low, ends[:, 1].max(), n_networks * span) < 2**30
                keys = quotient.astype(np.int32 if fits else np.int64)
                keys += (span * np.arange(n_networks) - low).astype(keys.dtype)[:, None]
                counts = np.bincount(keys.ravel(), minlength=n_networks * span)
                counts = counts.reshape(n_networks, span)
                network, offset = np.nonzero(counts)
                bins, counts = offset + low, counts[network, offset]
            else:
                # Values spread over many more bins than there are values: sort instead.
                order = np.sort(self.bin_index(flat).astype(np.int64), axis=1)
                starts = np.ones(order.shape, bool)
                starts[:, 1:] = order[:, 1:] != order[:, :-1]
                network, position = np.nonzero(starts)
                ends = np.append(position[1:], order.shape[1])
                ends[np.append(network[1:] != network[:-1], True)] = order.shape[1]
                bins, counts = order[network, position], ends - position
        lo = self.origin[network] + bins * self.width[network]
        return network, bins, lo, lo + self.width[network], counts

    def bin_index(self, flat: np.ndarray) -> np.ndarray:
        """floor((a - origin) / width) in float64 of each network's values (flat: [N, m])."""
        index = self.quotient(flat)
        return np.floor(index, out=index)

    def quotient(self, flat: np.ndarray) -> np.ndarray:
        """(a - origin) / width in float64 of each network's values (flat: [N, m]): the values widened
        (exact), then the origin subtracted in place; the same numbers as np.subtract(flat, origin,
        dtype=np.float64), whose casting subtraction takes longer (bench/RESULTS.md)."""
        quotient = flat.astype(np.float64)
        quotient -= self.origin[:, None]
        quotient /= self.width[:, None]
        return quotient


def neuron_stats(activation_fn: Activations, a: np.ndarray) -> dict[str, np.ndarray]:
    """Per neuron over the inputs (a: [..., n, units], e.g. [N networks, n, units]): mean,
    std, min, max, the fraction of inputs where it is exactly 0, and the fraction where it
    is saturated (trainer.activation_facts.saturated: slope below 1 % of the maximum; for relu
    that is the same as exactly 0), and `saturated`, the number of those inputs (int64; the layer
    health's count, trainer.health.layer_health). Each is [..., units]. With each network's own
    activation, a is [N, n, units]."""
    return layers_neuron_stats([activation_fn], [a])


def layers_neuron_stats(activation_fns: list[Activations], layers: list[np.ndarray]) -> dict[str, np.ndarray]:
    """`neuron_stats` of several layers of the same networks and inputs at once (layer l's values
    [..., n, units_l] and activation(s) activation_fns[l]): each is [..., sum of units], the layers'
    neurons in order. Neurons are independent: in the layers' neurons side by side each neuron still
    has its own contiguous row of inputs, so its numbers are bit for bit those of its layer alone,
    from one set of reductions instead of one per layer (their fixed costs dominate small stacks)."""
    # Neurons first, inputs last, in C order: reductions then run over contiguous memory (several
    # times faster than over the strided inputs axis when a layer has few units), and each neuron's
    # sums are numpy's pairwise sums of its row (np.concatenate alone would keep the inputs' layout).
    ends = np.cumsum([0] + [a.shape[-1] for a in layers])
    n = layers[0].shape[-2]
    by_neuron = np.empty((*layers[0].shape[:-2], ends[-1], n), np.result_type(*layers))
    np.concatenate([np.swapaxes(a, -1, -2) for a in layers], axis=-2, out=by_neuron)
    # np.mean and np.std(dtype=float64) as numpy computes them (one float64 sum, divided by n; the
    # mean of the squared deviations from it), sharing the sum.
    with np.errstate(invalid="ignore", divide="ignore"):     # no inputs: NaN, as np.mean gives
        # The values widened (exact), the mean then subtracted in place: np.subtract(by_neuron, mean)
        # gives the same deviations in more time.
        deviation = by_neuron.astype(np.float64)
        # numpy sums float32 with dtype=float64 through buffers of np.getbufsize() values, a pairwise
        # sum each, added in turn: a row within one buffer has the pairwise sum of its widened values
        # (tested on rows either side of a buffer), which takes less time (bench/RESULTS.md).
        if n <= np.getbufsize():
            mean = deviation.sum(axis=-1, keepdims=True) / n
        else:
            mean = by_neuron.sum(axis=-1, dtype=np.float64, keepdims=True) / n
        deviation -= mean
        std = np.sqrt(np.multiply(deviation, deviation, out=deviation).sum(axis=-1) / n)
    lowest, highest = by_neuron.min(axis=-1), by_neuron.max(axis=-1)
    zero_counts = true_counts(by_neuron == 0)
    counts = np.concatenate([saturated_counts(fn, by_neuron[..., lo:hi, :], lowest[..., lo:hi], highest[..., lo:hi],
                                              zero_counts[..., lo:hi])
                             for fn, lo, hi in zip(activation_fns, ends[:-1], ends[1:])], axis=-1)
    return {
        "mean": mean[..., 0], "std": std,
        "min": lowest.astype(np.float64), "max": highest.astype(np.float64),
        "frac_zero": zero_counts / n,
        "frac_saturated": counts / n, "saturated": counts,
    }


def saturated_counts(activation_fn: Activations, rows: np.ndarray, lowest: np.ndarray, highest: np.ndarray,
                     zero_counts: np.ndarray) -> np.ndarray:
    """true_counts(saturated(activation_fn, rows)): per row of `rows` ([..., m, n], a neuron's n values)
    its number of saturated values, with a pass over the values only for the rows that their min and
    max (`lowest`, `highest` [..., m]) leave open: a row inside the activation's unsaturated interval
    (trainer.activation_facts.unsaturated_interval) has none, and a relu row with min >= 0 as many as
    its zeros (`zero_counts` [..., m]; relu saturates exactly where not a > 0). Most rows are decided
    so (tanh before its layers saturate, every relu row). NaN makes min and max NaN: a pass.
    With each network's own activation, `rows` is [N, m, n]."""
    if not isinstance(activation_fn, str):
        parts = blocks(activation_fn, len(rows))
        if len(parts) > 1:
            return np.concatenate([saturated_counts(name, rows[networks], lowest[networks], highest[networks],
                                                    zero_counts[networks]) for name, networks in parts])
        activation_fn = parts[0][0]
    counts = np.zeros(rows.shape[:-1], np.int64)
    if activation_fn == "relu":
        decided = lowest >= 0
        counts[decided] = zero_counts[decided]
    elif (interval := unsaturated_interval(activation_fn, rows.dtype)) is not None:
        decided = (lowest > interval[0]) & (highest < interval[1])
    else:
        return true_counts(saturated(activation_fn, rows))
    if not decided.any():
        return true_counts(saturated(activation_fn, rows))
    if not decided.all():
        counts[~decided] = true_counts(saturated(activation_fn, rows[~decided]))
    return counts


def gradient_stats(grad_sum: np.ndarray, grad_sq_sum: np.ndarray, n_batches: int,
                   kernel: np.ndarray) -> dict[str, np.ndarray]:
    """Signal-to-noise of one layer's kernel gradient over the minibatches of an epoch.

    With g_b the gradient of minibatch b: mean = (1/B) sum_b g_b,
    std = sqrt((1/B) sum_b g_b^2 - mean^2) elementwise; SNR = ||mean||_F / ||std||_F:
    the ratio of the `gradmean` and `gradstd` that Saxe et al.'s ibsgd (loggingreporter.py,
    L122-123: np.linalg.norm of the batch mean and of the batch std) and deep-bottleneck's
    gradient_logger.py (L95-96) record. Shwartz-Ziv & Tishby's IDNNs (plot_gradients.py) differs:
    it sums both norms cumulatively over the layers up to this one and plots (sum ||mean||)^2 / sum ||std||.
    Norms are over the last two axes (the kernel); leading axes (networks) are kept.
    """
    mean = grad_sum.astype(np.float64) / n_batches
    std = np.sqrt(np.maximum(grad_sq_sum.astype(np.float64) / n_batches - mean * mean, 0.0))
    mean_norm = np.sqrt(np.square(mean).sum(axis=(-2, -1)))
    std_norm = np.sqrt(np.square(std).sum(axis=(-2, -1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(std_norm > 0, mean_norm / std_norm, np.nan)
    return {
        "grad_mean_norm": mean_norm,
        "grad_std_norm": std_norm,
        "snr": snr,
        "weight_norm": np.sqrt(np.square(kernel.astype(np.float64)).sum(axis=(-2, -1))),
    }
