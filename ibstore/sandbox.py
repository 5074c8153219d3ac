"""Read-only SQL over a results root, for `trainer sql`, the explorer's SQL page and notebooks.

The guarantee is built, not checked. Each statement runs on a new in-memory DuckDB
connection (`connect`) that can open no file at all: no allowed directories,
`enable_external_access` off, no temporary directory (nothing spills to disk), no extension
loading, no scans of Python variables, the configuration locked. Its views are Arrow objects
(ibstore.views.register), so the results are read through pyarrow and DuckDB never needs a
path. The connection is closed after the statement: whatever the statement did to its own
catalog (a CREATE TABLE, a dynamic PIVOT's helper) dies with it, and no other query, visitor
or process sees it.

The statement check (`check_read_only`) is the second line, so a refusal is a clear sentence
rather than a permission error, and a gap in the first line is still closed. It reads the
whole statement three ways (duckdb-notes.md: the top label calls `WITH t AS (COPY ...)
SELECT 1` a SELECT): the statement types (one statement; SELECT, PIVOT, or EXPLAIN of one),
every token (no writing or configuring keyword anywhere outside strings and comments, no
function that runs SQL text, reads files or reaches into the process), and DuckDB's own parse
tree (json_serialize_sql: every query node in CTEs and subqueries must be a read).

Limits: a time limit per statement (a timer interrupts the connection), a memory limit and a
thread count on the connection; results are fetched in Arrow batches, so a caller can cap the
rows it keeps or stream every row to a file in bounded memory.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from ibstore import views
from ibstore.query_process import Outcome, QueryProcess, WorkerEnded, out_of_memory
from ibstore.record import json_depth
from ibstore.index import scan as scan_root
from ibstore.scan import Scan, table_file_problem
from ibstore.schema import TABLE_SCHEMAS

T = TypeVar("T")

CLI_TIMEOUT_S = 30.0
APP_TIMEOUT_S = 10.0
# Rows per Arrow batch, the unit of streaming: memory is about one batch, which DuckDB's
# memory_limit does not count (8192 rows of 10 kB are 80 MB; 65536 rows would be 8x that, for
# about 20 % more speed on narrow rows).
BATCH_ROWS = 8192
ALLOWED = "SELECT, WITH, FROM, VALUES, PIVOT, UNPIVOT, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN"

# Deepest parse tree checked (json_serialize_sql's JSON nests about 3 levels per subquery).
MAX_TREE_DEPTH = 500

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


class QueryStopped(SqlError):
    """The statement ran out of its time limit and was interrupted."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"query stopped after {seconds:g} s (the time limit)")


class QueryInterrupted(SqlError):
    """The statement was interrupted from outside (Ctrl-C, SIGTERM)."""

    def __init__(self):
        super().__init__("query interrupted")


class MemoryLimitExceeded(SqlError):
    """The statement needed more memory than its bound; an allocation failed in its worker."""

    def __init__(self, memory_bytes: int):
        self.memory_bytes = memory_bytes
        super().__init__(f"query stopped: it needed more than {size_text(memory_bytes)} of memory (the memory limit)")


GIB = 1 << 30
NO_FOLDER = "/nonexistent"   # DuckDB's folders, shown in its settings instead of the user's
MEMORY_BYTES = GIB
# DuckDB's own buffer limit, as a share of the worker's bound: the rest is the interpreter,
# pyarrow and DuckDB's libraries (about 250 MB of data) and what DuckDB does not count.
DUCKDB_SHARE = 0.6
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


@dataclass(frozen=True)
class Limits:
    """What one statement may use. `timeout_s` None means no time limit; `memory_bytes` bounds
    the worker process (RLIMIT_DATA), of which DuckDB's buffers get DUCKDB_SHARE."""
    timeout_s: float | None = CLI_TIMEOUT_S
    memory_bytes: int = MEMORY_BYTES
    threads: int = 2

    @property
    def duckdb_memory_limit(self) -> str:
        return f"{int(self.memory_bytes * DUCKDB_SHARE) >> 20}MiB"


def parse_size(text: str) -> int:
    """Bytes from "1GB", "512MiB", "2e9" (decimal units by their SI names, binary by KiB...);
    ValueError naming what is allowed."""
    cleaned = text.strip().lower().replace(" ", "")
    number = cleaned.rstrip("kmgtib")
    unit = cleaned[len(number):]
    try:
        value = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        value = -1.0
    if not 64 * 2**20 <= value < 2**50:
        raise ValueError(f"{text!r} is not allowed: a size such as 1GB, 512MB or 2GiB, at least 64MiB")
    return int(value)


def size_text(n_bytes: int) -> str:
    """1 GB for 2**30 and 10**9 alike would be wrong: binary sizes as GiB/MiB, others as GB/MB."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n_bytes % size == 0:
            return f"{n_bytes // size} {unit}"
    return f"{n_bytes / 10**9:g} GB" if n_bytes >= 10**9 else f"{n_bytes / 10**6:g} MB"


def connect(root: str | os.PathLike | None = None, *, scan: Scan | None = None,
            limits: Limits = Limits(), names: Iterable[str] = views.VIEWS) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB in this process with the views of `scan` (or of a scan of `root`)
    that can touch no file. Unbounded by the worker's limits: for code that runs its own
    queries (tests, notebooks); user SQL goes through `Statement`."""
    if scan is None:
        if root is None:
            raise TypeError("connect() needs a results root or a scan")
        scan = scan_root(Path(root))
    return connection_of(views.view_data(scan, names), limits)


def connection_of(data: dict[str, Any], limits: Limits) -> duckdb.DuckDBPyConnection:
    """The sandbox connection with `data` (view name -> Arrow table or dataset) registered."""
    con = duckdb.connect(":memory:", config={
        "enable_external_access": False,          # no file, no network, no extension install or load
        "temp_directory": "",                     # else the default ./.tmp is silently allowed for spilling
        "autoinstall_known_extensions": False, "autoload_known_extensions": False,
        "python_enable_replacements": False,      # else a name in SQL can read a Python variable of the caller
        "memory_limit": limits.duckdb_memory_limit, "threads": limits.threads,
        # duckdb_settings() and the catalog functions' errors would show the user's home and the
        # working directory (the worker works in "/"); the folders are never opened anyway.
        **dict.fromkeys(("home_directory", "secret_directory", "extension_directory"), NO_FOLDER),
        "lambda_syntax": "ENABLE_SINGLE_ARROW",   # `x -> x * 2` and `lambda x: x * 2` both work
    })
    con.execute("SET enable_progress_bar = false")   # it would print to stderr during long reads
    for name, view in data.items():
        con.register(name, view)
    con.execute("SET lock_configuration = true")
    return con


# The check


def check_read_only(sql: str) -> str:
    """The text of the single statement in `sql` if it only reads; SqlError saying why not otherwise."""
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError:   # e.g. a non-UTF-8 byte from the command line; DuckDB takes UTF-8 only
        raise SqlError("the query is not valid UTF-8 text") from None
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


def _parse_tree(query: str) -> dict[str, Any]:
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
    tree = _parse_tree(query)
    if tree.get("error"):
        raise SqlError(f"refused: the statement could not be checked ({tree.get('error_message')})")
    for node in _walk(tree):
        kind = node.get("type")
        if isinstance(kind, str) and kind.endswith("_NODE") and kind not in READ_NODES:
            what = kind.removesuffix("_NODE").removesuffix("_QUERY")
            raise SqlError(f"refused: {what} inside the query (a CTE or subquery that writes); "
                           f"the results are read-only (allowed: {ALLOWED})")
        name = node.get("function_name")
        if isinstance(name, str) and name.lower() in REFUSED_FUNCTIONS:
            raise SqlError(f"refused: {name.lower()}() {REFUSED_FUNCTIONS[name.lower()]}")


def _walk(value: Any) -> Iterator[dict[str, Any]]:
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


# Running


class Statement:
    """One checked statement, run once in its own bounded worker process (ibstore.query_process).

    `interrupt()` may be called from any thread or a signal handler; the time limit calls it
    from a timer thread. Either kills the worker, so a statement ends when its time is up
    whatever DuckDB is doing; an allocation beyond `limits.memory_bytes` fails inside the
    worker. `peak_rss_bytes` is the worker's peak resident memory once `run` returned or raised."""

    def __init__(self, source: Scan | str | os.PathLike, sql: str, limits: Limits = Limits()):
        self.query = check_read_only(sql)
        self.limits = limits
        scan = source if isinstance(source, Scan) else scan_root(Path(source))
        self._sources = view_sources(scan, views.read_by(self.query))
        self._stopped: SqlError | None = None
        self._process: QueryProcess | None = None
        self._lock = threading.Lock()
        self.peak_rss_bytes: int | None = None

    def interrupt(self) -> None:
        self._stop(QueryInterrupted())

    def _time_up(self) -> None:
        self._stop(QueryStopped(self.limits.timeout_s))

    def _stop(self, reason: SqlError) -> None:
        with self._lock:
            if self._stopped is None:
                self._stopped = reason
            if self._process is not None:
                self._process.kill()

    def run(self, consume: Callable[[Iterator[pa.RecordBatch], pa.Schema], T]) -> T:
        """`consume(batches, schema)` over the result, within the limits. The worker produces the
        rows as they are consumed (streaming); it has ended when this returns or raises, and a
        worker that ends badly raises inside `batches`, so `consume` never finishes on part of
        a result."""
        with self._lock:
            if self._stopped is not None:   # interrupted before it started
                raise self._stopped
            process = self._process = QueryProcess(open_reader, (self.query, self._sources, self.limits),
                                                   self.limits.memory_bytes)
        timer = None
        if self.limits.timeout_s:
            timer = threading.Timer(self.limits.timeout_s, self._time_up)
            timer.daemon = True
            timer.start()
        try:
            schema, batches = process.batches()
            return consume(batches, schema)
        except WorkerEnded as ended:
            raise self._reason(ended.outcome) from None
        except BaseException:
            if self._stopped is not None:   # e.g. a consumer that failed on the cut stream
                raise self._stopped from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
            process.kill()   # a consumer that stopped reading early (or failed) leaves it waiting
            self.peak_rss_bytes = process.outcome().peak_rss_bytes

    def _reason(self, outcome: Outcome) -> SqlError:
        if outcome.kind == "killed":
            return self._stopped or QueryInterrupted()
        if outcome.kind == "memory":
            return MemoryLimitExceeded(self.limits.memory_bytes)
        if outcome.kind == "error":
            return SqlError(one_line(outcome.text))
        return SqlError(f"the query's process ended without an answer ({outcome.text})")


# A view as sent to a worker: an Arrow table, or a Parquet table's (table, paths, run ids), from
# which the worker builds the dataset (pickling a dataset costs 100 times as much).
ViewSource = pa.Table | tuple[str, list[str], list[str]]


def view_sources(scan: Scan, names: Iterable[str]) -> dict[str, ViewSource]:
    """The views `names` of `scan`, as a worker needs them."""
    names = set(names)
    tables = views.view_data(scan, [name for name in names if name not in TABLE_SCHEMAS])
    files = {name: (name, *scan.table_paths(name)) for name in TABLE_SCHEMAS if name in names}
    return {name: files[name] if name in files else tables[name] for name in views.VIEWS if name in names}


def open_reader(query: str, sources: dict[str, ViewSource], limits: Limits) -> pa.RecordBatchReader:
    """The worker's side of a Statement: its sandbox connection and the result as a batch reader."""
    data = {name: views.table_dataset(*source) if isinstance(source, tuple) else source
            for name, source in sources.items()}
    try:
        reader = connection_of(data, limits).sql(query).to_arrow_reader(BATCH_ROWS)
    except duckdb.InvalidInputException as error:
        raise _named(error, sources) from None
    return pa.RecordBatchReader.from_batches(reader.schema, _naming_failures(reader, sources))


def _naming_failures(reader: pa.RecordBatchReader, sources: dict[str, ViewSource]) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    except (duckdb.InvalidInputException, OSError, pa.ArrowException) as error:
        raise _named(error, sources) from None


def _named(error: Exception, sources: dict[str, ViewSource]) -> Exception:
    """A failure to read a table's files (changed since the scan: damaged, replaced) with the
    run and file that cause it: each file of that table is checked as the scan would."""
    found = re.search(r"reading the stream registered as '(\w+)' failed", str(error))
    source = sources.get(found.group(1)) if found else None
    if not isinstance(source, tuple) or out_of_memory(error):
        return error
    table, paths, run_ids = source
    for path, run_id in zip(paths, run_ids):
        problem = table_file_problem(path, table)
        if problem:
            return SqlError(f"{table} of run {run_id} cannot be read: {path} "
                            f"{problem.removesuffix(': table skipped for this run')} "
                            f"(changed since the scan; the next scan reports it and leaves the run's table out)")
    return error


def first_rows(batches: Iterator[pa.RecordBatch], schema: pa.Schema, max_rows: int) -> tuple[pa.Table, int]:
    """The first `max_rows` rows and the number of rows in all (counted, not kept)."""
    kept, total = [], 0
    for batch in batches:
        if total < max_rows:
            kept.append(batch.slice(0, max_rows - total))
        total += batch.num_rows
    return pa.Table.from_batches(kept, schema=schema), total


def head(source: Scan | str | os.PathLike, sql: str, max_rows: int,
         limits: Limits = Limits()) -> tuple[pa.Table, int]:
    """The first `max_rows` rows of one read-only statement and its total row count."""
    return Statement(source, sql, limits).run(lambda batches, schema: first_rows(batches, schema, max_rows))


def run_query(source: Scan | str | os.PathLike | duckdb.DuckDBPyConnection, sql: str,
              limits: Limits = Limits()) -> pd.DataFrame:
    """Every row of one read-only statement as a DataFrame (for notebooks and tests).

    With a Scan or a root, the statement runs on its own sandbox connection; with a connection
    from `connect`, on that one (the caller then owns what the connection has seen)."""
    if isinstance(source, duckdb.DuckDBPyConnection):
        query = check_read_only(sql)
        try:
            return source.sql(query).df()
        except duckdb.Error as error:
            raise SqlError(one_line(error)) from None
    return Statement(source, sql, limits).run(
        lambda batches, schema: pa.Table.from_batches(list(batches), schema=schema).to_pandas())


def view_columns(scan: Scan) -> pd.DataFrame:
    """The views and their columns (view, column, type), for the SQL page. `phase_stats` is
    described from its schema: computing its statistics only to list its columns would cost
    the page seconds on a large root."""
    from ibstore.stats import PHASE_STATS_SCHEMA

    con = connect(scan=scan, limits=Limits(timeout_s=None), names=views.EVERYDAY_VIEWS)
    con.register("phase_stats", PHASE_STATS_SCHEMA.empty_table())
    try:
        rows = []
        for view in views.VIEWS:
            for name, kind, *_ in con.execute(f"DESCRIBE {views.quote(view)}").fetchall():
                rows.append({"view": view, "column": name, "type": kind})
        return pd.DataFrame(rows, columns=["view", "column", "type"])
    finally:
        con.close()
