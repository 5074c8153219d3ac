"""Charts of result tables: runs through their varying config keys and an outcome (parallel
coordinates; explorer.charts has the layout and the encodings every chart shares)."""

from __future__ import annotations

import json
import math
import sys
import textwrap

import altair as alt
import numpy as np
import pandas as pd

from explorer.charts import AXIS_SPACE, CHAR_PX, PAGE_WIDTH
from ibstore import configdiff, stats


MAX_VALUE_LABELS = 8     # a config key with more values than this gets round ticks, not a label per value
LINE_HEIGHT = 12         # px, of an axis name's lines
LABEL_GAP = 0.05         # of an axis' length (236 px): a 10 px label's height and a little
ROUND_STEPS = 5          # about this many steps between round ticks (at most 7 after widening to them)
MISSING = "(missing)"    # a run whose config lacks the key, as the Config page writes it (ibstore.configdiff)
MISSING_ROOM = 0.1       # of a numeric key's axis, below its values: where its runs without a value are


def parallel_coordinates(frame: pd.DataFrame, keys: list[str], outcome: str) -> alt.LayerChart:
    """One line per run through an axis per varying key and the `outcome` (W&B's parallel
    coordinates), coloured by the outcome. A key's axis runs from its smallest to its largest value
    (numbers by value, other values evenly spaced in sorted order), runs whose config lacks the key
    at its bottom as MISSING (`text_axis`, `with_missing_below`), its values written beside it
    (lists of named entries by their names, `configdiff.short_value`; the tooltip has the value); the
    outcome's, and a numeric key's of many values, carry round ticks (`round_ticks`). The axes'
    names wrap to the room between them, the legend's title is whole."""
    axes = [*keys, outcome]
    rows, labels = [], []
    for axis in axes:
        column = frame[axis]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            position, shown = numeric_axis(column.astype(float), measured=axis == outcome)
            if axis != outcome and column.isna().any():
                position, shown = with_missing_below(position, shown, column.isna())
        else:
            position, shown = text_axis(column)
        rows.append(pd.DataFrame({"run_id": frame["run_id"], "axis": axis, "position": position,
                                  "value": as_text(column), outcome: frame[outcome]}))
        labels += [{"axis": axis, "position": p, "label": configdiff.short_value(label)} for label, p in shown.items()]
    data = pd.concat(rows, ignore_index=True).dropna(subset=["position"])
    width = PAGE_WIDTH - 2 * AXIS_SPACE
    room = width // len(axes) - 8       # px between two axes
    names, name_lines = wrapped_names(axes, room)
    # a label's lines run down from its first: each name ends its block of `name_lines` lines, raised to
    # end where a one-line name does
    x = alt.X("axis:N", sort=axes, title=None,
              axis=alt.Axis(labelAngle=0, labelExpr=names, labelLimit=room, labelLineHeight=LINE_HEIGHT,
                            labelPadding=2 + LINE_HEIGHT * (name_lines - 1), orient="top", domain=False,
                            ticks=False))
    y = alt.Y("position:Q", axis=None, scale=alt.Scale(domain=[-0.05, 1.05]))   # end labels inside the plot
    lines = alt.Chart(data).mark_line(opacity=0.6, strokeWidth=1.5).encode(
        x=x, y=y, detail="run_id:N", color=alt.Color(f"{outcome}:Q", scale=alt.Scale(scheme="viridis"),
                                                      legend=alt.Legend(title=outcome, orient="bottom",
                                                                        titleLimit=width)),
        tooltip=["run_id", "axis", "value"])
    rules = alt.Chart(pd.DataFrame({"axis": axes})).mark_rule(color="#888").encode(x=x)
    # A label is cut (with an ellipsis; the tooltip has the value) to the room before the next axis:
    # an estimator list's JSON ran 2,000 px to the right, and the page's fit squeezed every axis into one.
    text = alt.Chart(pd.DataFrame(labels)).mark_text(align="left", dx=4, fontSize=10, limit=room).encode(
        x=x, y=y, text="label:N")
    return alt.layer(rules, lines, text).properties(width=width, height=260)


def as_text(column: pd.Series) -> pd.Series:
    """Each value as text, a missing one (NULL: the run's config lacks the key) as MISSING. Under
    pandas 3, `astype(str)` keeps a missing value NaN, and sorting the texts then failed."""
    return column.astype(str).where(column.notna(), MISSING)


def text_axis(column: pd.Series) -> tuple[pd.Series, dict[str, float]]:
    """Each value's position (0 to 1) on the axis of a key that is not numeric, and the axis' labels
    -> their positions: MISSING at the bottom where some run lacks the key, then the values as text,
    sorted, evenly spaced."""
    text = as_text(column)
    missing = [MISSING] if column.isna().any() else []
    distinct = missing + sorted(set(text[column.notna()]))
    spot = {value: (i / (len(distinct) - 1) if len(distinct) > 1 else 0.5) for i, value in enumerate(distinct)}
    return text.map(spot), spot


def with_missing_below(position: pd.Series, labels: dict[str, float],
                       missing: pd.Series) -> tuple[pd.Series, dict[str, float]]:
    """A numeric key's positions and labels (`numeric_axis`) moved up into the top 1 - MISSING_ROOM of
    its axis, and its runs where `missing` (no value) at the bottom as MISSING: left out, their lines
    had skipped the axis, drawn as if they had a value there."""
    def raised(spot):
        return MISSING_ROOM + (1 - MISSING_ROOM) * spot
    return (raised(position).mask(missing, 0.0),
            {MISSING: 0.0, **{label: raised(spot) for label, spot in labels.items()}})


def numeric_axis(values: pd.Series, measured: bool) -> tuple[pd.Series, dict[str, float]]:
    """Each value's position (0 to 1) on its axis, and the axis' labels -> their positions. A
    config key's values (MAX_VALUE_LABELS at most) are each labelled, whole numbers whole (8000, not
    8e+03); a `measured` outcome, or a key of more values, gets `round_ticks` over a range widened
    to them: its runs' own values (0.0639, 0.00498, -0.006, -0.00838) ran into one another."""
    # at 12 decimals (ibstore.stats.DECIMALS): a layer at its ceiling in every run has a compression
    # of 0 +- 1e-16, whose round ticks were 17 decimals long; and finite values only
    with np.errstate(over="ignore"):     # rounding multiplies by 10^12: a value past 1e296 needs none
        rounded = values.round(stats.DECIMALS)
    values = rounded.where(np.isfinite(rounded), values).where(np.isfinite(values))
    lo, hi = values.min(), values.max()
    distinct = sorted(set(values.dropna()))
    if hi > lo and (measured or len(distinct) > MAX_VALUE_LABELS):
        ticks = round_ticks(lo, hi)
        lo, hi = min(ticks.values()), max(ticks.values())
    else:
        ticks = {f"{v:.0f}" if v.is_integer() and abs(v) < 1e15 else f"{v:.3g}": v for v in distinct}
    if hi == lo:       # one value: the middle of its axis
        return values * 0 + 0.5, dict.fromkeys(ticks, 0.5)

    def position(value):    # halves: hi - lo overflows near float64's limits
        return (value / 2 - lo / 2) / (hi / 2 - lo / 2)
    return position(values), spaced({label: position(value) for label, value in ticks.items()})


def spaced(labels: dict[str, float]) -> dict[str, float]:
    """The labels (-> position) at least LABEL_GAP above the one kept below them, from the bottom up:
    a key's values 200, 300 and 500 beside 8000 were written over one another (the tooltip has them)."""
    kept: dict[str, float] = {}
    last = -math.inf
    for label, position in sorted(labels.items(), key=lambda item: item[1]):
        if position - last >= LABEL_GAP:
            kept[label] = last = position
    return kept


def round_ticks(lo: float, hi: float) -> dict[str, float]:
    """Label -> value of ticks from at or below `lo` to at or above `hi` (lo < hi), a step of 1, 2 or
    5 times a power of ten apart, about ROUND_STEPS steps, written with the step's decimals."""
    rough = hi / ROUND_STEPS - lo / ROUND_STEPS     # hi - lo overflows near float64's limits
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    decimals = max(0, -math.floor(math.log10(step)))
    # rounded, so that 1.0 / 0.1 = 10.000000000000002 does not add a tick past 1
    first, last = math.floor(round(lo / step, 9)), math.ceil(round(hi / step, 9))
    ticks = [k * step if math.isfinite(k * step) else math.copysign(sys.float_info.max, k)   # past float64's limits
             for k in range(first, last + 1)]
    return {f"{tick:.{decimals}f}" if abs(tick) < 1e15 else f"{tick:.3g}": tick for tick in ticks}


def wrapped_names(names: list[str], room: int) -> tuple[str, int]:
    """A Vega label expression writing each of `names` on lines of at most `room` px (textwrap at
    CHAR_PX per character; a word longer than a line stays whole, cut by the label limit), padded
    with empty lines before it to the longest's number of lines, and that number: an axis' name is
    read whole, its unit at its end included."""
    wrapped = {name: textwrap.wrap(name, max(room // CHAR_PX, 8), break_long_words=False) or [name]
               for name in names}
    lines = max(len(parts) for parts in wrapped.values())
    # JSON strings and arrays are Vega expression literals
    return "".join(f"datum.value === {json.dumps(name)} ? {json.dumps([''] * (lines - len(parts)) + parts)} : "
                   for name, parts in wrapped.items()) + "datum.value", lines
