"""Which runs a statement's reads of a Parquet table are limited to, from its parse tree, so that
only those runs' files are checked and handed to the query (a first `SELECT ... FROM mi WHERE
run_id IN (12 ids)` on 100,000 runs checked the pages of every mi file: minutes of CPU;
bench/RESULTS.md, issue 20).

A read of table T is limited when it is the whole FROM of a SELECT whose WHERE is, or is an AND
with, `run_id IN ('a', ...)` or `run_id = 'a'` (string literals; the column unqualified or named
by T's alias, and T's columns not renamed, as `FROM mi t(a, run_id)` would): no row of another run
can then come from it. Every reference to a table named T counts, whatever its schema or catalog
(`temp.mi` is the same view: once uncounted, it was cut to another reference's runs); only a
reference to it unqualified or in `main` or `temp` can be limited. The statement's reads of T are
limited to the union of those ids only if every reference to T is limited so; any other (a
join, no such condition, a condition on an expression or a subquery) reads every run. Nothing
is decided from text: the tree is DuckDB's (json_serialize_sql), as the statement check reads it.
"""

from __future__ import annotations

from typing import Any

import duckdb

from ibstore.schema import TABLE_SCHEMAS
from ibstore.statement_check import SqlError, parse_tree, walk

RUN_ID = "run_id"


def runs_read(sql: str) -> dict[str, list[str]]:
    """Parquet table -> the run ids every read of it by `sql` is limited to, for each table that
    is read only so (a table missing here is read for every run, or not at all)."""
    try:
        tree = parse_tree(sql)
    except (SqlError, duckdb.Error):   # checked already (check_read_only); not parsed so: every run is read
        return {}
    if tree.get("error"):
        return {}
    references: dict[str, int] = {}                  # table -> its references in the statement
    limited: dict[str, list[set[str]]] = {}          # table -> the ids of each limited reference
    for node in walk(tree):
        table = _table_of(node)
        if table is not None:
            references[table] = references.get(table, 0) + 1
        if node.get("type") == "SELECT_NODE" and isinstance(node.get("from_table"), dict):
            source = node["from_table"]
            table = _table_of(source)
            if table is not None and _limitable(source):
                ids = _ids(node.get("where_clause"), str(source.get("alias") or table).lower())
                if ids is not None:
                    limited.setdefault(table, []).append(ids)
    return {table: sorted(set().union(*each)) for table, each in limited.items() if len(each) == references[table]}


def _table_of(node: dict[str, Any]) -> str | None:
    """The Parquet table a BASE_TABLE reference names (in any schema), else None."""
    if node.get("type") != "BASE_TABLE":
        return None
    name = str(node.get("table_name", "")).lower()
    return name if name in TABLE_SCHEMAS else None


def _limitable(source: dict[str, Any]) -> bool:
    """Whether a reference is to the view itself (unqualified, or in main or temp) with its own
    column names."""
    path = [str(part).lower() for part in (source.get("qualified_name") or {}).get("path", [])][:-1]
    return path in ([], ["main"], ["temp"], ["temp", "main"]) and not source.get("column_name_alias")


def _ids(condition: Any, qualifier: str) -> set[str] | None:
    """The run ids `condition` limits rows to, or None if it does not limit them so."""
    if not isinstance(condition, dict):
        return None
    kind = condition.get("type")
    if kind == "CONJUNCTION_AND":
        limits = [ids for ids in (_ids(child, qualifier) for child in condition.get("children", [])) if ids is not None]
        return set.intersection(*limits) if limits else None
    if kind == "COMPARE_IN":
        column, *values = condition.get("children", [None])
        texts = [_text(value) for value in values]
        return set(texts) if _is_run_id(column, qualifier) and values and None not in texts else None
    if kind == "COMPARE_EQUAL":
        for column, value in ((condition.get("left"), condition.get("right")),
                              (condition.get("right"), condition.get("left"))):
            if _is_run_id(column, qualifier) and _text(value) is not None:
                return {_text(value)}
    return None


def _is_run_id(node: Any, qualifier: str) -> bool:
    if not isinstance(node, dict) or node.get("type") != "COLUMN_REF":
        return False
    names = [str(name).lower() for name in node.get("column_names", [])]
    return len(names) in (1, 2) and names[-1] == RUN_ID and (len(names) == 1 or names[0] == qualifier)


def _text(node: Any) -> str | None:
    """A string literal's text, else None."""
    if not isinstance(node, dict) or node.get("type") != "VALUE_CONSTANT":
        return None
    literal = node.get("literal")
    if isinstance(literal, dict) and literal.get("kind") == "STRING" and isinstance(literal.get("text"), str):
        return literal["text"]
    return None
