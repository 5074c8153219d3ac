"""How often a "95 %" interval of a mean over seeds holds the true mean, by the number of seeds.

    python bench/interval_coverage.py [--cohorts 2000] [--resamples 999]

Draws many cohorts of n seeds from a known distribution (normal, and a skewed one: lognormal)
and counts the cohorts whose interval holds the distribution's mean: the Student t interval
(ibstore.stats.summarize, what the lab reports) beside the percentile bootstrap
(scipy.stats.bootstrap, what it reported before). A 95 % interval should hold it 95 % of the
time. Not a timing: a measurement of the statistics, run by hand (the test suite checks the t
interval's coverage on normal data, tests/test_phases.py).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import stats as scipy_stats

from ibstore import stats

SEEDS = (2, 3, 5, 10, 20)
DISTRIBUTIONS = {   # name: (draw [cohorts, n], the true mean)
    "normal": (lambda rng, shape: rng.normal(0.0, 1.0, shape), 0.0),
    "lognormal": (lambda rng, shape: rng.lognormal(0.0, 1.0, shape), math.exp(0.5)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=2000, help="cohorts drawn per row (default 2000)")
    parser.add_argument("--resamples", type=int, default=999, help="bootstrap resamples (default 999)")
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


if __name__ == "__main__":
    main()
