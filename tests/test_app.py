"""Every page of the explorer under streamlit.testing.v1.AppTest, on fixture results roots."""

import json
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import BIASES

APP = str(Path(__file__).resolve().parents[1] / "explorer" / "app.py")
PAGES = ["runs", "compare", "config", "training", "gradients", "activations", "movie", "sql"]
LABELS = [f"initial_bias={b:g}" for b in BIASES]


def open_app(monkeypatch, root, page=None, **params) -> AppTest:
    monkeypatch.setenv("IB_RESULTS", str(root))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(params)
    at.run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def specs(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def texts(at) -> str:
    return "\n".join(e.value for kind in ("markdown", "caption", "info", "warning", "error", "code")
                     for e in getattr(at, kind))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_error(monkeypatch, cohort_root, page):
    at = open_app(monkeypatch, cohort_root, page)
    assert not at.error
    assert at.title


def test_runs_page_lists_runs_with_varying_keys(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root)
    table = at.dataframe[0].value
    assert len(table) == 2 * len(BIASES)
    assert "initial_bias" in table.columns and "activation_fn" not in table.columns
    assert sorted(set(table["initial_bias"])) == sorted(f"{b:g}" for b in BIASES)
    assert set(table["status"]) == {"completed"}
    assert len(at.query_params["runs"]) == 2 * len(BIASES)


def test_runs_page_filters_by_config_key_and_sql(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, fkey="initial_bias", fval=["0.2", "2"])  # as displayed
    assert sorted(set(at.dataframe[0].value["initial_bias"])) == ["0.2", "2"]
    at = open_app(monkeypatch, cohort_root, where="test_accuracy < 0.6")
    assert set(at.dataframe[0].value["initial_bias"]) == {"-1"}   # the dead relu nets
    at = open_app(monkeypatch, cohort_root, where="no_such_column > 1")
    assert "no_such_column" in at.error[0].value


def test_compare_draws_the_infoplane_grid_titled_by_varying_keys(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, "compare")
    (spec,) = specs(at)
    assert spec["facet"]["field"] == "panel"
    assert spec["facet"]["sort"] == [f"{label}, seed={seed}" for label in LABELS for seed in (0, 1)]
    assert spec["title"] == 'binning {"bin_size": 0.07}, train split'
    assert "Varying keys: initial_bias" in texts(at)
    assert [b.label for b in at.get("download_button")] == ["PNG", "SVG", "CSV"]


def test_compare_groups_seeds_with_mean_or_median(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, "compare")
    at.radio(key="panels").set_value("per seed group").run()
    at.radio(key="split").set_value("test").run()
    (spec,) = specs(at)
    assert spec["facet"]["sort"] == [f"{label} (2 seeds)" for label in LABELS]
    assert spec["title"] == 'binning {"bin_size": 0.07}, test split, median over seeds'
    assert [l["mark"]["type"] for l in spec["spec"]["layer"]] == ["line", "rule", "rule", "point"]
    at.radio(key="agg").set_value("mean").run()
    assert specs(at)[0]["title"].endswith("mean over seeds")


def test_config_page_varying_rows_first_and_var_summary(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, "config")
    varying = at.dataframe[0].value
    assert list(varying.index) == ["initial_bias", "seed"]
    assert len(varying.columns) == 2 * len(BIASES)
    summary = json.loads(at.json[0].value)
    assert summary["initial_bias"] == "<var>" and summary["seed"] == "<var>"
    assert summary["activation_fn"] == "relu"


def test_training_gradients_activations_and_movie_charts(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, "training")
    (spec,) = specs(at)
    accuracy = spec["hconcat"][0]["layer"][-1]
    assert accuracy["encoding"]["y"]["scale"]["domain"] == [0, 1]
    assert accuracy["encoding"]["color"]["sort"] == [f"{label}, seed={seed}" for label in LABELS for seed in (0, 1)]

    at = open_app(monkeypatch, cohort_root, "gradients")
    assert len(specs(at)) == 2 * len(BIASES)
    assert [s.value for s in at.subheader] == [f"{label}, seed={seed}" for label in LABELS for seed in (0, 1)]

    at = open_app(monkeypatch, cohort_root, "activations")
    assert "Dead network" in at.warning[0].value
    marks = [s["spec"].get("mark", {}).get("type") if "spec" in s else None for s in specs(at)]
    assert marks[0] == "rect" and len(marks) == 3

    at = open_app(monkeypatch, cohort_root, "movie")
    (spec,) = specs(at)
    assert "vconcat" in spec and spec["vconcat"][0]["title"].endswith("epoch 0")
    epochs = at.select_slider(key="movie_epoch").options
    at.select_slider(key="movie_epoch").set_value(epochs[-1]).run()
    assert specs(at)[0]["vconcat"][0]["title"].endswith(f"epoch {epochs[-1]}")


def test_sql_page_runs_reads_and_refuses_writes(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, "sql")
    assert len(at.dataframe[0].value) == 2 * len(BIASES) * 6
    at.text_area(key="q").set_value("SELECT count(*) AS n FROM runs").run()
    assert at.dataframe[0].value["n"][0] == 2 * len(BIASES)
    at.text_area(key="q").set_value(f"COPY runs TO '{cohort_root}/runs/x.csv'").run()
    assert "refused: COPY is not allowed" in at.error[0].value.replace("\\", "")   # shown escaped: text
    assert not (cohort_root / "runs" / "x.csv").exists()


def test_empty_root_shows_the_quickstart_command(monkeypatch, tmp_path):
    at = open_app(monkeypatch, tmp_path / "nothing-here")
    assert at.title[0].value == "No runs yet"
    assert f"trainer sweep data/configs/quickstart --results {tmp_path / 'nothing-here'}" in at.code[0].value
    assert at.button[0].label == "Run the quickstart cohort"


def test_damaged_root_renders_and_says_what_is_missing(monkeypatch, messy_root):
    at = open_app(monkeypatch, messy_root["root"])
    assert "could not be read" in at.warning[0].value
    assert "running" in set(at.dataframe[0].value["status"])
    assert at.get("progress")  # the live panel of the running run
    chosen = [messy_root["truncated"], messy_root["no_mi"], messy_root["old"]]
    for page in PAGES:
        at = open_app(monkeypatch, messy_root["root"], page, runs=chosen)
        assert not at.error or page == "sql"
    at = open_app(monkeypatch, messy_root["root"], "compare", runs=chosen)
    assert "not recorded for this run" in texts(at)
    assert len(specs(at)) == 1


def test_quickstart_button_runs_the_sweep_in_the_background(monkeypatch, tmp_path):
    from explorer import quickstart

    root = tmp_path / "fresh"
    fake_sweep = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
                  "from bench.make_results import write_run; "
                  "write_run(Path(sys.argv[2]), 'quick', {'epochs': 5}, logged=3)")
    monkeypatch.setattr(quickstart, "command",
                        lambda root: [sys.executable, "-c", fake_sweep, str(Path(__file__).parents[1]), str(root)])
    at = open_app(monkeypatch, root)
    at.button[0].click().run()
    quickstart._processes()[str(root.resolve())].wait(timeout=60)
    assert (root / quickstart.LOG_NAME).exists()
    at.run()
    assert not at.exception
    assert at.title[0].value == "Runs" and len(at.dataframe[0].value) == 1


def test_results_flag_wins_over_the_environment(monkeypatch, cohort_root, tmp_path):
    from explorer import ui

    monkeypatch.setenv("IB_RESULTS", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["explorer/app.py", "--results", str(cohort_root)])
    assert ui.cli_results() == str(cohort_root)
    assert ui.store().root == cohort_root.resolve() and ui.root_source() == "--results"
    monkeypatch.setattr(sys, "argv", ["explorer/app.py"])
    assert ui.store().root == tmp_path.resolve() and ui.root_source() == "$IB_RESULTS"


def test_training_curves_refresh_while_a_selected_run_trains(monkeypatch, messy_root, cohort_root):
    at = open_app(monkeypatch, messy_root["root"], "training")
    assert "1 selected run(s) still training" in texts(at)
    assert len(specs(at)) == 1
    at = open_app(monkeypatch, cohort_root, "training")
    assert "still training" not in texts(at) and len(specs(at)) == 1


def test_quickstart_progress_reads_the_sweeps_progress_file(tmp_path):
    from explorer import quickstart
    from ibstore.progress import SweepProgress, progress_path

    assert quickstart.sweep_progress(tmp_path) is None
    file = SweepProgress("quickstart", "data/configs/quickstart", 1, "h", "t0", "t1", "running",
                         {"a": "completed", "b": "queued", "c": "held", "d": "completed"})
    progress_path(tmp_path, "quickstart").parent.mkdir()
    progress_path(tmp_path, "quickstart").write_bytes(file.to_json_bytes())
    read = quickstart.sweep_progress(tmp_path)
    assert (read.completed, read.planned) == (2, 4) and read == file
    progress_path(tmp_path, "quickstart").write_text('{"runs": [1]}')
    assert quickstart.sweep_progress(tmp_path) is None
