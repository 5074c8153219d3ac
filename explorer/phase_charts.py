"""I(X;T) and I(Y;T) against epoch per layer, one line per seed group with its band over seeds,
the peak and SNR-drop epochs marked: pure functions from DataFrames to an Altair chart (no
Streamlit, no SQL), used by `trainer report` and the explorer.

The band is explorer.seed_bands' (the drawing bands of every page): the mean over seeds +- a 95 %
t interval per logged epoch, or the min-max over seeds: a picture of the spread, cheap at every
epoch; the numbers a claim rests on are ibstore.stats' (each run's phase quantities over seeds).
A group with one seed gets its line and no band. The runs the statistics leave out
(ibstore.stats.exclusions: dead networks, the trainer's `dead_network`, diverged runs, and runs that
ended without completing: interrupted or failed) are left out of their group's line and counted in
its legend entry as dead, diverged or unfinished; a run still training is drawn (the statistics
wait for it). A run without MI rows here is neither drawn nor counted (the pages name it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from explorer import seed_bands as bands_over_seeds
from explorer.run_rows import in_order
from explorer.charts import AXIS_SPACE, LEGEND_SPACE, PAGE_WIDTH, category_color, epoch_x, titled, with_layer_label
from ibstore import stats
from ibstore.record import Status

QUANTITY_TITLES = {"i_xt": "I(X;T) [bits]", "i_yt": "I(Y;T) [bits]"}
BANDS = {"ci": bands_over_seeds.MEAN_CI, "min-max": bands_over_seeds.MIN_MAX}   # `trainer report --band`
# The rule of I(X;T) is where the group's mean curve peaks (the phases view's group_peak_epoch, from
# which the statistics measure compression over the floor): the mean of the seeds' own peak epochs
# had stood at 742 where the mean curve peaked at 25. The others are means over the seeds drawn.
MARKS = {"group_peak_epoch": "peak I(X;T)", "peak_i_yt_epoch": "peak I(Y;T)", "snr_drop_epoch": "SNR drop"}
MARKS_SAID = ("dashed rules: where the group's mean I(X;T) peaks (compression over the floor is measured from "
              "there), and its seeds' mean peak I(Y;T) and SNR-drop epochs (no SNR-drop rule where a seed's SNR "
              "never halved: that mean is not known)")   # beside every chart of them
# dashes, dots, dash-dots: three patterns told apart at a glance (SNR drop's long dashes, [8, 3], looked
# like peak I(X;T)'s [4, 2], and solid at the legend's swatch)
DASHES = dict(zip(MARKS.values(), ([4, 3], [1, 3], [5, 2, 1, 2])))
DASH_SWATCH = 484        # the legend's swatch: a stroke sqrt(484) = 22 px long, two repeats of each pattern
                         # (a longer one widens the Phases page's chart past PAGE_WIDTH)
MARK_QUANTITY = {"group_peak_epoch": "i_xt", "peak_i_yt_epoch": "i_yt", "snr_drop_epoch": None}   # None: both
LEFT_OUT = ("dead", "diverged", "unfinished")   # why a run draws no line (ibstore.stats.exclusions, its
                                                # health counts); None: it does


@dataclass(frozen=True)
class PhaseData:
    """What the chart draws before the band and axis are chosen (ResultStore.phase_data): MI rows
    (one per run, epoch and layer, with group and left_out: `left_out`'s reason or None), the marks
    (phase_marks) and every group's legend entry in colour order; `non_negative`: the estimator's values are >= 0 (a discrete one's,
    ibstore.phases.DISCRETE_ESTIMATORS), and `ceilings` (`group_ceilings`) the most they can be where
    the `phases` view knows it (a discrete estimator's I(X;T) and I(Y;T), the kde bounds' and EDGE's
    I(X;T)): bands are cut to [0, ceiling] there, as ibstore.stats cuts its intervals. The mean over
    seeds lies in the range, so the cut band holds it whenever the whole one does."""
    mi: pd.DataFrame
    marks: pd.DataFrame
    domain: list[str]
    non_negative: bool = False
    ceilings: pd.DataFrame | None = None


def lines(data: PhaseData, band: str = "ci") -> pd.DataFrame:
    """What `draw` draws of `data` with its band over seeds ("ci" or "min-max"): its `seed_bands`
    (the Phases page's CSV download of the chart)."""
    return seed_bands(data.mi, band, data.non_negative, data.ceilings)


def draw(data: PhaseData, band: str = "ci", title: str | None = None, log_epochs: bool = True,
         drawn: pd.DataFrame | None = None) -> alt.FacetChart:
    """The chart of `data` with its band over seeds ("ci" or "min-max"); `drawn`: its `lines`, where
    the caller has them already."""
    return phase_lines(lines(data, band) if drawn is None else drawn, data.marks, title, color_domain=data.domain,
                       log_epochs=log_epochs)


def group_ceilings(phases: pd.DataFrame) -> pd.DataFrame:
    """Per seed group (`group`) and quantity (i_xt, i_yt): `ceiling`, the largest of its runs' (the
    `phases` view's i_xt_ceiling_bits and i_yt_ceiling_bits; NaN where none is known)."""
    ceilings = phases.groupby("group", sort=False)[["i_xt_ceiling_bits", "i_yt_ceiling_bits"]].max()
    ceilings.columns = ["i_xt", "i_yt"]
    return ceilings.rename_axis(columns="quantity").stack(future_stack=True).rename("ceiling").astype(float).reset_index()


def left_out(runs: pd.DataFrame) -> np.ndarray:
    """Per row of `runs` (columns dead_network, diverged, status): "dead", "diverged" or "unfinished"
    (ended without completing: interrupted, failed) where the statistics leave its run out and it
    draws no line, else None. A run still training is drawn (a sweep is watched live), though the
    statistics wait for it."""
    why = stats.exclusions(runs)
    training = runs["status"].to_numpy(dtype=object) == Status.RUNNING
    unfinished = ~np.equal(why, None) & ~np.isin(why, ["dead", "diverged"])
    return np.where(training, None, np.where(unfinished, "unfinished", why)).astype(object)


def left_out_counts(left_out: pd.Series) -> list[str]:
    """["k dead", "j diverged", ...]: how many of `left_out` (`left_out`'s reasons, None where a run
    is drawn) are left out for each reason, in LEFT_OUT's order, reasons with none omitted."""
    return [f"{int((left_out == why).sum())} {why}" for why in LEFT_OUT if (left_out == why).any()]


def legend_labels(runs: pd.DataFrame) -> dict[str, str]:
    """group -> "group (n seeds)" or "group (n seeds, k dead, j diverged, m unfinished left out)", from
    a frame of one row per run with `group` and `left_out`."""
    labels = {}
    for group, members in runs.groupby("group", sort=False):
        counts = left_out_counts(members["left_out"])
        drawn = int(members["left_out"].isna().sum())
        labels[group] = (f"{group} ({drawn} seed{'s' * (drawn != 1)}"
                         + (f", {', '.join(counts)} left out)" if counts else ")"))
    return labels


def seed_bands(mi: pd.DataFrame, band: str = "ci", non_negative: bool = False,
               ceilings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per seed group, layer, quantity (i_xt, i_yt) and epoch: mean, lo, hi over the seeds drawn
    and their number, at the epochs every one of them has a value at (queries.mi_over_seeds says why).
    `mi` has one row per run, epoch and layer with group, run_id, left_out, epoch,
    layer, layer_name, i_xt, i_yt; the groups keep the order in which they first appear there (the
    legend's order). lo/hi are NaN where there is no band (one seed); with `non_negative` (values
    that cannot be below 0), lo is cut at 0; where `ceilings` (`group_ceilings`) knows the group's
    ceiling of the quantity, lo and hi are cut to [0, ceiling] (never past the mean: a mean at its
    ceiling can pass it by a rounding error)."""
    if band not in BANDS:
        raise ValueError(f"band {band!r}: use one of {', '.join(BANDS)}")
    labels = legend_labels(mi.drop_duplicates("run_id"))
    live = mi[mi["left_out"].isna()]
    long = live.melt(id_vars=["group", "run_id", "epoch", "layer", "layer_name"], value_vars=["i_xt", "i_yt"],
                     var_name="quantity", value_name="value")
    long = long[np.isfinite(long["value"].astype(float))]
    by = ["group", "layer", "layer_name", "quantity", "epoch"]
    out = bands_over_seeds.over_seeds(long.sort_values(by, kind="stable"), by, "value", BANDS[band],
                                      bounds=(0.0 if non_negative else -math.inf, math.inf))
    out = out.rename(columns={"value": "mean", "value_lo": "low", "value_hi": "high", "seeds": "n"})
    per_layer = ["group", "layer", "quantity"]   # not layer_name: NULL in files written before it existed
    seeds = long.groupby(per_layer, sort=False)["run_id"].nunique().rename("seeds")
    out = out[out["n"].to_numpy() == out.join(seeds, on=per_layer)["seeds"].to_numpy()]   # every seed there
    out.loc[out["n"] < 2, ["low", "high"]] = np.nan
    if ceilings is not None:
        # a quantity with a known ceiling lies in [0, ceiling] (ibstore.phases)
        ceiling = out.merge(ceilings, on=["group", "quantity"], how="left")["ceiling"].to_numpy(dtype=float)
        low, high, mean = (out[column].to_numpy(dtype=float) for column in ("low", "high", "mean"))
        out["high"] = np.where(np.isnan(high), high, np.maximum(np.fmin(high, ceiling), mean))
        out["low"] = np.where(np.isnan(ceiling) | np.isnan(low), low, np.minimum(np.maximum(low, 0.0), mean))
    out["legend"] = out["group"].map(labels)
    return in_order(out, "group", labels)


def phase_marks(phases: pd.DataFrame) -> pd.DataFrame:
    """Per seed group, layer and mark (MARKS: the peak of its mean I(X;T), its seeds' mean peak I(Y;T)
    and SNR-drop epochs): the epoch over the group's seeds drawn, on the panels of its quantity.
    `phases` holds the phases view's rows of one estimator, params and split with a `group` column."""
    live = phases[pd.isna(left_out(phases))]
    censored = pd.Series(stats.rows_censoring_the_drop(live), index=live.index)
    rows = []
    for (group, layer, layer_name), frame in live.groupby(["group", "layer", "layer_name"], sort=True, dropna=False):
        for column, mark in MARKS.items():
            # a censored seed's drop comes after its end: the others' mean would be earlier than the group's
            epoch = math.nan if column == "snr_drop_epoch" and censored[frame.index].any() else \
                frame[column].astype(float).mean()
            if np.isfinite(epoch):
                for quantity in [MARK_QUANTITY[column]] if MARK_QUANTITY[column] else list(QUANTITY_TITLES):
                    rows.append({"group": group, "layer": layer, "layer_name": layer_name, "quantity": quantity,
                                 "mark": mark, "epoch": epoch})
    return pd.DataFrame(rows, columns=["group", "layer", "layer_name", "quantity", "mark", "epoch"])


def phase_lines(bands: pd.DataFrame, marks: pd.DataFrame, title: str | None = None,
                color_domain: list[str] | None = None, log_epochs: bool = True) -> alt.FacetChart:
    """A panel per layer (rows) and quantity (columns: I(X;T), I(Y;T)): a line per seed group
    (its mean), its band, and dashed rules at its marks (`phase_marks`). `color_domain`:
    every group's legend entry in colour order (default: the groups with a line), so that a group
    whose seeds are all left out keeps its entry and the others keep their colours; epochs on a
    symmetric-log axis, or a linear one."""
    legend_of = bands.drop_duplicates("group").set_index("group")["legend"]
    domain = color_domain or list(dict.fromkeys(bands["legend"]))
    # marks only on the quantities drawn: ksg has no I(X;T), and its panels would hold SNR rules alone
    marks = marks[marks["group"].isin(legend_of.index) & marks["quantity"].isin(set(bands["quantity"]))]
    marks = marks.assign(legend=marks["group"].map(legend_of))
    dashed = [mark for mark in MARKS.values() if mark in set(marks["mark"])] or list(MARKS.values())   # the legend's
    data = pd.concat([bands.assign(kind="band"), marks.assign(kind="mark")], ignore_index=True)
    data["panel"] = (with_layer_label(data)["layer_label"] + ": "
                     + data["quantity"].map(QUANTITY_TITLES).str.split(" ").str[0])
    data = data[["kind", "panel", "layer", "quantity", "legend", "epoch", "mean", "low", "high", "n", "mark"]]
    # without any mark (a root whose layer names are NULL has none) the column held NaN as objects,
    # which altair's sanitizing keeps: a bare NaN in the spec, no JSON, and vl-convert refused the
    # report's figure. As text its missing values are null.
    data["mark"] = data["mark"].astype("string")
    color = category_color("legend", domain, title="seed group", orient="bottom", columns=1)
    width = (PAGE_WIDTH - 2 * AXIS_SPACE) // 2 - 40   # two panels, each with its own y axis, within PAGE_WIDTH
    x = epoch_x(float(data["epoch"].max())) if log_epochs else alt.X("epoch:Q", title="epoch")
    y = alt.Y("mean:Q", title="bits")
    base = alt.Chart().properties(width=width, height=160)
    band = base.transform_filter("datum.kind == 'band'").mark_area(opacity=0.2).encode(
        x=x, y=alt.Y("low:Q", title="bits"), y2="high:Q", color=color)
    line = base.transform_filter("datum.kind == 'band'").mark_line(strokeWidth=1.5).encode(
        x=x, y=y, color=color, tooltip=["legend:N", "epoch:Q", "mean:Q", "low:Q", "high:Q", "n:Q"])
    rules = base.transform_filter("datum.kind == 'mark'").mark_rule(strokeWidth=1.2).encode(
        x=x, color=color,
        strokeDash=alt.StrokeDash("mark:N", title="epoch of", sort=dashed,
                                  scale=alt.Scale(domain=dashed, range=[DASHES[mark] for mark in dashed]),
                                  legend=alt.Legend(symbolType="stroke", symbolSize=DASH_SWATCH,
                                                    symbolStrokeWidth=1.5)),
        tooltip=["legend:N", "mark:N", "epoch:Q"])
    # by layer, then its name (networks of different depths: 3 is the output of one, dense_3 of
    # another), then I(X;T) before I(Y;T): the two columns stay one quantity each
    order = list(dict.fromkeys(data.sort_values(["layer", "panel"])["panel"]))
    chart = alt.layer(band, line, rules, data=data).facet(
        facet=alt.Facet("panel:N", sort=order, title=None,
                        header=alt.Header(labelFontWeight="bold", labelLimit=width)), columns=2)
    chart = chart.resolve_scale(y="independent")
    return titled(chart, title, PAGE_WIDTH - LEGEND_SPACE)
