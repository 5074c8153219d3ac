"""The statement check: is a statement a single read? (ibstore.sandbox's second line of defence.)

It reads the whole statement three ways (duckdb-notes.md: the top label calls `WITH t AS (COPY ...)
SELECT 1` a SELECT): the statement types (one statement; SELECT, PIVOT, or EXPLAIN of one),
every token (no writing or configuring keyword anywhere outside strings and comments, no
function that runs SQL text, reads files or reaches into the process), and DuckDB's own parse
tree (json_serialize_sql: every query node in CTEs and subqueries must be a read). A refusal is
one clear sentence (`SqlError`).
"""

from __future__ import annotations

import json
import threading
from typing import Any, Iterator

import duckdb

from ibstore.record import json_depth

ALLOWED = "SELECT, WITH, FROM, VALUES, PIVOT, UNPIVOT, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN"

# Deepest parse tree checked (json_serialize_sql's JSON nests about 3 levels per subquery).
MAX_TREE_DEPTH = 500
# Largest statement checked. The check parses in the caller's process (the explorer's server),
# outside the query's time and memory limits, at a cost that grows with the tokens: hundreds of
# thousands of tokens cost the server tens of seconds and a lot of memory, this many a fraction of a
# second (bench/RESULTS.md). An IN list of 2,000 run ids is 4,000 tokens; the SQL page's selection
# of any size is one literal (explorer.sql_selection), under the character bound up to about 100,000
# runs.
MAX_STATEMENT_TOKENS = 20_000
MAX_STATEMENT_CHARS = 4_000_000

# Keywords no read needs; refused anywhere in a statement (strings and comments are not keywords).
WRITE_KEYWORDS = frozenset({
    "ABORT", "ALTER", "ATTACH", "BEGIN", "CALL", "CHECKPOINT", "COMMENT", "COMMIT",
    "COPY", "CREATE", "DEALLOCATE", "DELETE", "DETACH", "DROP", "EXECUTE", "EXPORT", "GRANT", "IMPORT",
    "INSERT", "INSTALL", "LOAD", "MERGE", "PRAGMA", "PREPARE", "RESET", "REVOKE", "ROLLBACK", "SET",
    "TRUNCATE", "UPDATE", "USE", "VACUUM",
})

# Functions refused by name (also schema-qualified or quoted), with the reason shown.
_RUN_SQL_TEXT = "runs SQL text, which the check cannot see; write the statement itself"
_READ_FILES = "reads files; the results are in the views (runs, config, metrics, mi, gradients, ...)"
_PROCESS = "reaches into the server process"
_STATE = "changes the database's settings, logs or storage"
REFUSED_FUNCTIONS: dict[str, str] = {
    **dict.fromkeys(("query", "query_table", "json_execute_serialized_sql"), _RUN_SQL_TEXT),
    **dict.fromkeys(("read_csv", "read_csv_auto", "read_single_csv_file", "sniff_csv", "read_json",
                     "read_json_auto", "read_json_objects", "read_json_objects_auto", "read_ndjson",
                     "read_ndjson_auto", "read_ndjson_objects", "read_single_json_file", "read_parquet",
                     "read_single_parquet_file", "parquet_scan", "parquet_metadata", "parquet_file_metadata",
                     "parquet_full_metadata", "parquet_kv_metadata", "parquet_schema", "parquet_bloom_probe",
                     "parquet_page_index", "read_text", "read_blob", "read_duckdb", "glob", "import_database",
                     "copy_database"), _READ_FILES),
    **dict.fromkeys(("arrow_scan", "arrow_scan_dumb", "python_arrow_scan", "pandas_scan",
                     "python_map_function"), _PROCESS),
    **dict.fromkeys(("enable_logging", "disable_logging", "truncate_duckdb_logs", "write_log",
                     "enable_profiling", "disable_profiling", "checkpoint", "force_checkpoint",
                     "add_grammar_extension", "remove_grammar_extension", "create_external_resource",
                     "register_external_resource", "register_external_resource_type",
                     "deregister_external_resource", "destroy_external_resource", "setval", "nextval"),
                    _STATE),
}

# Query nodes of DuckDB's parse tree that only read; anything else (COPY_QUERY_NODE,
# INSERT/UPDATE/DELETE_QUERY_NODE, ...) inside a CTE or subquery is a write.
READ_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})


class SqlError(ValueError):
    """A statement that was refused or failed; the message is one line."""


def runs_where(condition: str) -> str:
    """The statement that selects the run_id of the runs a user's SQL `condition` holds for (`trainer ls
    --where`, the Runs page's filter): the condition in parentheses, so that it stays a condition (a
    LIMIT, ORDER BY or UNION after it is a syntax error; pasted after WHERE they were taken), the
    closing one on a line of its own, which a trailing comment cannot hide. First the statement check
    of the condition as it reads without them (SqlError): its syntax errors are then DuckDB's words on
    what the user typed ("at end of input", not "at or near ')'"), and a condition that passes has
    balanced parentheses, so none of it can close the one around it.

    >>> runs_where("epochs > 100")
    'SELECT run_id FROM runs WHERE (epochs > 100\\n)'
    """
    check_read_only(f"SELECT run_id FROM runs WHERE {condition}")
    return f"SELECT run_id FROM runs WHERE ({condition}\n)"


def check_read_only(sql: str) -> str:
    """The text of the single statement in `sql` if it only reads; SqlError saying why not otherwise."""
    if len(sql) > MAX_STATEMENT_CHARS:
        raise SqlError(f"refused: the statement is {len(sql):,} characters long; at most {MAX_STATEMENT_CHARS:,} "
                       f"are checked")
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError:   # e.g. a non-UTF-8 byte from the command line; DuckDB takes UTF-8 only
        raise SqlError("the query is not valid UTF-8 text") from None
    tokens = len(duckdb.tokenize(sql))
    if tokens > MAX_STATEMENT_TOKENS:
        raise SqlError(f"refused: the statement has {tokens:,} tokens; at most {MAX_STATEMENT_TOKENS:,} are "
                       f"checked (more cost the server seconds and hundreds of MB to check)")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise SqlError(one_line(error)) from None
    if not statements:
        raise SqlError("the query is empty")
    if len(statements) > 1:
        raise SqlError(f"refused: {len(statements)} statements; run one statement at a time")
    statement = statements[0]
    tokens = _tokens(statement.query)
    _check_tokens(tokens)
    kind = statement.type
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _explained(statement.query, tokens)
        inner_types = [s.type for s in duckdb.extract_statements(inner)] if inner else []
        if inner_types != [duckdb.StatementType.SELECT]:
            raise _refused("EXPLAIN " + "/".join(t.name for t in inner_types) if inner_types else "EXPLAIN")
        _check_tree(inner)
    elif kind == duckdb.StatementType.SELECT:
        _check_tree(statement.query)
    elif kind == duckdb.StatementType.MULTI and any(
            token_kind == "keyword" and text.upper() in ("PIVOT", "UNPIVOT") for text, token_kind, _ in tokens):
        pass   # a PIVOT that first looks up its columns; json_serialize_sql cannot show it, the tokens did
    else:
        raise _refused(kind.name)
    return statement.query


def _refused(what: str) -> SqlError:
    return SqlError(f"refused: {what} statements are not allowed; the results are read-only (allowed: {ALLOWED})")


def _tokens(query: str) -> list[tuple[str, str, int]]:
    """(text, kind, offset) of every token but comments (kind: keyword, identifier, operator, ...)."""
    found = duckdb.tokenize(query)
    ends = [start for start, _ in found[1:]] + [len(query)]
    return [(query[start:end].strip(), kind.name, start) for (start, kind), end in zip(found, ends)
            if kind.name != "comment"]


def _check_tokens(code: list[tuple[str, str, int]]) -> None:
    for i, (text, kind, _) in enumerate(code):
        word = text.upper()
        if kind == "keyword" and word in WRITE_KEYWORDS:
            raise SqlError(f"refused: {word} is not allowed anywhere in a query; the results are read-only "
                           f"(allowed: {ALLOWED}; a column or alias named {text.lower()} needs quotes: "
                           f"\"{text.lower()}\")")
        if kind in ("identifier", "keyword") and i + 1 < len(code) and code[i + 1][0].startswith("("):
            name = text.strip('"').lower()
            if name in REFUSED_FUNCTIONS:
                raise SqlError(f"refused: {name}() {REFUSED_FUNCTIONS[name]}")


def _explained(query: str, tokens: list[tuple[str, str, int]]) -> str:
    """The statement after `EXPLAIN [ANALYZE] [(options)]`."""
    i = 1
    if i < len(tokens) and tokens[i][0].lower() in ("analyze", "analyse"):
        i += 1
    query_starts = ("select", "with", "from", "values", "table", "pivot", "unpivot", "summarize", "describe", "show")
    if (i + 1 < len(tokens) and tokens[i][0].startswith("(")
            and tokens[i + 1][0].lower() not in query_starts and not tokens[i + 1][0].startswith("(")):
        depth = 0   # options such as (FORMAT json), not a parenthesised query
        while i < len(tokens):
            depth += tokens[i][0].count("(") - tokens[i][0].count(")")
            i += 1
            if depth <= 0:
                break
    return query[tokens[i][2]:] if i < len(tokens) else ""


_checker_lock = threading.Lock()
_checker: duckdb.DuckDBPyConnection | None = None


def parse_tree(query: str) -> dict[str, Any]:
    """DuckDB's parse tree of a SELECT as JSON (json_serialize_sql), without running anything."""
    global _checker
    with _checker_lock:
        if _checker is None:
            _checker = duckdb.connect(":memory:", config={"enable_external_access": False, "temp_directory": "",
                                                          "python_enable_replacements": False})
        cursor = _checker.cursor()
    try:
        tree = cursor.execute("SELECT json_serialize_sql(?)", [query]).fetchall()[0][0]
    finally:
        cursor.close()
    # A fixed limit, checked before json.loads (which recurses per level): whether a statement can
    # be checked must not depend on the interpreter's recursion limit or the caller's stack.
    if json_depth(tree.encode()) > MAX_TREE_DEPTH:
        raise SqlError(f"refused: the statement is nested too deeply to be checked (parse tree deeper than "
                       f"{MAX_TREE_DEPTH} levels, about {MAX_TREE_DEPTH // 3} nested subqueries)")
    return json.loads(tree)


def _check_tree(query: str) -> None:
    tree = parse_tree(query)
    if tree.get("error"):
        raise SqlError(f"refused: the statement could not be checked ({tree.get('error_message')})")
    for node in walk(tree):
        kind = node.get("type")
        if isinstance(kind, str) and kind.endswith("_NODE") and kind not in READ_NODES:
            what = kind.removesuffix("_NODE").removesuffix("_QUERY")
            raise SqlError(f"refused: {what} inside the query (a CTE or subquery that writes); "
                           f"the results are read-only (allowed: {ALLOWED})")
        name = node.get("function_name")
        if isinstance(name, str) and name.lower() in REFUSED_FUNCTIONS:
            raise SqlError(f"refused: {name.lower()}() {REFUSED_FUNCTIONS[name.lower()]}")


def walk(value: Any) -> Iterator[dict[str, Any]]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def one_line(error: BaseException | str) -> str:
    """DuckDB's message on one line: the caret drawing dropped, its line number kept."""
    parts, where = [], ""
    for line in str(error).splitlines():
        stripped = line.strip()
        if stripped.startswith("LINE "):
            where = " (" + stripped.split(":", 1)[0].lower() + ")"
        elif stripped and set(stripped) != {"^"}:
            parts.append(stripped)
    return " ".join(parts) + where
