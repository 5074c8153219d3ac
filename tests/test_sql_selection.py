"""The SQL page's `selected` view, run through the sandbox on a small cohort."""

import pytest
from conftest import BIASES
from explorer.results import ResultStore
from explorer.sql_selection import names_selected, with_selected
from ibstore import sandbox


@pytest.mark.slow
def test_selected_holds_exactly_the_selection(cohort_root):
    store = ResultStore(cohort_root)
    ids = list(store.runs()["run_id"])
    chosen = ids[:3]
    got = sandbox.run_query(store.snapshot(), with_selected("SELECT run_id FROM selected ORDER BY 1", chosen))
    assert list(got["run_id"]) == sorted(chosen)
    # joined to a query's own WITH, and a table restricted to it
    query = ("WITH last AS (SELECT run_id, max(epoch) AS e FROM metrics GROUP BY 1) "
             "SELECT count(*) AS n FROM last JOIN selected USING (run_id)")
    assert sandbox.run_query(store.snapshot(), with_selected(query, chosen))["n"][0] == 3
    assert sandbox.run_query(store.snapshot(), with_selected("SELECT count(*) AS n FROM selected", []))["n"][0] == 0
    assert len(ids) == 2 * len(BIASES)
    # statements DuckDB refuses a CTE in front of, and a leading comment (once "syntax error at WITH")
    assert "run_id" in list(sandbox.run_query(store.snapshot(), with_selected("DESCRIBE selected", chosen))["column_name"])
    assert "run_id" in list(sandbox.run_query(store.snapshot(), with_selected("SHOW selected", chosen))["column_name"])
    assert len(sandbox.run_query(store.snapshot(), with_selected("summarize selected;", chosen))) > 5
    assert len(sandbox.run_query(store.snapshot(), with_selected("EXPLAIN SELECT * FROM selected", chosen))) == 1
    got = sandbox.run_query(store.snapshot(), with_selected("-- mine\nWITH t AS (SELECT 1) SELECT count(*) AS n "
                                                            "FROM selected, t", chosen))
    assert got["n"][0] == 3
    # an error's line number is the visitor's
    with pytest.raises(sandbox.SqlError, match="line 2"):
        sandbox.run_query(store.snapshot(), with_selected("SELECT *\nFROM selected WHERE (", chosen))


@pytest.mark.slow
def test_a_quote_in_a_run_id_stays_inside_its_literal(cohort_root):
    store = ResultStore(cohort_root)
    evil = "x') OR true OR run_id IN ('"
    got = sandbox.run_query(store.snapshot(), with_selected("SELECT count(*) AS n FROM selected", [evil]))
    assert got["n"][0] == 0
    assert names_selected("select * from Selected") and not names_selected("SELECT selected_at FROM runs")


@pytest.mark.slow
def test_a_selection_of_thousands_of_runs_is_one_short_literal(cohort_root):
    # 20,000 ids as literals would be 40,000 tokens, over the statement check's bound; in one literal, 30
    import duckdb

    from ibstore import statement_check
    store = ResultStore(cohort_root)
    ids = list(store.runs()["run_id"])
    chosen = ids[:2] + [f"relu-bias-2313c014-s{i}" for i in range(20_000)]
    query = with_selected("SELECT count(*) AS n FROM selected", chosen)
    assert len(duckdb.tokenize(query)) < 40 < statement_check.MAX_STATEMENT_TOKENS
    assert sandbox.run_query(store.snapshot(), query)["n"][0] == 2
