"""Spread over seeds, the seed being the unit (one value per seed and point).

`mean ± 95% CI`: the mean and Student's t interval, mean ± t(0.975, n-1) · s / √n, s the sample
standard deviation (ddof 1; ibstore.stats.t_half_width, the tables' interval too); a point with one
seed has no interval (NaN bounds).
`min-max`: the mean between the smallest and largest seed.

These are the bands the explorer draws (every curve page, the Phases page's lines, the Runs page's
group-by): a t interval is cheap at each of thousands of epochs. The claims a reader makes rest on
ibstore.stats (the `phase_stats` view: t intervals of the phase quantities over seeds, tests
against the noise floor, group comparisons), which computes its own numbers from the `phases`
view, not from these.
"""

from __future__ import annotations

import math

import pandas as pd

from ibstore import stats

MEAN_CI = "mean ± 95% CI"
MIN_MAX = "min-max"
BANDS = (MEAN_CI, MIN_MAX)


def over_seeds(frame: pd.DataFrame, by: list[str], value: str, band: str = MEAN_CI,
               bounds: tuple[float, float] = (-math.inf, math.inf)) -> pd.DataFrame:
    """Per `by` group: `value` (the mean over rows, one row per seed), `{value}_lo` and `{value}_hi`
    (the band, cut to `bounds`, the range the value can take: (0, 1) for an accuracy, (0, inf) for
    an SNR; the mean lies within them, so the cut band holds it whenever the whole one does), and
    `seeds` (rows with a value)."""
    grouped = frame.groupby(by, sort=False, dropna=False)[value]
    out = grouped.agg(["mean", "std", "count", "min", "max"]).reset_index()
    if band == MEAN_CI:
        half = stats.t_half_width(out["std"].to_numpy(float), out["count"].to_numpy(float))
        lo, hi = out["mean"] - half, out["mean"] + half
    elif band == MIN_MAX:
        lo, hi = out["min"], out["max"]
    else:
        raise ValueError(f"band {band!r}: allowed are {', '.join(BANDS)}")
    return out[by].assign(**{value: out["mean"], f"{value}_lo": lo.clip(lower=bounds[0]),
                             f"{value}_hi": hi.clip(upper=bounds[1]),
                             "seeds": out["count"].astype(int)})


def centre_and_range(frame: pd.DataFrame, by: list[str], values: list[str], centre: str = "median") -> pd.DataFrame:
    """Per `by` group: each of `values` as its `centre` ("median" or "mean") over the rows (seeds),
    `{value}_min`, `{value}_max`, and `seeds` (rows)."""
    if centre not in ("median", "mean"):
        raise ValueError(f"centre {centre!r}: allowed are median, mean")
    grouped = frame.groupby(by, sort=False, dropna=False)
    out = grouped[values].agg(centre)
    for value in values:
        out[f"{value}_min"] = grouped[value].min()
        out[f"{value}_max"] = grouped[value].max()
    out["seeds"] = grouped.size()
    return out.reset_index()
