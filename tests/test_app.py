"""Every page of the explorer under streamlit.testing.v1.AppTest, on fixture results roots."""

import json
import math
import re
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import vl_convert as vlc

from bench.make_results import write_run
from test_phases_page import unescaped
from conftest import BIASES, EPOCHS, open_app, write_ksg_cohort
from explorer import charts, cohort_tables, runs_table, ui
from explorer.results import ResultStore
from ibstore import layout
from ibstore.record import Status

pytestmark = pytest.mark.slow  # every test but one opens the app under AppTest

PAGES = ["runs", "compare", "config", "training", "gradients", "phases", "activations", "movie", "sql"]
CHART_PAGES = ["compare", "training", "gradients", "phases", "activations", "movie"]
LABELS = [f"initial_bias={b:g}" for b in BIASES]
DEAD = {"initial_bias=-1": " [dead]"}          # relu with a negative bias: flagged dead by the trainer
EVIL = "![x](http://evil.invalid/x.png) <img src=http://evil.invalid/y.png> **bold** :red[red]"
MARKDOWN_KINDS = ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader")


def specs(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def full_specs(at) -> list[dict]:
    """The specs with their data, which Streamlit sends beside them as Arrow."""
    return [{**json.loads(chart.proto.spec),
             "datasets": {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pylist() for d in chart.proto.datasets}}
            for chart in at.get("vega_lite_chart")]


def texts(at) -> str:
    return "\n".join(e.value for kind in MARKDOWN_KINDS for e in getattr(at, kind))


def url_runs(at) -> list[str]:
    """The selection in the URL (AppTest gives a single value as a string)."""
    runs = at.query_params.get("runs", [])
    return [runs] if isinstance(runs, str) else list(runs)


def titled(label: str, seed: int | None = None) -> str:
    """A panel title as the app writes it: varying keys, the seed, the badge."""
    return label + ("" if seed is None else f", seed={seed}") + DEAD.get(label, "")


def group_titled(label: str, seeds: str = "") -> str:
    """A seed group's title: varying keys, the seed count, the badge counting its dead seeds."""
    return label + seeds + (" [dead: 2 of 2 seeds]" if label in DEAD else "")


@pytest.fixture(scope="module")
def flagged_root(tmp_path_factory) -> dict[str, object]:
    """Three runs: one that learns, one the trainer flagged dead, one diverged; the diverged run's
    name and activation function are hostile Markdown/HTML (text from run.json is only text)."""
    root = tmp_path_factory.mktemp("flagged")
    live = write_run(root, "live", {"activation_fn": "tanh", "epochs": EPOCHS}, logged=12)
    dead = write_run(root, "dead", {"activation_fn": "relu", "initial_bias": -1.0, "epochs": EPOCHS}, logged=12)
    diverged = write_run(root, "diverged", {"activation_fn": "tanh", "epochs": EPOCHS}, status="diverged",
                         logged=12)
    path = layout.run_json_path(root, diverged)
    record = json.loads(path.read_text())
    record["name"] = EVIL
    record["config"]["activation_fn"] = EVIL
    path.write_text(json.dumps(record))
    return {"root": root, "live": live, "dead": dead, "diverged": diverged}


@pytest.fixture(scope="module")
def ended_root(tmp_path_factory) -> dict[str, object]:
    """tanh seed groups whose runs ended every way, in a folder whose name a shell needs quoted:
    initial_bias=-1, one run that failed before its first MI flush (no MI, no activations; first in
    every list); initial_bias=0, two completed runs, a diverged one and an interrupted one;
    initial_bias=1, two diverged runs."""
    root = tmp_path_factory.mktemp("ended") / "my results"

    def run(bias: float, seed: int, status: Status, **options) -> str:
        return write_run(root, "ended", {"activation_fn": "tanh", "initial_bias": bias, "epochs": 20}, seed=seed,
                         cohort="ended", logged=5, status=status, **options,
                         epochs_done=None if status in (Status.COMPLETED, Status.DIVERGED) else 10)
    failed = run(-1.0, 0, Status.FAILED, tables=("metrics",))
    zero = [run(0.0, seed, status) for seed, status in
            enumerate([Status.COMPLETED, Status.COMPLETED, Status.DIVERGED, Status.INTERRUPTED])]
    one = [run(1.0, seed, Status.DIVERGED) for seed in range(2)]
    return {"root": root, "failed": failed, "zero": zero, "one": one}


def test_training_health_counts_the_runs_that_ended_on_their_own_as_the_report(monkeypatch, ended_root):
    """cohort_tables.health_table over completed and diverged runs (cohort_tables.ENDED): the page once passed the
    completed ones only, so its diverged column was always 0 and an all-diverged group had no row."""
    at = open_app(monkeypatch, ended_root["root"], "training", lines="per seed group")
    # one group completed: no final accuracy to compare, but how soon each group reaches a test
    # accuracy (the all-diverged group counts as never), and per seed
    health, reach, _per_seed = [table.value.map(unescaped) for table in at.table]
    assert [label.split(" [")[0] for label in (*reach["a"], *reach["b"])] == ["initial_bias=1", "initial_bias=0"]
    health["seed group"] = health["seed group"].str.split(" [", regex=False).str[0]
    rows = health.set_index("seed group")
    assert list(rows.index) == ["initial_bias=0", "initial_bias=1"]
    assert list(rows.loc["initial_bias=0", ["runs", "diverged"]]) == [3, 1]
    assert list(rows.loc["initial_bias=1", ["runs", "diverged"]]) == [2, 2]
    assert rows.loc["initial_bias=1", "final test accuracy"] == "–"     # a diverged network has no accuracy
    assert any(unescaped(caption.value).startswith(cohort_tables.HEALTH_CAPTION) for caption in at.caption)


def test_compare_per_seed_group_keeps_the_runs_the_statistics_keep(monkeypatch, ended_root):
    """Dead, diverged and unfinished runs are left out of a group's plane, as the Phases page and the
    report's plane leave them out, and counted."""
    at = open_app(monkeypatch, ended_root["root"], "compare", panels="per seed group")
    (spec,) = specs(at)
    assert [panel.split(" [")[0] for panel in spec["facet"]["sort"]] == ["initial_bias=0 (2 seeds)"]
    assert any(unescaped(caption.value).endswith("a seed leaving would move the mean); 4 of 6 runs left out "
                                                  "(3 diverged, 1 unfinished).") for caption in at.caption)


@pytest.mark.parametrize("page", ["movie", "activations"])
def test_a_per_run_page_opens_on_the_first_run_with_its_data(monkeypatch, ended_root, page):
    """The first selected run failed before writing MI or activations: the page opens on the first
    that has them instead of stopping at "not recorded"; a run the URL names is kept."""
    at = open_app(monkeypatch, ended_root["root"], page)
    assert at.selectbox(key="run").value == ended_root["zero"][0]
    assert at.get("vega_lite_chart") and not any(ui.NOT_RECORDED in info.value for info in at.info)
    at = open_app(monkeypatch, ended_root["root"], page, run=ended_root["failed"])
    assert at.selectbox(key="run").value == ended_root["failed"]


def test_the_phases_pages_report_command_names_a_results_root_other_than_the_default(monkeypatch, ended_root):
    at = open_app(monkeypatch, ended_root["root"], "phases")
    (command,) = [code.value for code in at.code if code.value.startswith("trainer report ")]
    assert f" --results {shlex.quote(str(ended_root['root'].resolve()))} " in command
    # the default root, given relative as it usually is, needs none: the command finds it by itself
    shutil.copytree(ended_root["root"], ended_root["root"].parent / "here" / "data" / "results")
    monkeypatch.chdir(ended_root["root"].parent / "here")
    at = open_app(monkeypatch, "data/results", "phases")
    (command,) = [code.value for code in at.code if code.value.startswith("trainer report ")]
    assert "--results" not in command


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_error(monkeypatch, cohort_root, page):
    at = open_app(monkeypatch, cohort_root, page)
    assert not at.error
    assert at.title


def test_runs_page_lists_runs_with_varying_keys_and_badges(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root)
    table = at.dataframe[0].value
    assert len(table) == 2 * len(BIASES)
    assert "initial_bias" in table.columns and "activation_fn" not in table.columns
    # numbers, in numeric order (not run_id's text order), seeds in order within a bias
    assert list(table["initial_bias"]) == [b for b in BIASES for _ in range(2)]
    assert list(table["seed"]) == [0, 1] * len(BIASES)
    assert set(table["status"]) == {"completed"}
    assert dict(zip(table["initial_bias"], table["flags"])) == {-1: "dead", 0: "", 0.2: "", 2: ""}
    # what a reader scans first: flags, status, the varying keys, seed, accuracies; ids last
    assert list(table.columns[:6]) == ["flags", "status", "initial_bias", "seed", "final_test_accuracy",
                                       "final_train_accuracy"]
    assert list(table.columns).index("run_id") > list(table.columns).index("name")
    assert table["final_test_accuracy"].between(0, 1).all()
    assert len(url_runs(at)) == 2 * len(BIASES)
    assert at.multiselect(key=ui.SELECTION).value == list(table["run_id"])


def test_runs_page_filters_by_config_key_and_sql(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, fkey="initial_bias", fval=["0.2", "2"])  # as displayed
    assert sorted(set(at.dataframe[0].value["initial_bias"])) == [0.2, 2]
    at = open_app(monkeypatch, cohort_root, where="final_test_accuracy < 0.6")
    assert set(at.dataframe[0].value["initial_bias"]) == {-1}   # the dead relu nets
    at = open_app(monkeypatch, cohort_root, where="dead_network AND initial_bias < 0")  # typed config columns
    assert set(at.dataframe[0].value["initial_bias"]) == {-1}
    at = open_app(monkeypatch, cohort_root, where="no_such_column > 1")   # a link's: a warning
    assert any("no\\_such\\_column" in w.value for w in at.warning)   # the message, escaped: text, not Markdown
    at.text_input(key="where").set_value("no_such_column > 2").run()   # the reader's own: an error
    assert "no\\_such\\_column" in at.error[0].value
    at.text_input(key="where").set_value("initial_bias < 0 ORDER BY run_id").run()    # a new user's ORDER BY
    assert "as after WHERE: no ORDER BY, LIMIT, UNION or second statement" in unescaped(at.error[0].value)


def test_selection_chips_name_runs_by_varying_values_and_seed(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root)
    chips = at.multiselect(key=ui.SELECTION).options
    # in the Runs page's order, by value and seed (by run id the list read 0.2, 0, 1, 2, -1)
    assert chips == [f"{b:g} · s{seed}" + (" [dead]" if b < 0 else "") for b in sorted(BIASES) for seed in (0, 1)]
    assert all(len(chip) <= 20 for chip in chips)          # a chip shows about 20 characters
    assert "chips show initial\\_bias · seed" in texts(at)


def test_a_chip_names_an_estimator_list_by_its_estimators(monkeypatch, tmp_path):
    """`estimators` varies over this root: a chip shows the names, not the list's JSON; two lists of
    the same names (other params) give one chip text, so those chips add their run ids."""
    listed = {"a": [{"name": "binning", "params": {"bin_size": 0.07}}],
              "b": [{"name": "binning", "params": {"bin_size": 0.07}}, {"name": "kde_upper", "params": {}}],
              "c": [{"name": "binning", "params": {"bin_size": 0.5}}, {"name": "kde_upper", "params": {}}]}
    ids = {name: write_run(tmp_path, name, {"epochs": 6, "estimators": estimators}, logged=4)
           for name, estimators in listed.items()}
    at = open_app(monkeypatch, tmp_path)
    chips = at.multiselect(key=ui.SELECTION).options
    assert set(chips) == {"binning", f"binning+kde_upper ({ids['b']})", f"binning+kde_upper ({ids['c']})"}
    assert "chips show estimators" in texts(at)


def test_a_typo_in_the_sql_condition_changes_neither_selection_nor_url(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root)
    at.text_input(key="where").set_value("initial_bias >= 0").run()
    live = list(at.dataframe[0].value["run_id"])
    assert len(live) == 6 and url_runs(at) == live and at.query_params["where"] == "initial_bias >= 0"
    at.text_input(key="where").set_value("initial_bais >= 0").run()      # the typo
    assert "initial\\_bais" in at.error[0].value and "unchanged" in at.error[0].value
    assert url_runs(at) == live and at.multiselect(key=ui.SELECTION).value == live
    assert at.query_params["where"] == "initial_bias >= 0"              # the last valid condition
    assert list(at.dataframe[0].value["run_id"]) == live                 # and its table
    at.text_input(key="where").set_value("initial_bias >= 2").run()     # fixed: applies again
    assert len(url_runs(at)) == 2 and at.query_params["where"] == "initial_bias >= 2"


def test_runs_group_by_a_key_counts_and_averages_with_intervals(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, group="initial_bias")
    runs = at.dataframe[0].value
    summary = at.dataframe[1].value
    assert list(summary["initial_bias"]) == list(BIASES) and list(summary["runs"]) == [2] * len(BIASES)
    assert list(summary["dead"]) == [2, 0, 0, 0]
    for bias, row in summary.set_index("initial_bias").iterrows():
        accuracies = runs.loc[runs["initial_bias"] == bias, "final_test_accuracy"].to_numpy()
        mean, sd = accuracies.mean(), accuracies.std(ddof=1)
        half = math.tan(math.pi * 0.475) * sd / math.sqrt(2)     # t(0.975, 1) is Cauchy's quantile
        assert row["mean test acc"] == pytest.approx(mean)
        assert (row["95% CI low"], row["95% CI high"]) == pytest.approx((mean - half, mean + half))
    pc = [s for s in specs(at) if "layer" in s and any(l.get("mark", {}).get("type") == "rule" for l in s["layer"])]
    assert pc, "a parallel-coordinates chart"


def test_parallel_coordinates_draw_a_layers_compression_as_outcome(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root)
    at.selectbox(key="pc_outcome").set_value("compression").run()
    assert at.selectbox(key="pc_layer").value == runs_table.EACH_LAST_HIDDEN    # by default
    at.selectbox(key="pc_layer").set_value("2 · dense_2").run()
    spec = next(s for s in full_specs(at) if "layer" in s and "datasets" in s
                and any(l.get("mark", {}).get("type") == "rule" for l in s["layer"]))
    column = "compression over floor of 2 · dense_2 (bits)"
    drawn = {row["run_id"]: row[column] for rows in spec["datasets"].values() for row in rows
             if row.get("axis") == column and "run_id" in row}
    phases = ResultStore(cohort_root).phases()
    estimator, params = at.selectbox(key="pc_estimator").value.split(" ", 1)
    want = phases[(phases["layer"] == 2) & (phases["split"] == "train") & (phases["estimator"] == estimator)
                  & (phases["params"] == params)].set_index("run_id")
    want = want[~want["dead_network"].astype(bool)]   # a dead network's compression is no answer: left out
    # compression over the noise floor, not peak - final alone (positive under noise in every run)
    want = want["compression_bits"] - want["noise_floor_bits"]
    assert len(drawn) == 6 and drawn == pytest.approx(want.to_dict()) and min(drawn.values()) < 0


def test_a_changed_filter_selects_what_it_shows_on_every_page(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root)
    at.text_input(key="where").set_value("initial_bias = 2").run()
    shown = list(at.dataframe[0].value["run_id"])
    assert len(shown) == 2
    assert url_runs(at) == shown and at.multiselect(key=ui.SELECTION).value == shown
    at.switch_page("app_pages/compare.py").run()   # the page links carry no ?runs=: the session does
    assert specs(at)[0]["facet"]["sort"] == ["seed=0", "seed=1"]    # only the seed varies among them
    assert url_runs(at) == shown


def test_large_selections_are_capped_and_said_so(monkeypatch, cohort_root):
    monkeypatch.setattr(ui, "MAX_FILTER_RUNS", 5)
    monkeypatch.setattr(ui, "MAX_PAGE_RUNS", 2)
    at = open_app(monkeypatch, cohort_root)
    at.text_input(key="where").set_value("initial_bias >= 0").run()
    shown = list(at.dataframe[0].value["run_id"])
    assert len(shown) == 6 and url_runs(at) == shown[:4]      # two whole groups of two seeds, not 5 runs
    at.switch_page("app_pages/compare.py").run()
    assert ("4 runs in 2 seed groups are selected; this page reads at most 2 runs, in whole seed groups: the first "
            "seed group (2 runs)") in unescaped(at.warning[0].value)
    assert len(specs(at)[0]["facet"]["sort"]) == 2


SEEDS_PER_GROUP = 36     # two groups: more runs than a page of runs reads (ui.MAX_PAGE_RUNS), fewer than 2 x 60


@pytest.fixture(scope="module")
def two_large_groups(tmp_path_factory) -> Path:
    """Cohort `many`: tanh and relu, SEEDS_PER_GROUP seeds each (saxe2018_fig1, smaller)."""
    root = tmp_path_factory.mktemp("many")
    for activation in ("tanh", "relu"):
        for seed in range(SEEDS_PER_GROUP):
            write_run(root, "many", {"activation_fn": activation, "epochs": 20}, seed=seed, cohort="many", logged=4)
    return root


def test_pages_per_seed_group_read_every_selected_seed(monkeypatch, two_large_groups):
    """72 runs selected in two groups: per seed group the Training and Compare pages read them all.
    They read the first 60 (36 of one group, 24 of the other), and the Training page's final accuracy
    and its comparison were over 24 of the second group's seeds, labelled "24 of 36 seeds selected"."""
    assert 2 * SEEDS_PER_GROUP > ui.MAX_PAGE_RUNS
    selected = {"select": "shown", "where": "cohort = 'many'"}
    at = open_app(monkeypatch, two_large_groups, "training", lines="per seed group", **selected)
    health, comparison, _reach, _per_seed = [table.value.map(unescaped) for table in at.table]
    assert list(health["seed group"]) == ["activation_fn=relu", "activation_fn=tanh"]     # no "of 36 seeds" badge
    assert list(health["runs"]) == [SEEDS_PER_GROUP] * 2
    assert list(comparison["n a, b"]) == [f"{SEEDS_PER_GROUP}, {SEEDS_PER_GROUP}"]
    assert not at.warning
    at = open_app(monkeypatch, two_large_groups, "compare", panels="per seed group", **selected)
    assert specs(at)[0]["facet"]["sort"] == [f"activation_fn={a} ({SEEDS_PER_GROUP} seeds)" for a in ("relu", "tanh")]
    # per run, a page reads at most 60 runs, in whole seed groups
    at = open_app(monkeypatch, two_large_groups, "training", **selected)
    assert unescaped(at.warning[0].value).startswith(
        f"{2 * SEEDS_PER_GROUP} runs in 2 seed groups are selected; this page reads at most {ui.MAX_PAGE_RUNS} runs, "
        f"in whole seed groups: the first seed group ({SEEDS_PER_GROUP} runs).")


@pytest.mark.parametrize("limit, groups", [(1, 1), (3, 1), (4, 2), (5, 2), (100, 4)])
def test_the_default_and_a_filters_selection_keep_seed_groups_whole(monkeypatch, cohort_root, limit, groups):
    """The first seed groups in the Runs page's order, as many as fit in the limit and at least one:
    a limit that falls inside a group no longer selects part of its seeds."""
    monkeypatch.setattr(ui, "MAX_DEFAULT_RUNS", limit)
    monkeypatch.setattr(ui, "MAX_FILTER_RUNS", limit)
    at = open_app(monkeypatch, cohort_root)
    table = at.dataframe[0].value
    assert list(table["initial_bias"][:2]) == [BIASES[0]] * 2          # a group's two seeds are adjacent rows
    assert url_runs(at) == list(table["run_id"][:2 * groups])
    at.text_input(key="where").set_value("initial_bias >= 0").run()
    shown = list(at.dataframe[0].value["run_id"])
    assert url_runs(at) == shown[:2 * min(groups, 3)]


def test_the_default_selection_is_the_first_rows_cohort(monkeypatch, tmp_path):
    """A root of two cohorts that the Runs page interleaves (it orders by the varying keys, here
    activation_fn): the app opens on the first row's cohort alone, its groups labelled by the key
    that varies within it, not on rows of both labelled by everything the cohorts differ in."""
    for cohort, activations, epochs in (("acts", ["elu", "tanh"], 8), ("bias", ["relu"], 6)):
        for activation in activations:
            for seed in range(2):
                write_run(tmp_path, cohort, {"activation_fn": activation, "epochs": epochs}, seed=seed,
                          cohort=cohort, logged=4)
    write_run(tmp_path, "bias", {"activation_fn": "elu", "epochs": 6}, cohort="bias", logged=4)
    at = open_app(monkeypatch, tmp_path)
    table = at.dataframe[0].value
    assert list(table["cohort"]) == ["bias", "acts", "acts", "bias", "bias", "acts", "acts"]   # by activation, epochs
    store = ResultStore(tmp_path)
    assert sorted(url_runs(at)) == sorted(store.runs().query("cohort == 'bias'")["run_id"])
    # within the selection only activation_fn varies; over both cohorts epochs would label every group too
    assert list(ui.group_titles(store, store.runs(), url_runs(at)).values()) == ["activation_fn=elu",
                                                                                "activation_fn=relu"]


def test_a_run_of_no_cohort_sorted_first_is_not_the_default(monkeypatch, tmp_path):
    """The README's main job, then one `trainer run basic.json`: that run (no cohort) sorts first in
    the Runs table, and the app had opened on it alone. It opens on the cohort."""
    for activation in ("relu", "tanh"):
        for seed in range(2):
            write_run(tmp_path, "quickstart", {"activation_fn": activation, "epochs": 6}, seed=seed,
                      cohort="quickstart", logged=4)
    basic = write_run(tmp_path, "basic", {"activation_fn": "elu", "epochs": 6}, logged=4)
    at = open_app(monkeypatch, tmp_path)
    assert at.dataframe[0].value["run_id"].iloc[0] == basic
    store = ResultStore(tmp_path)
    assert sorted(url_runs(at)) == sorted(store.runs().query("cohort == 'quickstart'")["run_id"])


def test_a_cohort_killed_before_its_first_epoch_is_not_the_default(monkeypatch, tmp_path):
    """An attacker's: a sweep killed at once, after the quickstart was trained, left runs at epoch 0 of
    the cohort started last, and the app opened on them: every page said "not recorded"."""
    from ibstore.record import Status

    done = [write_run(tmp_path, "quickstart", {"epochs": 6}, seed=seed, cohort="quickstart", logged=4)
            for seed in range(2)]
    for seed in range(2):
        killed = write_run(tmp_path, "killed", {"epochs": 600}, seed=seed, cohort="killed", status=Status.INTERRUPTED,
                           epochs_done=0, logged=4)
        record = tmp_path / "runs" / killed / "run.json"
        started = json.loads(record.read_text())
        started["started_at"] = "2026-12-01T00:00:00+00:00"          # after the quickstart's, before now
        record.write_text(json.dumps(started))
    at = open_app(monkeypatch, tmp_path)
    assert sorted(url_runs(at)) == sorted(done)


def test_a_group_partly_selected_says_how_many_of_its_seeds(monkeypatch, cohort_root):
    """A seed group's title on the group pages names the seeds the root holds beyond the selection:
    its band, n and tests are over the selected seeds only."""
    store = ResultStore(cohort_root)
    runs = store.runs().sort_values("run_id")
    by_bias = {b: list(runs.loc[runs["initial_bias"] == b, "run_id"]) for b in BIASES}
    chosen = by_bias[-1][:1] + by_bias[0.2] + by_bias[2][1:]
    titles = list(ui.group_titles(store, store.runs(), chosen).values())
    assert titles == ["initial_bias=-1 [1 of 2 seeds selected, dead]", "initial_bias=0.2",
                      "initial_bias=2 [1 of 2 seeds selected]"]
    at = open_app(monkeypatch, cohort_root, "phases", runs=chosen)
    glance = at.table[0].value          # "Does 4 · dense_4 (last hidden) compress?"
    assert [re.sub(r"\\(.)", r"\1", g) for g in glance["seed group"]] == titles
    assert list(glance["n"]) == [0, 2, 1]


def test_a_large_root_is_paged_and_paging_keeps_the_selection(monkeypatch, cohort_root):
    monkeypatch.setattr(runs_table, "ROWS_PER_PAGE", 3)
    monkeypatch.setattr(ui, "MAX_SIDEBAR_RUNS", 4)
    at = open_app(monkeypatch, cohort_root)
    selected = url_runs(at)
    assert len(selected) == 2 * len(BIASES)               # every run, on three pages
    pages = []
    for page in (1, 2, 3):
        at.number_input(key="runs_page").set_value(page).run()
        pages.append(list(at.dataframe[0].value["run_id"]))
    assert [len(p) for p in pages] == [3, 3, 2] and sorted(sum(pages, [])) == sorted(selected)
    assert url_runs(at) == selected                       # runs on the pages not shown stay selected
    assert at.multiselect(key=ui.SELECTION).value == selected
    at.button[1].click().run()                            # Clear selection
    assert len(at.multiselect(key=ui.SELECTION).options) == 4
    assert "the list offers the first 4, the Runs page every run" in texts(at)


def test_two_of_n_selected_every_page_shows_only_those(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root)
    every = list(at.dataframe[0].value["run_id"])
    by_bias = dict(zip(at.dataframe[0].value["initial_bias"], at.dataframe[0].value["run_id"]))
    chosen = [by_bias[-1], by_bias[2]]      # one of each group: the varying key stays initial_bias
    expected = ["initial_bias=-1 [dead]", "initial_bias=2"]
    at.multiselect(key=ui.SELECTION).set_value(chosen).run()
    chosen = url_runs(at)           # the Runs page keeps the selection in table order
    assert sorted(chosen) == sorted([by_bias[-1], by_bias[2]])
    assert "2 of 8 runs selected" in texts(at)

    at.switch_page("app_pages/compare.py").run()
    assert specs(at)[0]["facet"]["sort"] == expected
    at.switch_page("app_pages/config.py").run()
    assert list(at.dataframe[0].value.columns) == expected
    at.switch_page("app_pages/training.py").run()      # coloured by seed group, each of 2 seeds here
    assert specs(at)[0]["hconcat"][0]["layer"][-1]["encoding"]["color"]["sort"] == [
        "initial_bias=-1 [1 of 2 seeds selected, dead]", "initial_bias=2 [1 of 2 seeds selected]"]
    at.switch_page("app_pages/gradients.py").run()
    at.radio(key="grad_view").set_value("per run").run()
    assert [s.value for s in at.subheader] == [ui.plain(label) for label in expected]
    for page in ("activations", "movie"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert sorted(at.selectbox(key="run").options) == sorted([f"{expected[0]}  ({by_bias[-1]})", f"{expected[1]}  ({by_bias[2]})"])
    at.switch_page("app_pages/runs.py").run()
    assert at.multiselect(key=ui.SELECTION).value == chosen and len(at.dataframe[0].value) == len(every)
    assert not at.exception

    # the same from a shared link, straight onto a page
    at = open_app(monkeypatch, cohort_root, "compare", runs=chosen)
    assert specs(at)[0]["facet"]["sort"] == expected


def test_unknown_run_ids_in_the_url_are_named(monkeypatch, flagged_root):
    live = flagged_root["live"]
    at = open_app(monkeypatch, flagged_root["root"], "config", runs=[live, "gone-run-s0", "typo"])
    (warning,) = at.warning
    assert "2 run(s)" in warning.value and ui.plain("'gone-run-s0', 'typo'") in warning.value
    assert url_runs(at) == [live] and at.multiselect(key=ui.SELECTION).value == [live]
    at = open_app(monkeypatch, flagged_root["root"], "config", runs=[" " + live])
    assert ui.plain(f"' {live}'") in at.warning[0].value     # the space shows
    # 150 unknown ids: the first ten named, the rest counted (900 made a warning of 58,604 characters)
    at = open_app(monkeypatch, flagged_root["root"], "config", runs=[live, *(f"x{i:03d}" for i in range(150))])
    (warning,) = at.warning
    assert "150 run(s)" in warning.value and "'x009' and 140 more" in warning.value
    assert "x010" not in warning.value and len(warning.value) < 400
    assert "They are left out of the selection" in warning.value
    # none of them here: the root's first runs stand in, and the warning says so
    at = open_app(monkeypatch, flagged_root["root"], "config", runs=["gone-run-s0"])
    (warning,) = at.warning
    fallback = url_runs(at)
    assert fallback and "gone-run-s0" not in fallback
    assert f"None of the link's runs is here, so the root's first {len(fallback)} run(s) are selected instead" in \
        unescaped(warning.value)
    at = open_app(monkeypatch, flagged_root["root"], "config", runs=[live])
    assert not at.warning
    # the Runs page puts the selection in table order: still the linked selection, still warned
    ordered = sorted([live, flagged_root["dead"]])
    at = open_app(monkeypatch, flagged_root["root"], runs=[*reversed(ordered), "typo"])
    assert url_runs(at) == ordered and "typo" in at.warning[0].value


def test_a_link_with_an_infinite_number_of_columns_is_dropped_and_named(monkeypatch, flagged_root):
    # Streamlit's number input failed on converting it to a whole number: a traceback on the page
    for value in ("inf", "-inf", "nan", "1e400"):
        at = open_app(monkeypatch, flagged_root["root"], "training", runs=[flagged_root["live"]], cols=value)
        assert any(f"cols={value} is dropped" in unescaped(w.value) for w in at.warning), [w.value for w in at.warning]
        assert at.number_input(key="cols_input").value == 2 and "cols" not in at.query_params
    # an attacker's 100,000 characters came back whole in the warning, where other links' values are cut
    at = open_app(monkeypatch, flagged_root["root"], "training", runs=[flagged_root["live"]], cols="9" * 100_000)
    (warning,) = [unescaped(w.value) for w in at.warning if "cols=" in w.value]
    assert "… (100,000 characters) is dropped" in warning and len(warning) < 400
    at = open_app(monkeypatch, flagged_root["root"], "training", runs=[flagged_root["live"]], cols="3",
                  curves="small multiples")
    assert at.number_input(key="cols_input").value == 3 and not at.warning
    at.number_input(key="cols_input").set_value(4).run()
    assert at.query_params["cols"] == ["4"] or at.query_params["cols"] == "4"


@pytest.mark.parametrize("page", ["activations", "movie"])
def test_a_link_names_its_run_by_id_not_by_the_label_and_badges_shown(monkeypatch, flagged_root, page):
    # the link held "<title> [dead]  (<id>)": a badge set when the run ended changed it, and the link then
    # opened another run; now it holds the id, and an id not selected is named and dropped
    root, live, dead = flagged_root["root"], flagged_root["live"], flagged_root["dead"]
    at = open_app(monkeypatch, root, page, runs=[live, dead], run=dead)
    assert at.selectbox(key="run").value == dead and "[dead]" in at.selectbox(key="run").format_func(dead)
    assert not at.warning or all("run=" not in w.value for w in at.warning)
    at = open_app(monkeypatch, root, page, runs=[live, dead], run=flagged_root["diverged"])
    assert at.selectbox(key="run").value in (live, dead) and "run" not in at.query_params   # the page's default
    assert any(f"run={ui.plain(flagged_root['diverged'])} is dropped: no run of that id" in w.value
               for w in at.warning), [w.value for w in at.warning]


def test_a_choice_this_session_made_is_never_called_a_links(monkeypatch, flagged_root):
    # a run chosen on Activations stayed in the URL; after the selection changed, Movie warned that
    # "the link's run=..." was dropped, though no link had named it
    root, live, dead = flagged_root["root"], flagged_root["live"], flagged_root["dead"]
    at = open_app(monkeypatch, root, "activations", runs=[live, dead])
    other = live if at.selectbox(key="run").value == dead else dead
    at.selectbox(key="run").set_value(other).run()
    assert at.query_params["run"] in (other, [other])
    at.switch_page("app_pages/config.py").run()
    at.multiselect(key=ui.SELECTION).set_value([r for r in (live, dead) if r != other]).run()
    at.switch_page("app_pages/movie.py").run()
    assert not at.exception and not [w.value for w in at.warning if "link" in w.value]
    assert at.selectbox(key="run").value != other


@pytest.mark.parametrize("page, params, named", [
    ("compare", {"split": "full"}, "split=full is dropped: the selected runs recorded no such split"),
    ("compare", {"estimator": "nope {}"}, "estimator=nope {} is dropped: the selected runs recorded no such estimator"),
    ("phases", {"split": "full"}, "split=full is dropped"),
    ("movie", {"movie_epoch": "1010"}, "movie_epoch=1010 is dropped: the selected runs recorded no such logged epoch"),
    # the pages' own fixed choices (a link from a version that named them otherwise): dropped unsaid before
    ("phases", {"band": "foo"}, "band=foo is dropped: band is one of mean ± 95% CI, min-max"),
    ("compare", {"layout": "mosaic"}, "layout=mosaic is dropped: layout is one of grid, overlay"),
    ("training", {"curves": "x", "agg": "y"}, "agg=y is dropped: agg is one of median, mean"),
    ("movie", {"speed": "9×"}, "speed=9× is dropped: speed is one of "),
    # a slider's number out of its range or no number: Streamlit dropped it unsaid
    ("training", {"smooth": "nan"}, "smooth=nan is dropped: Smoothing is a number from 0 to 0.99"),
    ("gradients", {"smooth": "-0.5"}, "smooth=-0.5 is dropped: Smoothing is a number from 0 to 0.99"),
])
def test_a_links_estimator_split_or_epoch_the_runs_lack_is_named_not_replaced_unsaid(monkeypatch, flagged_root, page,
                                                                                    params, named):
    at = open_app(monkeypatch, flagged_root["root"], page, runs=[flagged_root["live"]], **params)
    assert any(named in unescaped(w.value) for w in at.warning), [w.value for w in at.warning]


def test_the_sql_page_names_columns_named_twice_and_bounds_what_it_shows(monkeypatch, flagged_root):
    # the first was an exception on the page; the second held gigabytes and crashed the browser's tab
    at = open_app(monkeypatch, flagged_root["root"], "sql", q="SELECT 1 AS a, 2 AS a")
    assert [unescaped(e.value) for e in at.error] == ["columns named twice: a; name them apart with AS"]
    at = open_app(monkeypatch, flagged_root["root"], "sql", q="SELECT repeat('x', 100000) AS s FROM range(2000)")
    shown = len(next(d.value for d in at.dataframe if list(d.value.columns) == ["s"]))
    assert 600 <= shown <= 640   # 64 MB of 100 kB rows
    assert any(f"2,000 rows; the first {shown:,} are shown" in c.value for c in at.caption)


def test_the_sql_page_shows_an_infinite_timestamp_as_infinity_and_names_a_year_it_cannot_show(monkeypatch, flagged_root):
    # pandas showed DuckDB's infinity as the year 294247, and a date beyond 9999 was a traceback on the page
    at = open_app(monkeypatch, flagged_root["root"], "sql", q="SELECT 'infinity'::TIMESTAMPTZ AS t, '-infinity'::DATE AS d")
    shown = next(d.value for d in at.dataframe if list(d.value.columns) == ["t", "d"])
    assert shown.to_dict("records") == [{"t": "infinity", "d": "-infinity"}] and not at.error
    at = open_app(monkeypatch, flagged_root["root"], "sql", q="SELECT '12000-01-01'::DATE AS d")
    assert [unescaped(e.value) for e in at.error] == [
        "column d: a date32[day] value outside years 1 to 9999 cannot be shown as text; cast it to VARCHAR in the "
        "query (a Parquet file from trainer sql holds it)"]


def test_a_links_filter_that_does_not_apply_is_a_warning_and_leaves_the_url(monkeypatch, flagged_root):
    # it was a red error, run again at every rerun, and the URL kept claiming it
    at = open_app(monkeypatch, flagged_root["root"], where="nonsense syntax")
    assert not at.error and "where" not in at.query_params
    assert [unescaped(w.value) for w in at.warning if "SQL condition" in w.value] == [
        next(unescaped(w.value) for w in at.warning if w.value.startswith("The link's SQL condition (nonsense"))]
    assert at.text_input(key="where").value == ""
    # the same condition behind ?select=shown: the sidebar left it in the URL, so the Runs page ran it again
    # (up to the time limit) and said so a second time
    at = open_app(monkeypatch, flagged_root["root"], select="shown", where="nonsense syntax")
    assert "where" not in at.query_params
    assert len([w for w in at.warning if "SQL condition" in unescaped(w.value)]) == 1, [w.value for w in at.warning]
    at = open_app(monkeypatch, flagged_root["root"], fkey="nokey", fval="1")
    assert any("fkey=nokey is no config key of this root" in unescaped(w.value) for w in at.warning)


def test_text_that_reorders_a_line_is_shown_escaped():
    # a run id from a link with a right-to-left override would show the rest of its warning reversed
    assert ui.plain("run\u202egnp.exe") == "run\\\\u202egnp\\.exe"


def test_dead_and_diverged_runs_carry_badges(monkeypatch, flagged_root):
    root, live, dead, diverged = (flagged_root[k] for k in ("root", "live", "dead", "diverged"))
    at = open_app(monkeypatch, root)
    table = at.dataframe[0].value.set_index("run_id")
    assert table.loc[dead, "flags"] == "dead" and table.loc[diverged, "flags"] == "diverged"
    assert table.loc[live, "flags"] == ""
    assert at.multiselect(key=ui.SELECTION).format_func(dead).endswith(" [dead]")

    at = open_app(monkeypatch, root, "compare")
    panels = specs(at)[0]["facet"]["sort"]
    at = open_app(monkeypatch, root, "training")
    lines = specs(at)[0]["hconcat"][0]["layer"][-1]["encoding"]["color"]["sort"]
    for titles in (panels, lines):
        assert len(titles) == 3
        assert sum(t.endswith(" [dead]") for t in titles) == 1 and sum(t.endswith(" [diverged]") for t in titles) == 1
        assert sum(not t.endswith("]") for t in titles) == 1
    relu = [t for t in panels if "activation_fn=relu" in t]
    assert relu and relu[0].endswith(" [dead]")


def test_a_saturated_run_carries_its_badge_in_the_explorer_in_ls_and_in_the_reports_health(
        monkeypatch, tmp_path, capsys):
    """trainer.health's saturated_network (not dead, a hidden layer at its activation's bound to the
    end): a badge like dead's, a flag in `trainer ls`, a count in the report's health table."""
    from explorer import cohort_tables
    from trainer import cli

    live = write_run(tmp_path, "stuck", {"activation_fn": "tanh", "initial_bias": 5.0, "epochs": EPOCHS}, logged=12)
    stuck = write_run(tmp_path, "stuck", {"activation_fn": "tanh", "initial_bias": 5.0, "epochs": EPOCHS}, seed=1,
                      logged=12)
    path = layout.run_json_path(tmp_path, stuck)
    path.write_text(json.dumps({**json.loads(path.read_text()), "saturated_network": True}))
    at = open_app(monkeypatch, tmp_path)
    table = at.dataframe[0].value.set_index("run_id")
    assert (table.loc[stuck, "flags"], table.loc[live, "flags"]) == ("saturated", "")
    assert at.multiselect(key=ui.SELECTION).format_func(stuck).endswith(" [saturated]")
    at.switch_page("app_pages/training.py").run()
    colours = specs(at)[0]["hconcat"][0]["layer"][-1]["encoding"]["color"]["sort"]
    assert len(colours) == 1 and colours[0].endswith(" [saturated: 1 of 2 seeds]")   # one seed group
    assert cli.main(["ls", "--results", str(tmp_path)]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("stuck")}
    assert (lines[stuck][4], lines[live][4]) == ("saturated", "-")
    store = ResultStore(tmp_path)
    health = cohort_tables.health_table(store.runs(), store.labels([live, stuck], by_group=True))
    assert list(health[["runs", "dead", "saturated"]].iloc[0]) == [2, 0, 1]


def test_a_dead_networks_warnings_give_the_trainers_rule(monkeypatch, flagged_root):
    """trainer.health counts a layer dead when its gradient is exactly zero or when it gives the same
    activations on every input: the warnings once said the gradients were zero to the end."""
    root, dead = flagged_root["root"], flagged_root["dead"]
    for page, params in (("activations", {}), ("gradients", {"grad_view": "per run"})):
        at = open_app(monkeypatch, root, page, **params)
        (warning,) = [unescaped(w.value) for w in at.warning if "Dead network" in w.value]
        assert ui.DEAD_RULE in warning and "same activations on every input" in warning, page
        assert "weights stop changing" not in warning and "gradients are zero from" not in warning, page
        assert page == "gradients" or dead in warning


def test_a_run_whose_config_has_no_seed_breaks_no_page(monkeypatch, tmp_path):
    """A run.json written by hand, or by another tool, whose config has no `seed`: every page
    failed with KeyError: 'seed' in the sidebar's chip names. The run's chip now names its seed "-"."""
    for seed in (0, 1):
        write_run(tmp_path, "seeded", {"activation_fn": "tanh", "epochs": EPOCHS}, seed=seed, logged=5)
    unseeded = write_run(tmp_path, "seeded", {"activation_fn": "tanh", "epochs": EPOCHS}, seed=2, logged=5)
    path = layout.run_json_path(tmp_path, unseeded)
    record = json.loads(path.read_text())
    del record["config"]["seed"]
    path.write_text(json.dumps(record))
    for page in PAGES:
        at = open_app(monkeypatch, tmp_path, page)
        assert not at.exception, (page, at.exception)
    chips = at.sidebar.multiselect[0].options
    assert "-" in chips and {"s0", "s1"} <= set(chips), chips


def test_a_config_of_20000_keys_names_six_in_the_caption(monkeypatch, tmp_path):
    """One run whose config has 20,000 keys the others lack: the caption named all 20,000 (about
    200 kB under the selection) and every chip joined them. A chip shows about 20 characters, so
    the chips and the caption take the first six keys, and the caption says how many more."""
    for seed in (0, 1):
        write_run(tmp_path, "plain", {"activation_fn": "tanh", "epochs": EPOCHS}, seed=seed, logged=5)
    wide = write_run(tmp_path, "wide", {"activation_fn": "tanh", "epochs": EPOCHS}, seed=2, logged=5)
    path = layout.run_json_path(tmp_path, wide)       # written by hand or another tool: no schema
    record = json.loads(path.read_text())
    record["config"].update({f"k{i:05d}": i for i in range(20_000)})
    record["config"]["a" * 200_000] = 1                 # one key of 200 kB, first by name: cut in the caption
    path.write_text(json.dumps(record))
    at = open_app(monkeypatch, tmp_path)
    assert not at.exception, at.exception
    (caption,) = [c.value for c in at.sidebar.caption if "chips show" in c.value]
    shown = caption.split("chips show ")[1].split(" (and ")[0]
    assert shown.split(" · ") == ["seed", "a" * 60 + "…", *(ui.plain(f"k{i:05d}") for i in range(4))], caption
    assert "(and 19,996 more)" in caption and len(caption) < 1000, caption
    chips = at.sidebar.multiselect[0].options
    assert len(chips) == 3 and all(chip.count(" · ") == 5 for chip in chips), chips
    assert "s2 · 1 · 0 · 1 · 2 · 3" in chips and wide not in "".join(chips), chips


def test_text_from_run_json_is_never_markdown(monkeypatch, flagged_root):
    """A run name / config value with a Markdown image, HTML and Streamlit directives reaches every
    page only as text: escaped in Markdown elements, raw in tables, charts and widget options."""
    root = flagged_root["root"]
    escaped = ui.plain(EVIL)
    opened = {}           # each page opened once: the checks below read the same pages again
    for page in PAGES[:-1]:
        at = opened[page] = open_app(monkeypatch, root, page)
        shown = texts(at)
        assert "](http" not in shown.replace(escaped, ""), page
        assert "<img" not in shown.replace(escaped, ""), page
    at = open_app(monkeypatch, root, "gradients", grad_view="per run")
    assert any(escaped in s.value for s in at.subheader)          # the label is there, as text
    at = opened["runs"]
    assert EVIL in set(at.dataframe[0].value["name"])              # tables show the raw string
    assert re.fullmatch(r"[^\\]*(\\[^a-zA-Z0-9 ][^\\]*)*", escaped)     # every special character escaped
    at = opened["phases"]                                          # st.table renders Markdown: escaped there
    cells = "\n".join(str(v) for table in at.table for v in table.value.to_numpy().ravel())
    assert escaped in cells and "<img" not in cells.replace(escaped, "") and "](http" not in cells.replace(escaped, "")


def test_compare_draws_the_infoplane_grid_titled_by_varying_keys(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, "compare")
    (spec,) = specs(at)
    assert spec["facet"]["field"] == "panel"
    assert spec["facet"]["sort"] == [titled(label, seed) for label in LABELS for seed in (0, 1)]
    assert spec["title"]["text"] == 'binning {"bin_size": 0.07}, train split'
    assert "Varying keys: initial\\_bias" in texts(at)
    assert [b.label for b in at.get("download_button")] == ["SVG", "CSV"]   # PNG: the chart toolbar's
    points = spec["spec"]["layer"][-1]["encoding"]
    assert points["color"]["field"] == "epoch" and points["shape"]["field"] == "layer_label"

    at.radio(key="color").set_value("layer").run()
    points = specs(at)[0]["spec"]["layer"][-1]["encoding"]
    assert points["color"]["field"] == "layer_label" and points["shape"]["field"] == "layer_label"

    at.radio(key="layout").set_value("overlay").run()
    (spec,) = specs(at)
    assert "facet" not in spec
    color = spec["layer"][-1]["encoding"]["color"]
    # one colour per seed group, the groups' colours of every other page
    assert color["field"] == "group" and color["scale"]["domain"] == [group_titled(label) for label in LABELS]


def test_compare_groups_seeds_with_mean_or_median(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, "compare")
    at.radio(key="panels").set_value("per seed group").run()
    at.radio(key="split").set_value("test").run()
    (spec,) = specs(at)
    # initial_bias=-1's seeds are dead: left out, as the statistics leave them out, and counted
    assert spec["facet"]["sort"] == [group_titled(label, " (2 seeds)") for label in LABELS if label not in DEAD]
    assert "at the epochs every one of them has logged" in texts(at) and "; 2 of 8 runs left out (2 dead)." in texts(at)
    no_panel = "No panel for initial_bias=-1 [dead: 2 of 2 seeds]: every seed of it is left out."
    assert no_panel in map(unescaped, texts(at).split("\n"))
    # by default the mean, as the report's planes and the Phases page's statistics
    assert spec["title"]["text"] == 'binning {"bin_size": 0.07}, test split, mean over seeds'
    assert [l["mark"]["type"] for l in spec["spec"]["layer"]] == ["line", "rule", "rule", "point"]
    at.radio(key="agg").set_value("median").run()
    assert specs(at)[0]["title"]["text"].endswith("median over seeds")
    at.radio(key="layout").set_value("overlay").run()     # seed groups on one plane, one colour each
    color = specs(at)[0]["layer"][-1]["encoding"]["color"]
    assert color["scale"]["domain"] == [group_titled(label) for label in LABELS]
    # the same group has the same colour on the Training and Gradients pages
    at.switch_page("app_pages/training.py").run()
    assert specs(at)[0]["hconcat"][0]["layer"][-1]["encoding"]["color"]["scale"]["domain"] == color["scale"]["domain"]
    at.switch_page("app_pages/gradients.py").run()
    assert specs(at)[0]["spec"]["layer"][-1]["encoding"]["color"]["scale"]["domain"] == color["scale"]["domain"]


def test_config_page_titled_by_varying_keys_with_lists_inline(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, "config")
    varying = at.dataframe[0].value
    assert list(varying.index) == ["initial_bias", "seed"]
    assert list(varying.columns) == [titled(label, seed) for label in LABELS for seed in (0, 1)]
    constant = at.dataframe[1].value
    assert set(constant.loc["architecture"]) == {"[10, 7, 5, 4, 3]"}
    summary = dict(zip(at.dataframe[2].value["key"], at.dataframe[2].value["value"]))
    assert summary["initial_bias"] == "<var>" and summary["seed"] == "<var>"
    assert summary["activation_fn"] == "relu" and summary["architecture"] == "[10, 7, 5, 4, 3]"


def test_training_gradients_activations_and_movie_charts(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, "training")
    (spec,) = specs(at)
    accuracy, loss = (chart["layer"][-1]["encoding"] for chart in spec["hconcat"])
    assert accuracy["y"]["scale"]["domain"] == [0, 1] and loss["y"]["scale"]["type"] == "log"
    assert accuracy["color"]["field"] == "group"      # the seeds of one config share a colour
    assert accuracy["color"]["sort"] == [group_titled(label) for label in LABELS]
    at.radio(key="curves").set_value("small multiples").run()
    (spec,) = specs(at)
    assert spec["facet"]["sort"] == [titled(label, seed) for label in LABELS for seed in (0, 1)]
    assert spec["columns"] == 2
    assert "scale" not in spec["spec"]["layer"][0]["encoding"]["x"]            # linear epochs, as the notebook's
    # a sceptic's 10x learning rate rose within the first 1 % of the epochs: a log axis on demand, in the link
    at.toggle(key="train_log_epochs").set_value(True).run()
    (spec,) = specs(at)
    assert spec["spec"]["layer"][0]["encoding"]["x"]["scale"]["type"] == "symlog"
    (overlay,) = specs(open_app(monkeypatch, cohort_root, "training", train_log_epochs="true"))
    assert all(chart["layer"][-1]["encoding"]["x"]["scale"]["type"] == "symlog" for chart in overlay["hconcat"])

    at = open_app(monkeypatch, cohort_root, "gradients", grad_view="per run")
    assert len(specs(at)) == 2 * len(BIASES)
    assert [s.value for s in at.subheader] == [ui.plain(titled(label, seed)) for label in LABELS for seed in (0, 1)]
    assert len(at.warning) == 2          # the two dead runs
    at.radio(key="grad_view").set_value("SNR over seeds").run()
    (spec,) = specs(at)
    assert spec["facet"]["field"] == "layer_label"
    assert spec["facet"]["sort"][0] == "0 · dense_0" and spec["facet"]["sort"][-1].endswith(" · output")   # as on Compare
    assert spec["spec"]["layer"][0]["encoding"]["color"]["scale"]["domain"] == [group_titled(label) for label in LABELS]

    at = open_app(monkeypatch, cohort_root, "activations")
    assert "Dead network" in at.warning[0].value
    runs = ResultStore(cohort_root).runs()
    dead = runs[runs["dead_network"].astype(bool)]
    # the layers each dead run's record names (a sceptic found them on no page)
    said = "; ".join(f"{r} (layers {', '.join(map(str, layers))})" for r, layers in zip(dead["run_id"], dead["dead_layers"]))
    assert f"Runs, with their dead layers: {said}." in unescaped(at.warning[0].value) and "(layers 0, 1, 2, 3, 4)" in said
    marks = [s["spec"].get("mark", {}).get("type") if "spec" in s else None for s in specs(at)]
    assert marks[0] == "rect" and len(marks) == 4       # heatmap, units, neurons; the groups' fractions

    at = open_app(monkeypatch, cohort_root, "movie")
    (spec,) = specs(at)
    named = ' (binning {"bin_size": 0.07}, train split)'    # the estimator and split: kept in downloads
    assert "vconcat" in spec and spec["vconcat"][0]["title"]["text"].endswith("epoch 0" + named)
    epochs = at.select_slider(key="movie_epoch").options
    at.select_slider(key="movie_epoch").set_value(epochs[-1]).run()
    assert specs(at)[0]["vconcat"][0]["title"]["text"].endswith(f"epoch {epochs[-1]}" + named)
    shared = open_app(monkeypatch, cohort_root, "movie", movie_epoch=str(epochs[3]))   # a link with its epoch
    assert shared.select_slider(key="movie_epoch").value == int(epochs[3])
    assert spec["vconcat"][0]["title"]["text"].startswith("initial_bias=0, seed=0")   # not the dead -1 runs
    assert at.select_slider(key="speed").options == ["0.5×", "1×", "2×", "4×"]
    at.radio(key="trail").set_value("epoch").run()
    assert specs(at)[0]["vconcat"][0]["layer"][0]["encoding"]["fill"]["field"] == "epoch"


def test_the_training_page_says_what_a_one_class_network_scores_and_how_soon_groups_reach_an_accuracy(monkeypatch,
                                                                                                      tmp_path):
    # A new user's dead seeds scored 0.590, 0.303 and 0.107, their classes' shares, beside real accuracies
    for bias in (0.0, 1.0):
        for seed in range(2):
            run_id = write_run(tmp_path, "c", {"initial_bias": bias, "epochs": EPOCHS}, seed=seed, logged=8)
            path = layout.run_dir(tmp_path, run_id) / "run.json"
            record = json.loads(path.read_text())
            record["splits"]["test"].update(inputs=1000, class_counts=[580, 310, 110])
            path.write_text(json.dumps(record))
    at = open_app(monkeypatch, tmp_path, "training", lines="per seed group")
    assert ("A network that predicts one class scores its share of the test inputs, as a dead network whose "
            "activations are alike for every input does (one frozen by zero gradients scores what its untrained "
            "features give): class 0, the most frequent, is 0.58 of them (580 of 1000; each class: 0.58, 0.31, "
            "0.11).") in [
                unescaped(c.value) for c in at.caption]
    # how soon each group reaches a test accuracy, by ranks (a sceptic's 10x learning rate: 17 against 125 epochs)
    assert at.subheader[-1].value == "Epochs to a test accuracy"
    reach, per_seed = at.table[-2].value, at.table[-1].value.map(unescaped)   # the page's last two tables
    assert list(reach.columns[:5]) == ["a", "b", "to epoch", "median epoch a (reach)", "median epoch b (reach)"]
    assert len(per_seed) == 4
    assert list(per_seed.columns) == ["seed group", "seed", "run", "first epoch at the threshold"]
    # a threshold that predicting class 0 meets (0.58) is not compared: a dead network reaches it at epoch 0
    at.slider(key="reach").set_value(0.5).run()
    assert at.subheader[-1].value == "Epochs to a test accuracy" and len(at.table) == 2
    assert unescaped(at.info[-1].value).startswith("Not compared at 0.5: a network that predicts one class scores 0.58")


def test_a_group_whose_seeds_all_diverged_is_compared_on_epochs_to_an_accuracy(monkeypatch, tmp_path):
    # A sceptic's: with no final accuracy, a group that always diverges had no comparison at all,
    # neither on the page nor in the report, where never reaching a threshold is its outcome
    for seed in range(2):
        write_run(tmp_path, "c", {"learning_rate": 0.001, "epochs": EPOCHS}, seed=seed, logged=8)
        write_run(tmp_path, "c", {"learning_rate": 3.0, "epochs": EPOCHS}, seed=seed, logged=8,
                  status=Status.DIVERGED, epochs_done=5)
    at = open_app(monkeypatch, tmp_path, "training", lines="per seed group", reach="0.8")
    assert at.subheader[-1].value == "Epochs to a test accuracy"
    reach, per_seed = at.table[-2].value.map(unescaped), at.table[-1].value.map(unescaped)
    assert reach["a"].tolist() == ["learning_rate=3 [diverged: 2 of 2 seeds]"]
    assert reach["median epoch a (reach)"].tolist() == ["never (0 of 2)"]     # not a bound: "> 8"
    # nor is it left out of the final accuracy's comparison without a word
    assert ("Not compared on final accuracy, no run completed: learning_rate=3 [diverged: 2 of 2 seeds] (the health "
            "table counts how its runs ended).") in [
        unescaped(c.value) for c in at.caption]
    assert reach["median epoch b (reach)"].str.endswith("(2 of 2)").all()
    assert per_seed["first epoch at the threshold"].tolist()[-2:] == ["never (diverged at 5)"] * 2


def test_the_snr_over_seeds_leaves_out_vanished_gradients_and_says_where(monkeypatch, tmp_path):
    # A sceptic's: a saturated group's gradient norms of 1e-16 gave an SNR of 10, the page's highest
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    for bias in (0.0, 5.0):
        for seed in range(2):
            run_id = write_run(tmp_path, "v", {"initial_bias": bias, "epochs": EPOCHS}, seed=seed, logged=8)
            path = layout.run_dir(tmp_path, run_id) / "gradients.parquet"
            table = pq.read_table(path)
            if bias == 5.0:              # every hidden layer's gradient vanished, the output layer's not
                hidden = pc.less(table["layer"], 5)
                for column in ("grad_mean_norm", "grad_std_norm"):
                    table = table.set_column(table.schema.get_field_index(column), column,
                                             pc.if_else(hidden, pc.multiply(table[column], 1e-15), table[column]))
                pq.write_table(table, path)
    at = open_app(monkeypatch, tmp_path, "gradients", grad_view="SNR over seeds")
    (warning,) = [w.value for w in at.warning if "vanished" in w.value]
    assert unescaped(warning).endswith("Left out at some epochs in initial_bias=5: 0 · dense_0, 1 · dense_1, "
                                       "2 · dense_2, 3 · dense_3, 4 · dense_4.")
    (spec,) = full_specs(at)
    drawn = pd.DataFrame([row for rows in spec["datasets"].values() for row in rows])
    drawn = drawn[drawn["snr"] > 0]
    assert set(drawn.loc[drawn["group"] == "initial_bias=5", "layer"]) == {5}
    assert set(drawn.loc[drawn["group"] == "initial_bias=0", "layer"]) == set(range(6))
    # the per-run view draws no such SNR either, and says so under the run (a reviewer's)
    per_run = open_app(monkeypatch, tmp_path, "gradients", grad_view="per run")
    assert sum("No SNR drawn where the gradient vanished" in c.value for c in per_run.caption) == 2   # bias 5's seeds
    for title, spec in zip([unescaped(h.value) for h in per_run.subheader], full_specs(per_run), strict=True):
        rows = pd.DataFrame([row for data in spec["datasets"].values() for row in data])
        hidden_snr = rows[(rows["quantity"] == "SNR (mean/std)") & (rows["layer"] < 5)]
        assert hidden_snr.empty == title.startswith("initial_bias=5"), title
    # smoothed, the vanished epochs stay out: the mask is taken on the norms as recorded, before the average
    # (a layer that vanished after healthy epochs had smoothed norms above the bound, and was drawn)
    for run_id in ResultStore(tmp_path).runs()["run_id"]:
        path = layout.run_dir(tmp_path, run_id) / "gradients.parquet"
        table = pq.read_table(path)
        early = pc.and_(pc.less(table["layer"], 5), pc.less_equal(table["epoch"], 1))
        for column in ("grad_mean_norm", "grad_std_norm"):      # healthy again at epochs 0 and 1
            table = table.set_column(table.schema.get_field_index(column), column,
                                     pc.if_else(early, pc.max_element_wise(table[column], 0.5), table[column]))
        pq.write_table(table, path)
    (spec,) = full_specs(open_app(monkeypatch, tmp_path, "gradients", grad_view="SNR over seeds", smooth="0.9"))
    smoothed = pd.DataFrame([row for rows in spec["datasets"].values() for row in rows])
    vanished = smoothed[(smoothed["group"] == "initial_bias=5") & (smoothed["layer"] < 5) & (smoothed["snr"] > 0)]
    assert not vanished.empty and set(vanished["epoch"]) <= {0, 1}


@pytest.mark.parametrize("page", CHART_PAGES)
def test_charts_fit_the_page_with_complete_opaque_legends(monkeypatch, cohort_root, page):
    """Every chart of the page, drawn by Vega (vl-convert, the renderer of the PNG/SVG downloads;
    the page draws the same spec without a theme): at most charts.PAGE_WIDTH wide, a legend symbol
    for every value of every legend's field, every swatch opaque."""
    at = open_app(monkeypatch, cohort_root, page)
    for spec in full_specs(at):
        svg = vlc.vegalite_to_svg(spec)
        width = float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1))
        assert width <= charts.PAGE_WIDTH, (page, width)
        symbols = re.findall(r'role-legend-symbol"[^>]*>(<path[^>]*>)', svg)
        assert all('opacity="1"' in s for s in symbols), page
        assert len(symbols) == expected_legend_entries(spec), page


def expected_legend_entries(spec: dict) -> int:
    """Symbol legend entries the spec asks for: the distinct values of each nominal/ordinal field
    with a legend (a field on colour and shape shares one legend), or its scale's domain where the
    page gives one (the selection's seed groups: a group without data keeps its colour and entry)."""
    rows = [row for dataset in spec.get("datasets", {}).values() for row in dataset]
    fields, domains = set(), {}

    def visit(node):
        if isinstance(node, dict):
            for channel in ("color", "shape", "strokeDash", "fill"):
                encoding = node.get("encoding", {}).get(channel)
                if encoding and encoding.get("type") in ("nominal", "ordinal") and encoding.get("legend", {}) is not None:
                    fields.add(encoding["field"])
                    if "domain" in encoding.get("scale", {}):
                        domains[encoding["field"]] = len(encoding["scale"]["domain"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(spec)
    return sum(domains.get(f) or len({row[f] for row in rows if f in row}) for f in fields)


def test_sql_page_runs_reads_and_refuses_writes(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, "sql")
    assert len(at.dataframe[0].value) == 2 * len(BIASES) * 6
    at.text_area(key="q").set_value("SELECT count(*) AS n FROM runs").run()
    assert at.dataframe[0].value["n"][0] == 2 * len(BIASES)
    at.text_area(key="q").set_value(f"COPY runs TO '{cohort_root}/runs/x.csv'").run()
    assert "refused: COPY is not allowed" in at.error[0].value.replace("\\", "")   # shown escaped: text
    assert not (cohort_root / "runs" / "x.csv").exists()


def test_sql_page_reads_the_selection_and_plots_two_numeric_columns(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root)
    chosen = list(at.dataframe[0].value["run_id"])[2:5]
    at = open_app(monkeypatch, cohort_root, "sql", runs=chosen)
    at.text_area(key="q").set_value("SELECT m.run_id, m.epoch, m.accuracy FROM metrics m JOIN selected USING (run_id) "
                                    "WHERE split = 'test'").run()
    result = at.dataframe[0].value
    assert set(result["run_id"]) == set(chosen) and not at.error
    (spec,) = full_specs(at)
    assert spec["mark"]["type"] == "line"     # a line per run over epochs (tests/test_sql_page_chart.py)
    assert (spec["encoding"]["x"]["field"], spec["encoding"]["y"]["field"]) == ("epoch", "accuracy")
    at.selectbox(key="sql_colour").set_value("run_id").run()
    (spec,) = full_specs(at)
    assert spec["encoding"]["color"]["scale"]["domain"] and len(next(iter(spec["datasets"].values()))) == len(result)


def test_empty_root_shows_the_quickstart_command(monkeypatch, tmp_path):
    at = open_app(monkeypatch, tmp_path / "nothing-here")
    assert at.title[0].value == "No runs yet"
    codes = [code.value for code in at.code]
    assert f"trainer sweep data/configs/quickstart --results {tmp_path / 'nothing-here'}" in codes
    assert str(tmp_path / "nothing-here") in codes     # the path as text, not inside Markdown
    assert at.button[0].label == "Run the quickstart cohort"
    # a root that is no folder (a mistyped path) says so; an existing empty one does not
    assert "The results root is no folder yet: is its path right?" in at.warning[0].value
    (tmp_path / "empty").mkdir()
    at = open_app(monkeypatch, tmp_path / "empty")
    assert at.title[0].value == "No runs yet" and not at.warning
    # an attacker's: a root that is a file (or a link to one), or a path too long for the system, was "no
    # folder yet" with the button, or a traceback; it is named, with no button to train beside it
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "to-file").symlink_to(tmp_path / "notes.txt")
    # and a root whose runs folder is a link (the readers skip it): "holds no runs", and a quickstart that failed
    (tmp_path / "elsewhere" / "runs").mkdir(parents=True)
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "runs").symlink_to(tmp_path / "elsewhere" / "runs")
    (tmp_path / "filed").mkdir()
    (tmp_path / "filed" / "runs").write_text("not a folder")
    for root, problem in ((tmp_path / "notes.txt", "is no folder (a file, or a link to one)"),
                          (tmp_path / "filed",
                           f"holds a file where its runs folder would be ({tmp_path / 'filed' / 'runs'})"),
                          (tmp_path / "to-file", "is no folder (a file, or a link to one)"),
                          (tmp_path / "linked",
                           f"holds its runs folder as a symbolic link ({tmp_path / 'linked' / 'runs'}): results are "
                           "read and written only inside the root's own folders"),
                          (tmp_path / ("z" * 300), "cannot be read (File name too long)")):
        at = open_app(monkeypatch, root)
        assert not at.exception and not at.button, root
        assert at.error[0].value.startswith(f"The results root {problem}; give a folder")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_damaged_root_renders_and_says_what_is_missing(monkeypatch, messy_root):
    at = open_app(monkeypatch, messy_root["root"])
    assert "could not be read" in at.warning[0].value
    assert "running" in set(at.dataframe[0].value["status"])
    assert at.get("progress")  # the live panel of the running run
    chosen = [messy_root["truncated"], messy_root["no_mi"], messy_root["old"]]
    opened = {}
    for page in PAGES:
        at = opened[page] = open_app(monkeypatch, messy_root["root"], page, runs=chosen)
        assert not at.error or page == "sql"
    at = opened["compare"]         # the same link, not opened a second time
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


def test_the_first_run_in_an_empty_root_shows_on_the_next_rerun(monkeypatch, tmp_path):
    # The quickstart's panel reruns the app when it sees runs. That rerun must show them: a refresh in
    # the background returned the empty snapshot first, and no later rerun came (the panel had seen them).
    root = tmp_path / "fresh"
    root.mkdir()
    at = open_app(monkeypatch, root)
    assert at.title[0].value == "No runs yet"
    write_run(root, "quick", {"epochs": 5}, logged=3)
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
    # the running run is of no cohort, so not in the default selection (the first row's cohort): chosen
    at = open_app(monkeypatch, messy_root["root"], "training", runs=[*messy_root["good"], messy_root["running"]])
    assert "1 selected run(s) training, redrawn every 1 s: running" in texts(at)
    assert len(specs(at)) == 1
    at = open_app(monkeypatch, cohort_root, "training")
    assert "training, redrawn" not in texts(at) and len(specs(at)) == 1


def test_pages_refresh_only_while_a_selected_run_trains(messy_root):
    from explorer.results import ResultStore

    runs = ResultStore(messy_root["root"]).runs()
    running, good, stale = messy_root["running"], messy_root["good"], messy_root["stale"]
    assert ui.live_interval(runs, [running, *good]) == ui.LIVE_SECONDS <= 1.0
    assert ui.live_interval(runs, good) is None                 # nothing trains: nothing refreshes
    assert ui.live_interval(runs, [stale]) is None              # a writer gone for an hour: interrupted


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


def test_training_curves_per_seed_group_compare_final_test_accuracy_with_a_reference(monkeypatch, cohort_root):
    from scipy import stats as scipy_stats
    at = open_app(monkeypatch, cohort_root, "training", lines="per seed group")
    plain = [table.value.map(lambda cell: re.sub(r"\\(.)", r"\1", cell) if isinstance(cell, str) else cell)
             for table in at.table]
    health, compared, _reach, _per_seed = plain          # then epochs to a test accuracy, and per seed
    store = ResultStore(cohort_root)
    runs = store.runs()
    runs["bias"] = runs["run_id"].map({r: c["initial_bias"] for r, c in store.configs(list(runs["run_id"])).items()})
    accuracy = {bias: rows["final_test_accuracy"].to_numpy() for bias, rows in runs.groupby("bias")}
    assert list(health["runs"]) == [2, 2, 2, 2] and health["dead"].iloc[0] == 2   # bias -1: both seeds dead
    # the reference is the first group with a live seed, as in the report: bias 0
    assert at.selectbox(key="accuracy_reference").value == runs.loc[runs["bias"] == 0.0, "group_id"].iloc[0]
    assert set(compared["b"]) == {"initial_bias=0"}
    row = compared[compared["a"] == "initial_bias=2"].iloc[0]
    p = scipy_stats.permutation_test((accuracy[2.0], accuracy[0.0]), lambda a, b: np.mean(a) - np.mean(b),
                                     n_resamples=np.inf, permutation_type="independent").pvalue
    assert row["a - b"] == f"{accuracy[2.0].mean() - accuracy[0.0].mean():.3g}"
    assert row["p"] == f"{p:.3g} (too few seeds for p < 0.05)"      # 2 and 2 seeds: p is at least 1/3
    assert row["95 % CI"] == "unbounded"
    # another reference picked
    at.selectbox(key="accuracy_reference").set_value(runs.loc[runs["bias"] == 0.2, "group_id"].iloc[0]).run()
    assert set(at.table[1].value["b"].map(lambda cell: re.sub(r"\\(.)", r"\1", cell))) == {"initial_bias=0.2"}


def test_the_information_plane_pages_say_why_an_estimator_without_i_xt_has_no_plane(monkeypatch, tmp_path):
    from explorer import cohort_tables
    write_ksg_cohort(tmp_path)
    for page in ("compare", "movie"):
        at = open_app(monkeypatch, tmp_path, page)
        assert at.get("vega_lite_chart")                     # binning, the first estimator: a plane
        ksg = next(option for option in at.selectbox(key="estimator").options if option.startswith("ksg "))
        at.selectbox(key="estimator").set_value(ksg).run()
        assert not at.exception and not at.get("vega_lite_chart"), page
        instead = ui.plain(cohort_tables.no_i_xt_note("ksg", cohort_tables.NO_PLANE))
        assert [info.value for info in at.info] == [instead], page


def test_activations_show_each_groups_share_of_saturated_values_over_seeds(monkeypatch, cohort_root):
    import pyarrow.parquet as pq
    at = open_app(monkeypatch, cohort_root, "activations")
    spec = full_specs(at)[-1]
    assert spec["title"]["text"] == "Fraction of saturated values per layer, train split"
    drawn = pd.DataFrame(next(iter(spec["datasets"].values())))
    # worked out from the runs' activation_stats files: the mean over a layer's neurons per run,
    # then over the group's seeds
    store = ResultStore(cohort_root)
    runs = store.runs()
    bias = {r: c["initial_bias"] for r, c in store.configs(list(runs["run_id"])).items()}
    stats = pa.concat_tables([pq.read_table(layout.run_dir(cohort_root, r) / "activation_stats.parquet")
                              for r in runs["run_id"]]).to_pandas()
    stats = stats[stats["split"] == "train"]
    per_run = stats.groupby(["run_id", "layer", "epoch"])["frac_saturated"].mean().reset_index()
    per_run["bias"] = per_run["run_id"].map(bias)
    expected = per_run.groupby(["bias", "layer", "epoch"])["frac_saturated"].agg(["mean", "std", "count"])
    for group, value in (("initial_bias=0", 0.0), ("initial_bias=2", 2.0)):
        rows = drawn[drawn["group"] == group].set_index(["layer", "epoch"])
        mean, sd, n = expected.loc[value].reindex(rows.index).to_numpy().T
        assert (n == 2).all() and np.allclose(rows["frac_saturated"], mean)
        half = 12.706204736174698 * sd / np.sqrt(2)                   # t(0.975, 1): two seeds
        assert np.allclose(rows["frac_saturated_lo"], np.clip(mean - half, 0, 1))
        assert np.allclose(rows["frac_saturated_hi"], np.clip(mean + half, 0, 1))
    assert set(drawn["group"]) == {"initial_bias=-1 [dead: 2 of 2 seeds]", "initial_bias=0", "initial_bias=0.2",
                                   "initial_bias=2"}           # dead networks kept: their units are the outcome


def test_chips_put_the_keys_that_tell_neighbours_apart_first_so_a_cut_chip_still_does(monkeypatch, tmp_path):
    # Two seeds of two activations at three initial biases, one estimator list per activation:
    # "elu · binning+adapti…" (alphabetical, the seed last) was cut the same for every seed. Now plain
    # values come before lists, each by how many values it takes: initial_bias (3), then
    # activation_fn and the seed (2 each, by name), then the list.
    listed = {"elu": [{"name": "binning", "params": {"bin_size": 0.07}},
                      {"name": "adaptive", "params": {"n_bins": 30, "low": -1.000001}}],
              "relu": [{"name": "binning", "params": {"bin_size": 0.07}}]}
    for activation, estimators in listed.items():
        for bias in (0, 1, 2):
            for seed in (0, 1):
                write_run(tmp_path, f"{activation}-{bias}", {"epochs": 6, "activation_fn": activation,
                                                             "initial_bias": bias, "estimators": estimators},
                          seed=seed, logged=4)
    at = open_app(monkeypatch, tmp_path)
    chips = at.multiselect(key=ui.SELECTION).options
    assert sorted(chips) == sorted(f"{bias} · {activation} · s{seed} · {names}" for activation, names in
                                   (("elu", "binning+adaptive"), ("relu", "binning"))
                                   for bias in (0, 1, 2) for seed in (0, 1))
    assert len({chip[:20] for chip in chips}) == 12            # a chip shows about 20 characters
    assert "chips show initial\\_bias · activation\\_fn · seed · estimators" in texts(at)


def test_chips_put_the_keys_the_selection_varies_in_first(monkeypatch, tmp_path):
    # A new user's 20 runs of one cohort read "s0 · full · relu · /tmp/…" for both learning rates: the
    # root's keys (another cohort's dataset path, activations) came first, and the one the selection
    # varies in was cut off
    for path in ("a.npz", "b.npz", "c.npz"):
        for activation in ("relu", "tanh", "elu"):
            write_run(tmp_path, f"other-{activation}", {"epochs": 6, "activation_fn": activation,
                                                         "dataset_path": f"/tmp/{path}", "dataset": "file"}, logged=4)
    ids = [write_run(tmp_path, "rate", {"epochs": 6, "learning_rate": rate}, seed=seed, logged=4)
           for rate in (0.0004, 0.004) for seed in (0, 1)]
    at = open_app(monkeypatch, tmp_path, runs=ids)
    (caption,) = [c.value for c in at.sidebar.caption if "chips show" in c.value]
    assert caption.split("chips show ")[1].startswith("learning\\_rate · seed · ")
    names = [at.multiselect(key=ui.SELECTION).format_func(run_id) for run_id in ids]
    assert [name[:12] for name in names] == ["0.0004 · s0 ", "0.0004 · s1 ", "0.004 · s0 ·", "0.004 · s1 ·"]


@pytest.mark.parametrize("page", ["movie", "compare"])
def test_old_ksg_rows_with_h_t_in_i_xt_are_said_to_be_no_mutual_information(monkeypatch, tmp_path, page):
    # Movie drew them as an I(X;T) of -18 to -8 bits, unsaid (Compare said it)
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from explorer import cohort_tables
    from trainer.atomic import write_table
    run_id = write_run(tmp_path, "k", {"epochs": 20, "estimators": [{"name": "ksg", "params": {"k": 3}}]}, logged=6)
    path = layout.table_path(tmp_path, run_id, "mi")
    rows = pq.read_table(path)
    write_table(path, rows.set_column(rows.column_names.index("i_xt"), "i_xt", pc.subtract(rows["h_t_bits"], 20.0)))
    at = open_app(monkeypatch, tmp_path, page, runs=[run_id])
    assert cohort_tables.LEGACY_KSG in [unescaped(c.value) for c in at.caption], [c.value for c in at.caption]
