"""Statistics over seeds of the `phases` view (ibstore.phases): the seed is the unit.

A seed group is the runs that differ only in seed (`group_id`). Per group, layer, estimator,
params, split and phase quantity: n, mean, standard deviation (ddof 1) and a 95 % percentile
bootstrap confidence interval of the mean (scipy.stats.bootstrap; Efron & Tibshirani 1993,
ch. 13). Between two groups: the difference of means a - b with its bootstrap interval (the
seeds of each group resampled independently), a two-sided permutation test of that difference
(scipy.stats.permutation_test: exact when the arrangements are at most N_RESAMPLES, else
N_RESAMPLES random ones) and Cliff's delta as effect size,
delta = P(a > b) - P(a < b) = 2 U / (n_a n_b) - 1 with U the Mann-Whitney statistic of a
(scipy.stats.mannwhitneyu; Cliff 1993), in [-1, 1] and free of the estimator's units.

Compression (peak - final I(X;T)) is positive under noise alone, so it is tested against the
measured noise floor, not 0: per run the excess compression_bits - noise_floor_bits, and a
one-sided sign-flip permutation test that its mean over seeds is > 0 (the null: the excess is
symmetric about 0, as when compression is noise). `compresses` is p < ALPHA (NULL with fewer
than 2 seeds: no test; with fewer than 5 the smallest one-sided p, 1/2^n, cannot reach 0.05).

n = 1 gets no interval and no test (NO_INTERVAL), never a fake one. Runs left out of a group's statistics
are counted and named: dead networks, diverged runs, and runs that did not complete; so are runs
kept whose value of a quantity is missing (NaN: e.g. an SNR that never drops). Resampling uses a
fixed seed (SEED), so the same root gives the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05
N_RESAMPLES = 9999
SEED = 0
NO_INTERVAL = "n = 1: no interval"
NO_VALUE = "no value"
KEYS = ("layer", "estimator", "params", "split")
EXCESS = "compression_over_floor_bits"
QUANTITIES = ("peak_i_xt_epoch", "peak_i_xt", "final_i_xt", "compression_bits", "noise_floor_bits", EXCESS,
              "peak_i_yt_epoch", "peak_i_yt", "snr_drop_epoch")


@dataclass(frozen=True)
class Summary:
    """One quantity over the seeds of one group (NaN where there is no value or no interval)."""
    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    note: str | None


@dataclass(frozen=True)
class Comparison:
    """Group a against group b on one quantity: the difference of means a - b."""
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    cliffs_delta: float
    note: str | None


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def summarize(values: np.ndarray) -> Summary:
    """n, mean, sd and 95 % bootstrap interval of the finite `values` (one per seed)."""
    values = _finite(values)
    n = len(values)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan, NO_VALUE)
    if n == 1:
        return Summary(1, float(values[0]), math.nan, math.nan, math.nan, NO_INTERVAL)
    interval = stats.bootstrap((values,), np.mean, n_resamples=N_RESAMPLES, confidence_level=CONFIDENCE,
                               method="percentile", rng=SEED).confidence_interval
    return Summary(n, float(values.mean()), float(values.std(ddof=1)), float(interval.low),
                   float(interval.high), None)


def exceeds_zero(values: np.ndarray) -> float:
    """One-sided sign-flip permutation p-value that the mean of the finite `values` is > 0 (NaN
    with fewer than 2 values: no test)."""
    values = _finite(values)
    if len(values) < 2:
        return math.nan
    return float(stats.permutation_test((values,), np.mean, permutation_type="samples", alternative="greater",
                                        n_resamples=N_RESAMPLES, vectorized=True, rng=SEED).pvalue)


def compare(a: np.ndarray, b: np.ndarray) -> Comparison:
    """Group a against group b (finite values, one per seed)."""
    a, b = _finite(a), _finite(b)
    if len(a) == 0 or len(b) == 0:
        return Comparison(len(a), len(b), _mean(a), _mean(b), math.nan, math.nan, math.nan, math.nan, math.nan,
                          NO_VALUE)
    difference = float(a.mean() - b.mean())
    cliffs_delta = 2 * float(stats.mannwhitneyu(a, b).statistic) / (len(a) * len(b)) - 1
    if min(len(a), len(b)) < 2:   # neither an interval nor a test
        return Comparison(len(a), len(b), _mean(a), _mean(b), difference, math.nan, math.nan, math.nan,
                          cliffs_delta, NO_INTERVAL)
    p_value = float(stats.permutation_test((a, b), _mean_difference, permutation_type="independent",
                                           n_resamples=N_RESAMPLES, vectorized=True, rng=SEED).pvalue)
    interval = stats.bootstrap((a, b), _mean_difference, n_resamples=N_RESAMPLES, confidence_level=CONFIDENCE,
                               method="percentile", vectorized=True, rng=SEED).confidence_interval
    return Comparison(len(a), len(b), _mean(a), _mean(b), difference, float(interval.low), float(interval.high),
                      p_value, cliffs_delta, None)


def _finite(values) -> np.ndarray:
    values = np.asarray(pd.to_numeric(pd.Series(values, dtype=object), errors="coerce"), dtype=float)
    return values[np.isfinite(values)]


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


# Over the phases view


def with_excess(phases: pd.DataFrame) -> pd.DataFrame:
    """`phases` with the column compression_over_floor_bits = compression_bits - noise_floor_bits."""
    return phases.assign(**{EXCESS: phases["compression_bits"].astype(float) - phases["noise_floor_bits"].astype(float)})


def exclusion(row: pd.Series) -> str | None:
    """Why a run is left out of its group's statistics, or None: dead, diverged, or not completed."""
    if _flagged(row["dead_network"]):
        return "dead"
    if _flagged(row["diverged"]) or row["status"] == "diverged":
        return "diverged"
    if row["status"] != "completed":
        return str(row["status"])
    return None


def _flagged(value) -> bool:
    """A health flag that is set (NULL: a run written before the flag existed, or still running)."""
    return value is not None and not pd.isna(value) and bool(value)


@dataclass(frozen=True)
class Health:
    """A group's runs and those left out of its statistics, named."""
    runs: int
    n_dead: int
    n_diverged: int
    n_unfinished: int
    excluded_runs: str | None


def split_kept(frame: pd.DataFrame) -> tuple[pd.DataFrame, Health]:
    """The rows of the runs kept (one group, one layer/estimator/params/split) and its health."""
    per_run = frame.drop_duplicates("run_id").set_index("run_id")
    reasons = {run_id: exclusion(row) for run_id, row in per_run.iterrows()}
    left_out = {run_id: why for run_id, why in sorted(reasons.items()) if why is not None}
    whys = list(left_out.values())
    health = Health(len(reasons), whys.count("dead"), whys.count("diverged"),
                    sum(why not in ("dead", "diverged") for why in whys),
                    ", ".join(f"{run_id} ({why})" for run_id, why in left_out.items()) or None)
    return frame[~frame["run_id"].isin(left_out)], health


PHASE_STATS_SCHEMA = pa.schema([
    ("group_id", pa.string()), ("layer", pa.int64()), ("layer_name", pa.string()), ("estimator", pa.string()),
    ("params", pa.string()), ("split", pa.string()), ("quantity", pa.string()),
    ("runs", pa.int64()), ("n_dead", pa.int64()), ("n_diverged", pa.int64()), ("n_unfinished", pa.int64()),
    ("excluded_runs", pa.string()), ("n", pa.int64()), ("n_missing", pa.int64()), ("missing_runs", pa.string()),
    ("mean", pa.float64()), ("sd", pa.float64()), ("ci_low", pa.float64()), ("ci_high", pa.float64()),
    ("p_value", pa.float64()), ("compresses", pa.bool_()), ("note", pa.string()),
])


def phase_stats(phases: pd.DataFrame) -> pd.DataFrame:
    """Per group, layer, estimator, params, split and quantity (QUANTITIES): the statistics of
    PHASE_STATS_SCHEMA. `p_value` and `compresses` are set only for compression_over_floor_bits
    (the one-sided test against the noise floor)."""
    rows = []
    phases = with_excess(phases)
    for (group_id, *keys), frame in phases.groupby(["group_id", *KEYS], sort=True, dropna=False):
        kept, health = split_kept(frame)
        for quantity in QUANTITIES:
            values = kept[quantity].astype(float)
            missing = sorted(kept.loc[~np.isfinite(values), "run_id"])
            summary = summarize(values.to_numpy())
            p_value = exceeds_zero(values.to_numpy()) if quantity == EXCESS else math.nan
            rows.append({"group_id": group_id, **dict(zip(KEYS, keys)),
                         "layer_name": frame.sort_values("run_id")["layer_name"].iloc[0],
                         "quantity": quantity, **asdict(health), "n_missing": len(missing),
                         "missing_runs": ", ".join(missing) or None, **asdict(summary),
                         "p_value": p_value,
                         "compresses": bool(p_value < ALPHA) if not math.isnan(p_value) else None})
    return pd.DataFrame(rows, columns=PHASE_STATS_SCHEMA.names)


def phase_stats_table(phases: pd.DataFrame) -> pa.Table:
    """`phase_stats(phases)` as the Arrow table of the SQL view `phase_stats`."""
    frame = phase_stats(phases)
    return pa.Table.from_pandas(frame.astype(object).where(frame.notna(), None), schema=PHASE_STATS_SCHEMA,
                                preserve_index=False)


def compare_groups(phases: pd.DataFrame, group_a: str, group_b: str,
                   quantities: tuple[str, ...] = QUANTITIES) -> pd.DataFrame:
    """Group a against group b per layer, estimator, params, split and quantity (the keys both
    groups have): Comparison's columns, and each group's health (runs left out, named)."""
    phases = with_excess(phases)
    a_rows, b_rows = (phases[phases["group_id"] == group] for group in (group_a, group_b))
    rows = []
    for keys, a_frame in a_rows.groupby(list(KEYS), sort=True, dropna=False):
        b_frame = b_rows[np.logical_and.reduce([b_rows[k] == v for k, v in zip(KEYS, keys)])]
        if b_frame.empty:
            continue
        (a_kept, a_health), (b_kept, b_health) = split_kept(a_frame), split_kept(b_frame)
        for quantity in quantities:
            comparison = compare(a_kept[quantity].to_numpy(), b_kept[quantity].to_numpy())
            rows.append({**dict(zip(KEYS, keys)), "quantity": quantity, **asdict(comparison),
                         "excluded_a": a_health.excluded_runs, "excluded_b": b_health.excluded_runs})
    columns = [*KEYS, "quantity", *Comparison.__dataclass_fields__, "excluded_a", "excluded_b"]
    return pd.DataFrame(rows, columns=columns)
