"""explorer.queries.runs: one row per run ordered by run_id, whether or not the view table
came sorted (the index keeps it sorted; the sort is then skipped); explorer.queries.mi_choices
on configs that list no usable estimators."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from explorer import queries


@pytest.mark.parametrize("order", ["sorted", "shuffled", "one out of place", "with a null"])
def test_runs_are_ordered_by_run_id(order):
    rng = np.random.default_rng(3)
    ids = sorted(f"run-{i}" for i in rng.choice(10_000, 500, replace=False))
    if order == "shuffled":
        ids = list(rng.permutation(ids))
    elif order == "one out of place":
        ids[10], ids[400] = ids[400], ids[10]
    elif order == "with a null":
        ids[0] = None
    table = pa.table({"run_id": pa.array(ids, pa.string()), "accuracy": rng.random(len(ids))})
    table = pa.concat_tables([table.slice(0, 123), table.slice(123)])   # chunked, as views are
    frame = queries.runs(table)
    expected = table.sort_by("run_id").to_pandas()
    assert frame["run_id"].tolist() == expected["run_id"].tolist()
    assert np.array_equal(frame["accuracy"].to_numpy(), expected["accuracy"].to_numpy())
    assert frame["run_id"].dropna().is_monotonic_increasing


def test_estimator_choices_survive_configs_that_list_no_estimators():
    # hand-written run.json files: `estimators` a string, a list of non-objects, an entry without a
    # name, or no such key. They order nothing; the one usable listing (run e: ksg, then edge without
    # params) still puts ksg before binning, both recorded by two runs
    mi = pd.DataFrame({"run_id": ["a", "b", "c", "d", "e"], "estimator": ["ksg", "binning", "edge", "binning", "ksg"],
                       "params": ["{}"] * 5, "split": ["train"] * 5})
    config = pd.DataFrame({"run_id": ["a", "b", "c", "e"], "key": ["estimators"] * 4,
                           "value": ['"binning"', "[1, [2], null]", '[{"params": {}}]',
                                     '[{"name": "ksg", "params": {}}, {"name": "edge"}]']})
    con = duckdb.connect()
    con.register("mi", mi)
    con.register("config", config)
    choices = queries.mi_choices(con, list("abcde"))
    assert list(zip(choices["estimator"], choices["runs"])) == [("ksg", 2), ("binning", 2), ("edge", 1)]
    alone = queries.mi_choices(con, ["b", "c", "d"])          # no usable listing: by count, then name
    assert alone["estimator"].tolist() == ["binning", "edge"]


@pytest.mark.parametrize("aggregate", ["mean", "median"])
def test_a_group_over_seeds_is_drawn_where_every_seed_logged(aggregate):
    # seed a logs epochs 0-4 at 8 bits, seed b stops early (stop_at_accuracy) after epoch 2 at 6
    # bits: over the seeds left, the group's I(X;T) would jump from 7 to 8 bits at epoch 3, a move
    # of which seeds it holds, not of the layer; the group is drawn at epochs 0-2, over both seeds
    rows = [("a", "g", e, 8.0, 0.5) for e in range(5)] + [("b", "g", e, 6.0, 0.7) for e in range(3)] + \
           [("c", "h", e, 5.0 - e / 10, 0.9) for e in range(5)]
    mi = pd.DataFrame({"run_id": [r[0] for r in rows], "epoch": [r[2] for r in rows], "layer": 0,
                       "layer_name": "dense", "i_xt": [r[3] for r in rows], "i_yt": [r[4] for r in rows],
                       "estimator": "binning", "params": "{}", "split": "train"})
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "group_id": ["g", "g", "h"]})
    con = duckdb.connect()
    con.register("mi", mi)
    con.register("runs", runs)
    over = queries.mi_over_seeds(con, ["a", "b", "c"], "binning", "{}", "train", aggregate)
    g, h = over[over["group_id"] == "g"], over[over["group_id"] == "h"]
    assert g["epoch"].tolist() == [0, 1, 2] and set(g["seeds"]) == {2}
    assert np.allclose(g["i_xt"], 7.0) and np.allclose(g["i_yt"], 0.6)
    assert (g["i_xt_min"] == 6.0).all() and (g["i_xt_max"] == 8.0).all()
    assert h["epoch"].tolist() == list(range(5)) and np.allclose(h["i_xt"], [5.0, 4.9, 4.8, 4.7, 4.6])
    # a seed whose I(X;T) is missing (NULL) or NaN at an epoch takes that epoch out of its group
    for missing in (None, math.nan):
        gap = mi.copy()
        gap["i_xt"] = gap["i_xt"].astype(object)
        gap.loc[(gap["run_id"] == "b") & (gap["epoch"] == 1), "i_xt"] = missing
        con.register("mi", gap.astype({"i_xt": float}))
        holes = queries.mi_over_seeds(con, ["a", "b"], "binning", "{}", "train", aggregate)
        assert holes["epoch"].tolist() == [0, 2] and np.allclose(holes["i_xt"], 7.0)
    con.register("mi", mi)
    # a group of the selection's seeds here: without b, a alone is drawn at every epoch it logged
    alone = queries.mi_over_seeds(con, ["a"], "binning", "{}", "train", aggregate)
    assert alone["epoch"].tolist() == list(range(5)) and set(alone["seeds"]) == {1}


def test_the_value_null_of_a_config_key_also_names_the_runs_without_it():
    # a has log_schedule.log_spaced = 40; b's is null; c has no such key (its log_schedule is text):
    # the filter lists null for "a run without the key", and null selected b alone
    config = pd.DataFrame({"run_id": ["a", "b", "a", "b", "c"],
                           "key": ["log_schedule.log_spaced", "log_schedule.log_spaced", "seed", "seed", "seed"],
                           "value": ["40", "null", "0", "1", "2"]})
    con = duckdb.connect()
    con.register("config", config)
    con.register("runs", pd.DataFrame({"run_id": ["a", "b", "c"]}))
    assert sorted(queries.runs_with_config(con, "log_schedule.log_spaced", ["null"])) == ["b", "c"]
    assert sorted(queries.runs_with_config(con, "log_schedule.log_spaced", ["40", "null"])) == ["a", "b", "c"]
    assert queries.runs_with_config(con, "log_schedule.log_spaced", ["40"]) == ["a"]
    assert sorted(queries.runs_with_config(con, "seed", ["0", "2"])) == ["a", "c"]
