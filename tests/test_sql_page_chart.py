"""The SQL page's chart (explorer.sql_chart) and how the page sets it and its query box up: points
unless the rows are curves over epochs, whole ticks on whole numbers, each one-liner drawn as its
PLOTS entry says, and a chosen one-liner filling the box without Streamlit's warning."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
import vl_convert

from conftest import open_app
from explorer.sql_chart import query_chart
from explorer.sql_examples import EXAMPLES, PLOTS

PER_RUN_AND_LAYER = pd.DataFrame({"run_id": ["a", "a", "a", "b", "b", "b"], "layer": [0, 1, 2, 0, 1, 2],
                                  "max_i_xt": [11.6, 11.2, 9.5, 11.7, 10.1, 8.2]})
PER_RUN_AND_EPOCH = pd.DataFrame({"run_id": ["a", "a", "a", "b", "b", "b"], "epoch": [0, 5, 10, 0, 5, 10],
                                  "initial_bias": [0.2, 0.2, 0.2, 2.0, 2.0, 2.0],
                                  "accuracy": [0.5, 0.8, 0.9, 0.5, 0.7, 0.95]})


def test_values_per_run_against_the_layer_are_points_on_whole_ticks():
    spec = query_chart(PER_RUN_AND_LAYER, "layer", "max_i_xt").to_dict()
    assert spec["mark"]["type"] == "point"
    assert spec["encoding"]["x"]["axis"] == {"tickMinStep": 1, "format": "d"}
    assert "tickMinStep" not in spec["encoding"]["y"]["axis"]


def test_each_run_is_a_line_over_epochs_coloured_by_another_column():
    spec = query_chart(PER_RUN_AND_EPOCH, "epoch", "accuracy").to_dict()
    assert spec["mark"]["type"] == "line" and [d["field"] for d in spec["encoding"]["detail"]] == ["run_id"]
    spec = query_chart(PER_RUN_AND_EPOCH, "epoch", "accuracy", colour="initial_bias").to_dict()
    assert spec["mark"]["type"] == "line" and spec["encoding"]["color"]["field"] == "initial_bias"
    assert [d["field"] for d in spec["encoding"]["detail"]] == ["run_id", "initial_bias"]


def test_an_epoch_twice_in_a_series_gives_points_until_the_colour_tells_the_rows_apart():
    layers = pd.concat([PER_RUN_AND_EPOCH.assign(layer=0), PER_RUN_AND_EPOCH.assign(layer=1)])
    assert query_chart(layers, "epoch", "accuracy").to_dict()["mark"]["type"] == "point"
    assert query_chart(layers, "epoch", "accuracy", colour="layer").to_dict()["mark"]["type"] == "line"


def test_the_tooltip_names_what_tells_two_points_apart():
    # A sceptic's: "Does a layer compress?" over two estimators drew two points per group and layer
    # in one colour, and the tooltip named neither's estimator
    frame = pd.DataFrame({"group_id": ["g", "g"], "estimator": ["binning", "adaptive"],
                          "params": ['{"bin_size": 0.07}', '{"n_bins": 30}'], "layer": [4, 4],
                          "excess_bits": [3.32, 0.75], "epochs": [[0, 1], [0, 1]]})
    spec = query_chart(frame, "layer", "excess_bits", colour="group_id").to_dict()
    assert [t["field"] for t in spec["encoding"]["tooltip"]] == ["layer", "excess_bits", "group_id", "estimator",
                                                                 "params"]     # not the list column
    rows = spec["datasets"][spec["data"]["name"]]
    assert [(row["estimator"], row["excess_bits"]) for row in rows] == [("binning", 3.32), ("adaptive", 0.75)]


def test_a_column_named_with_a_colon_is_drawn_not_read_as_a_type():
    # An attacker's: `SELECT 1 AS "a:b", 2 AS c` failed the SQL page with Altair's traceback ("b" is no
    # encoding type), and so did a text column "note:1" only in the tooltip
    frame = pd.DataFrame({"max I(X:T)": [1.0, 2.0], "layer": [0, 1], "note:1": ["x", "y"], "run:id": ["a", "b"]})
    spec = query_chart(frame, "layer", "max I(X:T)", colour="run:id").to_dict()
    assert (spec["encoding"]["y"]["field"], spec["encoding"]["y"]["type"]) == ("max I(X:T)", "quantitative")
    assert spec["encoding"]["color"]["field"] == "run:id"
    assert [t["field"] for t in spec["encoding"]["tooltip"]] == ["layer", "max I(X:T)", "run:id", "note:1"]
    drawn = vl_convert.vegalite_to_vega(spec)        # Vega reads each field as a column: no error
    assert "max I(X:T)" in json.dumps(drawn)


def test_whole_numbers_with_nulls_get_whole_ticks_and_a_null_category_a_name():
    frame = pd.DataFrame({"cohort": pd.Series(["quickstart", None, "quickstart"], dtype="str"),
                          "first_epoch": [64.0, 110.0, np.nan], "accuracy": [0.9, 0.91, 0.93]})
    spec = query_chart(frame, "accuracy", "first_epoch", colour="cohort").to_dict()
    assert spec["encoding"]["y"]["axis"] == {"tickMinStep": 1, "format": "d"}
    assert spec["encoding"]["color"]["scale"]["domain"] == ["quickstart", "NULL"]


@pytest.mark.slow   # draws the chart with Vega
def test_a_column_named_like_a_path_is_drawn_as_one_field():
    # DuckDB names an unaliased avg(m.peak) so; Vega-Lite read the "." as a path and drew nothing
    frame = pd.DataFrame({"layer": [0, 1, 2], "avg(m.peak)": [11.6, 10.2, 9.1], "g[0]": ["a", "a", "b"]})
    spec = query_chart(frame, "layer", "avg(m.peak)", colour="g[0]").to_dict()
    assert spec["encoding"]["y"]["field"] == "avg(m\\.peak)" and spec["encoding"]["y"]["title"] == "avg(m.peak)"
    assert spec["encoding"]["color"]["field"] == "g\\[0\\]"
    svg = vl_convert.vegalite_to_svg(json.dumps(spec))
    assert svg.count('aria-roledescription="point"') == 3


def test_every_plot_belongs_to_a_one_liner():
    assert set(PLOTS) <= set(EXAMPLES)


def chart_of(at) -> dict:
    (chart,) = at.get("vega_lite_chart")
    return json.loads(chart.proto.spec)


def axes_of(at) -> tuple:
    """x, y and colour as the page's selectboxes hold them, None for "(none)"."""
    x, y, colour = (at.selectbox(key=key).value for key in ("sql_x", "sql_y", "sql_colour"))
    return x, y, None if colour == "(none)" else colour


@pytest.fixture
def widget_warnings(monkeypatch) -> list[str]:
    """What Streamlit's widget policies log; its warning of a widget given a value both ways is
    logged once per process, so it is made possible again here."""
    from streamlit.elements.lib import policies

    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())
    policies._LOGGER.addHandler(handler)
    yield logged
    policies._LOGGER.removeHandler(handler)


@pytest.mark.slow
def test_each_one_liner_fills_the_box_and_the_url_quietly_and_is_drawn_as_it_says(monkeypatch, cohort_root,
                                                                                   widget_warnings):
    at = open_app(monkeypatch, cohort_root, "sql")
    assert axes_of(at) == ("layer", "max_i_xt", None) and chart_of(at)["mark"]["type"] == "point"
    for title, sql in EXAMPLES.items():
        at.selectbox(key="sql_example").set_value(title).run()
        assert not at.exception and at.text_area(key="q").value == sql and at.query_params["q"] == sql
        assert at.selectbox(key="sql_example").value == title
        if title in PLOTS:
            plot = PLOTS[title]
            assert axes_of(at) == (plot.x, plot.y, plot.colour), title
            encoding = chart_of(at)["encoding"]
            assert (encoding["x"]["field"], encoding["y"]["field"]) == (plot.x, plot.y)
    assert widget_warnings == []


@pytest.mark.slow
def test_the_visitors_axes_stay_until_another_one_liner_is_chosen(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, "sql")
    compress = "Does a layer compress? Compression over its noise floor per seed group, with interval and test"
    accuracy = "Final test accuracy per initial bias and seed group, over seeds"
    at.selectbox(key="sql_example").set_value(compress).run()
    at.selectbox(key="sql_y").set_value("lower_bound_bits").run()
    at.selectbox(key="sql_colour").set_value("(none)").run()
    assert axes_of(at) == ("layer", "lower_bound_bits", None)
    at.selectbox(key="sql_example").set_value(accuracy).run()
    assert axes_of(at) == ("initial_bias", "mean_test_accuracy", "cohort")


@pytest.mark.slow
def test_seed_groups_take_the_colours_of_every_other_page(monkeypatch, cohort_root):
    """Coloured by group_id, the selection's seed groups take the first colours in the order every
    other page gives them (ui.group_titles), the result's other groups the next: the chart coloured
    the result's groups in its own row order, so initial_bias=0.2 was blue here and red elsewhere."""
    from explorer import ui
    from explorer.results import ResultStore

    store = ResultStore(cohort_root)
    runs = store.runs()
    chosen = runs.loc[runs["initial_bias"].isin([0.2, 2.0]), "run_id"].tolist()
    at = open_app(monkeypatch, cohort_root, "sql", runs=chosen)
    at.selectbox(key="sql_example").set_value(
        "Does a layer compress? Compression over its noise floor per seed group, with interval and test").run()
    assert axes_of(at)[2] == "group_id"
    colour = chart_of(at)["encoding"]["color"]
    selected_groups = list(ui.group_titles(store, runs, chosen))
    every_group = list(dict.fromkeys(runs.sort_values("initial_bias")["group_id"]))
    assert len(selected_groups) == 2 and every_group[:2] != selected_groups     # the result's order differs
    domain = colour["scale"]["domain"]
    assert domain[:2] == selected_groups and len(domain) > 2 and set(domain) <= set(every_group)


def test_a_first_colour_the_result_lacks_keeps_its_place_but_not_a_legend_entry():
    frame = pd.DataFrame({"layer": [0, 1, 0, 1], "bits": [1.0, 0.5, 2.0, 1.5], "group_id": ["c", "c", "a", "a"]})
    colour = query_chart(frame, "layer", "bits", "group_id", ["b", "a"]).to_dict()["encoding"]["color"]
    assert colour["scale"]["domain"] == ["b", "a", "c"]            # b absent: a and c keep the 2nd and 3rd colours
    assert colour["legend"]["values"] == ["a", "c"]
    plain = query_chart(frame, "layer", "bits", "group_id").to_dict()["encoding"]["color"]
    assert plain["scale"]["domain"] == ["c", "a"] and "values" not in plain["legend"]


def test_past_ten_groups_the_selected_keep_the_palette_of_every_other_page_and_the_rest_are_grey():
    """Twelve groups in the result, two selected: a domain of twelve took Vega's turbo, so the selected
    groups lost the tableau10 colours every other page gives a selection of ten groups or fewer."""
    from explorer.charts import TABLEAU10
    from explorer.sql_chart import UNSELECTED

    frame = pd.DataFrame({"layer": np.arange(12), "bits": np.ones(12), "group_id": [f"g{i}" for i in range(12)]})
    colour = query_chart(frame, "layer", "bits", "group_id", ["g3", "g7"]).to_dict()["encoding"]["color"]
    assert colour["scale"]["domain"][:3] == ["g3", "g7", "g0"] and "scheme" not in colour["scale"]
    assert colour["scale"]["range"] == [TABLEAU10[0], TABLEAU10[1], *[UNSELECTED] * 10]
    unselected = query_chart(frame, "layer", "bits", "group_id").to_dict()["encoding"]["color"]["scale"]
    assert unselected["scheme"] == "turbo" and "range" not in unselected     # no selection to keep: as before


@pytest.mark.slow
def test_a_link_to_a_one_liner_opens_it_drawn_as_it_says(monkeypatch, cohort_root):
    title = "Does a layer compress? Compression over its noise floor per seed group, with interval and test"
    at = open_app(monkeypatch, cohort_root, "sql", q=EXAMPLES[title])
    assert at.text_area(key="q").value == EXAMPLES[title]
    assert axes_of(at) == ("layer", "excess_bits", "group_id")
    assert at.selectbox(key="sql_example").value == title   # the question box names the linked one-liner
    at.text_area(key="q").set_value(EXAMPLES[title] + " LIMIT 3").run()
    assert not at.exception and at.selectbox(key="sql_example").value == "(your own query)"
