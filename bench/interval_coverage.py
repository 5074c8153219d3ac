"""How often a "95 %" interval of a mean over seeds holds the true mean, by the number of seeds;
and how often the effect sizes' intervals hold theirs (Cliff's delta, Spearman's rho).

    python bench/interval_coverage.py [--cohorts 2000] [--resamples 999] [--effect-draws 4000]

Draws many cohorts of n seeds from a known distribution (normal, and a skewed one: lognormal)
and counts the cohorts whose interval holds the distribution's mean: the Student t interval
(ibstore.stats.summarize, what the lab reports) beside the percentile bootstrap
(scipy.stats.bootstrap, what it reported before). A 95 % interval should hold it 95 % of the
time. Then Cliff's delta of two groups of normal seeds (ibstore.stats.cliffs_delta; the true delta,
2 Phi(shift / sqrt 2) - 1, or with both groups censored at one bound, as SNR drops are, measured on
400,000 draws) and Spearman's rho of a trend over 3-9 values of a key with 2-5 runs at each
(ibstore.trend.rho_interval; the true rho measured on 200,000 runs). Not a timing: a measurement
of the statistics, run by hand (the test suite checks the t interval's coverage on normal data,
tests/test_phases.py, and the effect sizes', tests/test_effect_sizes.py).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import stats as scipy_stats

from ibstore import stats, trend

SEEDS = (2, 3, 5, 10, 20)
DISTRIBUTIONS = {   # name: (draw [cohorts, n], the true mean)
    "normal": (lambda rng, shape: rng.normal(0.0, 1.0, shape), 0.0),
    "lognormal": (lambda rng, shape: rng.lognormal(0.0, 1.0, shape), math.exp(0.5)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=2000, help="cohorts drawn per row (default 2000)")
    parser.add_argument("--resamples", type=int, default=999, help="bootstrap resamples (default 999)")
    parser.add_argument("--effect-draws", type=int, default=4000, help="draws per effect-size row (default 4000)")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    print(f"coverage of the true mean over {args.cohorts} cohorts (binomial sd at 95 %: "
          f"{math.sqrt(0.95 * 0.05 / args.cohorts):.3f})")
    print(f"{'distribution':<12} {'seeds':>5} {'t interval':>11} {'percentile bootstrap':>21}")
    for name, (draw, mean) in DISTRIBUTIONS.items():
        for n in SEEDS:
            cohorts = draw(rng, (args.cohorts, n))
            t_held = np.mean([s.ci_low <= mean <= s.ci_high for s in stats.summarize_columns(cohorts.T)])
            intervals = scipy_stats.bootstrap((cohorts,), np.mean, axis=-1, n_resamples=args.resamples,
                                              method="percentile", rng=rng).confidence_interval
            bootstrap_held = np.mean((intervals.low <= mean) & (mean <= intervals.high))
            print(f"{name:<12} {n:>5} {t_held:>11.3f} {bootstrap_held:>21.3f}")
    effect_coverage(rng, args.effect_draws)


def effect_coverage(rng: np.random.Generator, draws: int) -> None:
    """Print how often Cliff's delta's and Spearman's rho's 95 % intervals hold the true value."""
    print(f"Cliff's delta over {draws} draws: seeds a side, shift in sd, censored at 0.5 sd above b's mean")
    for seeds in (4, 5, 10):     # 3 a side get no interval: no test gives them p < 0.05 (stats.smallest_p)
        for shift in (0.0, 1.0):
            for bound in (math.inf, 0.5):
                truth = np.minimum(rng.normal(shift, 1, 400_000), bound) - np.minimum(rng.normal(0, 1, 400_000), bound)
                true_delta = float(np.mean(np.sign(truth)))
                held = np.mean([low <= true_delta <= high for low, high in (stats.cliffs_delta(
                    np.minimum(rng.normal(shift, 1, seeds), bound), np.minimum(rng.normal(0, 1, seeds), bound))[1:]
                    for _ in range(draws))])
                print(f"  {seeds:>2} seeds  shift {shift:.1f}  {'censored' if bound < math.inf else 'whole':<8}"
                      f"  delta {true_delta:+.3f}  held {held:.3f}")
    print(f"Spearman's rho over {draws} draws: values of the key, runs at each, slope in sd per step")
    for levels, runs in ((3, 3), (3, 5), (4, 2), (5, 5), (9, 5)):
        for slope in (0.0, 0.3, 1.0):
            many = np.repeat(np.arange(levels), 200_000 // levels)
            true_rho = float(scipy_stats.spearmanr(many, slope * many + rng.normal(size=many.size)).statistic)
            steps = np.repeat(np.arange(levels), runs)
            held = np.mean([low <= true_rho <= high for low, high in (trend.rho_interval(float(
                scipy_stats.spearmanr(steps, slope * steps + rng.normal(size=steps.size)).statistic), steps.size)
                for _ in range(draws))])
            print(f"  {levels} values x {runs} runs  slope {slope:.1f}  rho {true_rho:+.3f}  held {held:.3f}")


if __name__ == "__main__":
    main()
