"""Training over epochs: accuracy and loss curves, the seed notebook's accuracy grid, the
gradient norms and their SNR per layer (explorer.charts has the layout and the encodings every
chart shares)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from explorer.charts import (
    AXIS_SPACE,
    LEGEND_SPACE,
    MAX_COLUMNS,
    PAGE_WIDTH,
    category_color,
    epoch_x,
    facet,
    grid_panel_width,
    group_bands,
    layer_label,
    legend,
    ordered_layer_color,
    panel_order,
    titled,
    with_layer_label,
)
from ibstore import phases

GRADIENT_QUANTITIES = {"grad_mean_norm": "‖mean of gradient‖", "grad_std_norm": "‖std of gradient‖",
                       "snr": "SNR (mean/std)", "weight_norm": "‖W‖"}


def training_epoch_x(frame: pd.DataFrame, log_epochs: bool) -> alt.X:
    """The epoch axis of the training curves: linear (the notebook's), or the explorer's log axis
    (`epoch_x`), on which a rise within the first 1 % of the epochs is not squeezed into a sliver (a
    sceptic's learning rate 10x: 0.9 at epoch 17 against 125 of 1500)."""
    return epoch_x(frame["epoch"].max()) if log_epochs else alt.X("epoch:Q")


def training_curves(frame: pd.DataFrame, band: bool = False, title: str | None = None,
                    color_field: str = "panel", color_domain: list[str] | None = None,
                    log_epochs: bool = False) -> alt.VConcatChart:
    """Accuracy (axis 0..1) and loss (log axis: an early spike does not flatten the rest) against
    epoch (`training_epoch_x`), a line per panel and split, coloured by `color_field` (`group`
    colours a seed group's runs alike); with `band`, the spread over seeds from accuracy_min/max and
    loss_min/max, and the tooltip's seeds (accuracy_seeds, loss_seeds): how many a point is over (a
    run that stopped early, or diverged, leaves)."""
    x = training_epoch_x(frame, log_epochs)
    domain = color_domain or panel_order(frame, color_field)
    color = category_color(color_field, domain, orient="bottom", columns=2)
    width = (PAGE_WIDTH - 2 * AXIS_SPACE) // 2 - 10
    charts = []
    for measure, scale in (("accuracy", alt.Scale(domain=[0, 1])), ("loss", alt.Scale(type="log"))):
        columns = list(dict.fromkeys(["panel", color_field, "split", "epoch", measure]
                                     + ([f"{measure}_min", f"{measure}_max", f"{measure}_seeds"] if band else [])))
        data = frame[columns]
        if measure == "loss":   # a log axis cannot show zero or negative losses
            data = data[data["loss"] > 0]
        line = alt.Chart(data).mark_line(strokeWidth=1.5).encode(
            x=x, y=alt.Y(f"{measure}:Q", scale=scale, title=measure), color=color,
            detail="panel:N", strokeDash=alt.StrokeDash("split:N", sort=["train", "test"],
                                                        legend=legend(2, orient="top", direction="horizontal")),
            tooltip=["panel", "split", "epoch", measure,
                     *([alt.Tooltip(f"{measure}_seeds:Q", title="seeds")] if band else [])])
        layers = [line]
        if band:
            layers.insert(0, alt.Chart(data).mark_area(opacity=0.15).encode(
                x=x, y=alt.Y(f"{measure}_min:Q", scale=scale, title=measure), y2=f"{measure}_max:Q",
                color=color, detail="split:N"))
        charts.append(alt.layer(*layers).properties(width=width, height=280, title=measure))
    chart = alt.hconcat(*charts)
    return titled(chart, title)


def accuracy_grid(frame: pd.DataFrame, columns: int = 2, title: str | None = None,
                  band: bool = False, log_epochs: bool = False) -> alt.FacetChart:
    """The seed notebook's accuracy grid: one panel per run or seed group, train and test accuracy
    against epoch (`training_epoch_x`) on a 0..1 axis; with `band`, a seed group's spread from
    accuracy_min/max and the tooltip's seeds (accuracy_seeds)."""
    x = training_epoch_x(frame, log_epochs)
    columns = min(columns, MAX_COLUMNS)
    data = frame[["panel", "split", "epoch", "accuracy",
                  *(["accuracy_min", "accuracy_max", "accuracy_seeds"] if band else [])]]
    width = grid_panel_width(columns)
    splits = [s for s in ("train", "test") if s in set(data["split"])] or panel_order(data, "split")
    color = category_color("split", splits, title="split")
    chart = alt.Chart().mark_line(strokeWidth=1.2).encode(
        x=x, y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])), color=color,
        tooltip=["panel", "split", "epoch", "accuracy",
                 *([alt.Tooltip("accuracy_seeds:Q", title="seeds")] if band else [])],
    ).properties(width=width, height=160)
    layers = [chart]
    if band:
        layers.insert(0, alt.Chart().mark_area(opacity=0.15).encode(
            x=x, y=alt.Y("accuracy_min:Q", scale=alt.Scale(domain=[0, 1]), title="accuracy"),
            y2="accuracy_max:Q", color=color))
    return facet(alt.layer(*layers, data=data), data, columns, width, title=title)


def accuracy_with_marker(frame: pd.DataFrame, epoch: int) -> alt.LayerChart:
    """Train and test accuracy against epoch with a rule at `epoch` (below the movie's frame)."""
    data = frame[["epoch", "split", "accuracy"]]
    line = alt.Chart(data).mark_line().encode(
        x="epoch:Q", y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
        strokeDash=alt.StrokeDash("split:N", sort=["train", "test"], legend=legend(2)))
    rule = alt.Chart(pd.DataFrame({"epoch": [epoch]})).mark_rule(color="red").encode(x="epoch:Q")
    return alt.layer(line, rule).properties(width=PAGE_WIDTH - 2 * LEGEND_SPACE - AXIS_SPACE, height=140)


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
        x=epoch_x(frame["epoch"].max()),
        y=alt.Y("value:Q", scale=alt.Scale(type="log"), title=None),
        color=ordered_layer_color(long), detail="layer:O",
        tooltip=["quantity", "layer_label", "epoch", "value"],
    ).properties(width=width, height=170)
    faceted = chart.facet(facet=alt.Facet("quantity:N", sort=list(GRADIENT_QUANTITIES.values()), title=None),
                          columns=2)
    faceted = faceted.resolve_scale(y="independent")
    return titled(faceted, title)


def snr_bands(frame: pd.DataFrame, color_domain: list[str] | None = None, title: str | None = None
              ) -> alt.FacetChart:
    """The SNR per seed group on one chart per layer: a line (`snr`, over seeds) and its band
    (`snr_lo` to `snr_hi`, above 0: seed_bands.over_seeds with `log`) coloured by `group`, log-log,
    the SNR axis BAND_DECADES beyond the lines' range and the bands cut there: two seeds' t interval
    of log SNR (t = 12.7) spanned 17 decades where the lines spanned 3. A point without a positive
    SNR cannot be drawn on a log axis (`drawable_snr`)."""
    data = drawable_snr(frame)
    scale = alt.Scale(type="log")
    if not data.empty:
        low, high = data["snr"].min() / 10 ** BAND_DECADES, data["snr"].max() * 10 ** BAND_DECADES
        data = data.assign(snr_lo=data["snr_lo"].clip(lower=low), snr_hi=data["snr_hi"].clip(upper=high))
        scale = alt.Scale(type="log", domain=[low, high])
    return group_bands(data, "snr", "SNR (mean/std)", scale, color_domain, title)


BAND_DECADES = 1     # how far the SNR axis reaches beyond its lines (`snr_bands`)


def drawable_snr(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of `frame` whose `snr` a log axis can show: above 0 (a gradient that is 0 in every
    minibatch, a dead network's, has none: 0/0; one whose mean is 0 has an SNR of 0)."""
    return frame[frame["snr"] > 0]


def vanished_gradient(frame: pd.DataFrame) -> pd.Series:
    """Per gradients row: its gradient has vanished, so its SNR is none (ibstore.phases.HAS_SNR, read
    as SQL reads it: the larger known norm, greatest skipping NULL; no known norm is no SNR)."""
    return ~(frame[["grad_mean_norm", "grad_std_norm"]].max(axis=1) >= phases.VANISHED_GRADIENT_NORM)


def without_vanished_snr(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """`frame` with no `snr` where the gradient has vanished (`grad_mean_norm` and `grad_std_norm`
    below ibstore.phases.VANISHED_GRADIENT_NORM: one rounding error over another, as the statistics
    take it), and "group: layers" for each group (in its order) and the layers where that left out
    a seed's SNR at some epoch.

    >>> frame = pd.DataFrame({"group": ["a", "a", "b"], "layer": [0, 1, 0], "layer_name": ["d0", "d1", "d0"],
    ...                       "grad_mean_norm": [1e-16, 0.2, 1e-9], "grad_std_norm": [1e-17, 0.1, 0.1],
    ...                       "snr": [10.0, 2.0, 1e-8]})
    >>> kept, vanished = without_vanished_snr(frame)
    >>> kept["snr"].tolist()[1:], vanished
    ([2.0, 1e-08], ['a: 0 · d0'])
    """
    vanished = vanished_gradient(frame)
    where = frame[vanished & (frame["snr"] > 0)].drop_duplicates(["group", "layer"]).sort_values("layer", kind="stable")
    names = where["layer_name"] if "layer_name" in where else pd.Series(None, index=where.index)
    layers = pd.Series([layer_label(layer, name) for layer, name in zip(where["layer"], names)], index=where.index,
                       dtype=object)
    named = [f"{group}: {', '.join(layers[where['group'] == group])}" for group in frame["group"].unique()
             if (where["group"] == group).any()]
    return frame.assign(snr=frame["snr"].mask(vanished)), named


def groups_without_snr(frame: pd.DataFrame, groups: list[str]) -> list[str]:
    """The seed groups of `groups` (in order) that `snr_bands` draws nothing for: no row of `frame`
    with a drawable SNR."""
    drawn = set(drawable_snr(frame)["group"])
    return [group for group in groups if group not in drawn]
