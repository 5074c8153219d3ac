"""The information plane: I(X;T) against I(Y;T) per layer, as a grid of panels, as every run or
seed group on one plane, and as the movie's frame at one epoch (explorer.charts has the layout
and the encodings every chart shares)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from explorer.charts import (
    AXIS_SPACE,
    LEGEND_SPACE,
    MAX_COLUMNS,
    PAGE_WIDTH,
    category_color,
    epoch_color,
    facet,
    grid_panel_width,
    layer_color,
    layer_shape,
    panel_order,
    titled,
    with_layer_label,
)

INFO_X = alt.X("i_xt:Q", title="I(X;T) [bits]")
INFO_Y = alt.Y("i_yt:Q", title="I(Y;T) [bits]")
COLOR_BY = ("epoch", "layer")
MIN_PLANE = 250          # an information plane narrower than this is hard to read


def auto_columns(page_width: int) -> int:
    """As many information planes per row as fit `page_width` at MIN_PLANE px or more each (1 in a
    narrow window, 2 at 1280 px, 4 at 1920 px), at most MAX_COLUMNS."""
    return max(1, min(MAX_COLUMNS, (page_width - LEGEND_SPACE) // (MIN_PLANE + AXIS_SPACE)))


def infoplane_grid(frame: pd.DataFrame, columns: int = 2, shared_axes: bool = True, spread: str | None = None,
                   title: str | None = None, color_by: str = "epoch", page_width: int = PAGE_WIDTH) -> alt.FacetChart:
    """One square information plane per panel (as in the papers), `columns` to a row within
    `page_width` px: I(X;T) against I(Y;T), points shaped by layer and coloured
    by epoch (each epoch's layers joined by a faint line) or by layer (each layer's path over the
    epochs drawn in its colour). `spread` ("min-max" or "IQR") draws the spread over seeds from
    columns i_xt_min/max or i_xt_q1/q3 (and the same for i_yt)."""
    columns = min(columns, MAX_COLUMNS)
    frame = with_layer_label(frame)
    keep = ["panel", "epoch", "layer", "layer_label", "i_xt", "i_yt"]
    lo, hi = {"min-max": ("min", "max"), "IQR": ("q1", "q3"), None: (None, None)}[spread]
    if lo:
        for axis in ("i_xt", "i_yt"):
            frame = frame.assign(**{f"{axis}_lo": frame[f"{axis}_{lo}"], f"{axis}_hi": frame[f"{axis}_{hi}"]})
            keep += [f"{axis}_lo", f"{axis}_hi"]
    if "seeds" in frame:
        keep.append("seeds")
    data = frame[keep]
    tooltip = [c for c in ("panel", "epoch", "layer_label", "i_xt", "i_yt", "seeds") if c in data]
    width = grid_panel_width(columns, page_width)
    base = alt.Chart().properties(width=width, height=width)
    if color_by == "layer":
        color = layer_color(data)
        path = base.mark_line(opacity=0.35, strokeWidth=1).encode(x=INFO_X, y=INFO_Y, color=color,
                                                                  detail="layer:Q", order="epoch:Q")
    else:
        color = epoch_color(data["epoch"].max())
        path = base.mark_line(color="gray", opacity=0.15, strokeWidth=0.8).encode(
            x=INFO_X, y=INFO_Y, detail="epoch:Q", order="layer:Q")
    layers = [
        path,
        base.mark_point(filled=True, size=28, opacity=0.85).encode(
            x=INFO_X, y=INFO_Y, color=color, shape=layer_shape(data), tooltip=tooltip),
    ]
    if lo:
        layers[1:1] = [
            base.mark_rule(opacity=0.2).encode(x="i_xt_lo:Q", x2="i_xt_hi:Q", y=INFO_Y, color=color),
            base.mark_rule(opacity=0.2).encode(x=INFO_X, y="i_yt_lo:Q", y2="i_yt_hi:Q", color=color),
        ]
    return facet(alt.layer(*layers, data=data), data, columns, width, shared_axes, title,
                  page_width - AXIS_SPACE - 40)


def infoplane_overlay(frame: pd.DataFrame, title: str | None = None,
                      color_domain: list[str] | None = None) -> alt.LayerChart:
    """Every panel's (run's or seed group's) layers on one information plane, one colour per seed
    group (`group`, over `color_domain`: the same colour as on the other pages), one marker shape
    per layer; each layer's path over the epochs drawn in its group's colour."""
    data = with_layer_label(frame)[["panel", "group", "epoch", "layer", "layer_label", "i_xt", "i_yt"]]
    data = data.assign(panel_layer=data["panel"] + "/" + data["layer"].astype(str))   # one path per run and layer
    color = category_color("group", color_domain or panel_order(data, "group"), orient="bottom", columns=2)
    base = alt.Chart(data)
    paths = base.mark_line(opacity=0.45, strokeWidth=1).encode(
        x=INFO_X, y=INFO_Y, color=color, detail="panel_layer:N", order="epoch:Q")
    points = base.mark_point(filled=True, size=24, opacity=0.8).encode(
        x=INFO_X, y=INFO_Y, color=color, shape=layer_shape(data),
        tooltip=["panel", "epoch", "layer_label", "i_xt", "i_yt"])
    chart = alt.layer(paths, points).properties(width=PAGE_WIDTH - LEGEND_SPACE - AXIS_SPACE, height=420)
    return titled(chart, title)


def infoplane_at_epoch(frame: pd.DataFrame, epoch: int, title: str | None = None,
                       color_by: str = "layer") -> alt.LayerChart:
    """The movie's frame: every layer's trajectory faint, its point at `epoch` large, the layers
    at that epoch joined by a line; the trajectories coloured by layer or by epoch."""
    data = with_layer_label(frame)[["epoch", "layer", "layer_label", "i_xt", "i_yt"]]
    now = data[data["epoch"] == epoch]
    colors = layer_color(data)
    x = alt.X("i_xt:Q", title="I(X;T) [bits]", scale=alt.Scale(domain=_domain(data["i_xt"])))
    y = alt.Y("i_yt:Q", title="I(Y;T) [bits]", scale=alt.Scale(domain=_domain(data["i_yt"])))
    if color_by == "epoch":   # on the fill channel: the colour channel (and its legend) stays the layers'
        trajectories = alt.Chart(data).mark_point(filled=True, size=14, opacity=0.35).encode(
            x=x, y=y, fill=epoch_color(data["epoch"].max(), alt.Fill))
    else:
        trajectories = alt.Chart(data).mark_line(opacity=0.3).encode(x=x, y=y, color=colors,
                                                                     detail="layer:Q", order="epoch:Q")
    link = alt.Chart(now).mark_line(color="black", opacity=0.5).encode(x=x, y=y, order="layer:Q")
    points = alt.Chart(now).mark_point(filled=True, size=160, stroke="black", strokeWidth=0.5).encode(
        x=x, y=y, color=colors, shape=layer_shape(data), tooltip=["layer_label", "i_xt", "i_yt"])
    chart = alt.layer(trajectories, link, points)
    chart = chart.properties(width=PAGE_WIDTH - 2 * LEGEND_SPACE - AXIS_SPACE, height=380)
    return titled(chart, title or f"epoch {epoch}", PAGE_WIDTH - 2 * LEGEND_SPACE)


def _domain(values: pd.Series) -> list[float]:
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.05 or 0.1
    return [lo - pad, hi + pad]
