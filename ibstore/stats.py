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

from ibstore.record import Status

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


def _scipy_stats():
    """scipy.stats, imported on first use: importing it cost the explorer's first load about 0.8 s,
    and the Runs page, which imports this module through explorer.report, needs none of it."""
    from scipy import stats
    return stats


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
    return _summaries(values[None, :])[0]


def summarize_columns(values: np.ndarray) -> list[Summary]:
    """`summarize` of each column of `values` [seeds, quantities]. Columns without a missing value
    share one bootstrap call (the same resampled seeds for each column: every column's interval
    equals its own call's, and the call's fixed cost is paid once)."""
    values = np.asarray(values, dtype=float)
    complete = np.isfinite(values).all(axis=0) if len(values) >= 2 else np.zeros(values.shape[1], bool)
    summaries = [None if complete[i] else summarize(values[:, i]) for i in range(values.shape[1])]
    if complete.any():
        for i, summary in zip(np.flatnonzero(complete), _summaries(values[:, complete].T)):
            summaries[i] = summary
    return summaries


def _summaries(block: np.ndarray) -> list[Summary]:
    """Summaries of the rows of `block` [quantities, seeds], at least 2 seeds, all finite."""
    interval = _scipy_stats().bootstrap((block,), np.mean, axis=-1, n_resamples=N_RESAMPLES,
                                        confidence_level=CONFIDENCE, method="percentile", rng=SEED).confidence_interval
    low, high = np.atleast_1d(interval.low), np.atleast_1d(interval.high)
    return [Summary(block.shape[1], float(row.mean()), float(row.std(ddof=1)), float(lo), float(hi), None)
            for row, lo, hi in zip(block, low, high)]


def exceeds_zero(values: np.ndarray) -> float:
    """One-sided sign-flip permutation p-value that the mean of the finite `values` is > 0 (NaN
    with fewer than 2 values: no test)."""
    values = _finite(values)
    if len(values) < 2:
        return math.nan
    return float(_scipy_stats().permutation_test((values,), np.mean, permutation_type="samples",
                                                 alternative="greater", n_resamples=N_RESAMPLES, vectorized=True,
                                                 rng=SEED).pvalue)


def compare(a: np.ndarray, b: np.ndarray) -> Comparison:
    """Group a against group b (finite values, one per seed)."""
    a, b = _finite(a), _finite(b)
    if len(a) == 0 or len(b) == 0:
        return Comparison(len(a), len(b), _mean(a), _mean(b), math.nan, math.nan, math.nan, math.nan, math.nan,
                          NO_VALUE)
    difference = float(a.mean() - b.mean())
    scipy_stats = _scipy_stats()
    cliffs_delta = 2 * float(scipy_stats.mannwhitneyu(a, b).statistic) / (len(a) * len(b)) - 1
    if min(len(a), len(b)) < 2:   # neither an interval nor a test
        return Comparison(len(a), len(b), _mean(a), _mean(b), difference, math.nan, math.nan, math.nan,
                          cliffs_delta, NO_INTERVAL)
    p_value = float(scipy_stats.permutation_test((a, b), _mean_difference, permutation_type="independent",
                                                 n_resamples=N_RESAMPLES, vectorized=True, rng=SEED).pvalue)
    interval = scipy_stats.bootstrap((a, b), _mean_difference, n_resamples=N_RESAMPLES, confidence_level=CONFIDENCE,
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


def exclusions(phases: pd.DataFrame) -> np.ndarray:
    """Per row, why its run is left out of its group's statistics, or None: dead (the trainer's
    dead_network), diverged, or not completed (its status). NULL flags (runs written before the
    flag existed, or still running) are not set."""
    dead = _flagged(phases["dead_network"])
    diverged = _flagged(phases["diverged"]) | (phases["status"].astype(object) == Status.DIVERGED).to_numpy(bool)
    status = phases["status"].astype(object).to_numpy()
    return np.where(dead, "dead", np.where(diverged, "diverged",
                                           np.where(status == Status.COMPLETED, None, status))).astype(object)


def _flagged(column: pd.Series) -> np.ndarray:
    return column.astype("boolean").fillna(False).to_numpy(bool)


@dataclass(frozen=True)
class Health:
    """A group's runs and those left out of its statistics, named."""
    runs: int
    n_dead: int
    n_diverged: int
    n_unfinished: int
    excluded_runs: str | None


def health(run_ids: np.ndarray, reasons: np.ndarray) -> Health:
    """The health of one group's rows (one per run) from their `exclusions`."""
    left_out = sorted((run_id, why) for run_id, why in zip(run_ids, reasons) if why is not None)
    whys = [why for _, why in left_out]
    return Health(len(run_ids), whys.count("dead"), whys.count("diverged"),
                  sum(why not in ("dead", "diverged") for why in whys),
                  ", ".join(f"{run_id} ({why})" for run_id, why in left_out) or None)


def _numeric(phases: pd.DataFrame, columns) -> np.ndarray:
    return phases[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


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
    phases = with_excess(phases).sort_values(["group_id", *KEYS, "run_id"]).reset_index(drop=True)
    values, reasons = _numeric(phases, QUANTITIES), exclusions(phases)
    run_ids, layer_names = phases["run_id"].astype(object).to_numpy(), phases["layer_name"].astype(object).to_numpy()
    rows = []
    for (group_id, *keys), index in phases.groupby(["group_id", *KEYS], sort=True, dropna=False).indices.items():
        group_health = health(run_ids[index], reasons[index])
        kept = index[np.equal(reasons[index], None)]
        for column, (quantity, summary) in enumerate(zip(QUANTITIES, summarize_columns(values[kept]))):
            missing = sorted(run_ids[kept][~np.isfinite(values[kept, column])])
            p_value = exceeds_zero(values[kept, column]) if quantity == EXCESS else math.nan
            rows.append({"group_id": group_id, **dict(zip(KEYS, keys)), "layer_name": layer_names[index[0]],
                         "quantity": quantity, **asdict(group_health), "n_missing": len(missing),
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
    groups have): Comparison's columns, and each group's runs left out, named."""
    phases = with_excess(phases[phases["group_id"].isin([group_a, group_b])]).reset_index(drop=True)
    values, reasons = _numeric(phases, quantities), exclusions(phases)
    run_ids = phases["run_id"].astype(object).to_numpy()
    by_keys = phases.groupby(["group_id", *KEYS], sort=True, dropna=False).indices
    rows = []
    for (group_id, *keys), a_index in by_keys.items():
        b_index = by_keys.get((group_b, *keys))
        if group_id != group_a or b_index is None:
            continue
        a_kept, b_kept = (index[np.equal(reasons[index], None)] for index in (a_index, b_index))
        for column, quantity in enumerate(quantities):
            comparison = compare(values[a_kept, column], values[b_kept, column])
            rows.append({**dict(zip(KEYS, keys)), "quantity": quantity, **asdict(comparison),
                         "excluded_a": health(run_ids[a_index], reasons[a_index]).excluded_runs,
                         "excluded_b": health(run_ids[b_index], reasons[b_index]).excluded_runs})
    columns = [*KEYS, "quantity", *Comparison.__dataclass_fields__, "excluded_a", "excluded_b"]
    return pd.DataFrame(rows, columns=columns)
