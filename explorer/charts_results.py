"""Charts of result tables: runs through their varying config keys and an outcome (parallel
coordinates), a SQL query's two columns (explorer.charts has the layout and the encodings every
chart shares)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from explorer import configdiff
from explorer.charts import (
    AXIS_SPACE,
    LEGEND_SPACE,
    PAGE_WIDTH,
    category_color,
    panel_order,
)


def parallel_coordinates(frame: pd.DataFrame, keys: list[str], outcome: str) -> alt.LayerChart:
    """One line per run through an axis per varying key and the `outcome` (W&B's parallel
    coordinates), coloured by the outcome. Each axis runs from its smallest to its largest value
    (numbers by value, other values evenly spaced in sorted order), its values written beside it
    (lists of named entries by their names, `configdiff.short_value`; the tooltip has the value)."""
    axes = [*keys, outcome]
    rows, labels = [], []
    for axis in axes:
        column = frame[axis]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = column.astype(float)
            lo, hi = values.min(), values.max()
            position = (values - lo) / (hi - lo) if hi > lo else values * 0 + 0.5
            ticks = {float(v): p for v, p in zip(values, position)}
            ends = sorted(ticks.items())
            ends = ends if len(ends) <= 8 else [ends[0], ends[-1]]   # an outcome: its range, not every run
            shown = {f"{v:.0f}" if v.is_integer() and abs(v) < 1e15 else f"{v:.3g}": p for v, p in ends}   # 8000, not 8e+03
        else:
            text = column.astype(str)
            distinct = sorted(text.unique())
            spot = {v: (i / (len(distinct) - 1) if len(distinct) > 1 else 0.5) for i, v in enumerate(distinct)}
            position = text.map(spot)
            shown = {v: spot[v] for v in distinct}
        rows.append(pd.DataFrame({"run_id": frame["run_id"], "axis": axis, "position": position,
                                  "value": column.astype(str), outcome: frame[outcome]}))
        labels += [{"axis": axis, "position": p, "label": configdiff.short_value(label)} for label, p in shown.items()]
    data = pd.concat(rows, ignore_index=True).dropna(subset=["position"])
    x = alt.X("axis:N", sort=axes, title=None, axis=alt.Axis(labelAngle=0, labelLimit=150, orient="top",
                                                              domain=False, ticks=False))
    y = alt.Y("position:Q", axis=None, scale=alt.Scale(domain=[-0.05, 1.05]))   # end labels inside the plot
    lines = alt.Chart(data).mark_line(opacity=0.6, strokeWidth=1.5).encode(
        x=x, y=y, detail="run_id:N", color=alt.Color(f"{outcome}:Q", scale=alt.Scale(scheme="viridis"),
                                                      legend=alt.Legend(title=outcome, orient="bottom")),
        tooltip=["run_id", "axis", "value"])
    rules = alt.Chart(pd.DataFrame({"axis": axes})).mark_rule(color="#888").encode(x=x)
    width = PAGE_WIDTH - 2 * AXIS_SPACE
    # A label is cut (with an ellipsis; the tooltip has the value) to the room before the next axis:
    # an estimator list's JSON ran 2,000 px to the right, and the page's fit squeezed every axis into one.
    text = alt.Chart(pd.DataFrame(labels)).mark_text(align="left", dx=4, fontSize=10,
                                                     limit=width // len(axes) - 8).encode(x=x, y=y, text="label:N")
    return alt.layer(rules, lines, text).properties(width=width, height=260)


def result_chart(frame: pd.DataFrame, x: str, y: str, color: str | None = None) -> alt.LayerChart:
    """A query's result: `y` against `x`, points joined by a line when `x` orders them (one line per
    `color` value), coloured by `color` (nominal) if given."""
    columns = list(dict.fromkeys([x, y] + ([color] if color else [])))
    data = frame[columns].dropna(subset=[x, y]).sort_values(x)
    data = data.assign(**{color: data[color].astype(str)}) if color else data
    encoding = {"x": alt.X(f"{x}:Q", title=x), "y": alt.Y(f"{y}:Q", title=y), "tooltip": columns}
    if color:
        encoding["color"] = category_color(color, panel_order(data, color), title=color, orient="bottom", columns=2)
    base = alt.Chart(data).encode(**encoding)
    chart = alt.layer(base.mark_line(opacity=0.5), base.mark_point(filled=True, size=40))
    return chart.properties(width=PAGE_WIDTH - LEGEND_SPACE - AXIS_SPACE, height=320)
