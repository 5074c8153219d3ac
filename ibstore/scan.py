"""Scan a results root: the runs that can be read, their valid Parquet files, and what is wrong.

Nothing here globs blindly: every run.json is parsed and every Parquet footer
read (cached by path, mtime and size), so one truncated file or broken run.json
costs that file or run, never the whole root. Problems are returned, not raised.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ibstore import layout
from ibstore.schema import HEARTBEAT_STALE_SECONDS, SCHEMA_VERSION, TABLE_SCHEMAS

REQUIRED_COLUMNS = ("run_id", "epoch")


@dataclass(frozen=True)
class Problem:
    run_id: str
    path: str
    problem: str


@dataclass(frozen=True)
class ParquetFile:
    run_id: str
    path: str
    columns: tuple[str, ...]
    num_rows: int


@dataclass
class Scan:
    root: Path
    runs: list[dict[str, Any]] = field(default_factory=list)       # run.json records, status derived
    files: dict[str, dict[str, ParquetFile]] = field(default_factory=dict)  # table -> run_id -> file
    problems: list[Problem] = field(default_factory=list)
    fingerprint: tuple = ()                                          # changes when anything read changes

    def table_files(self, table: str, run_ids: list[str] | None = None) -> list[ParquetFile]:
        by_run = self.files.get(table, {})
        wanted = by_run if run_ids is None else [r for r in run_ids if r in by_run]
        return [by_run[r] for r in wanted]


def scan(root: str | os.PathLike, now: float | None = None) -> Scan:
    root = Path(root)
    now = time.time() if now is None else now
    result = Scan(root=root, files={table: {} for table in TABLE_SCHEMAS})
    fingerprint: list[tuple] = []
    for run_dir in _run_dirs(layout.runs_dir(root)):
        run_id = run_dir.name
        entries = _entries(run_dir)
        if "run.json" not in entries:
            result.problems.append(Problem(run_id, str(run_dir), "no run.json (yet): skipped"))
            continue
        stat = entries["run.json"]
        record, error = _read_run_json(str(run_dir / "run.json"), stat.st_mtime_ns, stat.st_size)
        if error:
            result.problems.append(Problem(run_id, str(run_dir / "run.json"), error))
            continue
        record = _derive(record, run_id, now)
        fingerprint.append(("run.json", run_id, stat.st_mtime_ns, stat.st_size, record["status"]))
        result.runs.append(record)
        if record.get("schema_version") != SCHEMA_VERSION:
            result.problems.append(Problem(run_id, str(run_dir / "run.json"),
                                           f"written with schema_version {record.get('schema_version')!r}, "
                                           f"this version reads {SCHEMA_VERSION}: missing columns show as "
                                           f"not recorded"))
        for table in TABLE_SCHEMAS:
            stat = entries.get(f"{table}.parquet")
            if stat is None:
                continue
            path = str(run_dir / f"{table}.parquet")
            columns, num_rows, error = _read_footer(table, path, stat.st_mtime_ns, stat.st_size)
            if error:
                result.problems.append(Problem(run_id, path, error))
                continue
            result.files[table][run_id] = ParquetFile(run_id, path, columns, num_rows)
            fingerprint.append((table, run_id, stat.st_mtime_ns, stat.st_size))
    result.fingerprint = tuple(fingerprint)
    return result


def _run_dirs(runs_dir: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(runs_dir)
                      if e.is_dir() and not e.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _entries(run_dir: Path) -> dict[str, os.stat_result]:
    """Files of a run folder with their stat; temporary files (".name.tmp") are ignored."""
    entries = {}
    try:
        for entry in os.scandir(run_dir):
            if entry.name.startswith("."):
                continue
            try:
                entries[entry.name] = entry.stat()
            except FileNotFoundError:  # replaced or removed meanwhile
                continue
    except FileNotFoundError:
        pass
    return entries


@lru_cache(maxsize=50_000)
def _read_run_json(path: str, mtime_ns: int, size: int) -> tuple[dict[str, Any] | None, str | None]:
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None, "run.json disappeared while reading"
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return None, f"run.json is not valid JSON ({error}): run skipped"
    if not isinstance(record, dict):
        return None, "run.json does not hold a JSON object: run skipped"
    return record, None


@lru_cache(maxsize=200_000)
def _read_footer(table: str, path: str, mtime_ns: int, size: int) -> tuple[tuple[str, ...], int, str | None]:
    """Column names and row count from the Parquet footer, or why the file cannot be used."""
    try:
        metadata = pq.read_metadata(path)
        schema = metadata.schema.to_arrow_schema()
    except FileNotFoundError:
        return (), 0, "file disappeared while reading"
    except (OSError, pa.ArrowException) as error:
        return (), 0, f"unreadable Parquet file ({error}): table skipped for this run"
    missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
    if missing:
        return (), 0, f"Parquet file lacks column(s) {', '.join(missing)}: table skipped for this run"
    expected = TABLE_SCHEMAS[table]
    for name in schema.names:
        if name in expected.names and not _compatible(schema.field(name).type, expected.field(name).type):
            return (), 0, (f"column {name} has type {schema.field(name).type}, expected "
                           f"{expected.field(name).type}: table skipped for this run")
    return tuple(schema.names), metadata.num_rows, None


def _compatible(found: pa.DataType, expected: pa.DataType) -> bool:
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if pa.types.is_string(expected) or pa.types.is_large_string(expected):
        return pa.types.is_string(found) or pa.types.is_large_string(found)
    return any(kind(found) for kind in numeric) and any(kind(expected) for kind in numeric)


def _derive(record: dict[str, Any], run_id: str, now: float) -> dict[str, Any]:
    """The folder name is the run id; a running run without a recent heartbeat is interrupted."""
    record = {**record, "run_id": run_id}
    if record.get("status") == "running":
        heartbeat = parse_time(record.get("heartbeat_at"))
        if heartbeat is None or now - heartbeat.timestamp() > HEARTBEAT_STALE_SECONDS:
            record["status"] = "interrupted"
    return record


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
