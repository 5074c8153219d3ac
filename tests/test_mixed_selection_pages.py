"""Pages over a selection whose runs differ in depth, estimators and config keys (a sceptic's
root): the Runs page's parallel coordinates compare one layer, named, the value null of a config
filter also selects the runs without the key, and the Compare and Phases pages count the runs that
recorded no MI with the chosen estimator."""

from __future__ import annotations

import json
import math

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bench.make_results import write_run
from explorer import cohort_tables, runs_table
from explorer.results import ResultStore
from ibstore import layout
from trainer.atomic import write_table
from conftest import open_app
from test_dead_runs_on_pages import parallel_coordinates
from test_phases_page import unescaped

pytestmark = pytest.mark.slow  # opens the app under AppTest

BINNING = {"name": "binning", "params": {"bin_size": 0.07}}
COARSE = {"name": "binning", "params": {"bin_size": 0.3}}


@pytest.fixture(scope="module")
def mixed_root(tmp_path_factory):
    """Deep tanh [10, 7, 5, 4, 3] and shallow relu [10, 7, 5] networks, 2 seeds each, by binning
    0.07; two more shallow ones by binning 0.3 alone. The deep runs' run.json lacks the key `loss`
    (as a run written before a key existed does)."""
    root = tmp_path_factory.mktemp("mixed")
    ids = {"deep": [], "shallow": [], "coarse": []}
    for seed in range(2):
        ids["deep"].append(write_run(root, "deep", {"activation_fn": "tanh", "epochs": 60, "estimators": [BINNING]},
                                     seed=seed, logged=20))
        ids["shallow"].append(write_run(root, "shallow", {"activation_fn": "relu", "architecture": [10, 7, 5],
                                                          "epochs": 60, "estimators": [BINNING]}, seed=seed, logged=20))
        ids["coarse"].append(write_run(root, "coarse", {"activation_fn": "relu", "architecture": [10, 7, 5],
                                                        "epochs": 60, "estimators": [COARSE]}, seed=seed, logged=20))
    for run_id in ids["deep"]:
        record = root / "runs" / run_id / "run.json"
        fields = json.loads(record.read_text())
        del fields["config"]["loss"]
        record.write_text(json.dumps(fields))
    return root, ids


def captions(at) -> str:
    return "\n".join(unescaped(caption.value) for caption in at.caption)


def test_parallel_coordinates_compare_each_networks_last_hidden_layer_and_name_a_layer(monkeypatch, mixed_root):
    root, ids = mixed_root
    at = open_app(monkeypatch, root, select="shown")
    at.selectbox(key="pc_outcome").set_value("compression").run()
    assert at.selectbox(key="pc_layer").value == runs_table.EACH_LAST_HIDDEN
    phases = ResultStore(root).phases()
    phases = phases[(phases["estimator"] == "binning") & (phases["params"] == '{"bin_size": 0.07}')
                    & (phases["split"] == "train")].set_index(["run_id", "layer"])
    excess = phases["compression_bits"] - phases["noise_floor_bits"]
    spec, rows = parallel_coordinates(at)
    column = "compression over floor of each network's last hidden layer (bits)"
    drawn = {row["run_id"]: row[column] for row in rows if row.get("axis") == column and "run_id" in row}
    # the deep networks' layer 4 (dense_4), the shallow ones' layer 2 (dense_2): not the shallow ones' output
    want = {**{run_id: excess[(run_id, 4)] for run_id in ids["deep"]},
            **{run_id: excess[(run_id, 2)] for run_id in ids["shallow"]}}
    assert drawn == pytest.approx(want)
    assert "2 of the 6 runs shown recorded no binning" in captions(at)   # the coarse ones: another estimator
    # layer 3 is dense_3 of the deep networks and the shallow ones' output layer: two choices
    options = at.selectbox(key="pc_layer").options
    assert "3 · dense_3" in options and "3 · output" in options
    at.selectbox(key="pc_layer").set_value("3 · dense_3").run()
    spec, rows = parallel_coordinates(at)
    column = "compression over floor of 3 · dense_3 (bits)"
    drawn = {row["run_id"]: row[column] for row in rows if row.get("axis") == column and "run_id" in row}
    assert drawn == pytest.approx({run_id: excess[(run_id, 3)] for run_id in ids["deep"]})
    assert "4 of the 6 runs shown recorded no binning" in captions(at)


def test_the_value_null_of_a_filter_selects_the_runs_without_the_key(monkeypatch, mixed_root):
    root, ids = mixed_root
    at = open_app(monkeypatch, root, fkey="loss", fval="None")   # as displayed
    assert set(at.dataframe[0].value["run_id"]) == set(ids["deep"])
    at = open_app(monkeypatch, root, fkey="loss", fval=["None", "keras_clipped"])
    assert len(at.dataframe[0].value) == 6


@pytest.mark.parametrize("page", ["compare", "phases"])
def test_pages_count_the_runs_without_the_chosen_estimator(monkeypatch, mixed_root, page):
    root, ids = mixed_root
    at = open_app(monkeypatch, root, page, select="shown")
    assert at.selectbox(key="estimator").value == 'binning {"bin_size": 0.07}'
    assert ('2 of the 6 selected runs with MI recorded no train MI with binning {"bin_size": 0.07}: they are not on '
            "this page") in captions(at)
    at.selectbox(key="estimator").set_value('binning {"bin_size": 0.3}').run()
    assert '4 of the 6 selected runs with MI recorded no train MI with binning {"bin_size": 0.3}' in captions(at)


def test_the_movie_keeps_the_nearest_logged_epoch_when_the_run_changes(tmp_path, monkeypatch):
    # the dense run logs ... 21, 25, 30 ...; the sparse one 0, 1, 4, 11, 26, 60: from epoch 25 of the
    # first, the second opens at 26, not at its first epoch
    dense = write_run(tmp_path, "dense", {"activation_fn": "tanh", "epochs": 60}, logged=20)
    sparse = write_run(tmp_path, "sparse", {"activation_fn": "tanh", "epochs": 60}, logged=6)
    at = open_app(monkeypatch, tmp_path, "movie", select="shown", run=dense)
    assert "25" in at.select_slider(key="movie_epoch").options          # AppTest lists options as text
    at.select_slider(key="movie_epoch").set_value(25).run()
    at.selectbox(key="run").set_value(sparse).run()
    assert at.select_slider(key="movie_epoch").options == ["0", "1", "4", "11", "26", "60"]
    assert at.select_slider(key="movie_epoch").value == 26


@pytest.mark.parametrize("page", ["compare", "movie"])
def test_a_plane_under_idnns_names_the_layers_its_bins_clip(tmp_path, monkeypatch, page):
    # a helper asking Saxe's question saw relu planes under idnns with no word that its fixed bins
    # [-1, 1] clip them; only the report's tables said "– (bins clip)"
    idnns = {"name": "idnns", "params": {"n_edges": 30}}
    for seed in range(2):
        write_run(tmp_path, "relu", {"activation_fn": "relu", "architecture": [10, 7, 5], "epochs": 60,
                                     "estimators": [idnns]}, seed=seed, logged=20)
    at = open_app(monkeypatch, tmp_path, page, select="shown")
    assert at.selectbox(key="estimator").value.startswith("idnns")
    assert "idnns' fixed bins [-1, 1] clip the activations of " in captions(at)
    assert ": 0 · dense_0, 1 · dense_1, 2 · dense_2: their I(X;T), drawn and tabled, is the bins'" in captions(at)


@pytest.mark.parametrize("page", ["compare", "movie"])
def test_a_plane_names_the_layers_at_their_ceiling_and_what_i_yt_means_there(tmp_path, monkeypatch, page):
    # A new user's planes piled every hidden layer on one point, (log2 n, H(Y)), from epoch 0, with no
    # word that every input had a bin of its own there: the flat I(Y;T) read as a fitting phase done
    for seed in range(2):
        run_id = write_run(tmp_path, "wide", {"epochs": 20, "estimators": [BINNING]}, seed=seed, logged=5)
        path = layout.table_path(tmp_path, run_id, "mi")
        mi = pq.read_table(path)
        layer_0 = pc.and_(pc.equal(mi["split"], "train"), pc.equal(mi["layer"], 0))
        i_xt = pc.if_else(layer_0, math.log2(3277), mi["i_xt"])             # every input's bin its own
        write_table(path, mi.set_column(mi.schema.get_field_index("i_xt"), "i_xt", i_xt), compacted_through=20)
    at = open_app(monkeypatch, tmp_path, page, select="shown")
    assert ("I(X;T) ends at its ceiling, H(X) (log2 n bits where no two inputs are alike), in every seed of "
            in captions(at))
    assert ": 0 · dense_0. Every input still has a bin of its own there" in captions(at)
    assert cohort_tables.AT_CEILING_I_YT.strip() in captions(at)


@pytest.fixture(scope="module")
def null_root(tmp_path_factory):
    """One setting under two names (a null comparison), two seeds each, other seeds per name."""
    root = tmp_path_factory.mktemp("null")
    for name, seeds in (("null_a", (0, 1)), ("null_b", (100, 101))):
        for seed in seeds:
            write_run(root, name, {"epochs": 20}, seed=seed, cohort=name, logged=5)
    return root


def test_groups_that_differ_only_in_name_are_titled_and_captioned_by_their_names(monkeypatch, null_root):
    # A sceptic's null cohort: its two groups were titled by their ids, its runs' columns on the
    # Config page by seeds alone, and Compare said "Varying keys: none" beside two panels
    store = ResultStore(null_root)
    run_ids = sorted(store.runs()["run_id"])
    assert sorted(store.labels(run_ids).values()) == ["null_a: seed=0", "null_a: seed=1", "null_b: seed=100",
                                                      "null_b: seed=101"]
    assert list(store.labels(run_ids, by_group=True).values()) == ["null_a", "null_b"]
    at = open_app(monkeypatch, null_root, "compare", select="shown", layout="grid")
    assert "Varying keys: none; the groups differ only in name (null_a, null_b)." in captions(at)
    at = open_app(monkeypatch, null_root, "config", select="shown")
    assert {"null_a: seed=0", "null_b: seed=101"} <= set(at.dataframe[0].value.columns)
