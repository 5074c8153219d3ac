import json

import duckdb

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ibstore import sandbox
from ibstore.sandbox import SqlError, check_read_only, format_result, run_query

from conftest import BIASES, EPOCHS


@pytest.fixture(scope="module")
def con(cohort_root):
    return sandbox.connect(cohort_root)


@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM runs",
    "with r as (select * from runs) select run_id from r",
    "FROM mi LIMIT 3",
    "DESCRIBE mi",
    "SHOW TABLES",
    "SUMMARIZE metrics",
    "EXPLAIN SELECT * FROM mi",
    "EXPLAIN ANALYZE SELECT * FROM gradients",
    "select 1;",
])
def test_reads_are_allowed(con, sql):
    assert len(run_query(con, sql)) > 0


def test_views_hold_the_runs(con, cohort_root):
    runs = run_query(con, "SELECT run_id, status, epochs_done, epochs_total, seed FROM runs ORDER BY run_id")
    assert len(runs) == 2 * len(BIASES)
    assert set(runs["status"]) == {"completed"}
    assert (runs["epochs_done"] == EPOCHS).all()
    biases = run_query(con, "SELECT DISTINCT value FROM config WHERE key = 'initial_bias' ORDER BY 1")
    assert sorted(json.loads(v) for v in biases["value"]) == sorted(BIASES)
    last = run_query(con, "SELECT count(DISTINCT run_id) AS n, max(epoch) AS e FROM metrics")
    assert (last["n"][0], last["e"][0]) == (2 * len(BIASES), EPOCHS)
    layers = run_query(con, "SELECT DISTINCT layer, layer_name FROM mi ORDER BY layer")
    assert list(layers["layer_name"]) == ["dense_0", "dense_1", "dense_2", "dense_3", "dense_4", "output"]


@pytest.mark.parametrize("sql, kind", [
    ("COPY (SELECT * FROM runs) TO '{root}/runs/stolen.csv'", "COPY"),
    ("COPY mi FROM '{root}/x.csv'", "COPY"),
    ("CREATE TABLE t AS SELECT 1", "CREATE"),
    ("INSERT INTO problems VALUES ('a', 'b', 'c')", "INSERT"),
    ("DELETE FROM runs", "DELETE"),
    ("UPDATE runs SET status = 'x'", "UPDATE"),
    ("DROP VIEW mi", "DROP"),
    ("ATTACH '{root}/evil.db'", "ATTACH"),
    ("SET enable_external_access = true", "SET"),
    ("PRAGMA version", "PRAGMA"),
    ("INSTALL httpfs", "LOAD"),
    ("LOAD httpfs", "LOAD"),
    ("EXPORT DATABASE '{root}/dump'", "EXPORT"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{root}/x.csv'", "EXPLAIN COPY"),
    ("CALL pragma_version()", "CALL"),
])
def test_writes_and_settings_are_refused_before_they_run(con, cohort_root, sql, kind):
    before = sorted(p.name for p in cohort_root.rglob("*"))
    with pytest.raises(SqlError, match=f"refused: {kind} statements are not allowed"):
        run_query(con, sql.format(root=cohort_root))
    assert sorted(p.name for p in cohort_root.rglob("*")) == before
    assert run_query(con, "SELECT count(*) AS n FROM runs")["n"][0] == 2 * len(BIASES)


def test_multiple_statements_and_empty_queries_are_refused():
    with pytest.raises(SqlError, match="one statement at a time"):
        check_read_only("SELECT 1; SELECT 2")
    with pytest.raises(SqlError, match="empty"):
        check_read_only("  ")


def test_files_outside_the_root_cannot_be_read(con, tmp_path_factory, cohort_root):
    outside = tmp_path_factory.mktemp("outside") / "secret.parquet"
    pq.write_table(pa.table({"x": [1]}), outside)
    for sql in (f"SELECT * FROM read_parquet('{outside}')",
                f"SELECT * FROM read_parquet('{cohort_root}/../{outside.parent.name}/secret.parquet')",
                "SELECT * FROM read_csv('/etc/passwd')",
                "SELECT * FROM glob('/etc/*')"):
        with pytest.raises(SqlError, match="Permission Error"):
            run_query(con, sql)
    inside = next(cohort_root.glob("runs/*/mi.parquet"))
    assert len(run_query(con, f"SELECT * FROM read_parquet('{inside}')")) > 0


def test_configuration_is_locked_even_bypassing_the_check(con):
    with pytest.raises(duckdb.InvalidInputException, match="locked"):
        con.execute("SET enable_external_access = true")


def test_bad_sql_gives_duckdb_message(con):
    with pytest.raises(SqlError, match="syntax error"):
        run_query(con, "SELEC 1")
    with pytest.raises(SqlError, match="nope"):
        run_query(con, "SELECT * FROM nope")


def test_run_query_accepts_a_root(cohort_root):
    assert run_query(cohort_root, "SELECT count(*) AS n FROM mi")["n"][0] > 0


def test_format_result():
    import pandas as pd

    frame = pd.DataFrame({"run_id": ["a", "b"], "i_xt": [1.5, 2.0]})
    table = format_result(frame, "table")
    assert table.splitlines()[0].split() == ["run_id", "i_xt"] and "1.5" in table
    assert format_result(frame, "csv") == "run_id,i_xt\na,1.5\nb,2.0\n"
    assert json.loads(format_result(frame, "json")) == [{"run_id": "a", "i_xt": 1.5}, {"run_id": "b", "i_xt": 2.0}]
    with pytest.raises(ValueError, match="table, csv, json"):
        format_result(frame, "xml")


def test_view_columns_lists_every_view(con):
    columns = sandbox.view_columns(con)
    assert list(dict.fromkeys(columns["view"])) == ["runs", "config", "metrics", "mi", "gradients",
                                                    "activations", "activation_stats", "problems"]
    assert {"i_xt", "i_yt", "estimator"} <= set(columns[columns["view"] == "mi"]["column"])
