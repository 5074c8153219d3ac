"""ibstore.views: the `runs` view's rows and typed config columns."""

from __future__ import annotations

import json

import pytest

from ibstore.record import SCHEMA_VERSION, RunRecord

BASE = {"run_id": "r1", "status": "completed", "schema_version": SCHEMA_VERSION}


def encode(**fields) -> bytes:
    return json.dumps({**BASE, **fields}).encode()


def runs_view(records: list[RunRecord]):
    import duckdb

    from ibstore.views import runs_table

    con = duckdb.connect()
    con.register("runs", runs_table(records))
    return con


def test_runs_view_has_one_typed_column_per_flattened_config_key():
    configs = [
        {"initial_bias": 0, "epochs": 5, "activation_fn": "relu", "max_norm_weights": True,
         "architecture": [10, 7], "optimizer": {"name": "adam", "lr": 0.001}, "mixed": "a",
         "seed": 99, "empty": {}, "unset": None},
        {"initial_bias": 0.5, "epochs": 6, "activation_fn": "tanh", "max_norm_weights": False,
         "architecture": [3], "optimizer": {"name": "sgd", "lr": 1}, "mixed": 1, "Seed": 5},
    ]
    records = [RunRecord(**{**BASE, "run_id": f"r{i}"}, seed=i, config=c) for i, c in enumerate(configs)]
    con = runs_view(records)
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE runs)").fetchall())
    assert {key: types[key] for key in ("initial_bias", "epochs", "activation_fn", "max_norm_weights",
                                        "architecture", "optimizer.name", "optimizer.lr", "mixed",
                                        "seed", "empty", "unset")} == {
        "initial_bias": "DOUBLE", "epochs": "BIGINT", "activation_fn": "VARCHAR",
        "max_norm_weights": "BOOLEAN", "architecture": "VARCHAR", "optimizer.name": "VARCHAR",
        "optimizer.lr": "DOUBLE", "mixed": "VARCHAR", "seed": "BIGINT", "empty": "VARCHAR", "unset": "VARCHAR"}
    assert "Seed" not in types     # DuckDB names ignore case: the record's seed wins
    rows = con.execute('SELECT run_id, seed, initial_bias, architecture, "optimizer.lr", mixed, empty, unset '
                       "FROM runs ORDER BY run_id").fetchall()
    assert rows == [("r0", 0, 0.0, "[10, 7]", 0.001, '"a"', "{}", None),
                    ("r1", 1, 0.5, "[3]", 1.0, "1", None, None)]


def test_of_config_keys_alike_but_for_case_the_one_most_runs_have_is_the_column():
    # An attacker's hand-edited run.json: "Initial_Bias" in one run sorted before initial_bias and took
    # the column, so every other run's initial_bias read NULL and `--where "initial_bias = 0.2"` matched none.
    configs = [{"initial_bias": 0.0}, {"initial_bias": 0.0, "Initial_Bias": 5}, {"initial_bias": 0.2}]
    records = [RunRecord(**{**BASE, "run_id": f"r{i}"}, config=c) for i, c in enumerate(configs)]
    con = runs_view(records)
    assert [name for name, in con.execute("SELECT column_name FROM (DESCRIBE runs)").fetchall()
            if name.lower() == "initial_bias"] == ["initial_bias"]
    assert con.execute("SELECT run_id, initial_bias FROM runs ORDER BY run_id").fetchall() == [
        ("r0", 0.0), ("r1", 0.0), ("r2", 0.2)]
    # on a tie, the first in sort order, as before
    con = runs_view([RunRecord(**{**BASE, "run_id": "r0"}, config={"b": 1, "B": 2})])
    assert con.execute("SELECT * EXCLUDE (%s) FROM runs" % ", ".join(
        name for name, in con.execute("SELECT column_name FROM (DESCRIBE runs)").fetchall() if name.lower() != "b")
                       ).fetchall() == [(2,)]


def test_an_empty_config_key_is_in_config_alone_and_renames_no_column():
    # DuckDB named the empty key's column v<position> and moved a real key of that name to v<position>_1:
    # `WHERE v29 = 'real'` read the empty key's values (an attacker's)
    from ibstore.views import RUNS_SCHEMA

    position = len(RUNS_SCHEMA.names)        # the first config column's: the empty key sorts first
    records = [RunRecord(**{**BASE, "run_id": "r0"}, config={"": "empty", f"v{position}": "real"})]
    con = runs_view(records)
    names = [name for name, in con.execute("SELECT column_name FROM (DESCRIBE runs)").fetchall()]
    assert "" not in names and f"v{position}_1" not in names
    assert con.execute(f'SELECT "v{position}" FROM runs').fetchall() == [("real",)]


def test_runs_view_record_columns_and_older_records():
    new = RunRecord(**BASE, final_train_accuracy=0.9, final_test_accuracy=0.8, final_train_loss=0.1,
                    final_test_loss=0.2, best_test_accuracy=0.85, epochs_done=4, dead_network=True,
                    diverged=False, started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:01:00Z")
    old = RunRecord.from_json_bytes(encode(run_id="old", schema_version=1, epochs_done=3))
    con = runs_view([new, old])
    columns = ("final_train_accuracy, final_test_accuracy, final_train_loss, final_test_loss, "
               "best_test_accuracy, epochs_done, dead_network, diverged, status, duration_s")
    assert con.execute(f"SELECT {columns} FROM runs ORDER BY run_id").fetchall() == [
        (None, None, None, None, None, 3, None, None, "completed", None),
        (0.9, 0.8, 0.1, 0.2, 0.85, 4, True, False, "completed", 60.0)]
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE runs)").fetchall())
    assert types["dead_network"] == "BOOLEAN" and types["final_test_accuracy"] == "DOUBLE"


@pytest.mark.slow
def test_accuracy_per_initial_bias_is_one_line_of_sql(tmp_path, capsys):
    """The researcher's first question, answered by `trainer sql`, checked against the metrics files."""
    import pyarrow.parquet as pq

    from tests.conftest import BIASES, write_cohort
    from trainer import cli

    ids = write_cohort(tmp_path)
    assert cli.main(["sql", "SELECT initial_bias, avg(final_test_accuracy) AS acc FROM runs GROUP BY 1",
                     "--format", "json", "--results", str(tmp_path)]) == 0
    answer = {row["initial_bias"]: row["acc"] for row in json.loads(capsys.readouterr().out)}
    expected: dict[float, list[float]] = {}
    for run_id in ids:
        metrics = pq.read_table(tmp_path / "runs" / run_id / "metrics.parquet").to_pandas()
        config = json.loads((tmp_path / "runs" / run_id / "run.json").read_text())["config"]
        test = metrics[metrics.split == "test"]
        expected.setdefault(config["initial_bias"], []).append(test.loc[test.epoch.idxmax(), "accuracy"])
    assert sorted(answer) == sorted(BIASES)
    for bias, accuracies in expected.items():
        assert answer[bias] == pytest.approx(sum(accuracies) / len(accuracies))
    assert answer[-1.0] < 0.6 < min(answer[b] for b in BIASES if b >= 0)   # the dead relu networks


def test_a_config_with_thousands_of_keys_cannot_make_runs_unusably_wide():
    from ibstore.views import MAX_CONFIG_COLUMNS, RUNS_SCHEMA

    many = {f"k{i:05}": i for i in range(MAX_CONFIG_COLUMNS + 500)}
    wide = RunRecord(**{**BASE, "run_id": "wide"}, config={"initial_bias": 1.0, **many})
    plain = RunRecord(**BASE, config={"initial_bias": 0.5})
    con = runs_view([wide, plain])
    columns = [name for (name,) in con.execute("SELECT column_name FROM (DESCRIBE runs)").fetchall()]
    assert len(columns) == len(RUNS_SCHEMA) + MAX_CONFIG_COLUMNS
    assert con.execute("SELECT initial_bias FROM runs ORDER BY run_id").fetchall() == [(0.5,), (1.0,)]


@pytest.mark.slow  # runs SQL in its worker process
def test_gradients_and_activations_carry_the_layer_name_of_mi_and_null_in_older_files(tmp_path):
    import pyarrow.parquet as pq

    from bench.make_results import write_run
    from ibstore.sandbox import run_query

    new = write_run(tmp_path, "new", {"activation_fn": "tanh", "epochs": 20}, logged=5)
    old = write_run(tmp_path, "old", {"activation_fn": "tanh", "epochs": 20}, logged=5)
    for table in ("gradients", "activations"):     # as written before the column existed
        path = tmp_path / "runs" / old / f"{table}.parquet"
        pq.write_table(pq.read_table(path).drop_columns(["layer_name"]), path)
    names = ["dense_0", "dense_1", "dense_2", "dense_3", "dense_4", "output"]   # tanh 10-7-5-4-3 + softmax
    every = run_query(tmp_path, " UNION ALL ".join(
        f"(SELECT DISTINCT '{view}' AS view, run_id, layer, layer_name FROM {view})"
        for view in ("mi", "gradients", "activations")) + " ORDER BY ALL")
    for view, rows in every.groupby("view"):
        assert list(rows.loc[rows.run_id == new, "layer_name"]) == names, view
        assert list(rows.loc[rows.run_id == new, "layer"]) == list(range(6)), view
        expected_old = names if view == "mi" else [None] * 6
        assert list(rows.loc[rows.run_id == old, "layer_name"].replace({float("nan"): None})) == expected_old, view


def test_config_values_are_each_values_own_json_text_whichever_run_encoded_an_equal_one_first():
    """`config` encodes equal values once for all runs: values equal in Python but not in JSON
    (0.0 and -0.0, 1 and 1.0 and True) keep their own text."""
    from ibstore.flatten import flatten
    from ibstore.views import config_table

    configs = [{"x": 0.0, "y": 1, "z": {"a": [1, 2]}, "s": "é"}, {"x": -0.0, "y": 1.0, "z": {"a": [1, 2]}, "s": "é"},
               {"x": True, "y": True, "z": None, "s": 1}]
    records = [RunRecord(**{**BASE, "run_id": f"r{i}"}, config=c) for i, c in enumerate(configs)]
    expected = [(f"r{i}", key, json.dumps(value, sort_keys=True))
                for i, config in enumerate(configs) for key, value in sorted(flatten(config).items())]
    table = config_table(records)
    assert list(zip(*(table[c].to_pylist() for c in ("run_id", "key", "value")))) == expected
    assert ("r1", "x", "-0.0") in expected and ("r1", "y", "1.0") in expected
