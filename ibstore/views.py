"""The DuckDB views over a scanned results root (the same in `trainer sql`, the explorer
and notebooks): runs, config, metrics, mi, gradients, activations, activation_stats,
and problems (what the scan could not read).

Each Parquet table reads only the files the scan validated, and always has every
column of ibstore.schema (NULL where a run's files lack it, e.g. an older schema).
Tables named in `materialize` are copied into memory once; the others stay lazy views.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import duckdb
import pyarrow as pa

from ibstore.flatten import flatten
from ibstore.scan import ParquetFile, Problem, Scan, parse_time
from ibstore.schema import TABLE_SCHEMAS

SQL_TYPES = {pa.string(): "VARCHAR", pa.int16(): "SMALLINT", pa.int32(): "INTEGER",
             pa.int64(): "BIGINT", pa.float64(): "DOUBLE"}

RUNS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("group_id", pa.string()), ("name", pa.string()),
    ("cohort", pa.string()), ("seed", pa.int64()), ("status", pa.string()),
    ("error", pa.string()), ("started_at", pa.timestamp("s", tz="UTC")),
    ("finished_at", pa.timestamp("s", tz="UTC")), ("heartbeat_at", pa.timestamp("s", tz="UTC")),
    ("epochs_done", pa.int64()), ("epochs_total", pa.int64()), ("duration_s", pa.float64()),
    ("host", pa.string()), ("schema_version", pa.int64()), ("split_seed", pa.int64()),
    ("versions_json", pa.string()), ("config_json", pa.string()),
])
CONFIG_SCHEMA = pa.schema([("run_id", pa.string()), ("key", pa.string()), ("value", pa.string())])
PROBLEMS_SCHEMA = pa.schema([("run_id", pa.string()), ("path", pa.string()), ("problem", pa.string())])

VIEWS = ("runs", "config", *TABLE_SCHEMAS, "problems")


def create_views(con: duckdb.DuckDBPyConnection, scan: Scan, materialize: Iterable[str] = ()) -> None:
    materialize = set(materialize)
    con.from_arrow(runs_table(scan.runs)).create("runs")
    con.from_arrow(config_table(scan.runs)).create("config")
    con.from_arrow(problems_table(scan.problems)).create("problems")
    for table in TABLE_SCHEMAS:
        files = scan.table_files(table)
        if table in materialize:
            _materialize(con, table, files, scan)
        else:
            con.execute(f"CREATE VIEW {table} AS {table_select(table, files)}")


def table_select(table: str, files: list[ParquetFile]) -> str:
    """SELECT with every schema column of `table` over the given validated files."""
    present = set().union(*(f.columns for f in files)) if files else set()
    columns = []
    for field in TABLE_SCHEMAS[table]:
        source = quote(field.name) if field.name in present else "NULL"
        columns.append(f"CAST({source} AS {SQL_TYPES[field.type]}) AS {quote(field.name)}")
    if not files:
        return f"SELECT {', '.join(columns)} WHERE false"
    paths = ", ".join(literal(f.path) for f in files)
    return f"SELECT {', '.join(columns)} FROM read_parquet([{paths}], union_by_name = true)"


def _materialize(con: duckdb.DuckDBPyConnection, table: str, files: list[ParquetFile], scan: Scan) -> None:
    """One bulk read; if a file changed under us, fall back to file by file and report the bad ones."""
    try:
        con.execute(f"CREATE TABLE {table} AS {table_select(table, files)}")
        return
    except duckdb.Error:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {table_select(table, [])}")
    for file in files:
        try:
            con.execute(f"INSERT INTO {table} {table_select(table, [file])}")
        except duckdb.Error as error:
            scan.problems.append(Problem(file.run_id, file.path, f"could not be read ({error})"))
            con.execute("INSERT INTO problems VALUES (?, ?, ?)", [file.run_id, file.path, str(error)])


def runs_table(records: list[dict[str, Any]]) -> pa.Table:
    rows = [run_row(record) for record in records]
    return pa.Table.from_pylist(rows, schema=RUNS_SCHEMA)


def run_row(record: dict[str, Any]) -> dict[str, Any]:
    """One row of `runs` from a run.json record (missing keys become NULL)."""
    started, finished, heartbeat = (parse_time(record.get(k)) for k in
                                    ("started_at", "finished_at", "heartbeat_at"))
    end = finished or heartbeat
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    return {
        "run_id": record["run_id"],
        "group_id": _text(record.get("group_id")) or record["run_id"],
        "name": _text(record.get("name")),
        "cohort": _text(record.get("cohort")),
        "seed": _int(record.get("seed", config.get("seed"))),
        "status": _text(record.get("status")),
        "error": _text(record.get("error")),
        "started_at": started, "finished_at": finished, "heartbeat_at": heartbeat,
        "epochs_done": _int(record.get("epochs_done")),
        "epochs_total": _int(record.get("epochs_total", config.get("epochs"))),
        "duration_s": (end - started).total_seconds() if started and end else None,
        "host": _text(record.get("host")),
        "schema_version": _int(record.get("schema_version")),
        "split_seed": _int(record.get("split_seed")),
        "versions_json": json.dumps(record.get("versions"), sort_keys=True),
        "config_json": json.dumps(config, sort_keys=True),
    }


def config_table(records: list[dict[str, Any]]) -> pa.Table:
    rows = []
    for record in records:
        config = record.get("config") if isinstance(record.get("config"), dict) else {}
        for key, value in sorted(flatten(config).items()):
            rows.append({"run_id": record["run_id"], "key": key, "value": json.dumps(value, sort_keys=True)})
    return pa.Table.from_pylist(rows, schema=CONFIG_SCHEMA)


def problems_table(problems: list[Problem]) -> pa.Table:
    return pa.Table.from_pylist([vars(p) for p in problems], schema=PROBLEMS_SCHEMA)


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
