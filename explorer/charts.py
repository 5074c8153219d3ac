"""Altair chart builders: pure functions from DataFrames to charts (no Streamlit, no SQL).

Frames carry a `panel` column (a run's or seed group's title, from configdiff.labels)
where a chart has one panel or line per run, and may carry a `group` column (the title of
the run's seed group) to colour the runs of one group alike.

Every chart fits in PAGE_WIDTH pixels, legends included: the explorer's main column is about
that wide in a 1280 px window with the sidebar open (measured in tests/test_browser.py), so
nothing is clipped or scrolls sideways. Legends list every entry (no symbol limit) with
opaque swatches, even where the marks themselves are translucent.
"""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

alt.data_transformers.disable_max_rows()  # a 12-panel grid holds tens of thousands of points

PAGE_WIDTH = 820
AXIS_SPACE = 60          # a y axis with its labels and title, beside a panel
LEGEND_SPACE = 130       # a legend at the right of a chart
LINE_POINTS = 500        # points per line drawn on the page, at most
MAX_COLUMNS = 4          # more panels per row than this would be too narrow to read at 1280 px
INFO_X = alt.X("i_xt:Q", title="I(X;T) [bits]")
INFO_Y = alt.Y("i_yt:Q", title="I(Y;T) [bits]")
GRADIENT_QUANTITIES = {"grad_mean_norm": "‖mean of gradient‖", "grad_std_norm": "‖std of gradient‖",
                       "snr": "SNR (mean/std)", "weight_norm": "‖W‖"}
COLOR_BY = ("epoch", "layer")
# tick labels 0, 1, 2, 5, 10, ..., 500, 1k, 2k, ..., 1M (Vega's "~s" format picks one SI prefix
# for a whole symlog legend and writes 100 as "0k")
COUNT_LABEL = ("datum.value >= 1e6 ? format(datum.value / 1e6, '~g') + 'M' : datum.value >= 1000 ? "
               "format(datum.value / 1000, '~g') + 'k' : format(datum.value, '~g')")
# distinct hues for up to 10 lines; beyond that an ordered ramp (neighbours in the legend's
# order get neighbouring colours, which reads better than 20 paired look-alike hues)
CATEGORICAL = "tableau10"
ORDERED = "turbo"


def _panels(frame: pd.DataFrame, field: str = "panel") -> list[str]:
    return list(dict.fromkeys(frame[field]))


def legend(entries: int, orient: str = "right", columns: int = 1, **options) -> alt.Legend:
    """A legend that shows all `entries` with opaque swatches (Vega drops entries beyond its
    symbol limit and draws swatches with the mark's opacity), its labels cut to fit its place
    (beside the chart: LEGEND_SPACE; below: the page width shared by `columns`)."""
    room = LEGEND_SPACE - 30 if orient in ("right", "left") else (PAGE_WIDTH - AXIS_SPACE - 60) // columns - 40
    return alt.Legend(symbolLimit=max(entries, 1), symbolOpacity=1, labelLimit=room, orient=orient,
                      columns=columns, **options)


CHAR_PX = 7             # the mean width of a character of a 12-13 px title or header (for wrapping)


def wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most about `width` pixels, broken after the commas between its parts
    ("initial_bias=0.2, activation_fn=relu, seed=1"), a part longer than a line broken within:
    a title wraps instead of being cut."""
    per_line = max(width // CHAR_PX, 8)
    parts = [chunk for part in text.split(", ") for chunk in
             ([part[i:i + per_line] for i in range(0, len(part), per_line)] or [part])]
    lines, line = [], ""
    for part in parts:
        candidate = f"{line}, {part}" if line else part
        if line and len(candidate) * CHAR_PX > width:
            lines.append(line + ",")
            line = part
        else:
            line = candidate
    return lines + [line]


def titled(chart, title: str | None, width: int = PAGE_WIDTH - AXIS_SPACE - 40):
    """`chart` with `title` wrapped to `width` pixels (a title wider than the chart would widen it;
    it is centred over the plots, which start after the y axis)."""
    if not title:
        return chart
    lines = wrap(title, width)
    return chart.properties(title=alt.TitleParams(lines if len(lines) > 1 else lines[0]))


def wrapped_labels(width: int) -> str:
    """A Vega label expression that puts each comma-separated part of a label, its seed count
    "(3 seeds)" and its badge "[dead]" on lines of their own when the label is wider than `width`
    pixels (facet headers: a panel's varying keys and badge; a badge must never be cut off)."""
    parts = "replace(replace(datum.value, ' (', ', ('), ' [', ', [')"
    return f"length(datum.value) * {CHAR_PX} > {width} ? split({parts}, ', ') : datum.value"


def _category_color(field: str, domain: list, title: str | None = None, **legend_options) -> alt.Color:
    scheme = CATEGORICAL if len(domain) <= 10 else ORDERED
    return alt.Color(f"{field}:N", title=title, sort=domain, scale=alt.Scale(domain=domain, scheme=scheme),
                     legend=legend(len(domain), **legend_options))


def epoch_ticks(max_epoch: float, with_zero: bool = True, steps: tuple[int, ...] = (1, 2, 5)) -> list[int]:
    """Tick values for a logarithmic epoch axis: 1, 2, 5, 10, 20, 50, ... up to the first tick at
    or beyond `max_epoch` (and 0 first for a symlog axis)."""
    ticks = [0] if with_zero else []
    decade = 1
    while True:
        for step in steps:
            ticks.append(step * decade)
            if step * decade >= max_epoch:
                return ticks
        decade *= 10


NARROW = 300            # px: an epoch axis narrower than this gets ticks at powers of ten only


def epoch_x(max_epoch: float, title: str = "epoch", width: int = PAGE_WIDTH) -> alt.X:
    """A symmetric-log epoch axis (epoch 0, the initial network, stays on it) with ticks at
    0, 1, 2, 5, 10, 20, 50, ... (0, 1, 10, 100, ... on an axis narrower than NARROW px, where
    "500" and "1k" would run together) labelled 1k, 2k, ... from a thousand on."""
    ticks = epoch_ticks(max_epoch, steps=(1,) if width < NARROW else (1, 2, 5))
    return alt.X("epoch:Q", title=title,
                 scale=alt.Scale(type="symlog", constant=1, domain=[0, ticks[-1]], nice=False),
                 axis=alt.Axis(values=ticks, labelExpr=COUNT_LABEL, labelOverlap="greedy", grid=True))


def _epoch_color(max_epoch: float, channel: type = alt.Color) -> alt.Color | alt.Fill:
    """Epoch on a viridis symlog scale from 0 to the runs' last epoch (not the next power of ten),
    legend ticks at 0, 1, 10, 100, ... and that last epoch, the title clear of the top label."""
    last = int(max_epoch)
    ticks = [t for t in epoch_ticks(last, steps=(1,)) if t < last] + [last]
    return channel("epoch:Q", scale=alt.Scale(scheme="viridis", type="symlog", constant=1, domain=[0, last]),
                   legend=alt.Legend(values=ticks, labelExpr=COUNT_LABEL, labelOverlap="greedy", titlePadding=12,
                                     labelSeparation=4))


def with_layer_label(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with `layer_label`, the one way every page names a layer: its number and its name
    ("0 · dense_0", "5 · output"; the number alone where the frame has no `layer_name`)."""
    label = frame["layer"].astype(int).astype(str)
    if "layer_name" in frame:
        label = label + " · " + frame["layer_name"].astype(str)
    return frame.assign(layer_label=label)


def _layer_labels(frame: pd.DataFrame) -> list[str]:
    return list(frame.sort_values("layer", kind="stable")["layer_label"].drop_duplicates())


def _layer_color(frame: pd.DataFrame) -> alt.Color:
    return _category_color("layer_label", _layer_labels(frame), title="layer")


def _ordered_layer_color(frame: pd.DataFrame) -> alt.Color:
    """Layers on an ordered ramp (first to last layer), for line charts of many quantities."""
    labels = _layer_labels(frame)
    return alt.Color("layer_label:O", title="layer", sort=labels, scale=alt.Scale(scheme="plasma", domain=labels),
                     legend=legend(len(labels)))


def _layer_shape(frame: pd.DataFrame) -> alt.Shape:
    names = _layer_labels(frame)
    return alt.Shape("layer_label:N", title="layer", sort=names, scale=alt.Scale(domain=names),
                     legend=legend(len(names)))


def grid_panel_width(columns: int, page_width: int = PAGE_WIDTH) -> int:
    """Width of one panel so that `columns` panels, their axes and a legend fit in `page_width`."""
    return max(int((page_width - LEGEND_SPACE) / columns) - AXIS_SPACE, 100)


MIN_PLANE = 250          # an information plane narrower than this is hard to read


def auto_columns(page_width: int) -> int:
    """As many information planes per row as fit `page_width` at MIN_PLANE px or more each (1 in a
    narrow window, 2 at 1280 px, 4 at 1920 px), at most MAX_COLUMNS."""
    return max(1, min(MAX_COLUMNS, (page_width - LEGEND_SPACE) // (MIN_PLANE + AXIS_SPACE)))


def _facet(chart: alt.LayerChart | alt.Chart, frame: pd.DataFrame, columns: int, width: int,
           shared: bool = True, title: str | None = None, title_width: int = PAGE_WIDTH - AXIS_SPACE - 40
           ) -> alt.FacetChart:
    header = alt.Header(labelFontSize=12, labelLimit=width, labelFontWeight="bold", labelExpr=wrapped_labels(width))
    faceted = chart.facet(facet=alt.Facet("panel:N", sort=_panels(frame), title=None, header=header),
                          columns=columns)
    if not shared:
        faceted = faceted.resolve_scale(x="independent", y="independent")
    return titled(faceted, title, title_width)


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
        color = _layer_color(data)
        path = base.mark_line(opacity=0.35, strokeWidth=1).encode(x=INFO_X, y=INFO_Y, color=color,
                                                                  detail="layer:Q", order="epoch:Q")
    else:
        color = _epoch_color(data["epoch"].max())
        path = base.mark_line(color="gray", opacity=0.15, strokeWidth=0.8).encode(
            x=INFO_X, y=INFO_Y, detail="epoch:Q", order="layer:Q")
    layers = [
        path,
        base.mark_point(filled=True, size=28, opacity=0.85).encode(
            x=INFO_X, y=INFO_Y, color=color, shape=_layer_shape(data), tooltip=tooltip),
    ]
    if lo:
        layers[1:1] = [
            base.mark_rule(opacity=0.2).encode(x="i_xt_lo:Q", x2="i_xt_hi:Q", y=INFO_Y, color=color),
            base.mark_rule(opacity=0.2).encode(x=INFO_X, y="i_yt_lo:Q", y2="i_yt_hi:Q", color=color),
        ]
    return _facet(alt.layer(*layers, data=data), data, columns, width, shared_axes, title,
                  page_width - AXIS_SPACE - 40)


def infoplane_overlay(frame: pd.DataFrame, title: str | None = None,
                      color_domain: list[str] | None = None) -> alt.LayerChart:
    """Every panel's (run's or seed group's) layers on one information plane, one colour per seed
    group (`group`, over `color_domain`: the same colour as on the other pages), one marker shape
    per layer; each layer's path over the epochs drawn in its group's colour."""
    data = with_layer_label(frame)[["panel", "group", "epoch", "layer", "layer_label", "i_xt", "i_yt"]]
    data = data.assign(panel_layer=data["panel"] + "/" + data["layer"].astype(str))   # one path per run and layer
    color = _category_color("group", color_domain or _panels(data, "group"), orient="bottom", columns=2)
    base = alt.Chart(data)
    paths = base.mark_line(opacity=0.45, strokeWidth=1).encode(
        x=INFO_X, y=INFO_Y, color=color, detail="panel_layer:N", order="epoch:Q")
    points = base.mark_point(filled=True, size=24, opacity=0.8).encode(
        x=INFO_X, y=INFO_Y, color=color, shape=_layer_shape(data),
        tooltip=["panel", "epoch", "layer_label", "i_xt", "i_yt"])
    chart = alt.layer(paths, points).properties(width=PAGE_WIDTH - LEGEND_SPACE - AXIS_SPACE, height=420)
    return titled(chart, title)


def infoplane_at_epoch(frame: pd.DataFrame, epoch: int, title: str | None = None,
                       color_by: str = "layer") -> alt.LayerChart:
    """The movie's frame: every layer's trajectory faint, its point at `epoch` large, the layers
    at that epoch joined by a line; the trajectories coloured by layer or by epoch."""
    data = with_layer_label(frame)[["epoch", "layer", "layer_label", "i_xt", "i_yt"]]
    now = data[data["epoch"] == epoch]
    layer_color = _layer_color(data)
    x = alt.X("i_xt:Q", title="I(X;T) [bits]", scale=alt.Scale(domain=_domain(data["i_xt"])))
    y = alt.Y("i_yt:Q", title="I(Y;T) [bits]", scale=alt.Scale(domain=_domain(data["i_yt"])))
    if color_by == "epoch":   # on the fill channel: the colour channel (and its legend) stays the layers'
        trajectories = alt.Chart(data).mark_point(filled=True, size=14, opacity=0.35).encode(
            x=x, y=y, fill=_epoch_color(data["epoch"].max(), alt.Fill))
    else:
        trajectories = alt.Chart(data).mark_line(opacity=0.3).encode(x=x, y=y, color=layer_color,
                                                                     detail="layer:Q", order="epoch:Q")
    link = alt.Chart(now).mark_line(color="black", opacity=0.5).encode(x=x, y=y, order="layer:Q")
    points = alt.Chart(now).mark_point(filled=True, size=160, stroke="black", strokeWidth=0.5).encode(
        x=x, y=y, color=layer_color, shape=_layer_shape(data), tooltip=["layer_label", "i_xt", "i_yt"])
    chart = alt.layer(trajectories, link, points)
    chart = chart.properties(width=PAGE_WIDTH - 2 * LEGEND_SPACE - AXIS_SPACE, height=380)
    return titled(chart, title or f"epoch {epoch}", PAGE_WIDTH - 2 * LEGEND_SPACE)


def _domain(values: pd.Series) -> list[float]:
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.05 or 0.1
    return [lo - pad, hi + pad]


def training_curves(frame: pd.DataFrame, band: bool = False, title: str | None = None,
                    color_field: str = "panel", color_domain: list[str] | None = None) -> alt.VConcatChart:
    """Accuracy (axis 0..1) and loss (log axis: an early spike does not flatten the rest) against
    epoch, a line per panel and split, coloured by `color_field` (`group` colours a seed group's
    runs alike); with `band`, the spread over seeds from accuracy_min/max and loss_min/max."""
    domain = color_domain or _panels(frame, color_field)
    color = _category_color(color_field, domain, orient="bottom", columns=2)
    width = (PAGE_WIDTH - 2 * AXIS_SPACE) // 2 - 10
    charts = []
    for measure, scale in (("accuracy", alt.Scale(domain=[0, 1])), ("loss", alt.Scale(type="log"))):
        columns = list(dict.fromkeys(["panel", color_field, "split", "epoch", measure]
                                     + ([f"{measure}_min", f"{measure}_max"] if band else [])))
        data = frame[columns]
        if measure == "loss":   # a log axis cannot show zero or negative losses
            data = data[data["loss"] > 0]
        line = alt.Chart(data).mark_line(strokeWidth=1.5).encode(
            x=alt.X("epoch:Q"), y=alt.Y(f"{measure}:Q", scale=scale, title=measure), color=color,
            detail="panel:N", strokeDash=alt.StrokeDash("split:N", sort=["train", "test"],
                                                        legend=legend(2, orient="top", direction="horizontal")),
            tooltip=["panel", "split", "epoch", measure])
        layers = [line]
        if band:
            layers.insert(0, alt.Chart(data).mark_area(opacity=0.15).encode(
                x="epoch:Q", y=alt.Y(f"{measure}_min:Q", scale=scale, title=measure), y2=f"{measure}_max:Q",
                color=color, detail="split:N"))
        charts.append(alt.layer(*layers).properties(width=width, height=280, title=measure))
    chart = alt.hconcat(*charts)
    return titled(chart, title)


def accuracy_grid(frame: pd.DataFrame, columns: int = 2, title: str | None = None) -> alt.FacetChart:
    """The seed notebook's accuracy grid: one panel per run or seed group, train and test accuracy
    against epoch on a 0..1 axis."""
    columns = min(columns, MAX_COLUMNS)
    data = frame[["panel", "split", "epoch", "accuracy"]]
    width = grid_panel_width(columns)
    splits = [s for s in ("train", "test") if s in set(data["split"])] or _panels(data, "split")
    chart = alt.Chart().mark_line(strokeWidth=1.2).encode(
        x=alt.X("epoch:Q"), y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
        color=_category_color("split", splits, title="split"),
        tooltip=["panel", "split", "epoch", "accuracy"],
    ).properties(width=width, height=160)
    return _facet(alt.layer(chart, data=data), data, columns, width, title=title)


def gradient_chart(frame: pd.DataFrame, title: str | None = None) -> alt.FacetChart:
    """Per layer, the norms of the gradient's mean and std, their ratio (SNR) and the weight norm
    against epoch: one panel per quantity in a 2 x 2 grid, log value axis (values <= 0 cannot be
    drawn on it and are left out), symmetric-log epoch axis."""
    long = with_layer_label(frame).melt(id_vars=["epoch", "layer", "layer_label"],
                                        value_vars=list(GRADIENT_QUANTITIES), var_name="quantity", value_name="value")
    long = long[long["value"] > 0]
    long = long.assign(quantity=long["quantity"].map(GRADIENT_QUANTITIES))
    width = grid_panel_width(2)
    chart = alt.Chart(long).mark_line(strokeWidth=1.2).encode(
        x=epoch_x(frame["epoch"].max(), width=width),
        y=alt.Y("value:Q", scale=alt.Scale(type="log"), title=None),
        color=_ordered_layer_color(long), detail="layer:O",
        tooltip=["quantity", "layer_label", "epoch", "value"],
    ).properties(width=width, height=170)
    faceted = chart.facet(facet=alt.Facet("quantity:N", sort=list(GRADIENT_QUANTITIES.values()), title=None),
                          columns=2)
    faceted = faceted.resolve_scale(y="independent")
    return titled(faceted, title)


def snr_bands(frame: pd.DataFrame, color_domain: list[str] | None = None, title: str | None = None
              ) -> alt.FacetChart:
    """The SNR per seed group on one chart per layer: a line (`snr`, over seeds) and its band
    (`snr_lo` to `snr_hi`) coloured by `group`, log-log. Values <= 0 cannot be drawn on a log axis:
    a band's lower edge below zero is drawn at the axis' bottom (the smallest positive value)."""
    data = with_layer_label(frame)[["group", "layer", "layer_label", "epoch", "snr", "snr_lo", "snr_hi", "seeds"]]
    data = data[data["snr"] > 0]
    floor = float(data["snr"].min()) if not data.empty else 1e-9
    data = data.assign(snr_lo=data["snr_lo"].where(data["snr_lo"] > 0, floor))
    domain = color_domain or _panels(data, "group")
    color = _category_color("group", domain, title=None, orient="bottom", columns=2)
    columns = 3
    width = PAGE_WIDTH // columns - AXIS_SPACE - 10
    x = epoch_x(frame["epoch"].max(), width=width)
    y = alt.Y("snr:Q", scale=alt.Scale(type="log"), title="SNR (mean/std)")
    band = alt.Chart().mark_area(opacity=0.18).encode(x=x, y=alt.Y("snr_lo:Q", scale=alt.Scale(type="log"),
                                                                   title="SNR (mean/std)"),
                                                      y2="snr_hi:Q", color=color)
    line = alt.Chart().mark_line(strokeWidth=1.6).encode(x=x, y=y, color=color,
                                                         tooltip=["group", "layer_label", "epoch", "snr", "seeds"])
    faceted = alt.layer(band, line, data=data).properties(width=width, height=170).facet(
        facet=alt.Facet("layer_label:N", title="layer", sort=_layer_labels(data),
                        header=alt.Header(labelFontWeight="bold")), columns=columns)
    return titled(faceted, title)


def ordinal_epoch_ticks(epochs: pd.Series) -> list[int]:
    """For an axis with one band per logged epoch: the first logged epoch at or after 0, 1, 10, 100,
    ... and the last (a label for each of 300 bands would be an unreadable strip)."""
    logged = np.unique(epochs)
    wanted = epoch_ticks(logged[-1], steps=(1,))
    ticks = {int(logged[min(np.searchsorted(logged, t), len(logged) - 1)]) for t in wanted}
    return sorted(ticks | {int(logged[-1])})


def activation_heatmap(frame: pd.DataFrame, title: str | None = None, columns: int = 3) -> alt.FacetChart:
    """Per layer, the histogram of activations at every logged epoch: epoch x bin, colour = count."""
    data = with_layer_label(frame)[["epoch", "layer", "layer_label", "bin_lo", "bin_hi", "count"]]
    top = max(int(data["count"].max()), 1)
    count_ticks = [10 ** k for k in range(int(math.log10(top)) + 1)]   # empty bins have no row: counts >= 1
    chart = alt.Chart(data).mark_rect().encode(
        x=alt.X("epoch:O", title="epoch (logged epochs, evenly spaced)",
                axis=alt.Axis(values=ordinal_epoch_ticks(data["epoch"]), labelAngle=0, labelOverlap="greedy")),
        y=alt.Y("bin_lo:Q", title="activation"), y2="bin_hi:Q",
        # below the facets (beside three it falls off the page), 1 - 10 - 100 ... spaced apart
        color=alt.Color("count:Q", scale=alt.Scale(type="symlog", scheme="inferno"),
                        legend=alt.Legend(orient="bottom", direction="horizontal", gradientLength=360,
                                          values=count_ticks, labelExpr=COUNT_LABEL, labelOverlap="greedy",
                                          labelSeparation=6)),
        tooltip=["epoch", "bin_lo", "bin_hi", "count"],
    ).properties(width=(PAGE_WIDTH // columns) - AXIS_SPACE - 15, height=170)
    faceted = chart.facet(facet=alt.Facet("layer_label:N", title="layer", sort=_layer_labels(data)),
                          columns=columns).resolve_scale(
        y="independent")
    return titled(faceted, title)


def neuron_chart(frame: pd.DataFrame, title: str | None = None) -> alt.LayerChart:
    """One layer's neurons: mean activation against epoch with a mean ± std band per neuron."""
    data = frame[["epoch", "neuron", "mean", "std"]].assign(lo=frame["mean"] - frame["std"],
                                                           hi=frame["mean"] + frame["std"])
    neurons = sorted(int(n) for n in data["neuron"].unique())
    color = alt.Color("neuron:N", sort=neurons, scale=alt.Scale(domain=neurons,
                                                                scheme=CATEGORICAL if len(neurons) <= 10 else ORDERED),
                      legend=legend(len(neurons), columns=1 + len(neurons) // 16))
    x = epoch_x(data["epoch"].max())
    band = alt.Chart(data).mark_area(opacity=0.12).encode(x=x, y=alt.Y("lo:Q", title="activation"), y2="hi:Q",
                                                          color=color)
    line = alt.Chart(data).mark_line().encode(x=x, y="mean:Q", color=color,
                                              tooltip=["neuron", "epoch", "mean", "std"])
    chart = alt.layer(band, line).properties(width=PAGE_WIDTH - LEGEND_SPACE - AXIS_SPACE, height=280)
    return titled(chart, title)


def dead_fraction_chart(frame: pd.DataFrame, title: str | None = None) -> alt.FacetChart:
    """Per layer, the fraction of dead (exactly zero) and saturated units against epoch."""
    long = with_layer_label(frame).melt(id_vars=["epoch", "layer", "layer_label"],
                                        value_vars=["frac_zero", "frac_saturated"], var_name="measure",
                                        value_name="fraction")
    chart = alt.Chart(long).mark_line().encode(
        x=epoch_x(frame["epoch"].max(), width=grid_panel_width(2)),
        y=alt.Y("fraction:Q", scale=alt.Scale(domain=[0, 1])),
        color=_ordered_layer_color(long), detail="layer:O",
        tooltip=["measure", "layer_label", "epoch", "fraction"],
    ).properties(width=grid_panel_width(2), height=200)
    faceted = chart.facet(column=alt.Column("measure:N", title=None))
    return titled(faceted, title)


def accuracy_with_marker(frame: pd.DataFrame, epoch: int) -> alt.LayerChart:
    """Train and test accuracy against epoch with a rule at `epoch` (below the movie's frame)."""
    data = frame[["epoch", "split", "accuracy"]]
    line = alt.Chart(data).mark_line().encode(
        x="epoch:Q", y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
        strokeDash=alt.StrokeDash("split:N", sort=["train", "test"], legend=legend(2)))
    rule = alt.Chart(pd.DataFrame({"epoch": [epoch]})).mark_rule(color="red").encode(x="epoch:Q")
    return alt.layer(line, rule).properties(width=PAGE_WIDTH - 2 * LEGEND_SPACE - AXIS_SPACE, height=140)


def epoch_stride(max_epoch: float, points: int = LINE_POINTS) -> int:
    """The step between drawn epochs so that a line over 0..max_epoch has at most `points` points."""
    return max(1, math.ceil((max_epoch + 1) / points))


def every_nth_epoch(frame: pd.DataFrame, stride: int) -> pd.DataFrame:
    """The rows of every `stride`-th epoch and of each line's last epoch (a screen's width holds a
    few hundred points per line; drawing 8000 epochs of 20 runs makes the page slow)."""
    if stride == 1:
        return frame
    return frame[(frame["epoch"] % stride == 0) | (frame["epoch"] == frame["epoch"].max())]


def parallel_coordinates(frame: pd.DataFrame, keys: list[str], outcome: str, title: str | None = None
                         ) -> alt.LayerChart:
    """One line per run through an axis per varying key and the `outcome` (W&B's parallel
    coordinates), coloured by the outcome. Each axis runs from its smallest to its largest value
    (numbers by value, other values evenly spaced in sorted order), its values written beside it."""
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
            shown = {f"{v:.3g}": p for v, p in ends}
        else:
            text = column.astype(str)
            distinct = sorted(text.unique())
            spot = {v: (i / (len(distinct) - 1) if len(distinct) > 1 else 0.5) for i, v in enumerate(distinct)}
            position = text.map(spot)
            shown = {v: spot[v] for v in distinct}
        rows.append(pd.DataFrame({"run_id": frame["run_id"], "axis": axis, "position": position,
                                  "value": column.astype(str), outcome: frame[outcome]}))
        labels += [{"axis": axis, "position": p, "label": label} for label, p in shown.items()]
    data = pd.concat(rows, ignore_index=True).dropna(subset=["position"])
    x = alt.X("axis:N", sort=axes, title=None, axis=alt.Axis(labelAngle=0, labelLimit=150, orient="top",
                                                              domain=False, ticks=False))
    y = alt.Y("position:Q", axis=None, scale=alt.Scale(domain=[-0.05, 1.05]))   # end labels inside the plot
    lines = alt.Chart(data).mark_line(opacity=0.6, strokeWidth=1.5).encode(
        x=x, y=y, detail="run_id:N", color=alt.Color(f"{outcome}:Q", scale=alt.Scale(scheme="viridis"),
                                                      legend=alt.Legend(title=outcome, orient="bottom")),
        tooltip=["run_id", "axis", "value"])
    rules = alt.Chart(pd.DataFrame({"axis": axes})).mark_rule(color="#888").encode(x=x)
    text = alt.Chart(pd.DataFrame(labels)).mark_text(align="left", dx=4, fontSize=10).encode(
        x=x, y=y, text="label:N")
    chart = alt.layer(rules, lines, text).properties(width=PAGE_WIDTH - 2 * AXIS_SPACE, height=260)
    return titled(chart, title)


def result_chart(frame: pd.DataFrame, x: str, y: str, color: str | None = None) -> alt.LayerChart:
    """A query's result: `y` against `x`, points joined by a line when `x` orders them (one line per
    `color` value), coloured by `color` (nominal) if given."""
    columns = list(dict.fromkeys([x, y] + ([color] if color else [])))
    data = frame[columns].dropna(subset=[x, y]).sort_values(x)
    data = data.assign(**{color: data[color].astype(str)}) if color else data
    encoding = {"x": alt.X(f"{x}:Q", title=x), "y": alt.Y(f"{y}:Q", title=y), "tooltip": columns}
    if color:
        encoding["color"] = _category_color(color, _panels(data, color), title=color, orient="bottom", columns=2)
    base = alt.Chart(data).encode(**encoding)
    chart = alt.layer(base.mark_line(opacity=0.5), base.mark_point(filled=True, size=40))
    return chart.properties(width=PAGE_WIDTH - LEGEND_SPACE - AXIS_SPACE, height=320)
