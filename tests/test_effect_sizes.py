"""The effect sizes' intervals: Cliff's delta's (ibstore.stats.cliffs_delta) against R's effsize
written out here from its code (cliff.delta's "Naive" algorithm: the dominance matrix) and checked
on effsize's own saved output, and its coverage of the closed-form delta of two normal groups;
Spearman's rho's (ibstore.trend.rho_interval) coverage of the closed-form rho of a bivariate normal;
and both as the comparison and trend tables show them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from explorer import cohort_tables
from ibstore import stats, trend

# effsize's tests/testCliff.R data and the intervals its saved output (tests/testCliff.Rout.save) prints
TREATMENT = np.array([10, 10, 20, 20, 20, 30, 30, 30, 40, 50.])
CONTROL = np.array([10, 20, 30, 40, 40, 50.])
X1 = np.array([10, 20, 20, 20, 30, 30, 30, 40, 50, 100.])


def effsize_cliff_delta(treatment, control, unbiased: bool, normal: bool) -> tuple[float, float, float]:
    """R's effsize::cliff.delta(treatment, control, use.unbiased, use.normal, return.dm = TRUE),
    line by line: the dominance matrix sign(outer(treatment, control, "-")), d its mean, d. the same
    rescaled by (n1 n2 - 1) / (n1 n2) where |d| = 1, the row and column means d_i. and d_.j, SSR the
    squares of the matrix about d., the variance (unbiased or consistent), z or t(n1 + n2 - 2), and
    the asymmetric interval with its far end set to d where |d| = 1."""
    n1, n2 = len(treatment), len(control)
    dominance = np.array([[int(t > c) - int(t < c) for c in control] for t in treatment], dtype=float)
    d = dominance.mean()
    d_ = d * (n1 * n2 - 1) / (n1 * n2) if abs(d) == 1 else d
    d_i, d_j = dominance.mean(axis=1), dominance.mean(axis=0)
    ssr = ((dominance - d_) ** 2).sum()
    if unbiased:
        s_d = ((n2 ** 2 * ((d_i - d_) ** 2).sum() + n1 ** 2 * ((d_j - d_) ** 2).sum() - ssr)
               / (n1 * n2 * (n1 - 1) * (n2 - 1)))
    else:
        s_i, s_j = ((d_i - d_) ** 2).sum() / (n1 - 1), ((d_j - d_) ** 2).sum() / (n2 - 1)
        s_d = ((n2 - 1) * s_i + (n1 - 1) * s_j + ssr / ((n1 - 1) * (n2 - 1))) / (n1 * n2)
    z = scipy_stats.norm.ppf(0.975) if normal else scipy_stats.t.ppf(0.975, n1 + n2 - 2)
    reach = z * math.sqrt(s_d) * math.sqrt((1 - d_ ** 2) ** 2 + z ** 2 * s_d)
    low = (d_ - d_ ** 3 - reach) / (1 - d_ ** 2 + z ** 2 * s_d)
    high = (d_ - d_ ** 3 + reach) / (1 - d_ ** 2 + z ** 2 * s_d)
    return d, (-1.0 if d == -1 else low), (1.0 if d == 1 else high)


def test_the_port_of_effsize_gives_effsizes_saved_output():
    # print(cliff.delta(treatment, control, use.unbiased = F, use.normal = T)): -0.25 [-0.7125351, 0.3639999]
    assert effsize_cliff_delta(TREATMENT, CONTROL, unbiased=False, normal=True) == pytest.approx(
        (-0.25, -0.7125351, 0.3639999), abs=1e-7)
    # print(cliff.delta(x1, x2)), its defaults (unbiased, t): -0.06666667 [-0.6082254, 0.5172431]
    assert effsize_cliff_delta(X1, CONTROL, unbiased=True, normal=False) == pytest.approx(
        (-0.06666667, -0.6082254, 0.5172431), abs=1e-7)


@pytest.mark.parametrize("a, b", [
    (TREATMENT, CONTROL), (X1, CONTROL), (CONTROL, X1),
    (np.array([5., 6, 7, 8, 9]), np.array([1., 2, 3, 4, 5.5])),            # one pair reversed
    (np.array([1., 2, 3]), np.array([4., 5, 6, 7])),                         # disjoint: d = -1
    (np.array([40., 42, 44, 46]), np.array([80., 90, np.inf, np.inf])),      # censored drops, ranked last
    (np.array([80., np.inf, np.inf]), np.array([np.inf, 90., 85, np.inf])),  # censored in both, tied
    (np.array([0.3, 0.3, 0.5]), np.array([0.3, 0.1])),                       # ties across the groups
])
def test_cliffs_delta_is_effsizes_consistent_interval_on_students_t(a, b):
    delta, low, high = effsize_cliff_delta(a, b, unbiased=False, normal=False)
    if stats.smallest_p(len(a), len(b)) >= stats.ALPHA:     # too few seeds for p < 0.05: no interval (a sceptic's)
        low = high = math.nan
    assert stats.cliffs_delta(a, b) == pytest.approx((delta, low, high), abs=1e-12, nan_ok=True)


def test_too_few_seeds_or_ties_everywhere_get_cliffs_delta_and_no_interval():
    delta, low, high = stats.cliffs_delta(np.array([3.0]), np.array([1., 2, 4]))
    assert delta == pytest.approx(1 / 3) and math.isnan(low) and math.isnan(high)
    # 3 seeds wholly above 3: effsize's [0.268, 1] beside p 0.1, where no test can give p < 0.05 (a sceptic's)
    assert effsize_cliff_delta(np.array([4., 5, 6]), np.array([1., 2, 3]), unbiased=False, normal=False)[1] > 0
    delta, low, high = stats.cliffs_delta(np.array([4., 5, 6]), np.array([1., 2, 3]))
    assert delta == 1 and math.isnan(low) and math.isnan(high)
    # every seed censored, or every value alike: effsize's [0, 0] would claim certainty (a reviewer's)
    for tied in (np.full(3, np.inf), np.full(3, 0.5)):
        delta, low, high = stats.cliffs_delta(tied, tied[:2].copy())
        assert delta == 0 and math.isnan(low) and math.isnan(high)
    comparison = stats.compare(np.array([3.0]), np.array([1., 2, 4]))
    assert comparison.note == stats.NO_INTERVAL and math.isnan(comparison.cliffs_low)


def test_cliffs_interval_holds_the_true_delta_of_two_normal_groups():
    # a ~ N(shift, 1), b ~ N(0, 1): P(a > b) = Phi(shift / sqrt 2), so delta = 2 Phi(shift / sqrt 2) - 1
    rng = np.random.default_rng(7)
    for seeds, shift in ((10, 0.0), (10, 1.0), (5, 0.0)):
        true_delta = 2 * scipy_stats.norm.cdf(shift / math.sqrt(2)) - 1
        held = [low <= true_delta <= high for low, high in (
            stats.cliffs_delta(rng.normal(shift, 1, seeds), rng.normal(0, 1, seeds))[1:] for _ in range(600))]
        assert 0.92 <= np.mean(held) <= 1.0, (seeds, shift, np.mean(held))


def test_rhos_interval_holds_the_true_rho_of_a_bivariate_normal():
    # Spearman's rho of a bivariate normal of correlation r is (6 / pi) asin(r / 2) (Pearson 1907)
    rng = np.random.default_rng(3)
    for runs, correlation in ((15, 0.0), (15, 0.6), (25, 0.85)):
        true_rho = 6 / math.pi * math.asin(correlation / 2)
        covariance = [[1, correlation], [correlation, 1]]
        held = []
        for _ in range(600):
            x, y = rng.multivariate_normal([0, 0], covariance, runs).T
            low, high = trend.rho_interval(float(scipy_stats.spearmanr(x, y).statistic), runs)
            held.append(low <= true_rho <= high)
        assert 0.92 <= np.mean(held) <= 0.985, (runs, correlation, np.mean(held))


def test_rho_interval_is_fishers_z_with_bonett_and_wrights_error_and_none_where_it_cannot_be():
    rho, runs = -0.42, 12
    reach = scipy_stats.norm.ppf(0.975) * math.sqrt((1 + rho ** 2 / 2) / (runs - 3))
    assert trend.rho_interval(rho, runs) == pytest.approx(
        (math.tanh(math.atanh(rho) - reach), math.tanh(math.atanh(rho) + reach)), abs=1e-12)
    for rho, runs in ((1.0, 12), (-1.0, 12), (0.5, 3), (math.nan, 12)):
        assert all(math.isnan(end) for end in trend.rho_interval(rho, runs)), (rho, runs)


def test_the_tables_show_each_effect_size_with_its_interval():
    a, b = np.array([4., 6, 7, 8, 9]), np.array([1., 2, 3, 5, 6.5])
    delta, low, high = effsize_cliff_delta(a, b, unbiased=False, normal=False)
    rows = pd.DataFrame([{"group_id": "a", "layer": 1, "layer_name": "dense_1", "quantity": "final_i_xt",
                          "reference": "b", "compared_with": "b", "q_value": 0.1, "q_groups": 0.1,
                          "horizon_epoch": math.nan,
                          **vars(stats.compare(a, b))}])
    cell = cohort_tables.comparison_table(rows, {"a": "x=1", "b": "x=0"}, compared=rows).iloc[0]["Cliff's delta"]
    assert cell == f"{delta:.3g} [{low:.3g}, {high:.3g}]" == "0.76 [-0.15, 0.973]"
    # the interval is the effect size's, not the test's: here p < 0.05 and it holds 0
    assert stats.compare(a, b).p_value < 0.05 < high and low < 0
    assert cohort_tables.effect_text(0.5, math.nan, math.nan) == "0.5"
