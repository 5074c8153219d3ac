"""Spread over seeds, the seed being the unit (one value per seed and point).

`mean ± 95% CI`: the mean and Student's t interval, mean ± t(0.975, n-1) · s / √n, s the sample
standard deviation (ddof 1; ibstore.stats.t_half_width, the tables' interval too); a point with one
seed has no interval (NaN bounds).
`min-max`: the mean between the smallest and largest seed.
With `log`, for a positive ratio drawn on a log axis (the SNR), both are taken of the logs: the
geometric mean exp(mean ln v) and its interval exp(mean ln v ± t · s_ln / √n), which stays above 0
and is not pulled by one seed's outlier as an arithmetic mean is; a value ≤ 0 has no log and is
left out of that point (and of its `seeds`).

These are the bands the explorer draws (every curve page, the Phases page's lines, the Runs page's
group-by): a t interval is cheap at each of thousands of epochs. The claims a reader makes rest on
ibstore.stats (the `phase_stats` view: t intervals of the phase quantities over seeds, tests
against the noise floor, group comparisons), which computes its own numbers from the `phases`
view, not from these.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ibstore import stats

MEAN_CI = "mean ± 95% CI"
MIN_MAX = "min-max"
BANDS = (MEAN_CI, MIN_MAX)


def over_seeds(frame: pd.DataFrame, by: list[str], value: str, band: str = MEAN_CI,
               bounds: tuple[float, float] = (-math.inf, math.inf), log: bool = False) -> pd.DataFrame:
    """Per `by` group: `value` (the mean over rows, one row per seed; with `log` the geometric mean
    of the positive values), `{value}_lo` and `{value}_hi` (the band, cut to `bounds`, the range the
    value can take: (0, 1) for an accuracy; the mean lies within them, so the cut band holds it
    whenever the whole one does), and `seeds` (rows with a value).

    >>> frame = pd.DataFrame({"g": ["a"] * 4, "snr": [1.0, 10.0, 100.0, 0.0]})
    >>> row = over_seeds(frame, ["g"], "snr", log=True).iloc[0]       # 0 has no log: left out
    >>> round(float(row["snr"]), 9), int(row["seeds"])
    (10.0, 3)
    """
    if band not in BANDS:
        raise ValueError(f"band {band!r}: allowed are {', '.join(BANDS)}")
    values = frame[value]
    if log:
        values = np.log(values.where(values > 0))
    grouped = values.groupby([frame[column] for column in by], sort=False, dropna=False)
    out = grouped.agg(["mean", "std", "count", "min", "max"]).reset_index()
    if band == MEAN_CI:
        half = stats.t_half_width(out["std"].to_numpy(float), out["count"].to_numpy(float))
        lo, hi = out["mean"] - half, out["mean"] + half
    else:
        lo, hi = out["min"], out["max"]
    centre = out["mean"]
    if log:
        centre, lo, hi = np.exp(centre), np.exp(lo), np.exp(hi)
    return out[by].assign(**{value: centre, f"{value}_lo": lo.clip(lower=bounds[0]),
                             f"{value}_hi": hi.clip(upper=bounds[1]),
                             "seeds": out["count"].astype(int)})


def centre_and_range(frame: pd.DataFrame, by: list[str], values: list[str], centre: str = "median") -> pd.DataFrame:
    """Per `by` group: each of `values` as its `centre` ("median" or "mean") over the rows (seeds),
    `{value}_min`, `{value}_max`, and `{value}_seeds`: the rows with a value (a run that diverged
    has a row of NaN at that epoch, which the centre and range skip; a sceptic's read "4 seeds"
    beside a band of no width over the one seed left)."""
    if centre not in ("median", "mean"):
        raise ValueError(f"centre {centre!r}: allowed are median, mean")
    grouped = frame.groupby(by, sort=False, dropna=False)
    out = grouped[values].agg(centre)
    for value in values:
        out[f"{value}_min"] = grouped[value].min()
        out[f"{value}_max"] = grouped[value].max()
        out[f"{value}_seeds"] = grouped[value].count()
    return out.reset_index()
