"""Trends along one numeric config key of the `phases` view: does a phase quantity rise or fall
as the key grows (the initial-bias notebook's question: initial_bias -1 ... 5)? The seed is the unit.

Per layer, estimator, params, split and quantity, over every run the statistics keep (not dead,
diverged or unfinished: ibstore.stats.exclusions), with x the run's *step* along the key (the rank
of its value among the distinct values kept, 0 ... k - 1, so that the trend does not hang on the
values' spacing: initial_bias 2 and 5 are one step apart) and y the quantity:
- slope: the least-squares slope of y on x, Σ (x - x̄)(y - ȳ) / Σ (x - x̄)², in the quantity's
  units per step;
- p: the two-sided permutation test of it, the y shuffled over the runs (the null: y does not depend
  on the key), exact over all n! orders where they are at most N_RESAMPLES, else N_RESAMPLES random
  ones (seed SEED), counted as scipy.stats.permutation_test counts them;
- its 95 % interval: the slopes b the same test does not reject for y - b x (ibstore.stats._ShiftedTest,
  test inversion as in Ernst 2004, Statistical Science 19(4), section 3.3), so that 0 lies outside it
  exactly when p < 0.05;
- Spearman's rho of the key's values and y (scipy.stats.spearmanr): the unit-free effect size,
  in [-1, 1], as Cliff's delta is for two groups.
q_value: p adjusted by Benjamini-Hochberg over the layers, per estimator, params, split and quantity
(ibstore.stats.over_layers). A trend needs MIN_LEVELS distinct values kept: through two it is the
difference of two groups, which the comparisons test. Where the groups also differ in other keys
(relu and tanh cohorts together), each combination of those (`within`, e.g. "activation_fn=relu")
gets its own trend: one slope through two activations would mix two different dose-responses.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pandas as pd

from ibstore import stats

MIN_LEVELS = 3
TOO_FEW_LEVELS = f"fewer than {MIN_LEVELS} values of the key kept: no trend to test"
COLUMNS = ["within", *stats.KEYS, "layer_name", "quantity", "levels", "n", "slope", "ci_low", "ci_high",
           "p_value", "spearman_rho", "note"]


@functools.lru_cache(maxsize=4)     # a report asks for one or two n; 500 runs' orders are 20 MB
def _orders(n: int) -> tuple[np.ndarray, bool]:
    """The orders [K, n] of n values that scipy.stats.permutation_test (permutation_type
    "pairings") weighs: all n! (the observed one among them) when they are at most N_RESAMPLES,
    else N_RESAMPLES random ones (seed SEED); and whether they are all."""
    if math.factorial(n) <= stats.N_RESAMPLES:
        orders, exact = np.array(list(itertools.permutations(range(n))), dtype=np.int32).reshape(-1, n), True
    else:
        random = np.random.default_rng(stats.SEED).random((stats.N_RESAMPLES, n))
        orders, exact = random.argsort(axis=1).astype(np.int32), False
    orders.flags.writeable = False
    return orders, exact


def slope_test(steps: np.ndarray, values: np.ndarray) -> tuple[float, float, float, float]:
    """(slope, p, low, high) of the finite `values` against their `steps`, at least 3 pairs and 2
    distinct steps: the least-squares slope, the two-sided permutation p, and the 95 % interval from
    the same test (the module's docstring).

    >>> slope, p, low, high = slope_test(np.repeat([0.0, 1.0, 2.0], 3), np.array([0.1, 0.3, 0.2, 1.1, 0.9, 1.3, 2.2, 1.8, 2.0]))
    >>> round(slope, 3), p < 0.05, low < slope < high
    (0.9, True, True)
    """
    centred = steps - steps.mean()
    weights = centred / (centred @ centred)              # slope(y) = weights @ y, as the weights sum to 0
    values = values - values[0]                          # so that equal values give a slope of exactly 0
    orders, exact = _orders(len(values))
    test = stats._ShiftedTest(level=values[orders] @ weights, slope=-(steps[orders] @ weights),
                              observed=float(weights @ values), exact=exact, two_sided=True)
    if not np.ptp(values):
        # Every value equal: the slope is 0, and any other makes them a straight line in the steps,
        # which the test rejects alike at any size, or at none (too few runs).
        return 0.0, test.p(0.0), *((0.0, 0.0) if test.p(1.0) < stats.ALPHA else (-math.inf, math.inf))
    scale = max(float(np.ptp(values) / np.ptp(steps)), abs(test.observed))
    return test.observed, test.p(0.0), test.end(-1.0, scale), test.end(1.0, scale)


def trends(phases: pd.DataFrame, key_values: dict[str, float], quantities: tuple[str, ...] = stats.QUANTITIES,
           within: dict[str, str] | None = None) -> pd.DataFrame:
    """The trend of each of `quantities` along the key whose value each run of `phases` has in
    `key_values` (run_id -> number; runs without one are left out), per layer, estimator, params
    and split, and per value of `within` (run_id -> the other keys' values, "activation_fn=relu";
    default one for all): COLUMNS and q_value (over the layers)."""
    phases = stats.with_excess(phases[phases["run_id"].isin(list(key_values))]).reset_index(drop=True)
    kept = phases[np.equal(stats.exclusions(phases), None)].reset_index(drop=True)
    kept = kept.assign(within=kept["run_id"].map(within or {}).astype(object).fillna(""))
    key = kept["run_id"].map(key_values).to_numpy(dtype=float)
    values = stats._numeric(kept, quantities)
    rows = []
    for (stratum, *keys), index in kept.groupby(["within", *stats.KEYS], sort=True, dropna=False).indices.items():
        for column, quantity in enumerate(quantities):
            finite = index[np.isfinite(values[index, column])]
            levels, steps = np.unique(key[finite], return_inverse=True)
            row = {"within": stratum or None, **dict(zip(stats.KEYS, keys)),
                   "layer_name": kept["layer_name"].iloc[index[0]], "quantity": quantity, "levels": len(levels),
                   "n": len(finite)}
            if len(levels) < MIN_LEVELS:
                rows.append({**row, "slope": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                             "p_value": math.nan, "spearman_rho": math.nan, "note": TOO_FEW_LEVELS})
                continue
            y = values[finite, column]
            slope, p_value, low, high = slope_test(steps.astype(float), y)
            rho = float(stats._scipy_stats().spearmanr(key[finite], y).statistic) if np.ptp(y) else math.nan
            rows.append({**row, "slope": slope, "ci_low": low, "ci_high": high, "p_value": p_value,
                         "spearman_rho": rho, "note": None})
    return stats._with_q(pd.DataFrame(rows, columns=COLUMNS), ["within", *stats.FAMILY, "quantity"])
