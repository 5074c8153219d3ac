"""Read-only SQL over a results root, for `trainer sql`, the explorer's SQL page and notebooks.

The guarantee is built, not checked. Each statement runs on a new in-memory DuckDB
connection (`connect`) that can open no file at all: no allowed directories,
`enable_external_access` off, no temporary directory (nothing spills to disk), no extension
loading, no scans of Python variables, the configuration locked. Its views are Arrow objects
(ibstore.views.register), so the results are read through pyarrow and DuckDB never needs a
path. The connection is closed after the statement: whatever the statement did to its own
catalog (a CREATE TABLE, a dynamic PIVOT's helper) dies with it, and no other query, visitor
or process sees it.

The statement check (`ibstore.statement_check.check_read_only`) is the second line, so a
refusal is a clear sentence rather than a permission error, and a gap in the first line is
still closed.

Limits: a time limit per statement (a timer interrupts the connection), a memory limit and a
thread count on the connection; results are fetched in Arrow batches, so a caller can cap the
rows it keeps or stream every row to a file in bounded memory.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import duckdb
from duckdb import sqltypes
import pandas as pd
import pyarrow as pa

from ibstore import views
from ibstore.query_process import FileChanged, Outcome, QueryProcess, WorkerEnded, out_of_memory
from ibstore.index import scan as scan_root
from ibstore.scan import Scan
from ibstore.scan_footer import table_file_problem
from ibstore.shared_table import SharedTable
from ibstore.schema import TABLE_SCHEMAS
from ibstore.statement_check import SqlError, check_read_only, one_line
from ibstore.statement_runs import runs_read

T = TypeVar("T")

CLI_TIMEOUT_S = 30.0
APP_TIMEOUT_S = 10.0
# Rows per Arrow batch, the unit of streaming: memory is about one batch, which DuckDB's
# memory_limit does not count (8192 rows of 10 kB are 80 MB; 65536 rows would be 8x that, for
# a little more speed on narrow rows: bench/RESULTS.md).
BATCH_ROWS = 8192
# The most a result's first rows keep (`first_rows`: the SQL page's table, `trainer sql`'s): the
# page sends them to the browser, whose messages stop at 200 MB.
MAX_HEAD_BYTES = 64 * 10**6
class QueryStopped(SqlError):
    """The statement ran out of its time limit and was interrupted; `waited_s` of it went waiting
    for a place (MAX_STATEMENTS) while other statements ran."""

    def __init__(self, seconds: float, waited_s: float = 0.0):
        self.seconds, self.waited_s = seconds, waited_s
        super().__init__(f"query stopped after {seconds:g} s (the time limit{self.waited_text})")

    @property
    def waited_text(self) -> str:
        """The message's "; 7.5 s of it waiting ..." where it waited WAIT_SAID_S or more, else nothing."""
        return (f"; {self.waited_s:.1f} s of it waiting while other statements held all {MAX_STATEMENTS} places"
                if self.waited_s >= WAIT_SAID_S else "")


class NoPlace(QueryStopped):
    """The time limit was up before the statement started: every place was taken by other
    statements of this process (an attacker's visitors held them; the explorer said the statement
    had run out of its own time)."""

    def __init__(self, seconds: float, waited_s: float | None = None):
        self.seconds, self.waited_s = seconds, seconds if waited_s is None else waited_s
        SqlError.__init__(self, f"query did not start within {seconds:g} s: all {MAX_STATEMENTS} places for "
                                f"statements were taken by other statements while it waited (the wait counts "
                                f"against the time limit); try again")


class QuerySuperseded(SqlError):
    """A newer statement of the same visitor replaced this one (Limits.superseded)."""

    def __init__(self):
        super().__init__("query stopped: a newer query of this page replaced it")


class QueryInterrupted(SqlError):
    """The statement was interrupted from outside (Ctrl-C, SIGTERM)."""

    def __init__(self):
        super().__init__("query interrupted")


class MemoryLimitExceeded(SqlError):
    """The statement needed more memory than its bound; an allocation failed in its worker."""

    def __init__(self, memory_bytes: int):
        self.memory_bytes = memory_bytes
        super().__init__(f"query stopped: it needed more than {size_text(memory_bytes)} of memory (the memory limit)")


class FileVanished(SqlError):
    """A file the statement was to read is gone since its scan (a compaction replaced parts by
    their base, a run folder was removed): the same statement on a new scan can succeed."""


class FileDamaged(FileChanged, SqlError):
    """A file the statement read was damaged in place since its scan: once its run's folder is
    read again (`ibstore.index.reread(root, [run_id])`), a new scan leaves the file out and names
    it, and the same statement on it can succeed (an attacker's truncated file failed every
    query of its table, scan after scan, since its folder's signature had not changed)."""


GIB = 1 << 30
NO_FOLDER = "/nonexistent"   # DuckDB's folders, shown in its settings instead of the user's
# phase_stats of a root of 226 runs peaked at 1.2 GB of the worker's data memory (a new user's)
MEMORY_BYTES = 2 * GIB
# Statements of one process that run at once (the explorer's server, for all its sessions): each
# worker may take MEMORY_BYTES, and an attacker's visitors could otherwise take the machine's memory
# two GiB at a time; the others wait their turn within their time limit.
MAX_STATEMENTS = 4
_PLACES = threading.BoundedSemaphore(MAX_STATEMENTS)
PLACE_POLL_S = 0.1
WAIT_SAID_S = 0.5      # a wait for a place at least this long is said in QueryStopped's message
CPU_SLACK_S = 10       # a worker's CPU seconds beyond its threads' share of the time limit (its start-up)
MIN_MEMORY_BYTES = 512 * 2**20
# DuckDB's own buffer limit, as a share of the worker's bound: the rest is the interpreter,
# pyarrow and DuckDB's libraries (hundreds of MB of data) and what DuckDB does not count.
DUCKDB_SHARE = 0.6
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


@dataclass(frozen=True)
class Limits:
    """What one statement may use. `timeout_s` None means no time limit; `memory_bytes` bounds
    the worker process (RLIMIT_DATA), of which DuckDB's buffers get DUCKDB_SHARE. `superseded`: an
    event that, once set, stops the statement (QuerySuperseded), waiting or running: the SQL page
    sets its session's previous one when a newer query runs (an attacker's single tab, pressing
    Ctrl+Enter on edited queries, held every place at once, its earlier statements running on)."""
    timeout_s: float | None = CLI_TIMEOUT_S
    memory_bytes: int = MEMORY_BYTES
    threads: int = 2
    superseded: threading.Event | None = None

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
    # A few hundred MiB leave a query too little beside the worker's own libraries: it hung, or called a
    # healthy file damaged, when an allocation failed inside pyarrow's threads (bench/RESULTS.md).
    if not MIN_MEMORY_BYTES <= value < 2**50:
        raise ValueError(f"{text!r} is not allowed: a size such as 1GB, 600MB or 2GiB, at least 512MiB (the "
                         f"query's process itself needs about 300 MB)")
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
    wanted = views.with_dependencies(names)
    scan.check(views.checked_by(wanted))
    con = connection_of(views.view_data(scan, wanted), limits)
    views.register_derived(con, wanted, scan)
    return con


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
        self._sources = view_sources(scan, views.read_by(self.query), runs_read(self.query),
                                     schema_only=views.describes_only(self.query))
        self._stopped: SqlError | None = None
        self._waited_s = 0.0
        self._process: QueryProcess | None = None
        self._lock = threading.Lock()
        self.peak_rss_bytes: int | None = None

    def interrupt(self) -> None:
        self._stop(QueryInterrupted())

    def _time_up(self) -> None:
        self._stop(QueryStopped(self.limits.timeout_s, self._waited_s))

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
        a result. It waits for one of MAX_STATEMENTS places first, within its time limit."""
        timer, ended = None, threading.Event()
        if self.limits.timeout_s:
            timer = threading.Timer(self.limits.timeout_s, self._time_up)
            timer.daemon = True
            timer.start()
        if self.limits.superseded is not None:
            threading.Thread(target=self._stop_when_superseded, args=(ended,), daemon=True).start()
        try:
            waiting_since = time.monotonic()
            while not _PLACES.acquire(timeout=PLACE_POLL_S):
                if isinstance(self._stopped, QueryStopped):    # its time was up before it started
                    raise NoPlace(self.limits.timeout_s)
                if self._stopped is not None:                  # interrupted or superseded while it waited
                    raise self._stopped
            self._waited_s = time.monotonic() - waiting_since
            if isinstance(self._stopped, QueryStopped):     # its time was up as the place came free
                _PLACES.release()
                raise NoPlace(self.limits.timeout_s)
            try:
                return self._run(consume)
            finally:
                _PLACES.release()
        finally:
            ended.set()
            if timer is not None:
                timer.cancel()

    @property
    def _cpu_seconds(self) -> int | None:
        """The worker's CPU bound: what its threads can spend within the time limit, and a start-up's
        worth (CPU_SLACK_S) beyond; none without a time limit."""
        if not self.limits.timeout_s:
            return None
        return math.ceil(self.limits.timeout_s * max(self.limits.threads, 1)) + CPU_SLACK_S

    @property
    def _worker_limits(self) -> Limits:
        """The limits as the worker gets them: the event stays here (a lock pickles to no process)."""
        return replace(self.limits, superseded=None)

    def _stop_when_superseded(self, ended: threading.Event) -> None:
        while not ended.is_set():
            if self.limits.superseded.wait(PLACE_POLL_S):
                self._stop(QuerySuperseded())
                return

    def _run(self, consume: Callable[[Iterator[pa.RecordBatch], pa.Schema], T]) -> T:
        with self._lock:
            if self._stopped is not None:   # interrupted before it started
                raise self._stopped
            # the view tables travel as memory files, not pickled (ibstore.shared_table)
            shared = {name: SharedTable(source) if isinstance(source, pa.Table) else source
                      for name, source in self._sources.items()}
            try:
                process = self._process = QueryProcess(open_reader, (self.query, shared, self._worker_limits),
                                                       self.limits.memory_bytes, self._cpu_seconds)
            finally:
                for source in shared.values():
                    if isinstance(source, SharedTable):
                        source.close()
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
            process.kill()   # a consumer that stopped reading early (or failed) leaves it waiting
            self.peak_rss_bytes = process.outcome().peak_rss_bytes

    def _reason(self, outcome: Outcome) -> SqlError:
        if outcome.kind == "killed":
            return self._stopped or QueryInterrupted()
        if outcome.kind == "died" and outcome.text == "signal SIGXCPU":     # its CPU bound: the time limit's
            return QueryStopped(self.limits.timeout_s, self._waited_s)
        if outcome.kind == "memory":
            return MemoryLimitExceeded(self.limits.memory_bytes)
        if outcome.kind == "vanished":
            return FileVanished(one_line(outcome.text))
        if outcome.kind == "changed":
            run_id, _, message = outcome.text.partition("\0")
            return FileDamaged(one_line(message), run_id)
        if outcome.kind == "error":
            return SqlError(_views_named(one_line(outcome.text)))
        return SqlError(f"the query's process ended without an answer ({outcome.text})")


# A view as sent to a worker: an Arrow table, or a Parquet table's (table, paths, run ids), from
# which the worker builds the dataset (pickling a dataset costs far more), or None for
# a derived view (views.DERIVED), which the worker builds from the others, under its bounds.
ViewSource = pa.Table | tuple[str, list[str], list[str]] | None


def view_sources(scan: Scan, names: Iterable[str], runs_of: dict[str, list[str]] | None = None,
                 schema_only: bool = False) -> dict[str, ViewSource]:
    """The views `names` of `scan` (with what the derived ones read), as a worker needs them; a
    Parquet table of `runs_of` (ibstore.statement_runs) with only those runs' files, checked alone,
    unless a derived view or `problems` reads the table too. `schema_only` (views.describes_only):
    every Parquet table with its columns and no file, none checked."""
    names = set(views.with_dependencies(names))
    read_whole = set(views.with_dependencies(names & set(views.DERIVED)))   # what a derived view reads
    limited = {table: [] for table in TABLE_SCHEMAS if table in names} if schema_only else {
        table: runs for table, runs in (runs_of or {}).items()
        if table in names and table not in read_whole and "problems" not in names}
    scan.check([table for table in views.checked_by(names) if table not in limited])   # on the check's threads
    for table, runs in limited.items():
        scan.check([table], runs)
    tables = views.view_data(scan, [name for name in names if name not in TABLE_SCHEMAS])
    files = {name: (name, *scan.table_paths(name, limited.get(name))) for name in TABLE_SCHEMAS if name in names}
    return {name: None if name in views.DERIVED else files[name] if name in files else tables[name]
            for name in views.VIEWS if name in names}


def _data_of(sources: dict[str, ViewSource]) -> dict[str, pa.Table | Any]:
    """view name -> its Arrow table or dataset, for connection_of (derived views have none)."""
    return {name: views.table_dataset(*source) if isinstance(source, tuple) else source
            for name, source in sources.items() if source is not None}


def open_reader(query: str, sources: dict[str, ViewSource], limits: Limits) -> pa.RecordBatchReader:
    """The worker's side of a Statement: its sandbox connection and the result as a batch reader."""
    try:
        con = connection_of(_data_of(sources), limits)
        views.register_derived(con, [name for name, source in sources.items() if source is None])
        reader = as_text_where_arrow_is_not_the_value(con.sql(query)).to_arrow_reader(BATCH_ROWS)
    except duckdb.InvalidInputException as error:
        raise named_failure(error, sources) from None
    return pa.RecordBatchReader.from_batches(reader.schema, _naming_failures(reader, sources))


# DuckDB types whose Arrow form is not the value DuckDB holds: UHUGEINT becomes decimal128(38, 0)
# (above 2^127 it printed as a negative number), BIT and BIGNUM DuckDB's own binary encoding,
# TIME WITH TIME ZONE a time without its offset, VARIANT a struct of encodings, a UNION a type
# pandas and CSV have none for, and an INTERVAL a (months, days, nanoseconds) triple. A column
# with one anywhere in its type is handed over as DuckDB's own text of it.
_NOT_IN_ARROW = frozenset({"uhugeint", "bit", "bignum", "time with time zone", "variant", "union", "interval"})


def _not_in_arrow(kind: sqltypes.DuckDBPyType) -> bool:
    """Whether a type is, or holds (in a list, array, struct, map or union), one of _NOT_IN_ARROW;
    by the types' ids, so a struct field named "bit" is no BIT."""
    if kind.id in _NOT_IN_ARROW:
        return True
    children = kind.children if kind.id in ("list", "array", "struct", "map") else []
    return any(isinstance(child, sqltypes.DuckDBPyType) and _not_in_arrow(child) for _, child in children)


def as_text_where_arrow_is_not_the_value(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """`relation` with every column `_not_in_arrow` cast to VARCHAR (by position: names may repeat)."""
    text = [_not_in_arrow(kind) for kind in relation.types]
    if not any(text):
        return relation
    return relation.project(", ".join(
        (f"CAST(#{i} AS VARCHAR)" if cast else f"#{i}") + " AS " + views.quote(name)
        for i, (name, cast) in enumerate(zip(relation.columns, text), start=1)))


def _naming_failures(reader: pa.RecordBatchReader, sources: dict[str, ViewSource]) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    except (duckdb.InvalidInputException, OSError, pa.ArrowException) as error:
        raise named_failure(error, sources) from None


def named_failure(error: Exception, sources: dict[str, ViewSource]) -> Exception:
    """A failure to read a table's files (changed since the scan: damaged, replaced, gone) with
    the run and file that cause it: each file of that table is checked as the scan would; a
    file that is gone gives a FileNotFoundError (the worker reports it as `vanished`)."""
    found = re.search(r"reading the stream registered as '(\w+)' failed", str(error))
    source = sources.get(found.group(1)) if found else None
    if not isinstance(source, tuple) or out_of_memory(error):
        return error
    table, paths, run_ids = source
    for path, run_id in zip(paths, run_ids):
        if not os.path.lexists(path):   # reported as `vanished`: the caller may rescan and retry
            return FileNotFoundError(f"{table} of run {run_id} cannot be read: {path} is gone "
                                     f"(compacted or removed since the scan; a new scan lists what replaced it)")
        problem = table_file_problem(path, table)
        if problem:
            return FileDamaged(f"{table} of run {run_id} cannot be read: {path} "
                               f"{problem.removesuffix(': table skipped for this run')} "
                               f"(changed since the scan; the next scan reports it and leaves the run's table out)",
                               run_id)
    return error


def first_rows(batches: Iterator[pa.RecordBatch], schema: pa.Schema, max_rows: int,
               max_bytes: int = MAX_HEAD_BYTES) -> tuple[pa.Table, int]:
    """The first rows, at most `max_rows` of them and about `max_bytes` (a batch's rows taken at its
    mean size, so one row larger than the bound gives none), and the number of rows in all
    (counted, not kept): a result of a few long strings could otherwise fill the memory of whoever
    shows it."""
    kept, rows, size, total = [], 0, 0, 0
    for batch in batches:
        if rows < max_rows and size < max_bytes and batch.num_rows:
            row_bytes = max(1, batch.nbytes // batch.num_rows)
            taken = batch.slice(0, min(max_rows - rows, (max_bytes - size) // row_bytes))
            kept.append(taken)
            rows, size = rows + taken.num_rows, size + taken.num_rows * row_bytes
        total += batch.num_rows
    return pa.Table.from_batches(kept, schema=schema), total


def head(source: Scan | str | os.PathLike, sql: str, max_rows: int,
         limits: Limits = Limits()) -> tuple[pa.Table, int]:
    """The first rows of one read-only statement (`first_rows`) and its total row count."""
    return Statement(source, sql, limits).run(lambda batches, schema: first_rows(batches, schema, max_rows))


MISSING_TABLE = re.compile(r'(Catalog Error: Table with name .+? does not exist!)( Did you mean "([^"]*)"\?)?(.*)$',
                           re.DOTALL)


def _views_named(message: str) -> str:
    """DuckDB names the closest catalog entry to a table that does not exist: for a name like no view
    of the lab's, one of its own (`SELECT * FROM nosuchview`: 'Did you mean "duckdb_views"?'). Its
    suggestion stays where it is one of the lab's views, and the message ends with their names."""
    match = MISSING_TABLE.match(message)
    if match is None:
        return message
    suggestion = match.group(2) if match.group(3) in views.VIEWS else ""
    return f"{match.group(1)}{suggestion}{match.group(4)} The views: {', '.join(views.VIEWS)}."


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
            raise SqlError(_views_named(one_line(error))) from None
    return Statement(source, sql, limits).run(
        lambda batches, schema: pa.Table.from_batches(list(batches), schema=schema).to_pandas())


def view_columns(scan: Scan) -> pd.DataFrame:
    """The views and their columns (view, column, type), for the SQL page. `phase_stats` is
    described from its schema: computing its statistics only to list its columns would cost
    the page seconds on a large root."""
    from ibstore.stats import PHASE_STATS_SCHEMA

    sources = view_sources(scan, views.EVERYDAY_VIEWS, schema_only=True)   # no table file checked
    con = connection_of(_data_of(sources), Limits(timeout_s=None))
    views.register_derived(con, views.EVERYDAY_VIEWS, scan)
    con.register("phase_stats", PHASE_STATS_SCHEMA.empty_table())
    try:
        rows = []
        for view in views.VIEWS:
            for name, kind, *_ in con.execute(f"DESCRIBE {views.quote(view)}").fetchall():
                rows.append({"view": view, "column": name, "type": kind})
        return pd.DataFrame(rows, columns=["view", "column", "type"])
    finally:
        con.close()
