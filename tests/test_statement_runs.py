"""ibstore.statement_runs and its use by the sandbox: a statement whose reads of a Parquet table
are all limited to literal run ids checks and reads only those runs' files (issue 20: the first
`... FROM mi WHERE run_id IN (12 ids)` on 100,000 runs checked every mi file); any other read of
the table, a derived view or `problems` reads every run."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from test_index_lazy import RUNS, corrupt_pages, decoded, root  # noqa: F401 -- fixtures

from ibstore import views
from ibstore.index import scan
from ibstore.sandbox import run_query, view_columns, view_sources
from ibstore.schema import TABLE_SCHEMAS
from ibstore.statement_runs import runs_read


@pytest.mark.parametrize("sql, limited", [
    ("SELECT count(*) FROM mi WHERE run_id IN ('a', 'b')", {"mi": ["a", "b"]}),
    ("SELECT * FROM mi m WHERE m.RUN_ID IN ('a', 'b') AND split = 'train' AND (epoch > 3 OR layer = 1)",
     {"mi": ["a", "b"]}),
    ("SELECT * FROM main.MI WHERE 'c' = run_id", {"mi": ["c"]}),
    ("SELECT * FROM mi WHERE run_id IN ('a', 'b') AND run_id IN ('b', 'c')", {"mi": ["b"]}),
    ("SELECT * FROM mi WHERE run_id = 'a' AND run_id = 'b'", {"mi": []}),
    ("SELECT * FROM mi WHERE run_id = 'a' UNION ALL SELECT * FROM mi WHERE run_id = 'b'", {"mi": ["a", "b"]}),
    ("WITH x AS (SELECT * FROM metrics WHERE run_id = 'a') SELECT * FROM x, (SELECT * FROM mi WHERE run_id = 'z')",
     {"metrics": ["a"], "mi": ["z"]}),
    ("SELECT * FROM runs WHERE run_id = 'a'", {}),                                  # not a Parquet table
    ("SELECT * FROM mi WHERE run_id = 'a' UNION ALL SELECT * FROM mi", {}),          # one read unlimited
    ("SELECT * FROM mi JOIN runs USING (run_id) WHERE run_id = 'a'", {}),            # a join
    ("SELECT * FROM mi WHERE run_id IN (SELECT run_id FROM runs)", {}),
    ("SELECT * FROM mi WHERE run_id = 'a' OR run_id = 'b'", {}),
    ("SELECT * FROM mi WHERE lower(run_id) = 'a'", {}),
    ("SELECT * FROM mi WHERE run_id NOT IN ('a')", {}),
    ("SELECT * FROM mi WHERE run_id IN ('a', NULL)", {}),
    ("SELECT * FROM mi WHERE run_id = 1", {}),
    ("SELECT * FROM mi x WHERE mi.run_id = 'a'", {}),                                # not its qualifier
    ("SELECT * FROM other.mi WHERE run_id = 'a'", {}),
    ("SELECT * FROM temp.mi WHERE run_id = 'a'", {"mi": ["a"]}),
    # temp.mi is the same view: uncounted, it was cut to the other reference's run (252 of 1008 rows)
    ("SELECT (SELECT count(*) FROM mi WHERE run_id = 'a'), (SELECT count(*) FROM temp.mi)", {}),
    ("SELECT count(*) FROM mi t(rid, run_id) WHERE run_id = 'a'", {}),     # run_id names the second column
    ("EXPLAIN SELECT * FROM mi WHERE run_id = 'a'", {}),
    ("SELEC broken", {}),
])
def test_runs_read(sql, limited):
    assert runs_read(sql) == limited


def _rows_of(paths) -> int:
    return sum(pq.ParquetFile(path).metadata.num_rows for path in paths)


def test_a_limited_read_checks_and_hands_over_only_its_runs_files(root, decoded):  # noqa: F811
    results, ids = root
    corrupt_pages(results / "runs" / ids[3] / "mi.parquet")   # a run the statement does not read
    found = scan(results)
    sql = f"SELECT count(*) FROM mi WHERE run_id IN ('{ids[0]}', '{ids[1]}', 'no-such-run')"
    sources = view_sources(found, views.read_by(sql), runs_read(sql))
    table, paths, run_ids = sources["mi"]
    assert table == "mi" and sorted(run_ids) == sorted(ids[:2])
    assert sorted(decoded) == sorted(paths) == sorted(str(results / "runs" / r / "mi.parquet") for r in ids[:2])
    assert found.problems == []        # the damaged file of another run was not looked at

    everything = "SELECT count(*) FROM mi"
    sources = view_sources(found, views.read_by(everything), runs_read(everything))
    assert sorted(sources["mi"][2]) == sorted(ids[:3])         # checked now: the damaged one left out
    assert [problem.run_id for problem in found.problems] == [ids[3]]


def test_a_statement_that_reads_no_table_checks_no_file(root, decoded):  # noqa: F811
    """At 100,000 runs `SELECT 1` was given every view and checked every table file (10+ minutes)."""
    results, ids = root
    corrupt_pages(results / "runs" / ids[3] / "mi.parquet")
    found = scan(results)
    assert view_sources(found, views.read_by("SELECT 1 AS one"), runs_read("SELECT 1 AS one")) == {}
    assert decoded == [] and found.problems == []


@pytest.mark.parametrize("sql, describes", [
    ("SHOW TABLES", True), ("DESCRIBE", True), ("DESCRIBE mi", True), ("SHOW mi", True),
    ("DESCRIBE SELECT * FROM mi WHERE epoch > 3", True),
    ("SUMMARIZE mi", False), ("SELECT * FROM (SHOW TABLES)", False), ("SELECT * FROM mi", False),
    ("SELECT 1", False), ("SELEC broken", False),
])
def test_what_only_describes(sql, describes):
    assert views.describes_only(sql) is describes


def test_describing_the_views_checks_no_file_and_gives_every_column(root, decoded):  # noqa: F811
    """SHOW TABLES, DESCRIBE and the SQL page's column list need the columns only: every table
    file of a 100,000-run root was checked for them (minutes)."""
    results, ids = root
    corrupt_pages(results / "runs" / ids[3] / "mi.parquet")
    found = scan(results)
    sources = view_sources(found, views.read_by("SHOW TABLES"), runs_read("SHOW TABLES"), schema_only=True)
    assert set(sources) == set(views.EVERYDAY_VIEWS)
    assert all(sources[table][1:] == ([], []) for table in TABLE_SCHEMAS)
    columns = view_columns(found)
    for table, schema in TABLE_SCHEMAS.items():
        assert list(columns[columns["view"] == table]["column"]) == schema.names
    assert decoded == [] and found.problems == []


@pytest.mark.parametrize("also", ["problems", "phases"])
def test_problems_or_a_derived_view_reads_every_run(root, decoded, also):  # noqa: F811
    results, ids = root
    found = scan(results)
    sql = f"SELECT * FROM mi, {also} WHERE mi.run_id = '{ids[0]}'"
    assert runs_read(f"SELECT * FROM mi WHERE run_id = '{ids[0]}'") == {"mi": [ids[0]]}
    sources = view_sources(found, views.read_by(sql), {"mi": [ids[0]]})
    assert sorted(sources["mi"][2]) == sorted(ids) and len(decoded) >= RUNS


@pytest.mark.slow
def test_a_limited_statement_counts_what_the_files_hold(root):  # noqa: F811
    results, ids = root
    found = scan(results)
    wanted = ids[1:3]
    count = run_query(found, f"SELECT count(*) AS n FROM mi WHERE run_id IN ('{wanted[0]}', '{wanted[1]}')")
    assert count["n"].tolist() == [_rows_of(results / "runs" / r / "mi.parquet" for r in wanted)] and count["n"][0] > 0


def test_verdicts_are_saved_at_once_when_checking_again_would_cost_more(root, monkeypatch):  # noqa: F811
    from test_index_lazy import new_process

    from ibstore import index_pages

    assert index_pages.worth_saving(1, True, 100_000)                  # damage is saved at once
    assert not index_pages.worth_saving(12, False, 100_000) and index_pages.worth_saving(6_250, False, 100_000)
    results, ids = root
    monkeypatch.setattr(index_pages, "RUNS_PER_FILE_WORTH_A_SAVE", 0.5)   # 4 runs: from 8 files on
    found = scan(results)
    found.check(["mi"], ids[:2])
    new_process()
    assert not any(scan(results).file_table["checked"].to_pylist())    # 2 verdicts: not worth a save
    found = scan(results)
    found.check(["mi", "metrics"])
    new_process()
    checked = scan(results).file_table.filter(scan(results).file_table["checked"])
    assert sorted(checked["table"].to_pylist()) == ["metrics"] * RUNS + ["mi"] * RUNS
