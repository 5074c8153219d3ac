"""Trends along a numeric config key (ibstore.trend): the slope, its studentized permutation p and
interval against a test written out here over every order of the values (the slope's HC3 standard
error from the design matrix), the interval's coverage and the test's false positives where the
spread changes along the key, the runs too few for any p < 0.05, and Spearman's rho and q written
out by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from explorer import cohort_tables
from ibstore import stats, trend
from test_phases import benjamini_hochberg, recorded, synthetic_phases


def hc3_t(steps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row of `values` [K, n]: the least-squares slope on `steps` over its HC3 standard error,
    from the design matrix X = [1, steps] (MacKinnon and White 1985): the coefficients
    (X'X)^-1 X' y, the residuals e, the leverages h (the diagonal of X (X'X)^-1 X') and the
    covariance (X'X)^-1 X' diag(e_i^2 / (1 - h_i)^2) X (X'X)^-1; +-inf where the standard error is
    0 and the slope is not, 0 where both are."""
    design = np.column_stack([np.ones_like(steps), steps])
    bread = np.linalg.inv(design.T @ design)
    coefficients = np.linalg.solve(design.T @ design, design.T @ values.T).T       # [K, 2]
    residuals = values - coefficients @ design.T
    leverages = np.diag(design @ bread @ design.T)
    meat = np.einsum("ia,ki,ib->kab", design, residuals ** 2 / (1 - leverages) ** 2, design)
    covariance = bread @ meat @ bread
    slope, variance = coefficients[:, 1], covariance[:, 1, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(variance > 0, slope / np.sqrt(np.maximum(variance, 0)),
                        np.where(slope == 0, 0.0, np.sign(slope) * np.inf))


def brute_force_p(steps: np.ndarray, values: np.ndarray, slope: float = 0.0) -> float:
    """The two-sided p of the studentized slope (`hc3_t`) of values - slope * steps on steps over
    every order of those values: twice the smaller share of orders whose statistic is at least /
    at most the observed one (scipy.stats.permutation_test's count, ties within 100 machine
    epsilons), at most 1."""
    shifted = values - slope * steps
    orders = np.array(list(itertools.permutations(range(len(values)))))
    null = hc3_t(steps, shifted[orders])
    observed = float(hc3_t(steps, shifted[None, :])[0])
    tolerance = abs(observed) * np.finfo(float).eps * 100 if math.isfinite(observed) else 0.0
    above, below = np.mean(null >= observed - tolerance), np.mean(null <= observed + tolerance)
    return min(1.0, 2 * min(above, below))


def t_test_p(steps: np.ndarray, values: np.ndarray, slope: float = 0.0) -> float:
    """The two-sided t test p of the least-squares slope of values - slope * steps: over each step's
    own variance (the slope a contrast of the steps' means, Welch-Satterthwaite degrees of
    freedom, or Hsu's 1 where a step of nonzero weight has 2 runs) where every step has 2 runs or more, else over its
    HC3 standard error (`hc3_t`) on n - 2 degrees of freedom."""
    shifted = values - slope * steps
    levels, counts = np.unique(steps, return_counts=True)
    if counts.min() < 2:
        return float(2 * scipy_stats.t.sf(abs(hc3_t(steps, shifted[None, :])[0]), len(steps) - 2))
    sxx = ((steps - steps.mean()) ** 2).sum()
    estimate, parts = np.polyfit(steps, shifted, 1)[0], []
    for level, count in zip(levels, counts):
        weight = count * (level - steps.mean()) / sxx
        parts.append(weight ** 2 * shifted[steps == level].var(ddof=1) / count)
    parts = np.array(parts)
    in_contrast = levels != steps.mean()        # the middle of three equally filled steps weighs 0
    df = parts.sum() ** 2 / (parts ** 2 / (counts - 1)).sum() if counts[in_contrast].min() > 2 else 1.0
    return float(2 * scipy_stats.t.sf(abs(estimate) / math.sqrt(parts.sum()), df))


def bounded_p(steps: np.ndarray, values: np.ndarray, slope: float = 0.0) -> float:
    """The trend's p: the larger of the permutation p and the t test's."""
    return max(brute_force_p(steps, values, slope), t_test_p(steps, values, slope))


def raw_slope_p(steps: np.ndarray, values: np.ndarray) -> float:
    """The p the trend had before it was studentized: the raw least-squares slope over every order."""
    orders = np.array(list(itertools.permutations(range(len(values)))))
    centred = steps - steps.mean()
    null, observed = values[orders] @ centred / (centred @ centred), np.polyfit(steps, values, 1)[0]
    tolerance = abs(observed) * np.finfo(float).eps * 100
    return min(1.0, 2 * min(np.mean(null >= observed - tolerance), np.mean(null <= observed + tolerance)))


def test_slope_and_p_are_those_of_the_test_over_every_order():
    # 7 runs at 3 values of the key: all 5040 orders, an exact test. The raw slope's test gave
    # these values p = 0.048 (the orders' raw slopes count differently), the studentized 0.086.
    steps = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0])
    values = np.array([0.2, 0.5, 0.4, 0.9, 0.7, 1.1, 0.8])
    slope, p_value, low, high = trend.slope_test(steps, values)
    assert slope == pytest.approx(np.polyfit(steps, values, 1)[0], rel=1e-12)
    assert trend.hc3_test(steps, values).p(0.0) == pytest.approx(brute_force_p(steps, values), rel=1e-12) == (
        pytest.approx(432 / 5040))
    assert p_value == pytest.approx(bounded_p(steps, values), rel=1e-12) == pytest.approx(t_test_p(steps, values))
    assert raw_slope_p(steps, values) == pytest.approx(240 / 5040)
    assert p_value > stats.ALPHA and low < 0 < slope < high
    # a steeper rise, and spreads that differ between the values of the key (unequal leverages, too)
    for steps, values in (([0, 0, 1, 1, 1, 2, 2], [0.2, 0.3, 0.6, 0.9, 0.7, 1.9, 0.8]),
                          ([0, 0, 0, 1, 2, 2], [0.1, 0.12, 0.11, 0.5, 2.0, -0.4]),
                          ([0, 1, 1, 2, 2, 2], [0.0, 0.3, 0.35, 0.9, 1.0, 0.95])):
        steps, values = np.array(steps, dtype=float), np.array(values)
        slope, p_value, low, high = trend.slope_test(steps, values)
        assert trend.hc3_test(steps, values).p(0.0) == pytest.approx(brute_force_p(steps, values), rel=1e-12)
        assert p_value == pytest.approx(bounded_p(steps, values), rel=1e-12)
        assert (p_value < stats.ALPHA) == (low > 0 or high < 0)


def test_a_step_of_two_runs_in_the_slope_keeps_the_level():
    # No trend; 2 runs of sd 3 at the first step, 10 of sd 1 at the others. Satterthwaite's degrees
    # of freedom, written out here from the steps' variances, call it a trend about 11 % of the time;
    # the t test the trend bounds its p with, on Hsu's 1 degree of freedom, under 5 %.
    rng = np.random.default_rng(41)
    steps = np.repeat([0.0, 1.0, 2.0], [2, 10, 10])
    draws = rng.normal(0.0, np.repeat([3.0, 1.0, 1.0], [2, 10, 10]), (4000, len(steps)))
    centred = steps - steps.mean()
    slopes = draws @ centred / (centred @ centred)
    parts = np.stack([(at.sum() * centred[at][0] / (centred @ centred)) ** 2 * draws[:, at].var(axis=1, ddof=1) / at.sum()
                      for at in (steps == level for level in (0.0, 1.0, 2.0))])
    satterthwaite = parts.sum(0) ** 2 / (parts ** 2 / (np.array([2, 10, 10])[:, None] - 1)).sum(0)
    t = slopes / np.sqrt(parts.sum(0))
    assert np.mean(2 * scipy_stats.t.sf(abs(t), satterthwaite) < 0.05) > 0.08
    t_test = np.mean([stats.welch_bounded(0.0, 0.0, 0.0, *stats.welch_contrast(steps, values))[0] < 0.05
                      for values in draws])
    assert t_test < 0.05 and t_test == np.mean(2 * scipy_stats.t.sf(abs(t), 1) < 0.05)
    # the trend's note says why it finds little; a step of 2 at the mean step weighs 0 and takes no note
    phases, key_values = keyed_phases({0.0: [[0.1, 0.2]], 1.0: [[0.5, 0.6, 0.4]], 2.0: [[0.9, 1.0, 0.8]]})
    table = trend.trends(phases, key_values, (stats.EXCESS,))
    assert table.iloc[0]["note"] == stats.HSU_PAIR
    shown = cohort_tables.trend_table(table).iloc[0]        # the interval stands; the note goes with the p
    assert shown["95 % CI"].startswith("[") and shown["p"].endswith(f" ({stats.HSU_PAIR})")
    middle, middle_keys = keyed_phases({0.0: [[0.1, 0.2, 0.3]], 1.0: [[0.5, 0.6]], 2.0: [[0.9, 1.0, 0.8]]})
    assert pd.isna(trend.trends(middle, middle_keys, (stats.EXCESS,)).iloc[0]["note"])


def test_the_interval_is_the_slopes_the_test_over_every_order_does_not_reject():
    steps = np.array([0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0])
    values = np.array([1.0, 1.4, 0.9, 1.6, 1.5, 2.1, 1.2])
    _, p_value, low, high = trend.slope_test(steps, values)
    width = high - low
    for end, outward in ((low, -1.0), (high, 1.0)):
        assert bounded_p(steps, values, end - outward * 1e-6 * width) >= stats.ALPHA   # inside: kept
        assert bounded_p(steps, values, end + outward * 1e-6 * width) < stats.ALPHA    # outside: rejected
    assert (low > 0 or high < 0) == (p_value < stats.ALPHA)


def test_the_interval_from_random_orders_holds_the_true_slope_about_95_percent_of_the_time():
    # 5 seeds at each of 4 values, a true slope of 0.3 bits per step and noise of sd 0.5
    rng = np.random.default_rng(7)
    steps = np.repeat(np.arange(4.0), 5)
    held = 0
    for _ in range(300):
        _, _, low, high = trend.slope_test(steps, 0.3 * steps + rng.normal(0, 0.5, len(steps)))
        held += low <= 0.3 <= high
    assert 0.91 <= held / 300 <= 0.985


def test_too_few_runs_for_any_rejection_give_an_unbounded_interval():
    # 3 runs at 3 values: 6 orders, the smallest two-sided p is 2/6
    slope, p_value, low, high = trend.slope_test(np.array([0.0, 1.0, 2.0]), np.array([0.1, 0.5, 0.9]))
    assert slope == pytest.approx(0.4) and p_value == pytest.approx(1 / 3)
    assert (low, high) == (-math.inf, math.inf)


@pytest.mark.slow   # 400 trends, each once: about 5 s
def test_a_spread_that_changes_along_the_key_is_no_trend(monkeypatch):
    # No trend, normal values of sd 0.2, 0.2 and 3 at three values of the key, 5 runs each: the raw
    # slope's permutation test tests "y does not depend on the key" and called this a trend 16.1 %
    # of the time (4000 draws); studentized by its HC3 standard error, "no slope", 13.2 % (4000
    # draws, `python bench/comparison_calibration.py --draws 4000`; 12.8 % of these 400): with 5 runs
    # at the wide step its asymptotics have not set in. Bounded by the t test of the slope over each
    # step's own variance, 5.2 % (4.5 % of these). 0 lies outside the interval exactly when p < 0.05.
    rng = np.random.default_rng(21)
    steps, spread = np.repeat([0.0, 1.0, 2.0], 5), np.repeat([0.2, 0.2, 3.0], 5)
    draws = [rng.normal(0.0, spread) for _ in range(400)]
    # the permutation test alone is the one each slope_test builds on its way (of values - values[0],
    # the same p as of the values), read rather than built a second time
    permutation_p = recorded(monkeypatch, trend, "hc3_test", keep=lambda test: test.p(0.0))
    results = [trend.slope_test(steps, values) for values in draws]
    assert len(permutation_p) == len(draws)
    permutation_alone = np.mean(np.array(permutation_p) < stats.ALPHA)
    false_positives = np.mean([p_value < stats.ALPHA for _, p_value, _, _ in results])
    agree = np.mean([(p_value < stats.ALPHA) == (low > 0 or high < 0) for _, p_value, low, high in results])
    assert permutation_alone > 0.1 and false_positives <= 0.085 and agree == 1.0, (permutation_alone, false_positives)


def test_smallest_p_is_the_orders_that_keep_the_observed_statistic():
    # 2 / (n! / (m_1! ... m_k!)): the orders that only swap runs of one step keep the statistic,
    # counted here over every order; exactly linear values reach it
    for steps in ([0, 1, 2], [0, 1, 2, 3], [0, 0, 1, 2], [0, 0, 1, 1, 2], [0, 0, 0, 0, 1, 2], [0, 0, 1, 1, 2, 2],
                  [0, 0, 0, 1, 1, 2]):
        steps = np.array(steps, dtype=float)
        orders = list(itertools.permutations(range(len(steps))))
        keep = sum(np.array_equal(steps[list(order)], steps) for order in orders)
        assert trend.smallest_p(steps) == pytest.approx(2 * keep / len(orders))
        _, p_value, low, high = trend.slope_test(steps, 0.5 * steps)
        assert p_value == pytest.approx(trend.smallest_p(steps))
        too_few = trend.smallest_p(steps) >= stats.ALPHA
        assert ((low, high) == (-math.inf, math.inf)) == too_few, steps
    assert [round(trend.smallest_p(np.array(steps, float)), 3) for steps in
            ([0, 1, 2], [0, 1, 2, 3], [0, 0, 1, 2], [0, 0, 1, 1, 2], [0, 0, 0, 0, 1, 2], [0, 0, 1, 1, 2, 2])] == [
        0.333, 0.083, 0.167, 0.067, 0.067, 0.022]


def keyed_phases(values_by_key: dict[float, list[list[float]]]) -> tuple[pd.DataFrame, dict[str, float]]:
    """phases rows over several layers: per key value, per layer (0, 1, ...), one run per value of
    the excess over a floor of 0.1 bits; and each run's key value."""
    frames, key_values = [], {}
    for key, layers in values_by_key.items():
        group = f"key={key:g}"
        for layer, excesses in enumerate(layers):
            frame = synthetic_phases({group: excesses})
            frames.append(frame.assign(layer=layer, layer_name=f"dense_{layer}"))
            key_values.update(dict.fromkeys(frame["run_id"], key))
    return pd.concat(frames, ignore_index=True), key_values


def test_a_layer_whose_idnns_bins_clip_gets_no_trend():
    # layer 0 rises along the key, but its bins clip (relu under idnns' [-1, 1]): no slope is tested,
    # its rise is the bins'; layer 1 unclipped is tested; the SNR drop comes from the gradients
    phases, key_values = keyed_phases({-1.0: [[0.1, 0.2, 0.15], [0.3, 0.1, 0.2]], 0.0: [[0.6, 0.7, 0.65], [0.2, 0.3, 0.1]],
                                       5.0: [[1.2, 1.1, 1.3], [0.15, 0.25, 0.3]]})
    phases = phases.assign(bins_clip=phases["layer"] == 0, snr_drop_epoch=1.0 + phases.index % 3)
    table = trend.trends(phases, key_values, (stats.EXCESS, "snr_drop_epoch")).set_index(["layer", "quantity"])
    assert table.loc[(0, stats.EXCESS), "note"] == stats.CLIPPED_BINS and math.isnan(table.loc[(0, stats.EXCESS), "p_value"])
    assert pd.isna(table.loc[(1, stats.EXCESS), "note"]) and not math.isnan(table.loc[(1, stats.EXCESS), "p_value"])
    assert not math.isnan(table.loc[(0, "snr_drop_epoch"), "p_value"])


def test_trends_over_the_phases_view_step_along_the_values_and_leave_out_dead_runs():
    # Layer 0 rises along the key, layer 1 is flat; the key's values are spaced unevenly (-1, 0, 5)
    # and a trend counts steps, not values. One run of key=5 is dead: left out.
    phases, key_values = keyed_phases({-1.0: [[0.1, 0.2, 0.15, 0.12, 0.18], [0.3, 0.1, 0.2, 0.25, 0.15]],
                                       0.0: [[0.6, 0.7, 0.65, 0.55, 0.62], [0.2, 0.3, 0.1, 0.22, 0.18]],
                                       5.0: [[1.2, 1.1, 1.3, 1.15, 9.0], [0.15, 0.25, 0.3, 0.1, 9.0]]})
    phases.loc[phases["run_id"] == "key=5-s4", "dead_network"] = True
    table = trend.trends(phases, key_values, (stats.EXCESS,))
    assert list(table["layer"]) == [0, 1] and set(table["levels"]) == {3} and set(table["n"]) == {14}
    q_expected = benjamini_hochberg(table["p_value"])
    for layer, row in table.set_index("layer").iterrows():
        kept = phases[(phases["layer"] == layer) & ~phases["dead_network"]]
        steps = kept["run_id"].map(key_values).map({-1.0: 0.0, 0.0: 1.0, 5.0: 2.0}).to_numpy()
        excess = (kept["compression_bits"] - kept["noise_floor_bits"]).to_numpy()
        assert row["slope"] == pytest.approx(np.polyfit(steps, excess, 1)[0], rel=1e-9)
        ranks = pd.DataFrame({"key": kept["run_id"].map(key_values).to_numpy(), "excess": excess}).rank()
        assert row["spearman_rho"] == pytest.approx(np.corrcoef(ranks["key"], ranks["excess"])[0, 1], rel=1e-9)
        assert row["q_value"] == pytest.approx(q_expected[layer])
    rises, flat = table.iloc[0], table.iloc[1]
    assert rises["ci_low"] > 0 and rises["q_value"] < stats.ALPHA
    assert flat["ci_low"] < 0 < flat["ci_high"] and flat["p_value"] > stats.ALPHA


def test_fewer_than_three_values_kept_is_no_trend():
    phases, key_values = keyed_phases({0.0: [[0.1, 0.2, 0.3]], 1.0: [[0.4, 0.5, 0.6]], 2.0: [[0.7, 0.8, 0.9]]})
    phases.loc[phases["run_id"].str.startswith("key=2-"), "dead_network"] = True
    row = trend.trends(phases, key_values, (stats.EXCESS,)).iloc[0]
    assert row["levels"] == 2 and row["note"] == trend.TOO_FEW_LEVELS
    assert math.isnan(row["p_value"]) and math.isnan(row["slope"])
    assert cohort_tables.trend_table(trend.trends(phases, key_values, (stats.EXCESS,)))["95 % CI"].tolist() == [
        trend.TOO_FEW_LEVELS]
    # a sceptic's: a report's trend section read 30 rows of this and no sentence; one sentence says it
    assert cohort_tables.trend_note(trend.trends(phases, key_values, (stats.EXCESS,)), "key") == (
        f"No trend along key could be tested ({trend.TOO_FEW_LEVELS}).")


def test_the_trend_sentence_names_the_rows_below_q_005_and_says_when_none_is():
    phases, key_values = keyed_phases({0.0: [[0.1, 0.2, 0.15, 0.12, 0.18], [0.3, 0.1, 0.2, 0.25, 0.15]],
                                       1.0: [[0.6, 0.7, 0.65, 0.55, 0.62], [0.2, 0.3, 0.1, 0.22, 0.18]],
                                       2.0: [[1.2, 1.1, 1.3, 1.15, 1.0], [0.15, 0.25, 0.3, 0.1, 0.2]]})
    table = trend.trends(phases, key_values, (stats.EXCESS,))
    rises = table.iloc[0]
    assert cohort_tables.trend_note(table, "initial_bias") == (
        f"Change along initial_bias at q (over layers) < 0.05 (slope [95 % CI]), 1 of 2 trends: 0 · dense_0 "
        f"{stats.EXCESS} rises, {rises['slope']:.3g} "
        f"{cohort_tables.difference_interval(None, rises['ci_low'], rises['ci_high'])} per step.")
    # two quantities: each its own family over the layers, and the sentence says what that means over both
    both = trend.trends(phases, key_values, (stats.EXCESS, "final_i_xt"))
    assert both.groupby("quantity")["q_value"].apply(lambda q: q.notna().sum()).max() == 2
    assert (f"trends (q adjusts each quantity on its own, up to 2 tests: with no difference at all, at least one of "
            f"these 2 families passes in up to 2 x 5 % of such tables): 0 · dense_0 {stats.EXCESS} rises"
            in cohort_tables.trend_note(both, "initial_bias"))
    # a reviewer's: split along another key, each (other keys, quantity) is a family of its own
    strata = pd.concat([both.assign(within="activation_fn=relu"), both.assign(within="activation_fn=tanh")])
    assert ("(q adjusts each quantity and combination of the other keys on its own, up to 2 tests: with no "
            "difference at all, at least one of these 4 families passes in up to 4 x 5 % of such tables)"
            in cohort_tables.trend_note(strata, "initial_bias"))
    flat = trend.trends(phases[phases["layer"] == 1], key_values, (stats.EXCESS,))
    assert cohort_tables.trend_note(flat, "initial_bias") == (
        "No layer changes along initial_bias at q (over layers) < 0.05 in any quantity tested "
        "(15 runs kept at 3 values): a slope finds a steady rise or fall along initial_bias, not a change that "
        "peaks between its ends (the comparisons between groups show those).")


def test_a_value_of_the_key_with_one_run_kept_is_left_out_of_the_trend():
    # A sceptic's: steps of 1, 3, 2 and 1 runs (seeds lost to death at the extremes), no slope, the end
    # steps' sd 10 times the others': p < 0.05 in 9.7 % of 1500 draws, on the one-run steps' HC3 error.
    # One run has no spread of its own: such a value is left out, and the row says so beside its p.
    phases, key_values = keyed_phases({0.0: [[0.9]], 1.0: [[0.1, 0.3, 0.2]], 2.0: [[0.2, 0.25]],
                                       3.0: [[0.4, 0.3]], 4.0: [[-0.5]]})
    (row,) = trend.trends(phases, key_values, (stats.EXCESS,)).to_dict("records")
    assert (row["levels"], row["n"], row["values_left_out"], row["note"]) == (3, 7, 2, stats.HSU_PAIR)
    kept, _ = keyed_phases({1.0: [[0.1, 0.3, 0.2]], 2.0: [[0.2, 0.25]], 3.0: [[0.4, 0.3]]})
    (alone,) = trend.trends(kept, _, (stats.EXCESS,)).to_dict("records")
    assert (row["slope"], row["p_value"], row["ci_low"]) == (alone["slope"], alone["p_value"], alone["ci_low"])
    shown = cohort_tables.trend_table(pd.DataFrame([row])).iloc[0]     # Hsu's note and the values left out
    assert shown["p"].endswith(f" ({stats.HSU_PAIR}) ({cohort_tables.ONE_RUN_LEFT_OUT.format(2)})"), shown["p"]
    assert shown["95 % CI"].startswith("[")
    # nor does a value of one run cut the others' SNR drops at its end (a reviewer's: a run at a fourth
    # value stopped at epoch 8 made every other seed's drop "followed to different last epochs")
    drops, drop_keys = keyed_phases({0.0: [[0.1, 0.2]], 1.0: [[0.3, 0.4]], 2.0: [[0.5, 0.6]], 3.0: [[0.7]]})
    drops = drops.assign(snr_drop_epoch=[10.0, 12.0, 20.0, 22.0, 30.0, 32.0, math.nan],
                         snr_drop_censored=[False] * 6 + [True], snr_last_epoch=[50] * 6 + [8])
    (snr,) = trend.trends(drops, drop_keys, ("snr_drop_epoch",)).to_dict("records")
    assert (snr["levels"], snr["n"], snr["values_left_out"]) == (3, 6, 1) and snr["p_value"] < 0.05, snr
    # 4 runs at 4 values: no value has 2 runs, so there is no trend to test
    phases, key_values = keyed_phases({0.0: [[0.1], [0.3]], 1.0: [[0.2], [0.1]], 2.0: [[0.3], [0.2]],
                                       3.0: [[0.4], [0.2]]})
    table = trend.trends(phases, key_values, (stats.EXCESS,))
    assert set(table["note"]) == {trend.TOO_FEW_LEVELS} and table["p_value"].isna().all()
    assert cohort_tables.trend_note(table, "initial_bias") == (
        f"No trend along initial_bias could be tested ({trend.TOO_FEW_LEVELS}).")


def test_equal_values_have_no_trend_and_a_slope_of_exactly_zero():
    # A layer at H(Y) in every run: the slope was -2.2e-18, rounding, and its test p = 0.0008
    # (the null slopes were rounding too). Any other slope makes equal values a straight line in
    # the steps: with 2 runs at each of 3 values, 2!^3 of the 720 orders keep it, p = 2 * 8 / 720.
    steps, equal = np.repeat([0.0, 1.0, 2.0], 2), np.full(6, 0.99916)
    assert trend.slope_test(steps, equal) == (0.0, 1.0, 0.0, 0.0)
    assert brute_force_p(steps, equal, 1.0) == pytest.approx(16 / 720)
    # with 3 runs no order can reject a slope (smallest p 2/6): unbounded
    assert trend.slope_test(np.array([0.0, 1.0, 2.0]), np.full(3, 1.0)) == (0.0, 1.0, -math.inf, math.inf)


def test_values_equal_but_for_float_rounding_have_no_trend():
    phases, key_values = keyed_phases({0.0: [[0.5] * 5], 1.0: [[0.5] * 5], 2.0: [[0.5] * 5]})
    # the rounding falls with the key: unrounded, a "trend" of -4.4e-16 bits per step, p = 0.0002
    phases = phases.assign(peak_i_yt=0.9991599999999999 - 4.4e-16 * phases["run_id"].map(key_values))
    row = trend.trends(phases, key_values, ("peak_i_yt",)).iloc[0]
    assert (row["slope"], row["p_value"]) == (0.0, 1.0)


def test_groups_that_also_differ_in_another_key_get_a_trend_within_each_of_its_values(tmp_path):
    # relu and tanh at three initial biases each: the one numeric key is initial_bias, and each
    # activation gets its own trend (a slope through both would mix two dose-responses)
    from bench.make_results import write_run
    from explorer.results import ResultStore
    ids = {(activation, bias, seed): write_run(tmp_path, f"{activation}-{bias}", {
               "epochs": 6, "activation_fn": activation, "initial_bias": bias}, seed=seed, logged=4)
           for activation in ("relu", "tanh") for bias in (-1, 0, 2) for seed in range(3)}
    along = cohort_tables.trend_key(ResultStore(tmp_path), list(ids.values()))
    assert along.key == "initial_bias" and along.values[ids[("tanh", 2, 1)]] == 2.0
    assert along.within[ids[("tanh", 2, 1)]] == "activation_fn=tanh"
    # opposite slopes within relu and tanh (0.5 and -0.2 bits per step, plus noise)
    rng = np.random.default_rng(3)
    excess = {run_id: (0.5 if activation == "relu" else -0.2) * [-1, 0, 2].index(bias) + rng.normal(0, 0.05)
              for (activation, bias, seed), run_id in ids.items()}
    phases, _ = keyed_phases({0.0: [[0.0] * len(ids)]})
    phases = phases.assign(run_id=list(excess), compression_bits=[0.1 + e for e in excess.values()])
    table = trend.trends(phases, along.values, (stats.EXCESS,), along.within).set_index("within")
    for activation in ("relu", "tanh"):
        runs = [(bias, excess[run_id]) for (a, bias, _), run_id in ids.items() if a == activation]
        steps = np.array([[-1, 0, 2].index(bias) for bias, _ in runs], dtype=float)
        expected = np.polyfit(steps, [e for _, e in runs], 1)[0]
        assert table.loc[f"activation_fn={activation}", "slope"] == pytest.approx(expected, rel=1e-9)
        assert table.loc[f"activation_fn={activation}", "q_value"] == table.loc[f"activation_fn={activation}", "p_value"]
    assert cohort_tables.trend_table(table.reset_index())["within"].tolist() == \
        ["activation_fn=relu", "activation_fn=tanh"]
    assert cohort_tables.trend_note(table.reset_index(), "initial_bias").startswith(
        "Change along initial_bias at q (over layers) < 0.05 (slope [95 % CI]), 2 of 2 trends (q adjusts each quantity "
        "and combination of the other keys on its own, up to 1 test: with no difference at all, at least one of "
        "these 2 families passes in up to 2 x 5 % of such tables): activation_fn=relu: "
        "0 · dense_0 compression_over_floor_bits rises")
    # a grid of two numeric keys has no one axis
    grid = [write_run(tmp_path / "grid", f"g{lr}-{bias}", {"epochs": 6, "learning_rate": lr, "initial_bias": bias},
                      logged=4) for lr in (0.1, 0.2, 0.3) for bias in (-1, 0, 2)]
    assert cohort_tables.trend_key(ResultStore(tmp_path / "grid"), grid) is None


def test_a_table_mixing_noted_and_tested_trends_shows_each_ones_interval():
    # pandas keeps a note column of None and text as text, None as NaN: every tested row's CI read "nan"
    phases, key_values = keyed_phases({0.0: [[0.1, 0.2, 0.15, 0.12, 0.18]], 1.0: [[0.6, 0.7, 0.65, 0.55, 0.62]],
                                       2.0: [[1.2, 1.1, 1.3, 1.15, 1.0]]})
    tested = trend.trends(phases, key_values, (stats.EXCESS,)).iloc[0].to_dict()
    rows = pd.DataFrame([tested, {**tested, "note": stats.CENSORED_RANKS}])
    assert rows["note"].isna().iloc[0]
    shown = cohort_tables.trend_table(rows)["95 % CI"].tolist()
    assert shown == [cohort_tables.difference_interval(None, tested["ci_low"], tested["ci_high"]),
                     cohort_tables.UNTESTED_CELL.get(stats.CENSORED_RANKS, stats.CENSORED_RANKS)]
    assert shown[0].startswith("[") and "nan" not in shown[0]


def test_the_reselected_slope_test_is_the_permutation_test_of_the_slope_with_each_groups_peak_picked_again():
    # Written out over all 720 orders of 6 runs' drop curves (2 seeds at each of 3 steps): each order
    # deals the curves to the runs' places, each group picks its peak epoch again from its mean curve,
    # each run's compression over the floor is its curve there, and the least-squares slope is fitted.
    rng = np.random.default_rng(8)
    epochs, steps, groups = 15, np.repeat([0.0, 1.0, 2.0], 2), np.repeat(["a", "b", "c"], 2)
    shape = np.r_[np.linspace(0, 1, 7), np.linspace(1, 0, 8)]
    curves = 5 + np.outer(steps * 0.15, shape) + rng.normal(0, 0.05, (6, epochs))
    drops = curves - curves[:, -1:]
    def slope(dealt: np.ndarray) -> float:
        excess = np.empty(6)
        for group in "abc":
            places = np.flatnonzero(groups == group)
            excess[places] = dealt[places, dealt[places].mean(axis=0).argmax()]
        return np.polyfit(steps, excess, 1)[0]
    observed = slope(drops)
    null = np.array([slope(drops[list(order)]) for order in itertools.permutations(range(6))])
    tie = abs(observed) * 1e-12
    expected = min(1.0, 2 * min(np.mean(null >= observed - tie), np.mean(null <= observed + tie)))
    assert trend.reselected_slope_test(steps, groups, drops) == pytest.approx(expected, abs=1e-15)
    assert observed > 0 and expected < 0.5


def test_a_trend_of_compression_over_the_floor_is_bounded_by_the_reselected_test_given_the_curves():
    rng = np.random.default_rng(3)
    epochs, rows, curve_rows = 20, [], []
    shape = np.r_[np.linspace(0, 1, 10), np.linspace(1, 0.5, 10)]          # rises, then falls by half
    for step, group in enumerate("abc"):
        for seed in range(3):
            curve = 5 + (0.1 + 0.2 * step) * shape + rng.normal(0, 0.05, epochs)
            rows.append({"run_id": f"{group}{seed}", "group_id": group, "layer": 0, "layer_name": "dense_0",
                         "estimator": "binning", "params": "{}", "split": "train", "final_i_xt": curve[-1],
                         "final_epoch": epochs - 1, "dead_network": False, "diverged": False, "status": "completed"})
            curve_rows.append({"run_id": f"{group}{seed}", "layer": 0, "estimator": "binning", "params": "{}",
                               "split": "train", "epochs": list(range(epochs)), "i_xt": list(curve)})
    curves = pd.DataFrame(curve_rows)
    drops = {row["run_id"]: np.array(c["i_xt"]) - row["final_i_xt"] for row, c in zip(rows, curve_rows)}
    for row in rows:        # the phases view's EXCESS: each run's drop at its group's peak epoch
        peak = np.mean([drops[r["run_id"]] for r in rows if r["group_id"] == row["group_id"]], axis=0).argmax()
        row.update(group_peak_epoch=int(peak), compression_bits=drops[row["run_id"]].max(),
                   noise_floor_bits=drops[row["run_id"]].max() - drops[row["run_id"]][peak])
    phases = pd.DataFrame(rows)
    values = {row["run_id"]: ord(row["group_id"]) - ord("a") for row in rows}
    alone = trend.trends(phases, values, (stats.EXCESS,)).iloc[0]
    bounded = trend.trends(phases, values, (stats.EXCESS,), curves=curves).iloc[0]
    reselected = trend.reselected_slope_test(np.repeat([0.0, 1.0, 2.0], 3), phases["group_id"].to_numpy(),
                                             np.array([drops[r] for r in phases["run_id"]]))
    assert bounded["p_value"] == max(alone["p_value"], reselected) and bounded["slope"] == alone["slope"]
    assert (bounded["ci_low"] <= 0 <= bounded["ci_high"]) == (bounded["p_value"] >= stats.ALPHA)
    missing = trend.trends(phases, values, (stats.EXCESS,), curves=curves.iloc[1:])   # a run's curve gone
    assert missing["note"].iloc[0] == stats.NO_SHARED_EPOCH and np.isnan(missing["p_value"].iloc[0])
    # a cell, not the note
    assert cohort_tables.trend_table(missing)["95 % CI"].tolist() == ["– (no logged epoch shared)"]
