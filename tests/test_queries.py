"""explorer.queries.runs: one row per run ordered by run_id, whether or not the view table
came sorted (the index keeps it sorted; the sort is then skipped); explorer.queries.mi_choices
on configs that list no usable estimators."""

from __future__ import annotations

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
