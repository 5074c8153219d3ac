"""Altair chart builders: pure functions from DataFrames to charts (no Streamlit, no SQL).

Frames carry a `panel` column (a run's or seed group's title, from configdiff.labels)
where a chart has one panel or line per run.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

alt.data_transformers.disable_max_rows()  # a 12-panel grid holds tens of thousands of points

PANEL_WIDTH = 280
PANEL_HEIGHT = 230
EPOCH_COLOR = alt.Scale(scheme="viridis", type="symlog")
INFO_X = alt.X("i_xt:Q", title="I(X;T) [bits]")
INFO_Y = alt.Y("i_yt:Q", title="I(Y;T) [bits]")
LAYER_SHAPE = alt.Shape("layer_name:N", title="layer", sort=alt.EncodingSortField("layer"))
GRADIENT_QUANTITIES = {"grad_mean_norm": "‖mean of gradient‖", "grad_std_norm": "‖std of gradient‖",
                       "snr": "SNR (mean/std)", "weight_norm": "‖W‖"}


def _panels(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["panel"]))


def _facet(chart: alt.LayerChart | alt.Chart, frame: pd.DataFrame, columns: int, shared: bool = True,
           title: str | None = None) -> alt.FacetChart:
    header = alt.Header(labelFontSize=12, labelLimit=PANEL_WIDTH * 2, labelFontWeight="bold")
    faceted = chart.facet(facet=alt.Facet("panel:N", sort=_panels(frame), title=None, header=header),
                          columns=columns)
    if not shared:
        faceted = faceted.resolve_scale(x="independent", y="independent")
    return faceted.properties(title=title) if title else faceted


def infoplane_grid(frame: pd.DataFrame, columns: int = 2, shared_axes: bool = True, spread: str | None = None,
                   title: str | None = None) -> alt.FacetChart:
    """One information plane per panel: I(X;T) against I(Y;T), points coloured by epoch, shaped by
    layer, each epoch's layers joined by a faint line. `spread` ("min-max" or "IQR") draws the
    spread over seeds from columns i_xt_min/max or i_xt_q1/q3 (and the same for i_yt)."""
    keep = ["panel", "epoch", "layer", "layer_name", "i_xt", "i_yt"]
    lo, hi = {"min-max": ("min", "max"), "IQR": ("q1", "q3"), None: (None, None)}[spread]
    if lo:
        for axis in ("i_xt", "i_yt"):
            frame = frame.assign(**{f"{axis}_lo": frame[f"{axis}_{lo}"], f"{axis}_hi": frame[f"{axis}_{hi}"]})
            keep += [f"{axis}_lo", f"{axis}_hi"]
    if "seeds" in frame:
        keep.append("seeds")
    data = frame[keep]
    tooltip = [c for c in ("panel", "epoch", "layer_name", "i_xt", "i_yt", "seeds") if c in data]
    base = alt.Chart().properties(width=PANEL_WIDTH, height=PANEL_HEIGHT)
    layers = [
        base.mark_line(color="gray", opacity=0.15, strokeWidth=0.8).encode(
            x=INFO_X, y=INFO_Y, detail="epoch:Q", order="layer:Q"),
        base.mark_point(filled=True, size=28, opacity=0.85).encode(
            x=INFO_X, y=INFO_Y, color=alt.Color("epoch:Q", scale=EPOCH_COLOR), shape=LAYER_SHAPE,
            tooltip=tooltip),
    ]
    if lo:
        layers[1:1] = [
            base.mark_rule(opacity=0.2).encode(x="i_xt_lo:Q", x2="i_xt_hi:Q", y=INFO_Y,
                                               color=alt.Color("epoch:Q", scale=EPOCH_COLOR)),
            base.mark_rule(opacity=0.2).encode(x=INFO_X, y="i_yt_lo:Q", y2="i_yt_hi:Q",
                                               color=alt.Color("epoch:Q", scale=EPOCH_COLOR)),
        ]
    return _facet(alt.layer(*layers, data=data), data, columns, shared_axes, title)


def infoplane_at_epoch(frame: pd.DataFrame, epoch: int, title: str | None = None) -> alt.LayerChart:
    """The movie's frame: every layer's trajectory faint, its point at `epoch` large, the layers
    at that epoch joined by a line."""
    data = frame[["epoch", "layer", "layer_name", "i_xt", "i_yt"]]
    now = data[data["epoch"] == epoch]
    layer_color = alt.Color("layer_name:N", title="layer", sort=alt.EncodingSortField("layer"))
    x = alt.X("i_xt:Q", title="I(X;T) [bits]", scale=alt.Scale(domain=_domain(data["i_xt"])))
    y = alt.Y("i_yt:Q", title="I(Y;T) [bits]", scale=alt.Scale(domain=_domain(data["i_yt"])))
    trajectories = alt.Chart(data).mark_line(opacity=0.25).encode(x=x, y=y, color=layer_color, order="epoch:Q")
    link = alt.Chart(now).mark_line(color="black", opacity=0.5).encode(x=x, y=y, order="layer:Q")
    points = alt.Chart(now).mark_point(filled=True, size=140).encode(
        x=x, y=y, color=layer_color, shape=LAYER_SHAPE, tooltip=["layer_name", "i_xt", "i_yt"])
    chart = alt.layer(trajectories, link, points).properties(width=520, height=380)
    return chart.properties(title=title or f"epoch {epoch}")


def _domain(values: pd.Series) -> list[float]:
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.05 or 0.1
    return [lo - pad, hi + pad]


def training_curves(frame: pd.DataFrame, band: bool = False, title: str | None = None) -> alt.HConcatChart:
    """Accuracy (axis 0..1) and loss against epoch, a line per panel and split; with `band`, the
    spread over seeds from accuracy_min/max and loss_min/max."""
    charts = []
    for measure, scale in (("accuracy", alt.Scale(domain=[0, 1])), ("loss", alt.Scale(zero=False))):
        columns = ["panel", "split", "epoch", measure] + ([f"{measure}_min", f"{measure}_max"] if band else [])
        data = frame[columns]
        color = alt.Color("panel:N", title=None, sort=_panels(data), legend=alt.Legend(orient="bottom",
                                                                                        columns=1, labelLimit=600))
        line = alt.Chart(data).mark_line(strokeWidth=1.5).encode(
            x=alt.X("epoch:Q"), y=alt.Y(f"{measure}:Q", scale=scale, title=measure), color=color,
            strokeDash=alt.StrokeDash("split:N", sort=["train", "test"]),
            tooltip=["panel", "split", "epoch", measure])
        layers = [line]
        if band:
            layers.insert(0, alt.Chart(data).mark_area(opacity=0.15).encode(
                x="epoch:Q", y=alt.Y(f"{measure}_min:Q", scale=scale, title=measure), y2=f"{measure}_max:Q",
                color=color, detail="split:N"))
        charts.append(alt.layer(*layers).properties(width=420, height=280, title=measure))
    chart = alt.hconcat(*charts)
    return chart.properties(title=title) if title else chart


def gradient_chart(frame: pd.DataFrame, title: str | None = None) -> alt.FacetChart:
    """Per layer, the norms of the gradient's mean and std, their ratio (SNR) and the weight norm
    against epoch, log-log (epoch 0 and non-positive values cannot be drawn on log axes)."""
    long = frame.melt(id_vars=["epoch", "layer"], value_vars=list(GRADIENT_QUANTITIES),
                      var_name="quantity", value_name="value")
    long = long[(long["epoch"] > 0) & (long["value"] > 0)]
    long = long.assign(quantity=long["quantity"].map(GRADIENT_QUANTITIES))
    chart = alt.Chart(long).mark_line(strokeWidth=1.2).encode(
        x=alt.X("epoch:Q", scale=alt.Scale(type="log")),
        y=alt.Y("value:Q", scale=alt.Scale(type="log"), title=None),
        color=alt.Color("layer:O", scale=alt.Scale(scheme="plasma")),
        tooltip=["quantity", "layer", "epoch", "value"],
    ).properties(width=230, height=200)
    faceted = chart.facet(column=alt.Column("quantity:N", sort=list(GRADIENT_QUANTITIES.values()), title=None))
    faceted = faceted.resolve_scale(y="independent")
    return faceted.properties(title=title) if title else faceted


def activation_heatmap(frame: pd.DataFrame, title: str | None = None, columns: int = 3) -> alt.FacetChart:
    """Per layer, the histogram of activations at every logged epoch: epoch x bin, colour = count."""
    data = frame[["epoch", "layer", "bin_lo", "bin_hi", "count"]]
    chart = alt.Chart(data).mark_rect().encode(
        x=alt.X("epoch:O", axis=alt.Axis(labelOverlap=True, labelAngle=0)),
        y=alt.Y("bin_lo:Q", title="activation"), y2="bin_hi:Q",
        color=alt.Color("count:Q", scale=alt.Scale(type="symlog", scheme="inferno"),
                        legend=alt.Legend(orient="bottom")),   # beside 3 facets it falls off the page
        tooltip=["epoch", "bin_lo", "bin_hi", "count"],
    ).properties(width=220, height=180)
    faceted = chart.facet(facet=alt.Facet("layer:O", title="layer"), columns=columns).resolve_scale(
        y="independent")
    return faceted.properties(title=title) if title else faceted


def neuron_chart(frame: pd.DataFrame, title: str | None = None) -> alt.LayerChart:
    """One layer's neurons: mean activation against epoch with a mean ± std band per neuron."""
    data = frame[["epoch", "neuron", "mean", "std"]].assign(lo=frame["mean"] - frame["std"],
                                                           hi=frame["mean"] + frame["std"])
    color = alt.Color("neuron:N")
    x = alt.X("epoch:Q", scale=alt.Scale(type="symlog"))
    band = alt.Chart(data).mark_area(opacity=0.12).encode(x=x, y=alt.Y("lo:Q", title="activation"), y2="hi:Q",
                                                          color=color)
    line = alt.Chart(data).mark_line().encode(x=x, y="mean:Q", color=color,
                                              tooltip=["neuron", "epoch", "mean", "std"])
    chart = alt.layer(band, line).properties(width=620, height=280)
    return chart.properties(title=title) if title else chart


def dead_fraction_chart(frame: pd.DataFrame, title: str | None = None) -> alt.FacetChart:
    """Per layer, the fraction of dead (exactly zero) and saturated units against epoch."""
    long = frame.melt(id_vars=["epoch", "layer"], value_vars=["frac_zero", "frac_saturated"],
                      var_name="measure", value_name="fraction")
    chart = alt.Chart(long).mark_line().encode(
        x=alt.X("epoch:Q", scale=alt.Scale(type="symlog")),
        y=alt.Y("fraction:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("layer:O", scale=alt.Scale(scheme="plasma")),
        tooltip=["measure", "layer", "epoch", "fraction"],
    ).properties(width=300, height=200)
    faceted = chart.facet(column=alt.Column("measure:N", title=None))
    return faceted.properties(title=title) if title else faceted


def accuracy_with_marker(frame: pd.DataFrame, epoch: int) -> alt.LayerChart:
    """Train and test accuracy against epoch with a rule at `epoch` (below the movie's frame)."""
    data = frame[["epoch", "split", "accuracy"]]
    line = alt.Chart(data).mark_line().encode(
        x="epoch:Q", y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
        strokeDash=alt.StrokeDash("split:N", sort=["train", "test"]))
    rule = alt.Chart(pd.DataFrame({"epoch": [epoch]})).mark_rule(color="red").encode(x="epoch:Q")
    return alt.layer(line, rule).properties(width=520, height=160)
