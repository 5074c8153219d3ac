"""TensorBoard's curve smoothing: a debiased exponential moving average.

    m_k = w · m_{k-1} + (1 - w) · x_k,  m_0 = 0;   smoothed_k = m_k / (1 - w^k)

(TensorBoard's `vz_line_chart2` smoothing since 2019: the division removes the pull towards 0
that a plain EMA started at 0 has.) w = 0 leaves a curve as it is; a non-finite value is passed
through and does not enter the average, as in TensorBoard.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# The sliders' help (Training and Gradients pages). The average runs over a curve's logged points, as
# TensorBoard's over its steps: where logging thins out, a point stands for more epochs.
HELP = ("TensorBoard's: a debiased exponential moving average of each run's curve, applied before the seeds "
        "are aggregated. It runs over the logged points, not epochs: where logging thins out (the default "
        "schedule logs every epoch to 50, every 2nd to 100, every 20th to 2000, then every 100th) a point "
        "stands for more epochs, and what the average holds back moves later. The Phases page's marks are "
        "computed on the curves unsmoothed.")


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """The smoothed `values` (in their order) with smoothing weight 0 <= `weight` < 1."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight {weight}: allowed is 0 <= weight < 1")
    smoothed = np.array(values, dtype=float)
    if weight == 0:
        return smoothed
    last, count = 0.0, 0
    for i, value in enumerate(smoothed):
        if not math.isfinite(value):
            continue
        count += 1
        last = last * weight + (1 - weight) * value
        smoothed[i] = last / (1 - weight ** count)
    return smoothed


def smooth(frame: pd.DataFrame, columns: list[str], by: list[str], weight: float) -> pd.DataFrame:
    """`frame` with `columns` smoothed along epoch within each `by` line (rows sorted by epoch)."""
    if weight == 0 or frame.empty:
        return frame
    frame = frame.sort_values([*by, "epoch"], kind="stable")
    lines = frame.groupby(by, sort=False, dropna=False)
    return frame.assign(**{c: lines[c].transform(lambda s: ema(s.to_numpy(), weight)) for c in columns})
