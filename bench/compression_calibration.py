"""How often the compression test calls a layer compressing, with and without compression.

    python bench/compression_calibration.py [--groups 300] [--few-epochs]

Draws groups of n seeds whose I(X;T) rises to a plateau (each seed at its own pace) and then stays
flat or falls by `fall` bits over the second half of training, plus noise of 0.05 bits that is
independent or correlated from one logged epoch to the next, or with each seed drifting over the
second half along its own slope, by its own step, or above its end and then below it ("both"; sd
DRIFT_BITS, mean 0: seeds that end apart, as real seeds do), and counts the groups called
compressing (p < 0.05): by the lab's test
(ibstore.stats.drop_test: the mean curve's fall against a multiplier bootstrap of the seeds' noise)
beside the one it replaced (per run, peak - final minus the range of the last 10 logged epochs, a
one-sided sign-flip test over the seeds). With no fall a test should call at most 5 % of groups;
with a fall, the more the better. Not a timing: a measurement of the statistics, run by hand
(tests/test_phases.py checks the no-fall rows' bound on fewer groups).

`--few-epochs` instead draws flat I(X;T) plus independent noise over 2 to 16 logged epochs.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import stats as scipy_stats

from ibstore import stats

NOISE_BITS = 0.05
DRIFT_BITS = 1.0   # the seeds of a tanh layer ended 0.6-1.1 bits apart (sd) in a reviewer's cohort
CASES = [   # (fall in bits, correlation of the noise from one logged epoch to the next, logged epochs, drift)
    (0.0, 0.0, 230, None), (0.0, 0.0, 2001, None), (0.0, 0.9, 230, None), (0.0, 0.95, 230, None),
    (0.0, 0.0, 230, "slope"), (0.0, 0.0, 230, "step"), (0.0, 0.9, 230, "step"), (0.0, 0.0, 230, "both"),
    (0.0, 0.9, 230, "both"),
    (0.05, 0.0, 230, None), (0.05, 0.9, 230, None), (0.1, 0.9, 230, None), (0.5, 0.0, 230, "step")]
SEEDS = (5, 10, 20)


def curves(rng: np.random.Generator, seeds: int, epochs: int, correlation: float, fall: float,
           drift: str | None = None) -> np.ndarray:
    """[seeds, epochs]: a rise to 8 bits (time constant L/20, each seed's 30 % apart), flat or falling
    by `fall` over the second half, plus AR(1) noise of sd NOISE_BITS, and each seed's own `drift` over
    the second half: a "slope", a "step" (at three quarters), or "both" (up over the third sixth, down
    over the fifth: a curve of both signs about its end) of N(0, DRIFT_BITS) bits."""
    epoch = np.arange(epochs)
    second_half = np.clip((epoch - epochs / 2) / (epochs / 2), 0, 1)
    both = (epochs / 2 <= epoch) & (epoch < 2 * epochs / 3), (2 * epochs / 3 <= epoch) & (epoch < 5 * epochs / 6)
    shape = {None: 0 * second_half, "slope": second_half, "step": (epoch >= 3 * epochs / 4).astype(float),
             "both": both[0] - both[1].astype(float)}[drift]
    pace = epochs / 20 * np.exp(0.3 * rng.normal(size=(seeds, 1)))
    noise = np.empty((seeds, epochs))
    noise[:, 0] = rng.normal(size=seeds)
    for e in range(1, epochs):
        noise[:, e] = correlation * noise[:, e - 1] + math.sqrt(1 - correlation ** 2) * rng.normal(size=seeds)
    mean = 8 * (1 - np.exp(-epoch / pace)) - fall * second_half
    return mean + NOISE_BITS * noise + DRIFT_BITS * rng.normal(size=(seeds, 1)) * shape


def tail_range_called(group: np.ndarray) -> bool:
    """The test this replaced: per run peak - final - (max - min of the last 10 logged epochs), and
    a one-sided sign-flip permutation test of its mean over the seeds."""
    excess = group.max(axis=1) - group[:, -1] - np.ptp(group[:, -10:], axis=1)
    return scipy_stats.permutation_test((excess,), np.mean, permutation_type="samples", alternative="greater",
                                        vectorized=True, n_resamples=9999, rng=0).pvalue < stats.ALPHA


def few_epochs(groups: int) -> None:
    """Share of flat groups called compressing over few logged epochs (the test's false positives)."""
    rng = np.random.default_rng(12)
    epochs = (2, 3, 5, 8, 9, 10, 12, 16)
    print(f"share of {groups} flat groups called compressing (binomial sd at 5 %: "
          f"{math.sqrt(0.05 * 0.95 / groups):.3f})")
    print(f"{'seeds':>5} " + " ".join(f"{f'{e} ep':>6}" for e in epochs))
    for n in (5, 6, 10):
        called = [np.mean([stats.drop_test((flat := rng.normal(0, NOISE_BITS, (n, e))) - flat[:, -1:])[0]
                           < stats.ALPHA for _ in range(groups)]) for e in epochs]
        print(f"{n:>5} " + " ".join(f"{share:>6.3f}" for share in called))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=300, help="groups drawn per cell (default 300)")
    parser.add_argument("--few-epochs", action="store_true", help="flat groups over 2 to 16 logged epochs")
    args = parser.parse_args()
    if args.few_epochs:
        return few_epochs(args.groups)
    rng = np.random.default_rng(1)
    print(f"share of {args.groups} groups called compressing, this test / the tail-range floor "
          f"(binomial sd at 5 %: {math.sqrt(0.05 * 0.95 / args.groups):.3f})")
    print(f"{'fall (bits)':>11} {'correlation':>11} {'epochs':>6} {'drift':>5} "
          + " ".join(f"{f'{n} seeds':>13}" for n in SEEDS))
    for fall, correlation, epochs, drift in CASES:
        cells = []
        for n in SEEDS:
            called = np.zeros(2)
            for _ in range(args.groups):
                group = curves(rng, n, epochs, correlation, fall, drift)
                called += (stats.drop_test(group - group[:, -1:])[0] < stats.ALPHA, tail_range_called(group))
            cells.append(f"{called[0] / args.groups:.3f} / {called[1] / args.groups:.3f}")
        print(f"{fall:>11g} {correlation:>11g} {epochs:>6} {drift or '-':>5} " + " ".join(f"{cell:>13}" for cell in cells))


if __name__ == "__main__":
    main()
