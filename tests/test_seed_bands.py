"""The seed bands and TensorBoard's smoothing against values worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from explorer import runs_table, seed_bands, smoothing

# Student's t 97.5 % quantiles in closed form: with 1 degree of freedom t is Cauchy, t = tan(pi (p - 1/2));
# with 2, F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so t = sqrt(2 q^2 / (1 - q^2)) with q = 2p - 1
T_975_DF1 = math.tan(math.pi * 0.475)
T_975_DF2 = math.sqrt(2 * 0.95 ** 2 / (1 - 0.95 ** 2))


def test_mean_ci_is_students_t_interval_and_one_seed_has_none():
    frame = pd.DataFrame({"g": ["a", "a", "a", "b", "b", "c"], "v": [1.0, 2.0, 3.0, 0.0, 4.0, 7.0]})
    out = seed_bands.over_seeds(frame, ["g"], "v").set_index("g")
    # a: mean 2, s = 1, n = 3; b: mean 2, s = sqrt(8), n = 2
    assert out.loc["a", "v"] == 2 and out.loc["a", "seeds"] == 3
    assert out.loc["a", "v_hi"] == pytest.approx(2 + T_975_DF2 / math.sqrt(3), rel=1e-12)
    assert out.loc["a", "v_lo"] == pytest.approx(2 - T_975_DF2 / math.sqrt(3), rel=1e-12)
    assert out.loc["b", "v_hi"] == pytest.approx(2 + T_975_DF1 * math.sqrt(8) / math.sqrt(2), rel=1e-12)
    assert out.loc["c", "v"] == 7 and math.isnan(out.loc["c", "v_lo"]) and math.isnan(out.loc["c", "v_hi"])


def test_min_max_band():
    frame = pd.DataFrame({"g": [1, 1, 1], "e": [5, 5, 5], "v": [0.5, -1.0, 4.0]})
    out = seed_bands.over_seeds(frame, ["g", "e"], "v", seed_bands.MIN_MAX)
    assert out.iloc[0][["v", "v_lo", "v_hi", "seeds"]].tolist() == [pytest.approx(3.5 / 3), -1.0, 4.0, 3]
    with pytest.raises(ValueError, match="allowed are"):
        seed_bands.over_seeds(frame, ["g"], "v", "IQR")


def test_bands_are_cut_to_the_range_the_value_can_take():
    # accuracies 0.98 and 1.0: the t interval 0.99 +- 12.71 * 0.01 reaches past 1, and below 0 for
    # SNRs 0.1 and 3.0; min-max bands are inside the range already
    frame = pd.DataFrame({"g": ["acc", "acc", "snr", "snr"], "v": [0.98, 1.0, 0.1, 3.0]})
    whole = seed_bands.over_seeds(frame, ["g"], "v").set_index("g")
    assert whole.loc["acc", "v_hi"] > 1 and whole.loc["snr", "v_lo"] < 0
    accuracy = seed_bands.over_seeds(frame[frame["g"] == "acc"], ["g"], "v", bounds=(0.0, 1.0)).iloc[0]
    assert accuracy["v_hi"] == 1.0 and accuracy["v_lo"] == pytest.approx(0.99 - T_975_DF1 * 0.01)   # s = 0.01 sqrt 2
    # the Runs page's group-by: its accuracy intervals stay within [0, 1]
    # over completed runs only: the interrupted run's 0.3 is where it stopped (it was averaged in, n unshown)
    runs = pd.DataFrame({"run_id": ["a", "b", "c", "d", "e"], "flags": ["", "", "dead", "saturated", ""],
                         "status": ["completed"] * 4 + ["interrupted"], "seed": [0, 1, 0, 0, 2],
                         "initial_bias": [0.0, 0.0, 1.0, 5.0, 0.0], "final_test_accuracy": [0.98, 1.0, 0.5, 0.5, 0.3]})
    summary = runs_table.group_summary(runs, "initial_bias").set_index("initial_bias")
    assert summary.loc[0.0, ["runs", "completed", "dead", "mean test acc", "95% CI high"]].tolist() == [
        3, 2, 0, pytest.approx(0.99), 1.0]
    assert summary[["dead", "saturated", "diverged"]].sum().tolist() == [1, 1, 0]
    assert summary.loc[5.0, "saturated"] == 1 and summary.loc[1.0, "saturated"] == 0
    assert summary.loc[0.0, "95% CI low"] == pytest.approx(0.99 - T_975_DF1 * 0.01)
    assert summary.loc[1.0, "dead"] == 1 and math.isnan(summary.loc[1.0, "95% CI low"])     # one run: no interval
    assert summary["configs"].tolist() == [1, 1, 1]                          # initial_bias is the only key
    # a row pooling two configs (relu and tanh at one initial bias): the mean, no interval over them
    pooled = runs.assign(activation_fn=["relu", "tanh", "relu", "relu", "relu"],
                         kernel_init_stddev=[None, None, 0.3, None, np.nan])     # a key some configs leave null
    summary = runs_table.group_summary(pooled, "initial_bias").set_index("initial_bias")
    assert summary.loc[0.0, ["configs", "mean test acc"]].tolist() == [2, pytest.approx(0.99)]
    assert summary.loc[[0.0], ["95% CI low", "95% CI high"]].isna().all(axis=None)
    by_activation = runs_table.group_summary(pooled[pooled["status"] == "completed"], "activation_fn")
    assert by_activation.set_index("activation_fn")["configs"].to_dict() == {"relu": 3, "tanh": 1}
    # a null and a value are two settings; the missing values (None, NaN, NA) one, in any column's type
    nulls = pooled.assign(activation_fn="relu", initial_bias=0.0, kernel_init_stddev=[None, np.nan, 0.3, None, None])
    assert runs_table.group_summary(nulls, "activation_fn")["configs"].tolist() == [2]
    mixed = pooled.assign(activation_fn="relu", initial_bias=0.0,
                          kernel_init_stddev=pd.Series([None, np.nan, pd.NA, 0.1, np.float64(0.1)], dtype=object))
    assert runs_table.group_summary(mixed, "activation_fn")["configs"].tolist() == [2]
    snr = seed_bands.over_seeds(frame[frame["g"] == "snr"], ["g"], "v", bounds=(0.0, math.inf)).iloc[0]
    assert snr["v_lo"] == 0.0 and snr["v_hi"] == whole.loc["snr", "v_hi"]


def test_a_ratio_over_seeds_on_a_log_axis_is_its_geometric_mean_and_log_interval():
    # SNRs 0.1, 1, 30 (one seed's outlier): the arithmetic t band reaches below 0, which a log axis
    # cannot draw; over the logs, the geometric mean and exp(mean ln ± t(0.975, 2) s_ln / sqrt 3),
    # worked out here with scipy; a zero SNR (a dead gradient) has no log and is not a seed there
    snr = np.array([0.1, 1.0, 30.0])
    frame = pd.DataFrame({"g": ["a"] * 4, "snr": [*snr, 0.0]})
    arithmetic = seed_bands.over_seeds(frame[frame["snr"] > 0], ["g"], "snr").iloc[0]
    assert arithmetic["snr_lo"] < 0
    row = seed_bands.over_seeds(frame, ["g"], "snr", log=True).iloc[0]
    logs = np.log(snr)
    half = scipy_stats.t.ppf(0.975, 2) * logs.std(ddof=1) / np.sqrt(3)
    assert row["snr"] == pytest.approx(scipy_stats.gmean(snr), rel=1e-12) and row["seeds"] == 3
    assert (row["snr_lo"], row["snr_hi"]) == pytest.approx((np.exp(logs.mean() - half), np.exp(logs.mean() + half)))
    spread = seed_bands.over_seeds(frame, ["g"], "snr", seed_bands.MIN_MAX, log=True).iloc[0]
    assert (spread["snr_lo"], spread["snr_hi"]) == pytest.approx((0.1, 30.0))


def test_ema_is_the_normalised_weighted_average():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    w = 0.8
    got = smoothing.ema(x, w)
    for k in range(1, len(x) + 1):      # closed form: sum_j w^(k-j) (1-w) x_j / (1 - w^k)
        weights = (1 - w) * w ** np.arange(k - 1, -1, -1)
        assert got[k - 1] == pytest.approx(weights @ x[:k] / (1 - w ** k), rel=1e-12)
    assert smoothing.ema(np.full(5, 3.0), 0.99) == pytest.approx(np.full(5, 3.0))   # no pull towards 0
    assert list(smoothing.ema(x, 0.0)) == list(x)


def test_ema_passes_non_finite_values_and_smooths_each_line():
    assert smoothing.ema(np.array([0.0, np.nan, 1.0]), 0.5)[1] != smoothing.ema(np.array([0.0, np.nan, 1.0]), 0.5)[1]
    assert smoothing.ema(np.array([0.0, np.nan, 1.0]), 0.5)[2] == pytest.approx(0.5 / 0.75)
    frame = pd.DataFrame({"run": ["a", "b", "a", "b"], "epoch": [1, 1, 0, 0], "v": [1.0, 5.0, 0.0, 5.0]})
    out = smoothing.smooth(frame, ["v"], ["run"], 0.5).set_index(["run", "epoch"])["v"]
    assert out[("a", 0)] == 0 and out[("a", 1)] == pytest.approx(0.5 / 0.75) and out[("b", 1)] == pytest.approx(5)
    with pytest.raises(ValueError, match="allowed is"):
        smoothing.ema(np.ones(2), 1.0)


def test_centre_and_range_over_seeds():
    frame = pd.DataFrame({"g": ["a"] * 3 + ["b"], "e": [1] * 4, "v": [3.0, 1.0, 8.0, 2.0]})
    out = seed_bands.centre_and_range(frame, ["g", "e"], ["v"], "median").set_index("g")
    assert out.loc["a", ["v", "v_min", "v_max", "v_seeds"]].tolist() == [3.0, 1.0, 8.0, 3]
    assert seed_bands.centre_and_range(frame, ["g"], ["v"], "mean").set_index("g").loc["a", "v"] == 4.0
    assert out.loc["b", ["v", "v_min", "v_max", "v_seeds"]].tolist() == [2.0, 2.0, 2.0, 1]


def test_a_seed_without_a_value_is_not_counted_among_the_seeds_a_point_is_over():
    # A sceptic's: a run that diverged has a row of NaN at its last epoch; the band over the one seed
    # left had no width and the tooltip said 4 seeds, as if four seeds agreed
    frame = pd.DataFrame({"g": ["a"] * 4, "accuracy": [0.53, np.nan, np.nan, np.nan],
                          "loss": [0.7, 0.6, np.nan, np.nan]})
    out = seed_bands.centre_and_range(frame, ["g"], ["accuracy", "loss"], "mean").iloc[0]
    assert out[["accuracy", "accuracy_min", "accuracy_max", "accuracy_seeds"]].tolist() == [0.53, 0.53, 0.53, 1]
    assert out[["loss", "loss_seeds"]].tolist() == [pytest.approx(0.65), 2]


def test_the_group_by_counts_a_network_trained_twice_as_one_seed():
    # a sceptic's cohort trained again with save_activations (a measurement setting, not a column):
    # seeds 0-2 of bias 2 twice, six runs; the interval is over the three networks, not six values
    accuracy = [0.93, 0.96, 0.985]
    runs = pd.DataFrame({"run_id": [f"{name}-s{seed}" for name in ("first", "again") for seed in range(3)],
                         "flags": [""] * 6, "status": ["completed"] * 6, "seed": [0, 1, 2] * 2,
                         "initial_bias": [2.0] * 6, "final_test_accuracy": accuracy * 2})
    row = runs_table.group_summary(runs, "initial_bias").iloc[0]
    half = scipy_stats.t.ppf(0.975, 2) * np.std(accuracy, ddof=1) / math.sqrt(3)
    assert (row["runs"], row["seeds"], row["configs"]) == (6, 3, 1)
    assert row["95% CI low"] == pytest.approx(np.mean(accuracy) - half)
    assert row["95% CI high"] == min(1.0, np.mean(accuracy) + half) == 1.0
    # runs of one setting and seed measured otherwise (a reviewer's: histogram_bins 30 and 50) are those networks
    bins = runs.assign(histogram_bins=[30] * 3 + [50] * 3)
    row = runs_table.group_summary(bins, "initial_bias").iloc[0]
    assert (row["runs"], row["seeds"], row["configs"]) == (6, 3, 2)
    assert row["95% CI low"] == pytest.approx(np.mean(accuracy) - half)
    # another seed of that setting, or the same seed of another setting, is a network of its own
    other = pd.concat([runs, runs.iloc[[0]].assign(run_id="x", seed=7), runs.iloc[[0]].assign(run_id="y", lr=0.1)])
    assert runs_table.group_summary(other, "initial_bias").iloc[0][["runs", "seeds", "configs"]].tolist() == [8, 5, 2]
