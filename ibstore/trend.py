"""Trends along one numeric config key of the `phases` view: does a phase quantity rise or fall
as the key grows (the initial-bias notebook's question: initial_bias -1 ... 5)? The seed is the unit.

Per layer, estimator, params, split and quantity, over every run the statistics keep (not dead,
diverged or unfinished: ibstore.stats.exclusions), with x the run's *step* along the key (the rank
of its value among the distinct values kept, 0 ... k - 1, so that the trend does not hang on the
values' spacing: initial_bias 2 and 5 are one step apart) and y the quantity:
- slope: the least-squares slope of y on x, Σ (x - x̄)(y - ȳ) / Σ (x - x̄)², in the quantity's
  units per step;
- p: the larger of two tests' two-sided p (ibstore.stats.welch_bounded, as for two groups):
  - the studentized permutation test of the slope: the slope over its HC3 standard error
    (`hc3_test`; MacKinnon and White 1985, J. Econometrics 29(3)), the y shuffled over the runs,
    exact over all n! orders where they are at most N_RESAMPLES, else N_RESAMPLES random ones (seed
    SEED), counted as scipy.stats.permutation_test counts them. It is exact where y does not depend
    on the key at all, and valid for "no slope" alone, a spread that changes along the key, as the
    runs grow (DiCiccio and Romano 2017, JASA 112(519)). The raw slope it replaced tests "no
    dependence";
  - the t test of the slope as a contrast of the steps' means, each step with its own variance
    (ibstore.stats.welch_contrast, Welch-Satterthwaite degrees of freedom, Hsu's 1 where a step of
    2 runs enters the slope, which hold the level whatever the spreads but find little: the note
    stats.HSU_PAIR says so; where a step has one run, whose variance is unknown, the HC3 standard
    error on n - 2 degrees of freedom, Long and Ervin 2000, Am. Stat. 54(3), which `trends` does
    not use: a sceptic's steps of 1, 3, 2 and 1 runs, no slope and the end steps' sd 3 and 10 times
    the others', were given p < 0.05 7.5 and 9.7 % of the time).
  Each guards where the other errs: normal values with no trend and sd 0.2, 0.2 and 3 at three
  steps were given p < 0.05 23.2, 13.2 and 7.3 % of the time with 3, 5 and 10 runs per step by the
  permutation test alone, 5.8, 5.2 and 4.8 % bounded, and 14.5 and 1.1 % with 2 runs per step (Hsu's
  degrees of freedom; `python bench/comparison_calibration.py --draws 4000`; the raw slope
  permuted, 16.1 % at 5 runs per step, 4000 draws). The bound costs power with few runs: a slope of
  0.7 sd per step, 3 runs each, was found 26.8 % of the time alone and 16.8 % bounded; 0.5 sd with
  5 runs each, 29.1 and 25.6 %; 1 sd with 2 runs each, 26.1 and 1.7 %;
- its 95 % interval: the span of the two tests' intervals, so that 0 lies outside it exactly when
  p < 0.05. The permutation test's runs from the slope outwards to the nearest slopes b it rejects
  for y - b x (ibstore.stats.ShiftedTest, studentized; test inversion as in Ernst 2004,
  Statistical Science 19(4), section 3.3; with few runs, where the studentized p need not fall
  steadily with b, a slope inside can be rejected or one beyond an end not: 19 of 560 simulated
  trends of 6-7 runs), the t test's is the slope +- t(0.975, df) times its standard error. The
  whole line where the runs are too few for any permutation p < 0.05 (`smallest_p`: 2 / the number
  of distinct ways to deal the values to the runs' steps, e.g. 3 runs at 3 values, 4 at 4): a p
  there says nothing of a trend (only a direct call can have so few: `trends` leaves out a value with
  fewer than MIN_RUNS_PER_LEVEL runs kept, counted in `values_left_out`, so a trend has 6 runs at
  least, whose smallest p is 2 / 90);
- for compression over the floor (ibstore.stats.EXCESS), which a group's runs take at the epoch
  their group's mean peaks at, p is also bounded by `reselected_slope_test`, which picks each
  group's peak epoch again in every order of the runs' curves (ibstore.stats.bounded_by), and a
  group whose mean peaks at its last logged epoch leaves it untested (stats.PEAKS_AT_END);
- Spearman's rho of the key's values and y (scipy.stats.spearmanr): the unit-free effect size,
  in [-1, 1], as Cliff's delta is for two groups, with its own 95 % interval (`rho_interval`:
  neither the test's nor adjusted over layers, so it can disagree with p either way: a sceptic's
  rho 0.592 [0.251, 0.803] beside the slope's p 0.104); it held the true rho in 93.4-99.6 % of 4000 draws
  of normal runs with no to a steep trend, 2-5 runs at each of 3-9 values (`python
  bench/interval_coverage.py`);
- where a kept seed's SNR-drop epoch is censored (ibstore.stats.drop_ranks ranks it after every
  drop, where every seed was followed to the same epoch), the drop epoch's trend is Spearman's rho
  alone, its p permuted (`rank_trend_test`), with no slope or interval (stats.CENSORED_RANKS).
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
MIN_RUNS_PER_LEVEL = 2
TOO_FEW_LEVELS = (f"fewer than {MIN_LEVELS} values of the key with {MIN_RUNS_PER_LEVEL} runs kept: no trend to "
                  "test")

COLUMNS = ["within", *stats.KEYS, "layer_name", "quantity", "levels", "n", "values_left_out", "slope", "ci_low",
           "ci_high", "p_value", "spearman_rho", "rho_low", "rho_high", "note", *stats.HORIZON_COLUMNS]


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


def smallest_p(steps: np.ndarray) -> float:
    """The smallest two-sided p the permutation test of a slope can give runs at these `steps`:
    2 / (n! / (m_1! ... m_k!)), m_j the runs at step j. The orders that only swap runs of one step
    give the observed statistic again, so at least m_1! ... m_k! of the n! orders lie at it on
    either side (0.33 for 3 runs at 3 steps, 0.083 for 4 at 4, 0.17 for 4 at 3, 0.067 for 5 at 3
    (2, 2, 1) or 6 at 3 (4, 1, 1), 0.022 for 6 at 3 (2, 2, 2)). Where it is 0.05 or more a p says
    nothing of the trend."""
    counts = np.unique(steps, return_counts=True)[1]
    orders = math.factorial(len(steps)) // math.prod(math.factorial(int(count)) for count in counts)
    return min(1.0, 2 / orders)


def slope_test(steps: np.ndarray, values: np.ndarray) -> tuple[float, float, float, float]:
    """(slope, p, low, high) of the finite `values` against their `steps`, at least 3 pairs and 2
    distinct steps: the least-squares slope, the two-sided permutation p of its studentized form
    (`hc3_test`) bounded by the t test of it (ibstore.stats.welch_bounded), and the 95 % interval of
    the two (the module's docstring), the whole line where no permutation p can fall below ALPHA
    (`smallest_p`).

    >>> slope, p, low, high = slope_test(np.repeat([0.0, 1.0, 2.0], 3), np.array([0.1, 0.3, 0.2, 1.1, 0.9, 1.3, 2.2, 1.8, 2.0]))
    >>> round(slope, 3), p < 0.05, low < slope < high
    (0.9, True, True)
    """
    values = values - values[0]                          # so that equal values give a slope of exactly 0
    test = hc3_test(steps, values)
    if smallest_p(steps) >= stats.ALPHA:
        permutation = test.p(0.0), -math.inf, math.inf
    elif not np.ptp(values):
        # Every value equal: the slope is 0, and any other makes them a straight line in the steps
        # (t = +-inf), which the test rejects alike at any size.
        permutation = test.p(0.0), *((0.0, 0.0) if test.p(1.0) < stats.ALPHA else (-math.inf, math.inf))
    else:
        scale = max(float(np.ptp(values) / np.ptp(steps)), abs(test.observed))
        permutation = test.p(0.0), test.end(-1.0, scale, through=0.0), test.end(1.0, scale, through=0.0)
    _, standard_error, df = stats.welch_contrast(steps, values)
    if np.unique(steps, return_counts=True)[1].min() < 2:
        # A step of one run has no variance of its own: the HC3 standard error, on n - 2 degrees of
        # freedom (Long and Ervin 2000). Only a direct call has one (bench/comparison_calibration.py):
        # `trends` leaves such a value out, since this did not hold the level (the module's docstring).
        standard_error, df = math.sqrt(test.variance[0][0]), len(steps) - 2
    return test.observed, *stats.welch_bounded(*permutation, test.observed, standard_error, df)


def reselected_slope_test(steps: np.ndarray, groups: np.ndarray, drops: np.ndarray) -> float:
    """Two-sided p of the slope of compression over the floor (ibstore.stats.EXCESS) along `steps`,
    from the runs' drop curves `drops` [runs, epochs] (ibstore.stats.drop_test's) and their seed
    `groups`, each group's peak epoch picked again in every order of the curves over the runs
    (`_orders`), as ibstore.stats.reselected_test does for two groups (why: its docstring). A run's
    EXCESS is its group's mean drop curve's maximum, max_e D_g(e), shared by the group's runs, so the
    least-squares slope is sum_g c_g max_e D_g(e), c_g the sum of its runs' weights (x_i - x̄) / Sxx;
    each order deals the curves to the groups' places again. Exact where the key makes no
    difference to the curves. NaN without an epoch.

    >>> rng = np.random.default_rng(1)
    >>> alike = rng.normal(0, 0.05, (9, 30)); alike -= alike[:, -1:]
    >>> reselected_slope_test(np.repeat([0.0, 1.0, 2.0], 3), np.repeat(["a", "b", "c"], 3), alike) > 0.05
    True
    """
    if drops.shape[1] == 0:
        return math.nan
    orders, exact = _orders(len(steps))
    centred = steps - steps.mean()
    weights = centred / (centred @ centred)
    null, observed = np.zeros(len(orders)), 0.0
    for group in dict.fromkeys(groups):
        places = np.flatnonzero(groups == group)
        share = float(weights[places].sum())
        observed += share * float(drops[places].mean(axis=0).max())
        dealt = np.zeros((len(orders), len(steps)))          # which curves each order deals to the group
        np.put_along_axis(dealt, orders[:, places], 1.0 / len(places), axis=1)
        for block in np.array_split(np.arange(len(orders)), max(1, len(orders) * drops.shape[1] // 2**22)):
            null[block] += share * (dealt[block] @ drops).max(axis=1)      # at most 32 MB at a time
    return stats.ShiftedTest(null, np.zeros_like(null), observed, exact, two_sided=True).p(0.0)


def hc3_test(steps: np.ndarray, values: np.ndarray) -> stats.ShiftedTest:
    """The studentized permutation test of the slope of `values` on `steps` = b, for every b: per
    order of the values y - b x over the runs (`_orders`; row 0 the observed one), the least-squares
    slope over its HC3 standard error, sqrt(sum_i w_i^2 r_i^2 / (1 - h_i)^2), w_i = (x_i - x̄) / Sxx
    (the slope is sum_i w_i y_i), r_i the residuals and h_i = 1/n + (x_i - x̄)^2 / Sxx the leverages
    (MacKinnon and White 1985, J. Econometrics 29(3), "HC3"; Long and Ervin 2000, Am. Stat. 54(3),
    for few observations). Exact where y does not depend on x at all; for "no slope" alone, with
    a spread that changes along x, valid as the runs grow (DiCiccio and Romano 2017, JASA 112(519),
    studentized permutation tests of correlation and regression coefficients); the raw slope is
    not (the module's docstring).
    The residuals of y - b x permuted are r + (b - slope) q, q fixed per order, so the HC3 variance
    is a quadratic in b, and each p(b) a few vector operations. A run alone in its leverage (h = 1,
    e.g. the one run of a step against runs all at one other step) has a residual of 0 whatever the
    values, and weighs nothing."""
    n = len(steps)
    centred = steps - steps.mean()
    weights = centred / (centred @ centred)              # slope(y) = weights @ y, as the weights sum to 0
    slope = float(weights @ values)
    leverage = 1 / n + centred * weights
    with np.errstate(divide="ignore", invalid="ignore"):
        hc3 = np.where(leverage < 1 - 1e-9, (weights / (1 - leverage)) ** 2, 0.0)
    flat = values - slope * steps                        # the values at the estimate: slope 0
    flat = flat - flat.mean()
    orders, exact = _orders(n)
    rows = np.vstack([np.arange(n, dtype=orders.dtype), orders])
    level, tilt, variance = np.empty(len(rows)), np.empty(len(rows)), np.empty((3, len(rows)))
    for block in np.array_split(np.arange(len(rows)), max(1, len(rows) * n // 2**21)):   # 16 MB at a time
        # (einsum, not @: a matrix-vector product through BLAS was slower here, its threads; bench/RESULTS.md)
        y, x = flat[rows[block]], centred[rows[block]]
        level[block], tilt[block] = np.einsum("kn,n->k", y, weights), -np.einsum("kn,n->k", x, weights)
        residual = y - level[block, None] * centred      # at the estimate
        moved = -x - tilt[block, None] * centred         # per unit of b - slope
        variance[:, block] = (np.einsum("kn,kn,n->k", residual, residual, hc3),
                              np.einsum("kn,kn,n->k", residual, moved, hc3), np.einsum("kn,kn,n->k", moved, moved, hc3))
    return stats.ShiftedTest(level, tilt, slope, exact, two_sided=True, variance=tuple(variance))


def rho_interval(rho: float, n: int) -> tuple[float, float]:
    """The 95 % interval of Spearman's rho over n runs: Fisher's z with Bonett and Wright's (2000,
    Psychometrika 65(1)) standard error for Spearman's rho,
        tanh(atanh(rho) -+ z(0.975) sqrt((1 + rho^2 / 2) / (n - 3))).
    NaN where n < 4 (no standard error) or |rho| = 1 (atanh has no finite value).

    >>> [round(end, 3) for end in rho_interval(0.5, 15)]
    [-0.051, 0.818]
    """
    if n < 4 or not abs(rho) < 1:
        return math.nan, math.nan
    from scipy import special
    reach = float(special.ndtri(1 - stats.ALPHA / 2)) * math.sqrt((1 + rho ** 2 / 2) / (n - 3))
    return math.tanh(math.atanh(rho) - reach), math.tanh(math.atanh(rho) + reach)


def rank_trend_test(key: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Spearman's rho of `key` and `values` (+inf, a censored value, ranks after every finite one;
    ties share their mean rank) and its two-sided p: the Pearson correlation of the ranks over
    reorderings of the values (scipy.stats.pearsonr with PermutationMethod: every one where there
    are at most N_RESAMPLES, else N_RESAMPLES random ones, seed SEED). NaN where the values all tie.

    >>> rho, p = rank_trend_test(np.repeat([0., 1, 2], 3), np.array([1., 2, 3, 4, 5, 6, 7, np.inf, np.inf]))
    >>> round(rho, 3), p < 0.05
    (0.953, True)
    """
    scipy_stats = stats.scipy_stats()
    key_ranks, value_ranks = scipy_stats.rankdata(key), scipy_stats.rankdata(values)
    if not np.ptp(value_ranks) or not np.ptp(key_ranks):
        return math.nan, math.nan
    result = scipy_stats.pearsonr(key_ranks, value_ranks, method=scipy_stats.PermutationMethod(
        n_resamples=stats.N_RESAMPLES, rng=stats.SEED))
    return float(result.statistic), float(result.pvalue)


def _with_runs_a_value(rows: np.ndarray, key: np.ndarray, has_value: np.ndarray) -> np.ndarray:
    """The `rows` (indices into `key`) with a value (`has_value`, per row) at a value of the key that
    MIN_RUNS_PER_LEVEL of them have."""
    rows = rows[has_value]
    levels, runs = np.unique(key[rows], return_counts=True)
    return rows[np.isin(key[rows], levels[runs >= MIN_RUNS_PER_LEVEL])]


def trends(phases: pd.DataFrame, key_values: dict[str, float], quantities: tuple[str, ...] = stats.QUANTITIES,
           within: dict[str, str] | None = None, curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """The trend of each of `quantities` along the key whose value each run of `phases` has in
    `key_values` (run_id -> number; runs without one are left out), per layer, estimator, params
    and split, and per value of `within` (run_id -> the other keys' values, "activation_fn=relu";
    default one for all): COLUMNS and q_value (over the layers). Where idnns' bins clip the layer in
    a run kept (`bins_clip`), its MI quantities get no trend (note ibstore.stats.CLIPPED_BINS); nor
    its compression where a group's I(X;T) ends at its ceiling in every run kept
    (ibstore.stats.AT_CEILING_COMPARED), nor any MI quantity where every group's does
    (ibstore.stats.AT_CEILING_ALL), nor its EXCESS where a group's mean I(X;T) peaks at its last
    logged epoch (ibstore.stats.PEAKS_AT_END).
    With the `curves` (CURVES_SQL's rows), EXCESS's p is also bounded by `reselected_slope_test`
    (ibstore.stats.bounded_by), and the SNR drop epochs of runs followed to different epochs are cut
    at their shared horizon, `horizon_epoch` (ibstore.stats.tested_drops); the product's callers all
    pass them."""
    phases = stats.with_excess(phases[phases["run_id"].isin(list(key_values))]).reset_index(drop=True)
    kept = phases[np.equal(stats.exclusions(phases), None)].reset_index(drop=True)
    clipped, peaks_at_end = stats.rows_with_clipped_bins(kept), stats.rows_peaking_at_end(kept)
    at_ceiling = stats.rows_at_ceiling(kept)
    censored, censoring_epochs = stats.rows_censoring_the_drop(kept), stats.censoring_epochs(kept)
    kept = kept.assign(within=kept["run_id"].map(within or {}).astype(object).fillna(""))
    key = kept["run_id"].map(key_values).to_numpy(dtype=float)
    values = stats.numeric_columns(kept, quantities)
    final_i_xt = stats.numeric_columns(kept, ["final_i_xt"])[:, 0]
    curves_of = None if curves is None else stats.curves_by_key(curves)
    snr_of = {} if curves is None else stats.snr_curves_by_layer(curves)
    run_ids, group_ids = kept["run_id"].to_numpy(object), kept["group_id"].to_numpy(object)
    rows = []
    for (stratum, *keys), every in kept.groupby(["within", *stats.KEYS], sort=True, dropna=False).indices.items():
        layer_name = kept["layer_name"].iloc[every[0]]
        for column, quantity in enumerate(quantities):
            y_of = values[:, column]
            # A value of the key with one run kept has no spread of its own, and on its HC3 error a
            # sceptic's steps of 1, 3, 2 and 1 runs with no slope gave p < 0.05 in 7.5-9.7 % of draws:
            # left out, before its length could set the SNR drops' horizon, and counted
            has_value = ~np.isnan(y_of[every]) | (censored[every] & (quantity == "snr_drop_epoch"))
            index = _with_runs_a_value(every, key, has_value)
            drops = (stats.tested_drops(values[index, column], censored[index], censoring_epochs[index],
                                        run_ids[index], snr_of.get(keys[0]))
                     if quantity == "snr_drop_epoch" else stats.UNCUT)
            if drops.values is not None:   # censored seeds kept, ranked after every drop; or cut at one horizon
                y_of = y_of.copy()
                y_of[index] = drops.values
            finite = index[~np.isnan(y_of[index]) if drops.by_ranks else np.isfinite(y_of[index])]
            finite = _with_runs_a_value(finite, key, np.ones(len(finite), dtype=bool))
            levels, steps = np.unique(key[finite], return_inverse=True)
            row = {"within": stratum or None, **dict(zip(stats.KEYS, keys)),
                   "layer_name": layer_name, "quantity": quantity, "levels": len(levels), "n": len(finite),
                   "values_left_out": len(np.setdiff1d(key[every[has_value]], levels)),
                   "horizon_epoch": drops.horizon_epoch, "horizon_run": drops.horizon_run,
                   "censored_by_cut": drops.censored_by_cut, "shared_epochs": drops.shared_epochs}
            i_xt_drops = (stats.drop_curves(curves_of.get(tuple(keys)), run_ids[finite], final_i_xt[finite])
                          if quantity == stats.EXCESS and curves_of is not None else np.empty((len(finite), 0)))
            implausible = quantity in stats.BITS and not (
                np.abs(np.r_[values[finite, column], i_xt_drops.ravel()]) <= stats.MAX_DROP_BITS).all()
            # as for two groups: a group all of whose runs' mean peaks at their end
            a_group_peaks_at_end = any(peaks_at_end[finite][group_ids[finite] == group].all()
                                       for group in set(group_ids[finite]))
            groups_at_ceiling = [at_ceiling[finite][group_ids[finite] == group].all()
                                 for group in set(group_ids[finite])]
            untested = (drops.note if drops.note else
                        TOO_FEW_LEVELS if len(levels) < MIN_LEVELS else
                        stats.CLIPPED_BINS if clipped[index].any() and quantity != "snr_drop_epoch" else
                        stats.AT_CEILING_ALL if groups_at_ceiling and all(groups_at_ceiling)
                        and quantity != "snr_drop_epoch" else
                        stats.AT_CEILING_COMPARED if any(groups_at_ceiling) and quantity in stats.COMPRESSION else
                        stats.PEAKS_AT_END if a_group_peaks_at_end and quantity == stats.EXCESS else
                        stats.IMPLAUSIBLE_BITS if implausible else
                        stats.NO_SHARED_EPOCH if curves_of is not None and quantity == stats.EXCESS
                        and not i_xt_drops.size else None)
            if untested:
                rows.append({**row, "slope": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                             "p_value": math.nan, "spearman_rho": math.nan, "rho_low": math.nan,
                             "rho_high": math.nan, "note": untested})
                continue
            y = y_of[finite]
            if drops.by_ranks:
                rho, p_value = rank_trend_test(key[finite], y)
                rows.append({**row, "slope": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_value": p_value,
                             "spearman_rho": rho, **dict(zip(("rho_low", "rho_high"), rho_interval(rho, len(y)))),
                             "note": drops.ranks_note})
                continue
            slope, p_value, low, high = slope_test(steps.astype(float), y)
            if i_xt_drops.size:
                p_value, low, high = stats.bounded_by(p_value, low, high, reselected_slope_test(
                    steps.astype(float), group_ids[finite], i_xt_drops))
            rho = float(stats.scipy_stats().spearmanr(key[finite], y).statistic) if np.ptp(y) else math.nan
            rows.append({**row, "slope": slope, "ci_low": low, "ci_high": high, "p_value": p_value,
                         "spearman_rho": rho, **dict(zip(("rho_low", "rho_high"), rho_interval(rho, len(y)))),
                         "note": stats.HSU_PAIR if stats.pair_in_contrast(steps) else None})
    return stats.with_q(pd.DataFrame(rows, columns=COLUMNS), ["within", *stats.FAMILY, "quantity"])
