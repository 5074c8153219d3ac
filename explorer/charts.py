"""What every Altair chart of the explorer shares: the page's layout (widths, columns, titles,
legends, facets), the epoch axis and colour, how a layer is named and coloured, and how many
epochs a line draws. The charts themselves are pure functions from DataFrames to charts (no
Streamlit, no SQL), one module per subject: charts_infoplane, charts_training,
charts_activations, charts_results (and phase_charts for the phase view).

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
import re

import altair as alt
import pandas as pd

alt.data_transformers.disable_max_rows()  # a 12-panel grid holds tens of thousands of points

PAGE_WIDTH = 820
AXIS_SPACE = 60          # a y axis with its labels and title, beside a panel
LEGEND_SPACE = 130       # a legend at the right of a chart
LINE_POINTS = 500        # points per line drawn on the page, at most
MAX_COLUMNS = 4          # more panels per row than this would be too narrow to read at 1280 px
# tick labels 0, 1, 2, 5, 10, ..., 500, 1k, 2k, ..., 1M (Vega's "~s" format picks one SI prefix
# for a whole symlog legend and writes 100 as "0k")
COUNT_LABEL = ("datum.value >= 1e6 ? format(datum.value / 1e6, '~g') + 'M' : datum.value >= 1000 ? "
               "format(datum.value / 1000, '~g') + 'k' : format(datum.value, '~g')")
# distinct hues for up to 10 lines; beyond that an ordered ramp (neighbours in the legend's
# order get neighbouring colours, which reads better than 20 paired look-alike hues)
CATEGORICAL = "tableau10"
# Vega's tableau10, colour by colour: for a chart that must give some values these colours and
# others none of them (sql_chart: the selection's seed groups among more than ten)
TABLEAU10 = ("#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d",
             "#bab0ac")
ORDERED = "turbo"
LAYER_NAME_AFTER = " · "   # between a layer's number and its name: `layer_label`


def panel_order(frame: pd.DataFrame, field: str = "panel") -> list[str]:
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
    """A Vega label expression that puts each `key=value` part of a label, its seed count
    "(3 seeds)" and its badge "[dead]" on lines of their own when the label is wider than `width`
    pixels (facet headers: a panel's varying keys and badge; a badge must never be cut off). It
    breaks at a comma before the next key and before the count and the badges (ui.group_badges'
    words), not within a value ("architecture=[10, 7, 5]", "path=data (v2).npz")."""
    count_or_badge = r"[(](?=\\d+ seeds?[),])|\\[(?=dead|saturated|diverged|\\d+ of )"
    parts = f"replace(datum.value, regexp(' (?={count_or_badge})', 'g'), ', ')"
    before_a_part = rf"regexp(', (?=[\\w.]+=|{count_or_badge})')"
    return f"length(datum.value) * {CHAR_PX} > {width} ? split({parts}, {before_a_part}) : datum.value"


def category_color(field: str, domain: list, title: str | None = None, shown: list | None = None,
                   colours: list[str] | None = None, **legend_options) -> alt.Color:
    """Colours by `field` in the order of `domain`, from CATEGORICAL (ORDERED past ten values) or
    `colours`, one per value; the legend lists `shown` (default: the domain), so a domain may hold
    values a chart lacks and keep their colours for those it has."""
    scale = (alt.Scale(domain=domain, range=colours) if colours else
             alt.Scale(domain=domain, scheme=CATEGORICAL if len(domain) <= 10 else ORDERED))
    entries = domain if shown is None else shown
    return alt.Color(field=field, type="nominal", title=title, sort=domain, scale=scale,
                     legend=legend(len(entries), **legend_options, **({} if shown is None else {"values": shown})))


def epoch_ticks(max_epoch: float, with_zero: bool = True, steps: tuple[int, ...] = (1, 2, 5)) -> list[int]:
    """Tick values for a logarithmic epoch axis: 1, 2, 5, 10, 20, 50, ... up to the first tick at
    or beyond `max_epoch` (and 0 first for a symlog axis). No epochs at all (the max of an empty
    frame is NaN: a chart whose every run is left out) give the first tick."""
    if not math.isfinite(max_epoch):
        max_epoch = 1   # NaN compares false with every tick: the loop below once never ended
    ticks = [0] if with_zero else []
    decade = 1
    while True:
        for step in steps:
            ticks.append(step * decade)
            if step * decade >= max_epoch:
                return ticks
        decade *= 10


def epoch_x(max_epoch: float) -> alt.X:
    """A symmetric-log epoch axis (epoch 0, the initial network, stays on it) ending at the first
    of 0, 1, 2, 5, 10, 20, 50, ... at or past `max_epoch` (500 for 500 epochs), with a tick at
    each, labelled 1k, 2k, ... from a thousand on; on a narrow panel, labels that would run into
    one another are left out (their grid lines stay). Every log epoch axis of the explorer."""
    ticks = epoch_ticks(max_epoch)
    return alt.X("epoch:Q", title="epoch",
                 scale=alt.Scale(type="symlog", constant=1, domain=[0, ticks[-1]], nice=False),
                 axis=alt.Axis(values=ticks, labelExpr=COUNT_LABEL, labelOverlap="greedy", labelSeparation=4,
                               grid=True))   # labels that touched ("50100") were kept: 4 px apart at least


def epoch_color(max_epoch: float, channel: type = alt.Color) -> alt.Color | alt.Fill:
    """Epoch on a viridis symlog scale from 0 to the runs' last epoch (not the next power of ten),
    legend ticks at 0, 1, 10, 100, ... and that last epoch, the title clear of the top label."""
    last = int(max_epoch)
    ticks = [t for t in epoch_ticks(last, steps=(1,)) if t < last] + [last]
    return channel("epoch:Q", scale=alt.Scale(scheme="viridis", type="symlog", constant=1, domain=[0, last]),
                   legend=alt.Legend(values=ticks, labelExpr=COUNT_LABEL, labelOverlap="greedy", titlePadding=12,
                                     labelSeparation=4))


def layer_label(layer: int, layer_name: str | None) -> str:
    """The one way every page and the report name a layer: its number and its name ("0 · dense_0",
    "5 · output"), the number alone where the name is unknown (a run's mi file could not be read).

    >>> layer_label(4, "dense_4"), layer_label(4, None)
    ('4 · dense_4', '4')
    """
    return f"{int(layer)}{LAYER_NAME_AFTER}{layer_name}" if isinstance(layer_name, str) else str(int(layer))


def with_layer_label(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with `layer_label`, each row's `layer_label` (the number alone where the frame has no
    `layer_name`), made a column at a time."""
    label = frame["layer"].astype(int).astype(str)
    if "layer_name" in frame:
        named = frame["layer_name"].notna()
        names = frame["layer_name"].astype(object).where(named, "").astype(str)
        label = label.where(~named, label + LAYER_NAME_AFTER + names)
    return frame.assign(layer_label=label)


def layer_labels(frame: pd.DataFrame) -> list[str]:
    return list(frame.sort_values("layer", kind="stable")["layer_label"].drop_duplicates())


def layer_color(frame: pd.DataFrame) -> alt.Color:
    return category_color("layer_label", layer_labels(frame), title="layer")


def ordered_layer_color(frame: pd.DataFrame) -> alt.Color:
    """Layers on an ordered ramp (first to last layer), for line charts of many quantities."""
    labels = layer_labels(frame)
    return alt.Color("layer_label:O", title="layer", sort=labels, scale=alt.Scale(scheme="plasma", domain=labels),
                     legend=legend(len(labels)))


def layer_shape(frame: pd.DataFrame) -> alt.Shape:
    names = layer_labels(frame)
    return alt.Shape("layer_label:N", title="layer", sort=names, scale=alt.Scale(domain=names),
                     legend=legend(len(names)))


def grid_panel_width(columns: int, page_width: int = PAGE_WIDTH) -> int:
    """Width of one panel so that `columns` panels, their axes and a legend fit in `page_width`."""
    return max(int((page_width - LEGEND_SPACE) / columns) - AXIS_SPACE, 100)


def facet(chart: alt.LayerChart | alt.Chart, frame: pd.DataFrame, columns: int, width: int,
           shared: bool = True, title: str | None = None, title_width: int = PAGE_WIDTH - AXIS_SPACE - 40
           ) -> alt.FacetChart:
    header = alt.Header(labelFontSize=12, labelLimit=width, labelFontWeight="bold", labelExpr=wrapped_labels(width))
    faceted = chart.facet(facet=alt.Facet("panel:N", sort=panel_order(frame), title=None, header=header),
                          columns=columns)
    if not shared:
        faceted = faceted.resolve_scale(x="independent", y="independent")
    return titled(faceted, title, title_width)


def epoch_stride(max_epoch: float) -> int:
    """The step between drawn epochs so that a line over 0..max_epoch has at most LINE_POINTS points."""
    return max(1, math.ceil((max_epoch + 1) / LINE_POINTS))


def every_nth_epoch(frame: pd.DataFrame, stride: int, lines: tuple[str, ...] = ("panel", "run_id", "split")
                    ) -> pd.DataFrame:
    """The rows of every `stride`-th epoch and of each line's last epoch, a line being the rows alike
    in those of `lines` the frame has (a screen's width holds a few hundred points per line; drawing
    8000 epochs of 20 runs makes the page slow). A run that ended at epoch 1234 beside runs of 8000
    keeps its own last epoch.

    >>> frame = pd.DataFrame({"run_id": ["a"] * 5 + ["b"] * 3, "epoch": [0, 1, 2, 3, 4, 0, 1, 2]})
    >>> every_nth_epoch(frame, 3)["epoch"].tolist()
    [0, 3, 4, 0, 2]
    """
    if stride == 1:
        return frame
    by = [column for column in lines if column in frame]
    last = frame.groupby(by, sort=False, dropna=False)["epoch"].transform("max") if by else frame["epoch"].max()
    return frame[(frame["epoch"] % stride == 0) | (frame["epoch"] == last)]


def group_bands(frame: pd.DataFrame, value: str, value_title: str, scale: alt.Scale,
                color_domain: list[str] | None = None, title: str | None = None) -> alt.FacetChart:
    """A chart per layer of `value` over seeds against epoch: a line (`value`) and its band
    (`{value}_lo` to `{value}_hi`) per seed group (`group`, coloured in `color_domain`'s order),
    the epochs on a symmetric-log axis; rows of seed_bands.over_seeds with layer and epoch."""
    data = with_layer_label(frame)[["group", "layer", "layer_label", "epoch", value, f"{value}_lo", f"{value}_hi",
                                    "seeds"]]
    domain = color_domain or panel_order(data, "group")
    color = category_color("group", domain, title=None, orient="bottom", columns=2)
    columns = 3
    width = PAGE_WIDTH // columns - AXIS_SPACE - 10
    x = epoch_x(frame["epoch"].max())
    band = alt.Chart().mark_area(opacity=0.18).encode(
        x=x, y=alt.Y(f"{value}_lo:Q", scale=scale, title=value_title), y2=f"{value}_hi:Q", color=color)
    line = alt.Chart().mark_line(strokeWidth=1.6).encode(
        x=x, y=alt.Y(f"{value}:Q", scale=scale, title=value_title), color=color,
        tooltip=["group", "layer_label", "epoch", value, "seeds"])
    faceted = alt.layer(band, line, data=data).properties(width=width, height=170).facet(
        facet=alt.Facet("layer_label:N", title="layer", sort=layer_labels(data),
                        header=alt.Header(labelFontWeight="bold")), columns=columns)
    return titled(faceted, title)


# Characters an SVG's text may not hold (XML 1.0: no C0 control but tab, line feed and carriage
# return; no U+FFFE, U+FFFF), drawn as U+FFFD: vl-convert 1.9 panicked on one ("NonXmlChar") and the
# panic aborted the whole process, the explorer's server for every visitor, from one ESC in a config
# value or in a SQL column name (an attacker's). The JSON spec holds C0 controls escaped (\u001b,
# \b, \f), a "\\" before them a backslash of the text's own; beyond U+FFFF raw: Vega cuts a long label
# between the halves of a UTF-16 pair, and vl-convert then failed the spec ("unexpected end of hex escape").
_ESCAPED_CONTROL = re.compile(r"(?<!\\)((?:\\\\)*)\\(?:u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F])|[bf])")
_RAW_NOT_DRAWN = re.compile("[\ud800-\udfff\ufffe\uffff\U00010000-\U0010FFFF]")


def svg(chart: alt.TopLevelMixin) -> str:
    """The chart as SVG (vl-convert), each character an SVG cannot hold drawn as U+FFFD."""
    import vl_convert as vlc

    spec = _RAW_NOT_DRAWN.sub("\ufffd", chart.to_json(indent=None))   # no indent: json's C encoder
    if "\\" in spec:      # an escape at all: the search costs a tenth of vl-convert's time on a 2 MB spec
        spec = _ESCAPED_CONTROL.sub(r"\1\\ufffd", spec)
    return vlc.vegalite_to_svg(spec)
