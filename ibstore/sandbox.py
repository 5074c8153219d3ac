"""Read-only SQL over a results root, for the explorer, `trainer sql` and notebooks.

Two locks. Statements are parsed by DuckDB itself and only reads run (SELECT,
WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN of those); anything else is
refused before it runs, since DuckDB would allow e.g. `COPY ... TO` a file
inside the root. And the database can only read files under the root
(allowed_directories, external access off, configuration locked).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import duckdb
import pandas as pd

from ibstore.scan import Scan, scan as scan_root
from ibstore.views import VIEWS, create_views

FORMATS = ("table", "csv", "json")
ALLOWED = "SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN"


class SqlError(ValueError):
    """A query that was refused or failed; the message is DuckDB's or says what is allowed."""


def connect(root: str | os.PathLike, *, scan: Scan | None = None,
            materialize: Iterable[str] = ()) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views of ibstore.views over `root`, confined to it."""
    root = Path(root).resolve()
    scan = scan if scan is not None else scan_root(root)
    con = duckdb.connect(":memory:")
    con.execute("SET temp_directory = ''")  # else DuckDB allows reads under ./.tmp
    con.execute("SET allowed_directories = ?", [[str(root) + os.sep]])
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET enable_progress_bar = false")  # it would print to stderr during long reads
    create_views(con, scan, materialize)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def check_read_only(sql: str) -> str:
    """The single statement in `sql` if it only reads; SqlError otherwise."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise SqlError(str(error)) from None
    if not statements:
        raise SqlError("the query is empty")
    if len(statements) > 1:
        raise SqlError("run one statement at a time")
    statement = statements[0]
    refused = _refused_type(statement)
    if refused:
        raise SqlError(f"refused: {refused} statements are not allowed; the results are read-only "
                       f"(allowed: {ALLOWED})")
    return statement.query


def _refused_type(statement: duckdb.Statement) -> str | None:
    """None for a read, else the kind of statement (EXPLAIN ANALYZE runs what it explains)."""
    if statement.type == duckdb.StatementType.SELECT:
        return None
    if statement.type == duckdb.StatementType.EXPLAIN:
        inner = _explained(statement.query)
        kinds = [s.type for s in duckdb.extract_statements(inner)] if inner else []
        if kinds and all(kind == duckdb.StatementType.SELECT for kind in kinds):
            return None
        return "EXPLAIN " + "/".join(kind.name for kind in kinds) if kinds else "EXPLAIN"
    return statement.type.name


def _explained(query: str) -> str:
    """The statement after `EXPLAIN [ANALYZE] [(options)]`."""
    tokens = duckdb.tokenize(query)
    words = [query[start:end].strip().lower() for (start, _), (end, _) in
             zip(tokens, tokens[1:] + [(len(query), None)])]
    i = 1
    if i < len(words) and words[i] in ("analyze", "analyse"):
        i += 1
    if i < len(words) and words[i] == "(":
        depth = 0
        while i < len(words):
            depth += words[i] == "("
            depth -= words[i] == ")"
            i += 1
            if depth == 0:
                break
    return query[tokens[i][0]:] if i < len(tokens) else ""


def run_query(con_or_root: duckdb.DuckDBPyConnection | str | os.PathLike, sql: str) -> pd.DataFrame:
    """Run one read-only statement; SqlError with DuckDB's message if refused or failing."""
    statement = check_read_only(sql)
    con = con_or_root if isinstance(con_or_root, duckdb.DuckDBPyConnection) else connect(con_or_root)
    try:
        return con.execute(statement).df()   # the views are registered on `con` itself, not its cursors
    except duckdb.Error as error:
        raise SqlError(str(error)) from None


def view_columns(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The views and their columns (view, column, type), for the SQL page and `trainer sql`."""
    order = {name: i for i, name in enumerate(VIEWS)}
    frame = con.execute(
        "SELECT table_name AS view, column_name AS column, data_type AS type "
        "FROM information_schema.columns ORDER BY table_name, ordinal_position").df()
    frame = frame[frame["view"].isin(VIEWS)]
    return frame.sort_values("view", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def format_result(frame: pd.DataFrame, fmt: str = "table") -> str:
    """`trainer sql --format`: an aligned text table, CSV, or JSON (a list of records)."""
    if fmt == "table":
        return frame.to_string(index=False) if len(frame.columns) else "(no columns)"
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", date_format="iso", indent=1)
    raise ValueError(f"unknown format {fmt!r}; formats are {', '.join(FORMATS)}")
