import pandas as pd
import pytest

from explorer import charts


def mi_frame(panels=("initial_bias=0", "initial_bias=2"), epochs=(0, 10, 100), layers=3):
    rows = []
    for p, panel in enumerate(panels):
        for epoch in epochs:
            for layer in range(layers):
                rows.append({"panel": panel, "run_id": f"r{p}", "epoch": epoch, "layer": layer,
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
    spec = charts.infoplane_grid(frame, columns=3, title="binning, train split").to_dict()
    assert spec["facet"]["field"] == "panel"
    assert spec["facet"]["sort"] == ["initial_bias=0", "initial_bias=2"]
    assert spec["columns"] == 3 and spec["title"] == "binning, train split"
    lines, points = spec["spec"]["layer"]
    assert lines["mark"]["type"] == "line" and lines["encoding"]["detail"]["field"] == "epoch"
    assert lines["encoding"]["order"]["field"] == "layer"
    assert points["encoding"]["x"]["field"] == "i_xt" and points["encoding"]["y"]["field"] == "i_yt"
    assert points["encoding"]["color"]["field"] == "epoch"
    assert points["encoding"]["shape"]["field"] == "layer_name"
    data = rows(spec)
    assert len(data) == len(frame) == 18
    assert {r["panel"] for r in data} == {"initial_bias=0", "initial_bias=2"}
    assert data[0]["i_xt"] == 11.0 and "i_xt_min" not in data[0]
    assert "resolve" not in spec


def test_infoplane_grid_free_axes_and_spread():
    spec = charts.infoplane_grid(mi_frame(), shared_axes=False, spread="IQR").to_dict()
    assert spec["resolve"]["scale"] == {"x": "independent", "y": "independent"}
    layers = spec["spec"]["layer"]
    assert [l["mark"]["type"] for l in layers] == ["line", "rule", "rule", "point"]
    assert layers[1]["encoding"]["x"]["field"] == "i_xt_lo" and layers[1]["encoding"]["x2"]["field"] == "i_xt_hi"
    data = rows(spec)
    assert {(r["i_xt_lo"], r["i_xt_hi"], r["i_yt_lo"], r["i_yt_hi"]) for r in data} == {(10.0, 11.0, 0.5, 0.9)}
    minmax = rows(charts.infoplane_grid(mi_frame(), spread="min-max").to_dict())
    assert {(r["i_xt_lo"], r["i_xt_hi"]) for r in minmax} == {(9.0, 12.0)}


def test_training_curves_accuracy_axis_and_band():
    frame = pd.DataFrame({"panel": ["a"] * 4, "split": ["train", "train", "test", "test"], "epoch": [0, 1, 0, 1],
                          "accuracy": [0.5, 0.9, 0.5, 0.8], "loss": [0.7, 0.2, 0.7, 0.3],
                          "accuracy_min": [0.4, 0.8, 0.4, 0.7], "accuracy_max": [0.6, 0.95, 0.6, 0.85],
                          "loss_min": [0.6, 0.1, 0.6, 0.2], "loss_max": [0.8, 0.3, 0.8, 0.4]})
    spec = charts.training_curves(frame, band=True, title="median over seeds").to_dict()
    accuracy, loss = spec["hconcat"]
    assert accuracy["title"] == "accuracy" and loss["title"] == "loss"
    band, line = accuracy["layer"]
    assert band["mark"]["type"] == "area" and band["encoding"]["y2"]["field"] == "accuracy_max"
    assert line["encoding"]["y"]["scale"]["domain"] == [0, 1]
    assert line["encoding"]["strokeDash"]["field"] == "split" and line["encoding"]["color"]["field"] == "panel"
    assert spec["title"] == "median over seeds"
    plain = charts.training_curves(frame).to_dict()
    assert [l["mark"]["type"] for l in plain["hconcat"][0]["layer"]] == ["line"]


def test_gradient_chart_is_log_log_and_drops_unplottable_values():
    frame = pd.DataFrame({"epoch": [0, 1, 10, 1, 10], "layer": [0, 0, 0, 1, 1],
                          "grad_mean_norm": [1.0, 0.5, 0.1, 0.0, 0.2], "grad_std_norm": [1.0, 1.0, 1.0, 1.0, 1.0],
                          "snr": [1.0, 0.5, 0.1, 0.0, 0.2], "weight_norm": [3.0, 3.1, 3.2, 2.0, 2.1]})
    spec = charts.gradient_chart(frame, title="relu").to_dict()
    encoding = spec["spec"]["encoding"]
    assert encoding["x"]["scale"]["type"] == "log" and encoding["y"]["scale"]["type"] == "log"
    assert spec["facet"]["column"]["field"] == "quantity"
    data = rows(spec)
    assert all(r["epoch"] > 0 and r["value"] > 0 for r in data)
    # 4 epochs > 0 x 4 quantities, minus the two zeros of layer 1 at epoch 1
    assert len(data) == 14
    assert {r["quantity"] for r in data} == set(charts.GRADIENT_QUANTITIES.values())


def test_activation_heatmap_and_dead_fraction():
    frame = pd.DataFrame({"epoch": [0, 0, 5], "layer": [0, 0, 0], "bin_lo": [-1.0, 0.0, -1.0],
                          "bin_hi": [0.0, 1.0, 0.0], "count": [10, 20, 30]})
    spec = charts.activation_heatmap(frame).to_dict()
    assert spec["spec"]["mark"]["type"] == "rect"
    assert spec["spec"]["encoding"]["color"]["field"] == "count"
    assert spec["spec"]["encoding"]["y2"]["field"] == "bin_hi"
    assert [r["count"] for r in rows(spec)] == [10, 20, 30]
    fractions = pd.DataFrame({"epoch": [0, 5], "layer": [0, 0], "frac_zero": [0.5, 0.9], "frac_saturated": [0.5, 0.9]})
    spec = charts.dead_fraction_chart(fractions).to_dict()
    assert spec["spec"]["encoding"]["y"]["scale"]["domain"] == [0, 1]
    assert len(rows(spec)) == 4


def test_movie_frame_highlights_the_epoch():
    frame = mi_frame(panels=("run",))
    spec = charts.infoplane_at_epoch(frame, 10).to_dict()
    assert spec["title"] == "epoch 10"
    trajectories, link, points = spec["layer"]
    assert points["mark"]["size"] == 140 and link["mark"]["type"] == "line"
    point_data = spec["datasets"][points["data"]["name"]]
    assert {r["epoch"] for r in point_data} == {10} and len(point_data) == 3
    accuracy = charts.accuracy_with_marker(pd.DataFrame({"epoch": [0, 10], "split": ["train"] * 2,
                                                         "accuracy": [0.5, 0.9]}), 10).to_dict()
    rule = accuracy["layer"][1]
    assert rule["mark"]["type"] == "rule" and accuracy["datasets"][rule["data"]["name"]] == [{"epoch": 10}]


def test_neuron_chart_band():
    frame = pd.DataFrame({"epoch": [0, 1], "neuron": [0, 0], "mean": [0.1, 0.3], "std": [0.1, 0.2]})
    spec = charts.neuron_chart(frame, title="layer 0").to_dict()
    band, line = spec["layer"]
    assert band["encoding"]["y"]["field"] == "lo" and band["encoding"]["y2"]["field"] == "hi"
    assert [(r["lo"], r["hi"]) for r in rows(spec)] == [(0.0, 0.2), (pytest.approx(0.1), 0.5)]
