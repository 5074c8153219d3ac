"""What the layers' units do: histograms of activations over epochs, one layer's neurons, the
fraction of dead and saturated units (explorer.charts has the layout and the encodings every
chart shares)."""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

from explorer.charts import (
    AXIS_SPACE,
    CATEGORICAL,
    COUNT_LABEL,
    LEGEND_SPACE,
    ORDERED,
    PAGE_WIDTH,
    epoch_ticks,
    epoch_x,
    grid_panel_width,
    group_bands,
    layer_labels,
    legend,
    ordered_layer_color,
    titled,
    with_layer_label,
)


def ordinal_epoch_ticks(epochs: pd.Series) -> list[int]:
    """For an axis with one band per logged epoch: the first logged epoch at or after 0, 1, 10, 100,
    ... and the last (a label for each of 300 bands would be an unreadable strip)."""
    logged = np.unique(epochs)
    wanted = epoch_ticks(logged[-1], steps=(1,))
    ticks = {int(logged[min(np.searchsorted(logged, t), len(logged) - 1)]) for t in wanted}
    return sorted(ticks | {int(logged[-1])})


def activation_heatmap(frame: pd.DataFrame) -> alt.FacetChart:
    """Per layer, the histogram of activations at every logged epoch: epoch x bin, colour = count."""
    columns = 3
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
    return chart.facet(facet=alt.Facet("layer_label:N", title="layer", sort=layer_labels(data)),
                       columns=columns).resolve_scale(
        y="independent")


def neuron_chart(frame: pd.DataFrame, title: str | None = None) -> alt.LayerChart:
    """One layer's neurons: mean activation against epoch with a mean ± std band per neuron, cut to
    the neuron's values (`min` to `max` over the inputs at that epoch): a relu's band once reached
    below 0, which relu cannot output. The values lie within the activation's range, so the cut band
    does too, whatever the activation (the explorer does not import the trainer's table of ranges)."""
    data = frame[["epoch", "neuron", "mean", "std"]].assign(lo=np.fmax(frame["mean"] - frame["std"], frame["min"]),
                                                           hi=np.fmin(frame["mean"] + frame["std"], frame["max"]))
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


def fraction_bands(frame: pd.DataFrame, value: str, value_title: str, color_domain: list[str] | None = None,
                   title: str | None = None) -> alt.FacetChart:
    """A fraction (`value`: frac_saturated or frac_zero) per seed group over seeds, a chart per layer
    on a 0..1 axis (charts.group_bands)."""
    return group_bands(frame, value, value_title, alt.Scale(domain=[0, 1]), color_domain, title)


def dead_fraction_chart(frame: pd.DataFrame) -> alt.FacetChart:
    """Per layer, the share of its values (inputs x units) that are exactly zero and that are
    saturated, averaged over its units (`queries.dead_fractions`), against epoch."""
    long = with_layer_label(frame).melt(id_vars=["epoch", "layer", "layer_label"],
                                        value_vars=["frac_zero", "frac_saturated"], var_name="measure",
                                        value_name="fraction")
    chart = alt.Chart(long).mark_line().encode(
        x=epoch_x(frame["epoch"].max()),
        y=alt.Y("fraction:Q", scale=alt.Scale(domain=[0, 1])),
        color=ordered_layer_color(long), detail="layer:O",
        tooltip=["measure", "layer_label", "epoch", "fraction"],
    ).properties(width=grid_panel_width(2), height=200)
    return chart.facet(column=alt.Column("measure:N", title=None))
