"""The SQL page's chart of a query's result: `y` against `x` as points, or as lines over epochs.

Rows are joined by a line only where that draws a curve: `x` is the epoch and each series (a run
or seed group the result names, and the colour) has one row per epoch. A line through the rows of
any other result (a value per run and layer against the layer, say) zig-zagged between runs.
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

from explorer.charts import AXIS_SPACE, LEGEND_SPACE, PAGE_WIDTH, TABLEAU10, category_color, panel_order

TIME_AXIS = "epoch"
SERIES_KEYS = ("run_id", "group_id")   # a result's runs or seed groups, each a curve over epochs
UNSELECTED = "#cfcfcf"   # past ten values, those not among `first_colours`


MAX_TOOLTIP_COLUMNS = 12


def _tellable(column: pd.Series) -> bool:
    """A column a tooltip can show as text: numbers, booleans, text (not lists, structs or bytes)."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return True
    return bool(column.map(lambda value: value is None or isinstance(value, str)
                           or (isinstance(value, float) and math.isnan(value))).all())


def query_chart(frame: pd.DataFrame, x: str, y: str, colour: str | None = None,
                first_colours: list[str] = ()) -> alt.Chart:
    """`y` against `x`, coloured by the column `colour`; `first_colours` are values of it that take
    the first colours in that order, present or not (the selection's seed groups, coloured as every
    other page colours them), the result's other values the next ones, or, where they would make
    more than ten and change the palette, grey (UNSELECTED)."""
    series = [c for c in dict.fromkeys([*SERIES_KEYS, colour]) if c in frame.columns and c not in (x, y)]
    # the tooltip names what tells two points apart: a result over two estimators has a point of each
    # at one layer and group, alike but for its `estimator` and `params` columns
    told = [c for c in frame.columns if c not in (x, y, *series) and _tellable(frame[c])][:MAX_TOOLTIP_COLUMNS]
    data = frame[list(dict.fromkeys([x, y, *series, *told]))].dropna(subset=[x, y])
    # categories, not a scale; NULL named, since a NaN among the names is no Vega-Lite domain
    data = data.assign(**{key: data[key].where(data[key].notna(), "NULL").astype(str) for key in [*series, *told]})
    # fields by keyword, not Altair's shorthand, which reads "a:b" as field a of type b (an attacker's
    # `SELECT 1 AS "a:b"` failed the page with a traceback)
    encoding = {"x": alt.X(field=field(x), type="quantitative", title=x, axis=number_axis(data[x])),
                "y": alt.Y(field=field(y), type="quantitative", title=y, axis=number_axis(data[y])),
                "tooltip": [alt.Tooltip(field=field(column), title=column,
                                        type="quantitative" if column in (x, y) else "nominal")
                            for column in data.columns]}
    if colour:
        present = panel_order(data, colour)
        domain = list(dict.fromkeys([*first_colours, *present]))
        colours = None
        if first_colours and len(first_colours) <= len(TABLEAU10) < len(domain):
            colours = [*TABLEAU10[:len(first_colours)], *[UNSELECTED] * (len(domain) - len(first_colours))]
        encoding["color"] = category_color(field(colour), domain, title=colour, orient="bottom", columns=2,
                                           shown=[value for value in domain if value in set(present)]
                                           if len(domain) > len(present) else None, colours=colours)
    chart = alt.Chart(data).encode(**encoding)
    if x == TIME_AXIS and not data.duplicated([*series, x]).any():
        chart = chart.mark_line(point=alt.OverlayMarkDef(filled=True, size=16)).encode(
            detail=[alt.Detail(field=field(key), type="nominal") for key in series])
    else:
        chart = chart.mark_point(filled=True, size=40)
    return chart.properties(width=PAGE_WIDTH - LEGEND_SPACE - AXIS_SPACE, height=320)


def field(column: str) -> str:
    """A result column as a Vega-Lite field: ".", "[" and "]" escaped, which it reads as a path into
    nested data (DuckDB names an unaliased `avg(m.peak)` so, and its chart drew nothing)."""
    return column.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[").replace("]", "\\]")


def number_axis(values: pd.Series) -> alt.Axis:
    """Whole-number ticks for whole numbers (a layer, an epoch, a count: no tick at layer 0.5).
    Told from the values, not the type: an integer column with NULLs reaches pandas as floats."""
    if values.dropna().mod(1).eq(0).all():
        return alt.Axis(tickMinStep=1, format="d")
    return alt.Axis()
