"""The SQL sandbox: reads work, a hostile corpus is refused without a trace, limits hold.

Every hostile statement goes through `trainer sql` (cli.main in-process: exit status and
stderr as a user sees them); the results root is hashed file by file before and after, a
folder outside the root and the working directory must stay empty, and a second session
(ResultStore) gives the same answers afterwards. The first line of defence is also tested
alone: the same statements executed on a sandbox connection with the check bypassed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from conftest import BIASES, EPOCHS, REPO
from explorer.results import ResultStore
from ibstore import sandbox, statement_check
from ibstore.sandbox import Limits, SqlError, check_read_only, run_query
from ibstore.index import scan
from ibstore.views import VIEWS
from trainer import cli

# {root}: the results root, {out}: a folder outside it that must stay empty.
HOSTILE = [
    # COPY in every position
    "COPY (SELECT * FROM runs) TO '{root}/runs/stolen.csv'",
    "COPY mi TO '{out}/mi.parquet' (FORMAT parquet)",
    "COPY mi FROM '{root}/x.csv'",
    "WITH t AS (COPY (SELECT 1 AS a, 2 AS b) TO '{root}/runs' (FORMAT parquet, PARTITION_BY (a), OVERWRITE)) SELECT 1",
    "WITH t AS (COPY (SELECT 1 AS a) TO '{out}/p' (FORMAT parquet, PARTITION_BY (a), OVERWRITE_OR_IGNORE)) SELECT 1",
    "SELECT * FROM (WITH t AS (COPY (SELECT 1) TO '{out}/sub.csv') SELECT 1)",
    "SELECT (WITH t AS (COPY (SELECT 1) TO '{out}/scalar.csv') SELECT 1) AS x",
    "PIVOT (WITH t AS (COPY (SELECT 1 AS a) TO '{out}/pivot.csv') SELECT 'x' AS b, 1 AS a) ON b USING sum(a)",
    # writes in CTEs and subqueries
    "WITH t AS (UPDATE mi SET i_xt = 0, i_yt = 0 RETURNING 1) SELECT count(*) FROM t",
    "WITH t AS (DELETE FROM runs RETURNING 1) SELECT 1",
    "WITH t AS (INSERT INTO problems VALUES ('a', 'b', 'c') RETURNING 1) SELECT 1",
    "SELECT * FROM runs WHERE run_id IN (WITH d AS (DELETE FROM metrics RETURNING run_id) SELECT run_id FROM d)",
    "SELECT 1 UNION ALL (WITH t AS (UPDATE runs SET status = 'x' RETURNING 1) SELECT 1)",
    # plain writes and catalog changes
    "INSERT INTO problems VALUES ('a', 'b', 'c')",
    "UPDATE runs SET status = 'failed'",
    "DELETE FROM mi",
    "MERGE INTO runs USING (SELECT 1 AS x) s ON false WHEN NOT MATCHED THEN INSERT DEFAULT VALUES",
    "CREATE TABLE t AS SELECT 1",
    "CREATE OR REPLACE VIEW mi AS SELECT 0 AS i_xt",
    "CREATE MACRO m() AS 1",
    "DROP VIEW mi",
    "EXPORT DATABASE '{out}/dump'",
    "IMPORT DATABASE '{out}'",
    # EXPLAIN ANALYZE runs what it explains
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}/e.csv'",
    "EXPLAIN ANALYZE UPDATE runs SET status = 'x'",
    "EXPLAIN ANALYZE WITH t AS (DELETE FROM runs RETURNING 1) SELECT 1",
    # several statements, comments
    "SELECT 1; COPY (SELECT 1) TO '{out}/m.csv'",
    "SELECT 1 /* harmless */; DROP VIEW runs -- gone",
    "/* SELECT */ COPY (SELECT 1) TO '{out}/c.csv'",
    "-- a read\nCOPY runs TO '{out}/d.csv'",
    "SELECT E'\\''; COPY (SELECT 1) TO '{out}/quote.csv'",
    "SELECT $$ */ $$; COPY (SELECT 1) TO '{out}/dollar.csv'",
    # the engine: attach, extensions, settings, pragmas, secrets, transactions
    "ATTACH '{out}/evil.db' AS evil",
    "ATTACH ':memory:' AS scratch",
    "INSTALL httpfs",
    "LOAD httpfs",
    "FORCE INSTALL httpfs FROM 'http://127.0.0.1:9/'",
    "SET enable_external_access = true",
    "SET allowed_directories = ['/']",
    "RESET lock_configuration",
    "PRAGMA enable_profiling",
    "PRAGMA threads = 64",
    "CALL pragma_version()",
    "CREATE SECRET s (TYPE s3, KEY_ID 'x', SECRET 'y')",
    "BEGIN TRANSACTION",
    "PREPARE p AS SELECT 1",
    "VACUUM",
    "CHECKPOINT",
    "USE memory",
    # files by any reader
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM read_parquet('{root}/runs/*/mi.parquet')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM '{root}/runs/*/metrics.parquet'",
    # SQL text the check cannot see, the process, logs
    "SELECT * FROM query('COPY (SELECT 1) TO ''{out}/q.csv''')",
    "SELECT * FROM \"query\"('SELECT 1')",
    "SELECT * FROM query_table('mi')",
    "FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
    "SELECT * FROM arrow_scan(1, 2, 3)",
    "FROM enable_logging()",
    "SELECT write_log('x')",
]


def tree_hash(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(path.rglob("*"))}


ANSWERS = ("SELECT (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FILTER (status = 'completed') FROM runs) AS done, "
           "(SELECT round(sum(i_xt), 6) FROM mi) AS i_xt, (SELECT count(*) FROM metrics) AS metrics, "
           "(SELECT count(*) FROM problems) AS problems")


@pytest.fixture(scope="module")
def corpus_session(cohort_root, tmp_path_factory):
    """A store opened before the corpus runs (another visitor), and its answers."""
    store = ResultStore(cohort_root)
    return store, store.sql(ANSWERS).to_dict("records")


def test_the_hostile_corpus_is_large_enough():
    assert len(HOSTILE) >= 40 and len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.slow
@pytest.mark.parametrize("statement", HOSTILE)
def test_hostile_sql_is_refused_and_leaves_no_trace(statement, cohort_root, tmp_path, monkeypatch, capsys,
                                                    corpus_session):
    out, cwd = tmp_path / "outside", tmp_path / "cwd"
    out.mkdir(), cwd.mkdir()
    monkeypatch.chdir(cwd)   # DuckDB's default temp directory is ./.tmp
    before = tree_hash(cohort_root)
    query = statement.format(root=cohort_root, out=out)
    status = cli.main(["sql", "--results", str(cohort_root), "--timeout", "10", query])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    store, answers = corpus_session
    with pytest.raises(SqlError):   # the explorer's path (SQL page, notebooks)
        store.sql(query, Limits(timeout_s=10))
    assert tree_hash(cohort_root) == before
    assert list(out.iterdir()) == [] and list(cwd.iterdir()) == []
    assert store.sql(ANSWERS).to_dict("records") == answers                # the visitor who was there
    assert ResultStore(cohort_root).sql(ANSWERS).to_dict("records") == answers   # and a new one


@pytest.mark.parametrize("statement", [
    "COPY (SELECT * FROM runs) TO '{root}/runs/stolen.csv'",
    "WITH t AS (COPY (SELECT 1 AS a) TO '{root}/runs' (FORMAT parquet, PARTITION_BY (a), OVERWRITE)) SELECT 1",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM '{root}/runs/*/metrics.parquet'",
    "SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')",
    "EXPORT DATABASE '{out}/dump'",
    "ATTACH '{out}/evil.db'",
    "INSTALL httpfs",
    "SET enable_external_access = true",
    "SET temp_directory = '{out}'",
    "WITH t AS (UPDATE mi SET i_xt = 0 RETURNING 1) SELECT count(*) FROM t",
    "DELETE FROM runs",
])
def test_the_connection_itself_can_touch_no_file_and_change_no_view(statement, cohort_root, tmp_path):
    """The check bypassed: the sandbox connection alone refuses (the first line of defence)."""
    out = tmp_path / "outside"
    out.mkdir()
    before = tree_hash(cohort_root)
    con = sandbox.connect(cohort_root)
    with pytest.raises(duckdb.Error):
        con.execute(statement.format(root=cohort_root, out=out)).fetchall()
    assert tree_hash(cohort_root) == before and list(out.iterdir()) == []


@pytest.mark.slow
def test_what_one_statement_creates_no_other_sees(cohort_root):
    """Bypassing the check, a statement can change its own connection's catalog; the next
    statement gets a new connection and the original views."""
    first = sandbox.connect(cohort_root)
    first.execute("CREATE TABLE leak AS SELECT 'fake' AS run_id")
    assert first.execute("SELECT run_id FROM leak").fetchall() == [("fake",)]
    with pytest.raises(SqlError, match="leak does not exist"):
        run_query(cohort_root, "SELECT run_id FROM leak")
    assert len(run_query(cohort_root, "SELECT run_id FROM runs")) == 2 * len(BIASES)


@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM runs",
    "with r as (select * from runs) select run_id from r",
    "FROM mi LIMIT 3",
    "VALUES (1, 'a')",
    "DESCRIBE mi",
    "SHOW TABLES",
    "SUMMARIZE metrics",
    "EXPLAIN SELECT * FROM mi",
    "EXPLAIN ANALYZE SELECT * FROM gradients",
    "EXPLAIN (FORMAT json) SELECT * FROM mi",
    "EXPLAIN ANALYZE (SELECT count(*) FROM metrics)",
    "PIVOT metrics ON split USING avg(accuracy) GROUP BY run_id",
    "PIVOT metrics ON split IN ('train', 'test') USING max(epoch) GROUP BY run_id",
    "SELECT * FROM (PIVOT metrics ON split USING avg(accuracy) GROUP BY run_id)",
    "UNPIVOT (SELECT run_id, final_train_accuracy, final_test_accuracy FROM runs) "
    "ON final_train_accuracy, final_test_accuracy INTO NAME which VALUE accuracy",
    "SELECT run_id, epoch, avg(accuracy) OVER (PARTITION BY run_id ORDER BY epoch ROWS 4 PRECEDING) FROM metrics",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r",
    "SELECT 'COPY (SELECT 1) TO ''x''' AS text_about_copy, 1 AS \"update\" -- DELETE in a comment",
    "select 1;",
])
@pytest.mark.slow
def test_reads_are_allowed(cohort_root, sql):
    assert len(run_query(cohort_root, sql)) > 0


@pytest.mark.slow
def test_views_hold_the_runs(cohort_root):
    runs = run_query(cohort_root, "SELECT run_id, status, epochs_done, epochs_total, seed FROM runs ORDER BY run_id")
    assert len(runs) == 2 * len(BIASES)
    assert set(runs["status"]) == {"completed"}
    assert (runs["epochs_done"] == EPOCHS).all()
    biases = run_query(cohort_root, "SELECT DISTINCT value FROM config WHERE key = 'initial_bias' ORDER BY 1")
    assert sorted(json.loads(v) for v in biases["value"]) == sorted(BIASES)
    layers = run_query(cohort_root, "SELECT DISTINCT layer, layer_name FROM mi ORDER BY layer")
    assert list(layers["layer_name"]) == ["dense_0", "dense_1", "dense_2", "dense_3", "dense_4", "output"]


def test_check_messages():
    with pytest.raises(SqlError, match="2 statements"):
        check_read_only("SELECT 1; SELECT 2")
    with pytest.raises(SqlError, match="empty"):
        check_read_only("  -- nothing\n")
    with pytest.raises(SqlError, match=r"^refused: COPY is not allowed anywhere"):
        check_read_only("WITH t AS (COPY (SELECT 1) TO 'x.csv') SELECT 1")
    with pytest.raises(SqlError, match=r"^refused: read_text\(\) reads files"):
        check_read_only("SELECT * FROM read_text('/etc/passwd')")
    with pytest.raises(SqlError, match=r"^refused: query\(\) runs SQL text"):
        check_read_only("FROM main.QUERY('SELECT 1')")
    with pytest.raises(SqlError, match=r"^refused: UPDATE is not allowed anywhere"):
        check_read_only("EXPLAIN ANALYZE UPDATE runs SET status = 'x'")
    with pytest.raises(SqlError, match="syntax error"):
        check_read_only("SELEC 1")
    with pytest.raises(SqlError, match="not valid UTF-8"):
        check_read_only("SELECT '\udcff'")   # how Python passes a non-UTF-8 byte of argv


def test_parse_tree_check_sees_writes_the_tokens_cannot_name(monkeypatch):
    """With the keyword list emptied, the statement types and DuckDB's own parse tree still
    find the writes."""
    monkeypatch.setattr(statement_check, "WRITE_KEYWORDS", frozenset())
    with pytest.raises(SqlError, match=r"^refused: EXPLAIN UPDATE statements"):
        check_read_only("EXPLAIN ANALYZE UPDATE runs SET status = 'x'")
    with pytest.raises(SqlError, match=r"^refused: COPY statements"):
        check_read_only("COPY runs TO 'x.csv'")
    with pytest.raises(SqlError, match="refused: DELETE inside the query"):
        check_read_only("WITH t AS (DELETE FROM runs RETURNING 1) SELECT 1")
    with pytest.raises(SqlError, match="refused: COPY inside the query"):
        check_read_only("SELECT * FROM (WITH t AS (COPY (SELECT 1) TO 'x') SELECT 1)")


@pytest.mark.slow
def test_errors_are_one_line_with_exit_2(cohort_root, capsys):
    for query in ("SELEC 1", "SELECT * FROM nope", "SELECT nope FROM runs", "SELECT 1 +", ""):
        assert cli.main(["sql", "--results", str(cohort_root), query]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err


@pytest.mark.slow
def test_a_table_that_does_not_exist_is_answered_with_the_views(cohort_root, capsys):
    """DuckDB suggests the closest catalog entry: for a name like none of the lab's views, one of its
    own ('Did you mean "duckdb_views"?'). Its suggestion stays where it is a view; the views follow."""
    views = "The views: " + ", ".join(VIEWS) + "."
    for query, said in (("SELECT * FROM nosuchview", 'nosuchview does not exist! The views'),
                        ("SELECT * FROM phase", 'phase does not exist! Did you mean "phases"? The views')):
        assert cli.main(["sql", "--results", str(cohort_root), query]) == 2
        err = capsys.readouterr().err
        assert said in err and err.rstrip().endswith(views) and "duckdb_" not in err, err


def test_a_statement_too_deep_to_check_is_refused_in_one_line(cohort_root, capsys):
    query = "SELECT 1 AS x"
    for _ in range(900):
        query = f"SELECT * FROM ({query})"
    assert cli.main(["sql", "--results", str(cohort_root), query]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refused: the statement is nested too deeply to be checked") and err.count("\n") == 1


def test_a_statement_too_large_to_check_is_refused_before_it_is_parsed(cohort_root, capsys, monkeypatch):
    # 400,000 characters of nested lists took the checking process 24 s and 1.8 GB, outside the query's
    # limits, and then said "query stopped after 1 s (--timeout)"
    parsed = []
    monkeypatch.setattr(statement_check, "parse_tree", lambda query: parsed.append(query))
    query = "SELECT [" + ",".join(["[1]"] * 100_000) + "]"
    assert cli.main(["sql", "--results", str(cohort_root), "--timeout", "1", query]) == 2
    err = capsys.readouterr().err
    assert err == ("error: refused: the statement has 400,002 tokens; at most 20,000 are checked "
                   "(more cost the server seconds and hundreds of MB to check)\n")
    assert parsed == []
    monkeypatch.undo()
    in_list = "SELECT count(*) AS n FROM runs WHERE run_id IN (" + ", ".join(f"'run-{i:06d}-s0'" for i in range(2000)) + ")"
    assert statement_check.check_read_only(in_list) == in_list
    literal = "SELECT '" + "x" * 3_000_000 + "' AS s"             # one token, however long
    assert statement_check.check_read_only(literal) == literal


@pytest.mark.parametrize("deep", ["[" * 900 + "1" + "]" * 900, "{'a': " * 500 + "1" + "}" * 500,
                                  "CASE WHEN true THEN " * 400 + "1" + " END" * 400])
def test_deep_lists_structs_and_cases_are_refused_in_one_line(cohort_root, capsys, deep):
    assert cli.main(["sql", "--results", str(cohort_root), f"SELECT {deep}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refused: the statement is nested too deeply") and err.count("\n") == 1


@pytest.mark.slow
def test_a_statement_within_the_depth_limit_runs(cohort_root, capsys):
    query = "SELECT 1 AS x"
    for _ in range(statement_check.MAX_TREE_DEPTH // 4):
        query = f"SELECT * FROM ({query})"
    assert cli.main(["sql", "--results", str(cohort_root), query]) == 0
    assert capsys.readouterr().out.split()[:3] == ["x", "-", "1"]


@pytest.mark.slow
def test_table_output_caps_rows_and_says_how_many_were_left_out(cohort_root, capsys):
    assert cli.main(["sql", "--results", str(cohort_root), "--max-rows", "5",
                     "SELECT epoch, split, accuracy FROM metrics ORDER BY run_id, split, epoch"]) == 0
    lines = capsys.readouterr().out.splitlines()
    total = 2 * len(BIASES) * 2 * (EPOCHS + 1)
    assert lines[0].split() == ["epoch", "split", "accuracy"] and set(lines[1]) <= {"-", " "}
    assert [line.split()[:2] for line in lines[2:7]] == [[str(e), "test"] for e in range(5)]
    assert lines[7] == (f"({total:,} rows; the first 5 shown, {total - 5:,} left out: raise --max-rows, "
                        f"or --format csv|json|parquet --output FILE for every row)")
    # aligned: every value ends where its header ends (numbers right-aligned)
    assert len({len(line) for line in lines[:2]}) == 1


def test_first_rows_keep_at_most_the_byte_bound():
    # a few long strings filled the SQL page's process with gigabytes and the browser's tab crashed
    wide = pa.table({"s": ["x" * 100_000] * 2000})
    batches = wide.to_batches(max_chunksize=500)
    table, total = sandbox.first_rows(iter(batches), wide.schema, 10_000, max_bytes=10**6)
    assert total == 2000 and 8 <= table.num_rows <= 10 and table.nbytes <= 10**6
    huge = pa.table({"s": ["x" * 2 * 10**6]})
    table, total = sandbox.first_rows(iter(huge.to_batches()), huge.schema, 10_000, max_bytes=10**6)
    assert (table.num_rows, total) == (0, 1)
    narrow = pa.table({"i": list(range(100))})
    table, total = sandbox.first_rows(iter(narrow.to_batches(max_chunksize=30)), narrow.schema, 45)
    assert table.column("i").to_pylist() == list(range(45)) and total == 100


@pytest.mark.slow
def test_empty_result_still_has_headers(cohort_root, capsys):
    assert cli.main(["sql", "--results", str(cohort_root), "SELECT run_id, final_test_accuracy FROM runs WHERE false"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["run_id  final_test_accuracy", "------  -------------------", "(0 rows)"]
    assert "Empty DataFrame" not in out


@pytest.mark.slow
def test_text_from_results_cannot_print_fake_rows(cohort_root, capsys):
    assert cli.main(["sql", "--results", str(cohort_root), "SELECT 'a' || chr(10) || 'fake row' AS name"]) == 0
    assert capsys.readouterr().out.splitlines()[2] == "a\\nfake row"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_streams_every_row_atomically(fmt, cohort_root, tmp_path, capsys):
    rows = 300_000   # several Arrow batches
    target = tmp_path / f"out.{fmt}"
    assert cli.main(["sql", "--results", str(cohort_root), "--output", str(target),
                     f"SELECT range AS i, range * 0.5 AS x, 'r' || range AS s FROM range({rows})"]) == 0
    assert f"{rows:,} rows written" in capsys.readouterr().err
    if fmt == "csv":
        table = pcsv.read_csv(target)
    elif fmt == "parquet":
        table = pq.read_table(target)
    else:
        records = json.loads(target.read_text())
        assert len(records) == rows and records[-1] == {"i": rows - 1, "x": (rows - 1) / 2, "s": f"r{rows - 1}"}
        return
    assert table.num_rows == rows and table.column("i").to_pylist()[-1] == rows - 1
    assert [p.name for p in tmp_path.iterdir()] == [target.name]   # no temporary file left


def test_output_inside_the_results_root_is_refused(cohort_root, tmp_path, capsys):
    before = tree_hash(cohort_root)
    for target in (cohort_root / "x.csv", cohort_root / "runs" / "y.parquet"):
        assert cli.main(["sql", "--results", str(cohort_root), "--output", str(target), "FROM runs"]) == 2
        assert "inside the results root" in capsys.readouterr().err
    link = tmp_path / "link"
    link.symlink_to(cohort_root)
    assert cli.main(["sql", "--results", str(cohort_root), "--output", str(link / "z.csv"), "FROM runs"]) == 2
    assert "inside the results root" in capsys.readouterr().err
    assert cli.main(["sql", "--results", str(cohort_root), "--format", "parquet", "FROM runs"]) == 2
    assert "needs --output" in capsys.readouterr().err
    assert cli.main(["sql", "--results", str(cohort_root), "--output", str(tmp_path / "x.txt"), "FROM runs"]) == 2
    assert "--format csv, json or parquet" in capsys.readouterr().err
    assert tree_hash(cohort_root) == before


def test_output_that_is_not_a_regular_file_is_refused_and_left_as_it_is(cohort_root, tmp_path, capsys):
    # the atomic rename replaced a link, a pipe or a device (as root, /dev/null) by a regular file
    target = tmp_path / "real.csv"
    target.write_text("mine\n")
    link, pipe = tmp_path / "link.csv", tmp_path / "pipe.csv"
    link.symlink_to(target)
    os.mkfifo(pipe)
    for output in (link, pipe, Path("/dev/null")):
        assert cli.main(["sql", "--results", str(cohort_root), "--format", "csv", "--output", str(output),
                         "SELECT 1 AS a"]) == 2
        assert "is not a regular file" in capsys.readouterr().err
    assert link.is_symlink() and stat.S_ISFIFO(pipe.lstat().st_mode) and Path("/dev/null").is_char_device()
    assert target.read_text() == "mine\n"


@pytest.mark.slow
def test_json_holds_every_value_as_duckdb_gave_it(cohort_root, capsys):
    query = ("SELECT 0.9242979242979243::DOUBLE AS x, 'inf'::DOUBLE AS inf, 'nan'::DOUBLE AS nan, "
             "TIMESTAMP '2026-01-01 10:00:00.123456' AS t, 1.25::DECIMAL(5, 2) AS d, [0.1, 1e-300] AS l")
    assert cli.main(["sql", "--results", str(cohort_root), "--format", "json", query]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"x": 0.9242979242979243, "inf": None, "nan": None, "t": "2026-01-01T10:00:00.123456", "d": 1.25,
         "l": [0.1, 1e-300]}]


@pytest.mark.slow
def test_nan_at_any_depth_is_null_and_integers_keep_every_digit_in_json(cohort_root, capsys):
    # NaN inside a list or struct failed the whole JSON after its "[" was printed; a HUGEINT sum was a float
    query = ("SELECT [1.5::FLOAT, 'nan'::FLOAT] AS f, {'loss': 'nan'::DOUBLE, 'ok': 2.0} AS s, "
             "sum(9007199254740993) AS big, 1.50::DECIMAL(5, 2) AS d FROM range(168)")
    assert cli.main(["sql", "--results", str(cohort_root), "--format", "json", query]) == 0
    out = capsys.readouterr().out
    assert '"big": 1513209474796486824' in out            # 168 * 9007199254740993, every digit
    assert json.loads(out) == [{"f": [1.5, None], "s": {"loss": None, "ok": 2.0}, "big": 168 * 9007199254740993,
                                "d": 1.5}]
    assert cli.main(["sql", "--results", str(cohort_root), "--format", "json", "SELECT 1 AS x WHERE false"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.slow
def test_types_arrow_does_not_hold_come_as_duckdbs_own_text(cohort_root, capsys):
    # UHUGEINT above 2^127 printed as -1; BIT and BIGNUM as bytes of DuckDB's encoding; TIMETZ without its
    # offset; an INTERVAL as [months, days, ns]; a UNION failed CSV after its rows and the SQL page
    query = ("SELECT 340282366920938463463374607431768211455::UHUGEINT AS h, '101'::BIT AS b, "
             "(2::BIGNUM ^ 100)::BIGNUM AS v, '12:00:00+05'::TIMETZ AS t, union_value(k := 'x') AS u, "
             "[1::UHUGEINT] AS l, INTERVAL 1 DAY AS i, 1 AS a, 2 AS a")
    expected = duckdb.connect().execute(f"SELECT COLUMNS(*)::VARCHAR FROM ({query})").fetchall()[0]
    assert cli.main(["sql", "--results", str(cohort_root), "--format", "csv", query]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(",") == ["h", "b", "v", "t", "u", "l", "i", "a", "a"]
    assert next(csv.reader([lines[1]])) == [*expected[:7], "1", "2"]
    assert expected[:5] == ("340282366920938463463374607431768211455", "101", str(2 ** 100), "12:00:00+05", "x")
    # a struct whose field is named like such a type stays a struct
    assert cli.main(["sql", "--results", str(cohort_root), "--format", "json",
                     "SELECT {'BIT': 1, 'union': [2.5]} AS s, map {'a': 1::BIT} AS m"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"s": {"BIT": 1, "union": [2.5]}, "m": "{a=00000000000000000000000000000001}"}]
    assert cli.main(["sql", "--results", str(cohort_root), "--format", "csv",
                     "SELECT union_value(k := 'x') AS u FROM range(0)"]) == 0
    assert capsys.readouterr().out == "u\n"


@pytest.mark.parametrize("fmt, query, words", [
    ("json", "SELECT 1 AS a, 2 AS a", "named twice: a (name them apart with AS)"),
    ("table", "SELECT '12000-01-01'::DATE AS d", "column d: a date32[day] value outside years 1 to 9999"),
    ("table", "SELECT ['12000-01-01'::DATE] AS d", "cannot be shown or written"),
])
@pytest.mark.slow
def test_a_result_the_format_cannot_hold_is_one_line_and_exit_2(cohort_root, capsys, fmt, query, words):
    assert cli.main(["sql", "--results", str(cohort_root), "--format", fmt, query]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_a_root_without_runs_is_said_to_have_none(tmp_path, capsys):
    # a mistyped --results answered every query with empty views and said nothing
    assert cli.main(["sql", "--results", str(tmp_path / "typo"), "SELECT count(*) AS n FROM runs"]) == 0
    out, err = capsys.readouterr()
    assert out.split()[:3] == ["n", "-", "0"]
    assert f"{tmp_path / 'typo'} (--results; no such folder) has no runs yet: every view is empty" in err
    (tmp_path / "made").mkdir()     # a folder made for runs, none trained yet: no "no such folder"
    assert cli.main(["sql", "--results", str(tmp_path / "made"), "SELECT count(*) AS n FROM runs"]) == 0
    assert f"{tmp_path / 'made'} (--results) has no runs yet" in capsys.readouterr().err
    # and `trainer ls` says the same of the typo, in its header
    assert cli.main(["ls", "--results", str(tmp_path / "typo")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"results root: {tmp_path / 'typo'} (--results; no such folder)"


def test_a_time_limit_beyond_a_week_is_refused(cohort_root, capsys):
    with pytest.raises(SystemExit) as exit_status:
        cli.main(["sql", "--results", str(cohort_root), "--timeout", "1e10", "SELECT 1"])
    assert exit_status.value.code == 2 and "seconds from 0 to 604800" in capsys.readouterr().err


@pytest.mark.slow
def test_a_failed_export_leaves_no_file(cohort_root, tmp_path, capsys):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    assert cli.main(["sql", "--results", str(cohort_root), "--output", str(target), "--timeout", "1",
                     "SELECT a.range FROM range(100000000) a, range(1000) b"]) == 2
    assert "query stopped after 1 s (--timeout)" in capsys.readouterr().err
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.parametrize("query", [
    "SELECT count(*) FROM range(100000) a, range(100000) b WHERE a.range + b.range = -1",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
])
@pytest.mark.slow
def test_time_limit_stops_the_query(query, cohort_root, capsys):
    assert cli.main(["sql", "--results", str(cohort_root), "--timeout", "1", query]) == 2
    assert capsys.readouterr().err == "error: query stopped after 1 s (--timeout)\n"
    assert query_workers() == []   # stopped, not abandoned: its worker is gone


@pytest.mark.slow
def test_a_timer_stops_the_query_whatever_the_caller_does(cohort_root):
    """The explorer's case: the visitor's thread just waits for the worker; the timer kills it."""
    statement = sandbox.Statement(scan(cohort_root), "SELECT count(*) FROM range(100000) a, range(100000) b "
                                  "WHERE a.range + b.range = -1", Limits(timeout_s=0.5))
    with pytest.raises(sandbox.QueryStopped, match="query stopped after 0.5 s"):
        statement.run(lambda batches, schema: sandbox.first_rows(batches, schema, 10))
    assert query_workers() == []


def query_workers(parent: int | None = None) -> list[int]:
    """Live query workers: children of the fork server (a child of `parent`, default this process)."""
    servers = children(parent or os.getpid())
    return [pid for server in servers for pid in children(server) if process_alive(pid)]


def children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(status.parent.name))
    return found


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_end_a_long_query_without_traceback(sig, status, cohort_root):
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer", "sql", "--results", str(cohort_root), "--timeout", "0",
         "SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = -1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    while not query_workers(process.pid):   # the query runs: its worker exists
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    workers = query_workers(process.pid)
    process.send_signal(sig)
    out, err = process.communicate(timeout=30)
    assert process.returncode == status
    assert "Traceback" not in err and err.startswith("interrupted (")
    assert not any(process_alive(pid) for pid in workers)


def test_memory_and_thread_limits_are_set_and_locked(cohort_root):
    con = sandbox.connect(cohort_root, limits=Limits(memory_bytes=400 * 2**20, threads=1))
    settings = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                "('threads', 'memory_limit', 'enable_external_access', 'lock_configuration', "
                                "'temp_directory', 'allowed_directories', 'python_enable_replacements')").fetchall())
    assert settings["threads"] == "1" and settings["memory_limit"] == "240.0 MiB"   # DUCKDB_SHARE of 400 MiB
    assert settings["enable_external_access"] == "false" and settings["lock_configuration"] == "true"
    assert settings["temp_directory"] == "" and settings["allowed_directories"] == "[]"
    assert settings["python_enable_replacements"] == "false"
    with pytest.raises(duckdb.OutOfMemoryException):
        con.execute("SELECT list(range) FROM range(100000000)").fetchall()


def test_view_columns_lists_every_view(cohort_root):
    columns = sandbox.view_columns(scan(cohort_root))
    assert list(dict.fromkeys(columns["view"])) == ["runs", "config", "metrics", "mi", "gradients",
                                                    "activations", "activation_stats", "problems",
                                                    "phases", "phase_stats"]
    assert {"i_xt", "i_yt", "estimator"} <= set(columns[columns["view"] == "mi"]["column"])


@pytest.mark.slow
def test_a_shared_sql_link_cannot_change_the_results(monkeypatch, cohort_root, corpus_session):
    """Opening /sql?q=... runs the query: the issue's two links, refused, leave the root and
    every other visitor's answers as they were."""
    from streamlit.testing.v1 import AppTest

    before = tree_hash(cohort_root)
    monkeypatch.setenv("IB_RESULTS", str(cohort_root))
    for query in (f"WITH t AS (COPY (SELECT 1 AS a, 2 AS b) TO '{cohort_root}/runs' "
                  "(FORMAT parquet, PARTITION_BY (a), OVERWRITE)) SELECT 1",
                  "WITH t AS (UPDATE mi SET i_xt=0, i_yt=0 RETURNING 1) SELECT count(*) FROM t"):
        at = AppTest.from_file(str(REPO / "explorer" / "app.py"), default_timeout=60)
        at.query_params["q"] = query
        at.run()
        at.switch_page("app_pages/sql.py").run()
        assert not at.exception and at.text_area(key="q").value == query
        assert "refused" in at.error[0].value
    assert tree_hash(cohort_root) == before
    store, answers = corpus_session
    assert store.sql(ANSWERS).to_dict("records") == answers


@pytest.mark.slow
def test_settings_and_catalogs_show_nothing_of_the_host(cohort_root):
    home, cwd = str(Path.home()), os.getcwd()
    for query in ("SELECT name, value FROM duckdb_settings()", "SELECT * FROM duckdb_databases()",
                  "SELECT * FROM duckdb_memory()", "SELECT * FROM pragma_database_size()"):
        text = run_query(cohort_root, query).to_csv()
        assert home not in text and cwd not in text, query
    for query in ("SELECT * FROM duckdb_extensions()", "SELECT * FROM duckdb_secrets()"):
        with pytest.raises(SqlError) as refused:
            run_query(cohort_root, query)
        assert home not in str(refused.value) and cwd not in str(refused.value)


@pytest.mark.parametrize("query", ["SELECT list_transform([1, 2, 3], x -> x * 2) AS doubled",
                                   "SELECT list_transform([1, 2, 3], lambda x: x * 2) AS doubled"])
@pytest.mark.slow
def test_lambdas_work_in_both_syntaxes(cohort_root, query):
    assert run_query(cohort_root, query)["doubled"][0].tolist() == [2, 4, 6]
