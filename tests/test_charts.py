import html
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import altair as alt
import pandas as pd
import pytest
import vl_convert as vlc

from explorer import charts, charts_activations, charts_infoplane, charts_results, charts_training, seed_bands


def mi_frame(panels=("initial_bias=0", "initial_bias=2"), epochs=(0, 10, 100), layers=3):
    rows = []
    for p, panel in enumerate(panels):
        for epoch in epochs:
            for layer in range(layers):
                rows.append({"panel": panel, "group": panel, "run_id": f"r{p}", "epoch": epoch, "layer": layer,
                             "layer_name": f"dense_{layer}", "i_xt": 11.0 - 2 * layer - epoch / 100,
                             "i_yt": 0.5 + epoch / 250, "i_xt_min": 9.0, "i_xt_max": 12.0, "i_yt_min": 0.4,
                             "i_yt_max": 1.0, "i_xt_q1": 10.0, "i_xt_q3": 11.0, "i_yt_q1": 0.5, "i_yt_q3": 0.9,
                             "seeds": 3})
    return pd.DataFrame(rows)


def rows(spec):
    (values,) = spec["datasets"].values()
    return values


def test_infoplane_grid_panels_encodings_and_data():
    frame = mi_frame()
    spec = charts_infoplane.infoplane_grid(frame, columns=3, title="binning, train split").to_dict()
    assert spec["facet"]["field"] == "panel"
    assert spec["facet"]["sort"] == ["initial_bias=0", "initial_bias=2"]
    assert spec["columns"] == 3 and spec["title"]["text"] == "binning, train split"
    lines, points = spec["spec"]["layer"]
    assert lines["mark"]["type"] == "line" and lines["encoding"]["detail"]["field"] == "epoch"
    assert lines["encoding"]["order"]["field"] == "layer"
    assert points["encoding"]["x"]["field"] == "i_xt" and points["encoding"]["y"]["field"] == "i_yt"
    assert points["encoding"]["color"]["field"] == "epoch"
    assert points["encoding"]["shape"]["field"] == "layer_label"
    data = rows(spec)
    assert len(data) == len(frame) == 18
    assert {r["panel"] for r in data} == {"initial_bias=0", "initial_bias=2"}
    assert data[0]["i_xt"] == 11.0 and "i_xt_min" not in data[0]
    assert "resolve" not in spec


def test_infoplane_grid_free_axes_and_spread():
    spec = charts_infoplane.infoplane_grid(mi_frame(), shared_axes=False, spread="IQR").to_dict()
    assert spec["resolve"]["scale"] == {"x": "independent", "y": "independent"}
    layers = spec["spec"]["layer"]
    assert [l["mark"]["type"] for l in layers] == ["line", "rule", "rule", "point"]
    assert layers[1]["encoding"]["x"]["field"] == "i_xt_lo" and layers[1]["encoding"]["x2"]["field"] == "i_xt_hi"
    data = rows(spec)
    assert {(r["i_xt_lo"], r["i_xt_hi"], r["i_yt_lo"], r["i_yt_hi"]) for r in data} == {(10.0, 11.0, 0.5, 0.9)}
    minmax = rows(charts_infoplane.infoplane_grid(mi_frame(), spread="min-max").to_dict())
    assert {(r["i_xt_lo"], r["i_xt_hi"]) for r in minmax} == {(9.0, 12.0)}


def test_training_curves_accuracy_axis_and_band():
    frame = pd.DataFrame({"panel": ["a"] * 4, "split": ["train", "train", "test", "test"], "epoch": [0, 1, 0, 1],
                          "accuracy": [0.5, 0.9, 0.5, 0.8], "loss": [0.7, 0.2, 0.7, 0.3],
                          "accuracy_min": [0.4, 0.8, 0.4, 0.7], "accuracy_max": [0.6, 0.95, 0.6, 0.85],
                          "loss_min": [0.6, 0.1, 0.6, 0.2], "loss_max": [0.8, 0.3, 0.8, 0.4],
                          "accuracy_seeds": [5, 1, 5, 1], "loss_seeds": [5, 1, 4, 1]})
    spec = charts_training.training_curves(frame, band=True, title="median over seeds").to_dict()
    accuracy, loss = spec["hconcat"]
    # a point over one seed (the others stopped) says so: its band of no width is not agreement
    assert accuracy["layer"][1]["encoding"]["tooltip"][-1] == {"field": "accuracy_seeds", "title": "seeds",
                                                                "type": "quantitative"}
    assert loss["layer"][1]["encoding"]["tooltip"][-1]["field"] == "loss_seeds"
    grid = charts_training.accuracy_grid(frame, band=True).to_dict()
    assert {r["accuracy_seeds"] for r in rows(grid)} == {5, 1}
    assert grid["spec"]["layer"][1]["encoding"]["tooltip"][-1]["title"] == "seeds"
    assert accuracy["title"] == "accuracy" and loss["title"] == "loss"
    band, line = accuracy["layer"]
    assert band["mark"]["type"] == "area" and band["encoding"]["y2"]["field"] == "accuracy_max"
    assert line["encoding"]["y"]["scale"]["domain"] == [0, 1]
    assert line["encoding"]["strokeDash"]["field"] == "split" and line["encoding"]["color"]["field"] == "panel"
    assert spec["title"]["text"] == "median over seeds"
    plain = charts_training.training_curves(frame).to_dict()
    assert [l["mark"]["type"] for l in plain["hconcat"][0]["layer"]] == ["line"]


def test_gradient_chart_is_log_log_and_drops_unplottable_values():
    frame = pd.DataFrame({"epoch": [0, 1, 10, 1, 10], "layer": [0, 0, 0, 1, 1],
                          "grad_mean_norm": [1.0, 0.5, 0.1, 0.0, 0.2], "grad_std_norm": [1.0, 1.0, 1.0, 1.0, 1.0],
                          "snr": [1.0, 0.5, 0.1, 0.0, 0.2], "weight_norm": [3.0, 3.1, 3.2, 2.0, 2.1]})
    spec = charts_training.gradient_chart(frame, title="relu").to_dict()
    encoding = spec["spec"]["encoding"]
    assert encoding["x"]["scale"]["type"] == "symlog" and encoding["y"]["scale"]["type"] == "log"
    assert encoding["x"]["axis"]["values"] == [0, 1, 2, 5, 10]  # 1-2-5 as on the Phases page, narrow or not
    assert spec["facet"]["field"] == "quantity" and spec["columns"] == 2     # 2 x 2: fits the page
    data = rows(spec)
    assert all(r["value"] > 0 for r in data)
    # 5 rows x 4 quantities, minus the two zeros of layer 1 at epoch 1 (epoch 0 stays: symlog axis)
    assert len(data) == 18
    assert {r["quantity"] for r in data} == set(charts_training.GRADIENT_QUANTITIES.values())


def test_a_vanished_gradients_snr_is_left_out_of_the_seeds_and_its_layers_named():
    # A sceptic's: a bias-5 tanh group's hidden layers had gradient means of norm 1e-16 and an SNR of 10,
    # drawn as the strongest drift on the page; a healthy group's read 1.6
    # the last: a mean that vanishes beside a spread that does not is a low SNR, kept (diffusion)
    frame = pd.DataFrame({"group": ["sat"] * 4 + ["ok"] * 4, "seed": [0, 1, 0, 1] * 2, "layer": [0, 0, 1, 1] * 2,
                          "layer_name": ["dense_0", "dense_0", "dense_1", "dense_1"] * 2, "epoch": 1,
                          "grad_mean_norm": [1e-16, 0.3, 2e-8, 1e-15, 0.2, 0.1, 1e-7, 1e-9],
                          "grad_std_norm": [1e-17, 0.3, 1e-9, 1e-16, 0.1, 0.1, 1e-9, 0.1],
                          "snr": [10.0, 1.0, 20.0, 10.0, 2.0, 1.0, 100.0, 1e-8]})
    kept, vanished = charts_training.without_vanished_snr(frame)
    assert kept["snr"].isna().tolist() == [True, False, True, True, False, False, False, False]   # 1e-7 is kept
    assert vanished == ["sat: 0 · dense_0, 1 · dense_1"]
    over = seed_bands.over_seeds(kept, ["group", "layer"], "snr", log=True).set_index(["group", "layer"])
    assert over.loc[("sat", 0), ["snr", "seeds"]].tolist() == [1.0, 1] and over.loc[("sat", 1), "seeds"] == 0
    assert over.loc[("ok", 1), "snr"] == pytest.approx(math.sqrt(100.0 * 1e-8))
    assert charts_training.without_vanished_snr(frame[frame["group"] == "ok"])[1] == []
    # norms unknown (an attacker's NULLs beside a finite SNR): no SNR, as the statistics read it
    unknown = frame.assign(grad_mean_norm=[None] * 8, grad_std_norm=[None] * 7 + [0.5])
    assert charts_training.without_vanished_snr(unknown)[0]["snr"].notna().tolist() == [False] * 7 + [True]


def test_every_narrow_epoch_axis_ends_at_the_last_epoch_with_1_2_5_ticks():
    """The Gradients page's SNR over seeds, its per-run charts and the Activations page's dead and
    saturated units ran to 1k for 500 epochs with ticks at powers of ten: they share the Phases
    page's axis (charts.epoch_x), 0 to 500 with ticks at 1, 2, 5, 10, 20, 50, ..."""
    epochs = [0, 1, 250, 500]
    snr = pd.DataFrame({"group": "g", "layer": 0, "epoch": epochs, "snr": 1.0, "snr_lo": 0.5, "snr_hi": 2.0,
                        "seeds": 2})
    gradients = pd.DataFrame({"epoch": epochs, "layer": 0, "grad_mean_norm": 1.0, "grad_std_norm": 1.0, "snr": 1.0,
                              "weight_norm": 1.0})
    fractions = pd.DataFrame({"epoch": epochs, "layer": 0, "frac_zero": 0.5, "frac_saturated": 0.1})
    axes = [charts_training.snr_bands(snr).to_dict()["spec"]["layer"][1]["encoding"]["x"],
            charts_training.gradient_chart(gradients).to_dict()["spec"]["encoding"]["x"],
            charts_activations.dead_fraction_chart(fractions).to_dict()["spec"]["encoding"]["x"],
            charts_activations.fraction_bands(snr.rename(columns=lambda c: c.replace("snr", "frac_zero")),
                                              "frac_zero", "fraction zero").to_dict()["spec"]["layer"][1]["encoding"]["x"]]
    for x in axes:
        assert x == charts.epoch_x(500).to_dict()
        assert x["scale"]["domain"] == [0, 500] and x["axis"]["values"] == [0, 1, 2, 5, 10, 20, 50, 100, 200, 500]


def test_epoch_ticks_are_1_2_5_per_decade_up_to_the_last_epoch():
    assert charts.epoch_ticks(8000) == [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
    assert charts.epoch_ticks(60, with_zero=False) == [1, 2, 5, 10, 20, 50, 100]
    assert charts.epoch_ticks(300, steps=(1,)) == [0, 1, 10, 100, 1000]
    # no epochs (an empty frame's max): the loop once never ended and filled the memory
    assert charts.epoch_ticks(float("nan")) == charts.epoch_ticks(math.inf) == [0, 1]


def test_the_epoch_colour_bar_ends_at_the_runs_last_epoch():
    spec = charts_infoplane.infoplane_grid(mi_frame(epochs=(0, 10, 100, 500))).to_dict()
    color = spec["spec"]["layer"][-1]["encoding"]["color"]
    assert color["scale"]["domain"] == [0, 500] and color["legend"]["values"] == [0, 1, 10, 100, 500]
    assert color["legend"]["titlePadding"] >= 10                  # the top label stays clear of the title


@pytest.mark.slow  # draws a dozen charts with Vega
def test_charts_fit_the_page_with_every_legend_entry_opaque():
    """Drawn by Vega (vl-convert): each chart at most PAGE_WIDTH wide with 12 runs and 35 neurons,
    every legend entry present (Vega draws 30 at most unless told) with an opaque swatch."""
    panels = [f"initial_bias={b}" for b in range(12)]
    mi = mi_frame(panels=panels, layers=6)
    neurons = pd.DataFrame({"epoch": [e for e in (0, 10, 100) for _ in range(35)], "neuron": list(range(35)) * 3,
                            "mean": 0.1, "std": 0.05, "min": 0.0, "max": 1.0})
    metrics = pd.DataFrame([{"panel": p, "group": p, "split": split, "epoch": e, "accuracy": 0.5, "loss": 0.5}
                            for p in panels for split in ("train", "test") for e in (0, 1, 2)])
    cases = [(charts_infoplane.infoplane_grid(mi, columns=columns), 6) for columns in range(1, charts.MAX_COLUMNS + 1)]
    cases += [(charts_infoplane.infoplane_grid(mi, color_by="layer"), 6),
              (charts_infoplane.infoplane_overlay(mi), 12 + 6),
              (charts_activations.neuron_chart(neurons), 35), (charts_training.training_curves(metrics), 12 + 2),
              (charts_training.accuracy_grid(metrics, columns=3), 2),
              (charts_infoplane.infoplane_at_epoch(mi[mi["panel"] == panels[0]], 10, color_by="epoch"), 6)]
    snr = pd.DataFrame([{"group": p, "layer": layer, "epoch": e, "snr": 1.0 + e, "snr_lo": 0.5, "snr_hi": 2.0 + e,
                         "seeds": 2} for p in panels for layer in range(6) for e in (0, 10, 100)])
    cases.append((charts_training.snr_bands(snr), 12))
    for chart, entries in cases:
        svg = vlc.vegalite_to_svg(chart.to_dict())
        assert float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1)) <= charts.PAGE_WIDTH
        symbols = re.findall(r'role-legend-symbol"[^>]*>(<path[^>]*>)', svg)
        assert len(symbols) == entries
        assert all('opacity="1"' in symbol for symbol in symbols)


@pytest.mark.slow  # draws charts with Vega
def test_long_titles_wrap_within_the_page():
    """A run titled by many varying keys (or a 200-character config value) must not widen a chart;
    titles wrap into lines instead of being cut."""
    long = [f"architecture=[{','.join(['10'] * 40)}], note={'x' * 200}, seed={seed}" for seed in range(3)]
    mi = mi_frame(panels=long, layers=6)
    metrics = pd.DataFrame([{"panel": p, "group": p, "split": split, "epoch": e, "accuracy": 0.5, "loss": 0.5}
                            for p in long for split in ("train", "test") for e in (0, 1, 2)])
    snr = pd.DataFrame([{"group": p, "layer": 0, "epoch": 10, "snr": 1.0, "snr_lo": 0.5, "snr_hi": 1.5, "seeds": 2}
                        for p in long])
    title = long[0]
    for chart in (charts_infoplane.infoplane_grid(mi, columns=3, title=title),
                  charts_infoplane.infoplane_overlay(mi, title=title),
                  charts_infoplane.infoplane_at_epoch(mi[mi["panel"] == long[0]], 10, title=title),
                  charts_training.training_curves(metrics, title=title),
                  charts_training.accuracy_grid(metrics, title=title),
                  charts_training.snr_bands(snr, title=title)):
        spec = chart.to_dict()
        lines = spec["title"]["text"]
        assert "".join(lines).replace(",", "").replace(" ", "") == title.replace(",", "").replace(" ", "")
        assert len(lines) > 2 and "limit" not in spec["title"]        # wrapped, nothing cut
        svg = vlc.vegalite_to_svg(spec)
        assert float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1)) <= charts.PAGE_WIDTH


def test_wrap_breaks_after_commas_and_within_long_parts():
    assert charts.wrap("initial_bias=0.2, seed=1", 400) == ["initial_bias=0.2, seed=1"]
    assert charts.wrap("initial_bias=0.2, activation_fn=relu, seed=1 [dead]", 26 * charts.CHAR_PX) == \
        ["initial_bias=0.2,", "activation_fn=relu,", "seed=1 [dead]"]
    assert charts.wrap("x" * 20, 8 * charts.CHAR_PX) == ["x" * 8 + ",", "x" * 8 + ",", "x" * 4]


def test_colour_by_layer_and_the_overlay():
    spec = charts_infoplane.infoplane_grid(mi_frame(layers=3), color_by="layer").to_dict()
    path, points = spec["spec"]["layer"]
    assert points["encoding"]["color"]["field"] == "layer_label" and points["encoding"]["shape"]["field"] == "layer_label"
    assert points["encoding"]["color"]["scale"]["domain"] == ["0 · dense_0", "1 · dense_1", "2 · dense_2"]
    assert path["encoding"]["detail"]["field"] == "layer" and path["encoding"]["order"]["field"] == "epoch"
    frame = mi_frame(panels=("b", "a"))
    spec = charts_infoplane.infoplane_overlay(frame.assign(group=frame["panel"])).to_dict()
    paths, points = spec["layer"]
    assert points["encoding"]["color"]["scale"]["domain"] == ["b", "a"]     # the groups' order, not sorted
    spec = charts_infoplane.infoplane_overlay(frame.assign(group="g"), color_domain=["f", "g"]).to_dict()
    assert spec["layer"][1]["encoding"]["color"]["scale"]["domain"] == ["f", "g"]   # the page's colours
    assert len(rows(spec)) == 2 * 3 * 3


def test_training_curves_loss_on_a_log_axis_and_accuracy_small_multiples():
    frame = pd.DataFrame({"panel": ["a, seed=0"] * 3 + ["a, seed=1"] * 3, "group": ["a"] * 6,
                          "split": ["train"] * 6, "epoch": [0, 1, 2] * 2,
                          "accuracy": [0.5, 0.6, 0.7] * 2, "loss": [0.0, 0.5, 0.2] * 2})
    spec = charts_training.training_curves(frame, color_field="group").to_dict()
    accuracy, loss = (chart["layer"][-1] for chart in spec["hconcat"])
    loss_data = (spec["hconcat"][1].get("data") or loss["data"])["name"]
    assert loss["encoding"]["y"]["scale"]["type"] == "log"
    assert accuracy["encoding"]["color"]["field"] == "group" and accuracy["encoding"]["detail"]["field"] == "panel"
    assert [r["loss"] for r in spec["datasets"][loss_data]] == [0.5, 0.2, 0.5, 0.2]   # 0 cannot be drawn
    grid = charts_training.accuracy_grid(frame, columns=3).to_dict()
    assert grid["facet"]["field"] == "panel" and grid["facet"]["sort"] == ["a, seed=0", "a, seed=1"]
    assert grid["spec"]["layer"][0]["encoding"]["y"]["scale"]["domain"] == [0, 1]
    # per seed group: the spread over seeds under the line (it drew the median alone)
    banded = frame.assign(accuracy_min=frame["accuracy"] - 0.1, accuracy_max=frame["accuracy"] + 0.1, accuracy_seeds=2)
    band, line = charts_training.accuracy_grid(banded, band=True).to_dict()["spec"]["layer"]
    assert band["mark"]["type"] == "area" and band["encoding"]["y"]["field"] == "accuracy_min"
    assert band["encoding"]["y2"]["field"] == "accuracy_max" and line["mark"]["type"] == "line"


def test_snr_bands_colour_groups_and_keep_the_band_on_the_log_axis():
    # per seed: bias=0 at layer 0 spreads widely (its arithmetic t band reached below 0); bias=2 at
    # epoch 20 has only zero SNRs (a dead gradient): no point to draw
    seeds = pd.DataFrame({"group": ["bias=0"] * 3 + ["bias=2"] * 4, "layer": [0, 0, 0, 0, 0, 0, 0],
                          "epoch": [10, 10, 10, 10, 10, 20, 20], "snr": [0.1, 1.0, 30.0, 3.0, 2.0, 0.0, 0.0]})
    over = seed_bands.over_seeds(seeds, ["group", "layer", "epoch"], "snr", log=True)
    spec = charts_training.snr_bands(over, color_domain=["bias=0", "bias=1", "bias=2"]).to_dict()
    band, line = spec["spec"]["layer"]
    assert line["encoding"]["color"]["scale"]["domain"] == ["bias=0", "bias=1", "bias=2"]
    assert band["mark"]["type"] == "area" and spec["facet"]["field"] == "layer_label"
    drawn = rows(spec)
    assert [(r["group"], r["epoch"]) for r in drawn] == [("bias=0", 10), ("bias=2", 10)]
    assert all(0 < r["snr_lo"] < r["snr"] < r["snr_hi"] for r in drawn)
    # the axis reaches a decade beyond the lines, and a band wider than that is cut there: bias=2's two
    # seeds (3 and 2) have a t interval of log SNR with t(0.975, 1) = 12.7, bias=0's three spread widely
    lines = [r["snr"] for r in drawn]
    assert line["encoding"]["y"]["scale"]["domain"] == pytest.approx([min(lines) / 10, max(lines) * 10])
    assert [r["snr_lo"] for r in drawn][0] == pytest.approx(min(lines) / 10)
    assert max(r["snr_hi"] for r in drawn) <= max(lines) * 10 * (1 + 1e-12)


def test_a_group_whose_snr_is_never_above_zero_is_named():
    """A dead group's gradient is zero: its SNR is 0 or 0/0, nothing is drawn on the log axes, and the
    legend listed it with no word why; the Gradients page names it from this."""
    frame = pd.DataFrame({"group": ["live", "live", "dead", "dead", "half"], "layer": [0, 1, 0, 1, 0],
                          "epoch": 10, "snr": [1.0, 0.5, 0.0, math.nan, 0.2]})
    assert charts_training.groups_without_snr(frame, ["live", "dead", "half", "unmeasured"]) == ["dead", "unmeasured"]


def test_every_nth_epoch():
    frame = pd.DataFrame({"epoch": list(range(8001)) * 2, "run_id": ["a"] * 8001 + ["b"] * 8001})
    stride = charts.epoch_stride(8000)
    assert stride == 17 and (8000 + 1) / stride <= charts.LINE_POINTS
    kept = charts.every_nth_epoch(frame, stride)
    assert sorted(set(kept["epoch"]))[:3] == [0, 17, 34] and 8000 in set(kept["epoch"])
    assert len(kept) == 2 * len(set(kept["epoch"]))
    # a run that ended early keeps its own last epoch, not only the longest run's
    shorter = pd.concat([frame[frame["run_id"] == "a"], frame[(frame["run_id"] == "b") & (frame["epoch"] <= 1234)]])
    kept = charts.every_nth_epoch(shorter, stride)
    assert kept.groupby("run_id")["epoch"].max().to_dict() == {"a": 8000, "b": 1234}


def test_activation_heatmap_and_dead_fraction():
    frame = pd.DataFrame({"epoch": [0, 0, 5], "layer": [0, 0, 0], "bin_lo": [-1.0, 0.0, -1.0],
                          "bin_hi": [0.0, 1.0, 0.0], "count": [10, 20, 30]})
    spec = charts_activations.activation_heatmap(frame).to_dict()
    assert spec["spec"]["mark"]["type"] == "rect"
    assert spec["spec"]["encoding"]["color"]["field"] == "count"
    assert spec["spec"]["encoding"]["y2"]["field"] == "bin_hi"
    assert [r["count"] for r in rows(spec)] == [10, 20, 30]
    fractions = pd.DataFrame({"epoch": [0, 5], "layer": [0, 0], "frac_zero": [0.5, 0.9], "frac_saturated": [0.5, 0.9]})
    spec = charts_activations.dead_fraction_chart(fractions).to_dict()
    assert spec["spec"]["encoding"]["y"]["scale"]["domain"] == [0, 1]
    assert len(rows(spec)) == 4


def test_movie_frame_highlights_the_epoch():
    frame = mi_frame(panels=("run",))
    spec = charts_infoplane.infoplane_at_epoch(frame, 10).to_dict()
    assert spec["title"]["text"] == "epoch 10"
    trajectories, link, points = spec["layer"]
    assert points["mark"]["size"] == 160 and link["mark"]["type"] == "line"
    assert points["encoding"]["color"]["field"] == "layer_label" and points["encoding"]["shape"]["field"] == "layer_label"
    point_data = spec["datasets"][points["data"]["name"]]
    assert {r["epoch"] for r in point_data} == {10} and len(point_data) == 3
    accuracy = charts_training.accuracy_with_marker(pd.DataFrame({"epoch": [0, 10], "split": ["train"] * 2,
                                                         "accuracy": [0.5, 0.9]}), 10).to_dict()
    rule = accuracy["layer"][1]
    assert rule["mark"]["type"] == "rule" and accuracy["datasets"][rule["data"]["name"]] == [{"epoch": 10}]


def test_neuron_chart_band():
    frame = pd.DataFrame({"epoch": [0, 1], "neuron": [0, 0], "mean": [0.1, 0.3], "std": [0.1, 0.2],
                          "min": [-1.0, -1.0], "max": [1.0, 1.0]})
    spec = charts_activations.neuron_chart(frame, title="layer 0").to_dict()
    band, line = spec["layer"]
    assert band["encoding"]["y"]["field"] == "lo" and band["encoding"]["y2"]["field"] == "hi"
    assert [(r["lo"], r["hi"]) for r in rows(spec)] == [(0.0, 0.2), (pytest.approx(0.1), 0.5)]


def test_a_relu_neurons_band_stays_within_its_values():
    """mean ± std of a relu neuron reached below 0, which relu cannot output: the band is cut to the
    neuron's own values (min and max over the inputs, never outside the activation's range)."""
    frame = pd.DataFrame({"epoch": [0, 1], "neuron": [0, 0], "mean": [0.05, 0.5], "std": [0.2, 0.3],
                          "min": [0.0, 0.0], "max": [0.2, 3.0]})
    spec = charts_activations.neuron_chart(frame).to_dict()
    assert [(r["lo"], r["hi"]) for r in rows(spec)] == [(0.0, 0.2), (pytest.approx(0.2), 0.8)]


def test_planes_are_square_and_columns_follow_the_window():
    assert [charts_infoplane.auto_columns(w) for w in (400, 820, 1200, 1500, 3000)] == [1, 2, 3, 4, charts.MAX_COLUMNS]
    for page_width in (820, 1500):
        columns = charts_infoplane.auto_columns(page_width)
        spec = charts_infoplane.infoplane_grid(mi_frame(panels=[f"p{i}" for i in range(5)]), columns=columns,
                                     page_width=page_width).to_dict()
        assert spec["spec"]["width"] == spec["spec"]["height"] >= charts_infoplane.MIN_PLANE
        svg = vlc.vegalite_to_svg(spec)
        assert page_width - 200 <= float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1)) <= page_width


def test_every_chart_names_a_layer_by_number_and_name():
    """One vocabulary: the information planes, the gradients, the SNR and the activations all label
    layer 1 "1 · dense_1"; a frame without names shows the number."""
    names = {"layer_name": lambda f: "dense_" + f["layer"].astype(str)}
    gradients = pd.DataFrame({"epoch": [1, 1], "layer": [0, 1], "grad_mean_norm": 1.0, "grad_std_norm": 1.0,
                              "snr": 1.0, "weight_norm": 1.0}).assign(**names)
    snr = gradients.assign(group="g", snr_lo=0.5, snr_hi=2.0, seeds=2)
    histograms = pd.DataFrame({"epoch": [0, 0], "layer": [0, 1], "bin_lo": 0.0, "bin_hi": 1.0, "count": 3}).assign(**names)
    fractions = pd.DataFrame({"epoch": [0, 0], "layer": [0, 1], "frac_zero": 0.5, "frac_saturated": 0.1}).assign(**names)
    built = [charts_infoplane.infoplane_grid(mi_frame(layers=2), color_by="layer"),
             charts_training.gradient_chart(gradients), charts_training.snr_bands(snr),
             charts_activations.activation_heatmap(histograms), charts_activations.dead_fraction_chart(fractions)]
    for chart in built:
        labels = {r["layer_label"] for r in next(iter(chart.to_dict()["datasets"].values()))}
        assert labels == {"0 · dense_0", "1 · dense_1"}
    assert set(charts.with_layer_label(gradients.drop(columns="layer_name"))["layer_label"]) == {"0", "1"}


def test_parallel_coordinates_place_runs_on_each_axis_by_value():
    frame = pd.DataFrame({"run_id": ["a", "b", "c"], "initial_bias": [-1.0, 0.5, 2.0],
                          "activation_fn": ["tanh", "relu", "tanh"], "final_test_accuracy": [0.5, 0.9, 0.8]})
    spec = charts_results.parallel_coordinates(frame, ["initial_bias", "activation_fn"],
                                               "final_test_accuracy").to_dict()
    lines = next(l for l in spec["layer"] if l["mark"]["type"] == "line")
    points = {(r["run_id"], r["axis"]): r["position"] for r in spec["datasets"][lines["data"]["name"]]}
    assert points[("a", "initial_bias")] == 0 and points[("b", "initial_bias")] == pytest.approx(0.5)
    assert points[("c", "initial_bias")] == 1
    assert points[("b", "activation_fn")] == 0 and points[("a", "activation_fn")] == 1      # relu < tanh
    assert points[("a", "final_test_accuracy")] == 0 and points[("c", "final_test_accuracy")] == pytest.approx(0.75)
    assert lines["encoding"]["color"]["field"] == "final_test_accuracy"


@pytest.mark.parametrize("text_dtype", [object, "str"])
def test_parallel_coordinates_draw_a_missing_value_as_its_own_category(text_dtype):
    """A config key some runs lack is NULL in the runs view (the epoch0-tanh runs' log_schedule):
    under pandas 3 `astype(str)` kept the NaN, and sorting the values raised TypeError on the Runs
    page. A missing value is the category "(missing)" at the bottom of its axis, text or numeric."""
    frame = pd.DataFrame({"run_id": list("abcde"),
                          "log_schedule": pd.Series(["ibsgd", None, "default", math.nan, "ibsgd"], dtype=text_dtype),
                          "log_schedule.every": [1.0, math.nan, 2.0, math.nan, 1.0],
                          "final_test_accuracy": [0.5, 0.6, 0.7, 0.8, 0.9]})
    keys = ["log_schedule", "log_schedule.every"]
    spec = charts_results.parallel_coordinates(frame, keys, "final_test_accuracy").to_dict()
    lines = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "line")
    drawn = {(row["run_id"], row["axis"]): (row["position"], row["value"])
             for row in spec["datasets"][lines["data"]["name"]]}
    assert len(drawn) == 3 * len(frame)                       # every run on every axis
    assert drawn[("b", "log_schedule")] == drawn[("d", "log_schedule")] == (0.0, "(missing)")
    assert drawn[("c", "log_schedule")] == (0.5, "default") and drawn[("a", "log_schedule")] == (1.0, "ibsgd")
    assert drawn[("b", "log_schedule.every")] == (0.0, "(missing)")
    assert drawn[("a", "log_schedule.every")][0] > 0 and drawn[("c", "log_schedule.every")][0] == 1.0
    text = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    labels = [(row["axis"], row["label"]) for row in spec["datasets"][text["data"]["name"]] if row["axis"] in keys]
    assert labels == [("log_schedule", "(missing)"), ("log_schedule", "default"), ("log_schedule", "ibsgd"),
                      ("log_schedule.every", "(missing)"), ("log_schedule.every", "1"), ("log_schedule.every", "2")]


def test_parallel_coordinates_write_whole_numbers_whole():
    frame = pd.DataFrame({"run_id": list("abc"), "epochs": [8000, 10000, 8000], "initial_bias": [-0.5, 0.2, 2.0],
                          "final_test_accuracy": [0.5, 0.9, 0.7712]})
    spec = charts_results.parallel_coordinates(frame, ["epochs", "initial_bias"], "final_test_accuracy").to_dict()
    text = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    assert [row["label"] for row in spec["datasets"][text["data"]["name"]]] == [
        "8000", "10000", "-0.5", "0.2", "2",                                       # not 8e+03, 1e+04
        "0.5", "0.6", "0.7", "0.8", "0.9"]                                         # the outcome: round ticks


def test_parallel_coordinates_place_values_near_float64s_limits_on_their_axis():
    """A config value of 1e308 beside -1e308 (any run.json can hold one): hi - lo overflowed, and the
    Runs page failed with OverflowError in round_ticks. Every run is now on its axis, in order, and the
    labels are short."""
    frame = pd.DataFrame({"run_id": list("abcdefg"), "lr": [1e308, -1e308, 1.7e308, 0.0, 1.0, 2.0, 3.0],
                          "final_test_accuracy": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]})
    spec = charts_results.parallel_coordinates(frame, ["lr"], "final_test_accuracy").to_dict()
    lines = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "line")
    position = {row["run_id"]: row["position"] for row in spec["datasets"][lines["data"]["name"]] if row["axis"] == "lr"}
    assert 0 <= position["b"] < position["d"] < position["a"] < position["c"] <= 1
    text = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    assert max(len(row["label"]) for row in spec["datasets"][text["data"]["name"]]) <= 10


@pytest.mark.slow  # draws the chart with Vega
def test_parallel_coordinates_outcome_has_round_ticks_and_a_whole_name():
    """A layer's compression per run: each run's own value as a tick
    ran "-0.006" into "-0.00838", and the axis and legend titles were cut before their unit."""
    outcome = "compression over floor of 4 · dense_4 (bits)"
    values = [-0.0159, -0.00838, -0.006, 0.0, 0.0, 0.00498, 0.0639]
    frame = pd.DataFrame({"run_id": list("abcdefg"), "initial_bias": [1, 1, 1, 0, 2, 1, 1],
                          "activation_fn": ["relu"] * 7, "epochs": [500] * 7, outcome: values})
    spec = charts_results.parallel_coordinates(frame, ["initial_bias", "activation_fn", "epochs"], outcome).to_dict()
    text = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    ticks = [row for row in spec["datasets"][text["data"]["name"]] if row["axis"] == outcome]
    assert [row["label"] for row in ticks] == ["-0.02", "0.00", "0.02", "0.04", "0.06", "0.08"]
    assert [row["position"] for row in ticks] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1])    # evenly spaced
    lines = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "line")
    drawn = {row["run_id"]: row["position"] for row in spec["datasets"][lines["data"]["name"]] if row["axis"] == outcome}
    assert drawn["d"] == pytest.approx(0.2) and drawn["g"] == pytest.approx((0.0639 + 0.02) / 0.1)
    svg = vlc.vegalite_to_svg(spec)
    texts = [re.sub(r"<[^>]+>", " ", text) for text in re.findall(r"<text[^>]*>(.*?)</text>", svg)]
    named = [" ".join(text.split()) for text in texts if "compression" in text]
    assert named == [outcome, outcome]           # the axis' name (on two lines) and the legend's title, whole


def test_an_outcome_equal_up_to_rounding_is_one_value_and_an_infinite_one_is_left_out():
    # a layer at its ceiling in every run: compressions of 0 +- 1e-16 once got 17-decimal round ticks
    position, labels = charts_results.numeric_axis(pd.Series([0.0, 1.1e-16, -2.2e-16]), measured=True)
    assert labels == {"0": 0.5} and set(position) == {0.5}
    position, labels = charts_results.numeric_axis(pd.Series([1.0, 2.0, math.inf, 3.0]), measured=True)
    assert math.isnan(position[2]) and position[0] == 0.0 and max(float(label) for label in labels) == 3.0


def test_parallel_coordinates_leave_out_a_value_label_that_would_overlap_the_one_below():
    """epochs 200, 300 and 500 beside 8000 sat within a label's height of one another: the lowest of
    them is written, the others are in the tooltip."""
    frame = pd.DataFrame({"run_id": list("abcd"), "epochs": [200, 300, 500, 8000],
                          "final_test_accuracy": [0.5, 0.6, 0.7, 0.9]})
    spec = charts_results.parallel_coordinates(frame, ["epochs"], "final_test_accuracy").to_dict()
    text = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    labels = [row["label"] for row in spec["datasets"][text["data"]["name"]] if row["axis"] == "epochs"]
    assert labels == ["200", "8000"]


@pytest.mark.slow  # draws charts with Vega
def test_parallel_coordinates_keep_long_values_within_the_page():
    """An estimator list's JSON (over 1,000 characters) as an axis label once drew the chart 2,395 px
    wide, and the page's fit squeezed every axis into one place: labels are cut to the room before
    the next axis, and the axes stay evenly spread over the page's width."""
    binning = {"name": "binning", "params": {"bin_size": 0.07}}
    lists = [json.dumps([binning] + [{"name": "adaptive", "params": {"n_bins": n}} for n in range(50)]),
             json.dumps([binning])]
    frame = pd.DataFrame({"run_id": list("abcd"), "activation_fn": ["tanh", "relu", "tanh", "relu"],
                          "estimators": lists * 2, "initial_bias": [0.0, 1.0, 2.0, 3.0],
                          "final_test_accuracy": [0.5, 0.9, 0.8, 0.7]})
    keys = ["activation_fn", "estimators", "initial_bias"]
    spec = charts_results.parallel_coordinates(frame, keys, "final_test_accuracy").to_dict()
    text = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    labels = {row["label"] for row in spec["datasets"][text["data"]["name"]] if row["axis"] == "estimators"}
    assert labels == {"binning", "binning" + "+adaptive" * 50}          # the lists by their names, not JSON
    svg = vlc.vegalite_to_svg(spec)
    assert float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1)) <= charts.PAGE_WIDTH
    axes = [float(x) for x in re.findall(r'aria-roledescription="rule mark" transform="translate\(([\d.]+)', svg)]
    step = (charts.PAGE_WIDTH - 2 * charts.AXIS_SPACE) / 4
    assert axes == pytest.approx([step * (i + 0.5) for i in range(4)])


def test_a_layer_whose_name_is_unknown_is_labelled_by_its_number():
    # a run whose mi file cannot be read has no layer names: its rows once got a NaN label, which
    # Vega-Lite refused in a facet's sort (the Activations page's groups over a damaged root)
    frame = pd.DataFrame({"layer": [0, 0, 1], "layer_name": pd.array(["dense_0", None, None], dtype="string")})
    assert list(charts.with_layer_label(frame)["layer_label"]) == ["0 · dense_0", "0", "1"]
    assert charts.layer_labels(charts.with_layer_label(frame)) == ["0 · dense_0", "0", "1"]


def test_facet_headers_break_between_keys_not_within_a_value():
    """A panel's header breaks before each key, its seed count and its badge; "architecture=[10, 7,
    5]" stays on one line (it was drawn as "architecture=[10", "7", "5]")."""
    label = ("initial_bias=0.2, architecture=[10, 7, 5], path=data (v2).npz, name=run [old] b (2 seeds) "
             "[dead: 1 of 2 seeds]")
    frame = pd.DataFrame({"panel": [label], "x": [1.0], "y": [1.0]})
    chart = alt.Chart(frame).mark_point().encode(x="x", y="y").facet(
        facet=alt.Facet("panel:N", header=alt.Header(labelExpr=charts.wrapped_labels(100))))
    lines = re.findall(r"<tspan[^>]*>([^<]*)</tspan>", vlc.vegalite_to_svg(chart.to_json()))
    assert lines == ["initial_bias=0.2", "architecture=[10, 7, 5]", "path=data (v2).npz", "name=run [old] b",
                     "(2 seeds)", "[dead: 1 of 2 seeds]"]


@pytest.mark.slow   # a process of its own
def test_a_control_character_in_a_chart_is_drawn_as_a_replacement_not_an_aborted_process(tmp_path):
    # An attacker's: vl-convert 1.9 panicked on an ESC in a SQL column name or a config value, and the
    # panic aborted the explorer's server for every visitor; in a process of its own here, so that an
    # abort fails this test rather than the test run
    script = tmp_path / "draw.py"
    script.write_text(
        "import sys; from pathlib import Path\n"
        "import altair as alt, pandas as pd\n"
        "from explorer import report\n"
        "texts = ['a\\x1bb', 'c\\x08d\\x0ce', 'f\\ufffeg', 'h\\\\u001bi', 'j\\U0001F600k', 'l\\tm']\n"
        "chart = alt.Chart(pd.DataFrame({'x': range(6), 't': texts})).mark_text().encode(x='x:O', text='t')\n"
        "report._save_chart(chart, Path(sys.argv[1]), 'texts', 'a caption')\n")   # as the report and the SVG button
    (tmp_path / "figures").mkdir()
    drawn = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                           timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    svg = (tmp_path / "figures" / "texts.svg").read_text()
    texts = [html.unescape(text) for text in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    for shown in ("a\ufffdb", "c\ufffdd\ufffde", "f\ufffdg", "j\ufffdk"):
        assert shown in texts, (shown, texts)
    assert "h\\u001bi" in texts         # a backslash of the text's own is text, not an escape
