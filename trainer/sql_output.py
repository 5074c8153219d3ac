"""What `trainer sql` prints or writes: an aligned text table of the first rows, or every row
streamed as CSV, JSON or Parquet in Arrow batches (memory bounded by one batch, whatever the
row count). Files are written atomically: a temporary file beside the target, renamed at the end.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import os
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from ibstore.sandbox import MAX_HEAD_BYTES
from ibstore.temporal_text import temporal_text, with_temporal_text
from ibstore.text import terminal_text

SUFFIXES = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
MAX_CELL = 60            # characters of one table cell; longer values end in "…" (csv/json hold them whole)


class OutputError(ValueError):
    """An --output that cannot be used; the message says why."""


# The table


def format_table(table: pa.Table, total_rows: int, max_rows: int) -> str:
    """An aligned text table with a header (also when there are no rows), then how many rows
    there were and, if not all are shown, how many were left out and which bound left them out
    (--max-rows, or ibstore.sandbox.first_rows' bytes)."""
    names = [_cell(name) for name in table.column_names]
    numeric = [_is_number(field.type) for field in table.schema]
    columns = [[_cell(_text(value)) for value in temporal_text(field, column).to_pylist()]
               for field, column in zip(table.schema, table.columns)]
    widths = [max([len(name), *map(len, cells)]) for name, cells in zip(names, columns)]
    if not names:
        return f"(no columns; {total_rows} row{'s' if total_rows != 1 else ''})\n"

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if right else c.ljust(w)
                         for c, w, right in zip(cells, widths, numeric)).rstrip()

    lines = [line(names), "  ".join("-" * w for w in widths)]
    lines += [line(list(row)) for row in zip(*columns)]
    shown = table.num_rows
    if shown < total_rows:
        bound = "raise --max-rows" if shown == max_rows else f"at most {MAX_HEAD_BYTES // 10**6} MB are shown"
        lines.append(f"({total_rows:,} row{'s' if total_rows != 1 else ''}; the first {shown:,} shown, {total_rows - shown:,} left out: "
                     f"{bound}, or --format csv|json|parquet --output FILE for every row)")
    else:
        lines.append(f"({total_rows:,} row{'s' if total_rows != 1 else ''})")
    return "\n".join(lines) + "\n"


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if not math.isfinite(value) else f"{value:.6g}"
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (str, int, decimal.Decimal, datetime.date, datetime.time, datetime.timedelta)):
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def _cell(text: str) -> str:
    text = terminal_text(text)   # a value must not print fake rows, reorder the line or hide text
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


# Streaming every row


def write_rows(fmt: str, batches: Iterator[pa.RecordBatch], schema: pa.Schema, sink: IO[bytes],
               terminal: bool = False) -> int:
    """Write every batch to `sink` as `fmt` (csv, json: an array of objects, parquet); the row count.
    For a `terminal` (stdout is one), text is escaped as the table format escapes it (ibstore.text's
    terminal_text in CSV, JSON's \\u escapes of every character beyond ASCII): a value of an
    attacker's retitled and cleared the terminal and printed fake lines. A file or a pipe gets the
    values byte for byte."""
    if fmt == "parquet":       # to a file only (--output)
        return _write_parquet(batches, schema, sink)
    writers: dict[str, Callable[..., int]] = {"csv": _write_csv, "json": _write_json}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}; formats are {', '.join([*writers, 'parquet'])}")
    return writers[fmt](batches, schema, sink, terminal)


def _write_csv(batches: Iterator[pa.RecordBatch], schema: pa.Schema, sink: IO[bytes], terminal: bool = False) -> int:
    rows, writer = 0, None
    for batch in batches:
        batch = _csv_ready(batch, terminal)
        writer = writer or pcsv.CSVWriter(sink, batch.schema, write_options=_csv_options(batch.schema))
        writer.write_batch(batch)
        rows += batch.num_rows
    # No rows: still the header.
    empty = _csv_ready(pa.RecordBatch.from_pylist([], schema=schema), terminal)
    (writer or pcsv.CSVWriter(sink, empty.schema, write_options=_csv_options(empty.schema))).close()
    return rows


def _csv_options(schema: pa.Schema) -> pcsv.WriteOptions:
    """Values quoted where needed; the header too, but Arrow would quote every name: plain names
    stay bare (as pandas and DuckDB write them)."""
    plain = not any(set(name) & set('",\r\n') for name in schema.names)
    return pcsv.WriteOptions(quoting_header="none" if plain else "needed")


def _csv_ready(batch: pa.RecordBatch, terminal: bool = False) -> pa.RecordBatch:
    """Arrow's CSV writer has no lists, structs, maps or intervals: those become JSON text; and
    infinite dates and timestamps, "infinity" (ibstore.temporal_text). For a `terminal`, names and
    text escaped (`write_rows`)."""
    batch = with_temporal_text(batch)
    columns = []
    for field, column in zip(batch.schema, batch.columns):
        kind = field.type
        if pa.types.is_nested(kind) or pa.types.is_interval(kind):
            column = pa.array([None if v is None else json.dumps(v, default=str, ensure_ascii=False)
                               for v in column.to_pylist()], type=pa.string())
        if terminal:
            columns.append(_terminal_column(column))
            continue
        columns.append(column)
    names = [terminal_text(name) for name in batch.schema.names] if terminal else batch.schema.names
    return pa.RecordBatch.from_arrays(columns, names=names)


def _terminal_column(column: pa.Array) -> pa.Array:
    """A CSV column for a terminal: text escaped (terminal_text), of an ENUM (dictionary) too, and
    bytes as Python writes them (b'a\\x1b', as the table format does): a reviewer's BLOB and ENUM
    still wrote raw escapes."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        return pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return pa.array([None if v is None else terminal_text(v) for v in column.to_pylist()], column.type)
    return column


def _write_json(batches: Iterator[pa.RecordBatch], schema: pa.Schema, sink: IO[bytes], terminal: bool = False) -> int:
    """One JSON array of records, one per line, every value as DuckDB gave it: floats to their last
    digit (shortest round trip), NaN and infinities as null at any depth (JSON has neither), times
    to the microsecond in ISO 8601, integers of any size (a HUGEINT sum) with every digit, decimals
    with a fraction as the nearest float (cast to VARCHAR to keep more than 15 digits). (pandas'
    writer, used before, cut floats to 15 digits and times to milliseconds.) Nothing is written
    before the first batch is converted, so a first batch that cannot be written leaves no stray "[";
    a later one (a date beyond year 9999 after 8,192 rows) leaves the array unclosed, so that it never
    parses as the whole result."""
    repeated = sorted({name for name in schema.names if schema.names.count(name) > 1})
    if repeated:
        raise ValueError(f"a JSON record needs distinct column names; named twice: {', '.join(repeated)} "
                         f"(name them apart with AS)")
    rows = 0
    for batch in batches:
        lines = [json.dumps(_json_value(record), default=_json_default, ensure_ascii=terminal, allow_nan=False)
                 for record in with_temporal_text(batch).to_pylist()]
        if lines:
            sink.write(((",\n" if rows else "[\n") + ",\n".join(lines)).encode())
        rows += len(lines)
    sink.write(b"\n]\n" if rows else b"[\n]\n")
    return rows


def _json_value(value: Any) -> Any:
    """NaN and infinities as None, at any depth of lists and structs; integral decimals (HUGEINT,
    DECIMAL(p, 0)) as integers, which json writes with every digit."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def _json_default(value: Any) -> Any:
    """What json cannot write itself: decimals with a fraction as floats, dates and times in ISO 8601,
    the rest as text."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def _write_parquet(batches: Iterator[pa.RecordBatch], schema: pa.Schema, sink: IO[bytes]) -> int:
    rows = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


# The output file


def output_path(output: str, results_root: Path) -> Path:
    """`output` as an absolute path, refused if it is inside the results root, is a folder,
    or its folder does not exist."""
    path = Path(output).expanduser()
    path = path.parent.resolve() / path.name
    root = Path(results_root).resolve()
    if path == root or root in path.parents or (path.exists() and path.resolve().is_relative_to(root)):
        raise OutputError(f"--output {output} is inside the results root {root}; "
                          f"write query results somewhere else")
    if path.is_dir():
        raise OutputError(f"--output {output} is a folder; give a file name")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        # the atomic rename would replace it (a device, a pipe, a link) by a regular file
        raise OutputError(f"--output {output} is not a regular file (a link, device or pipe); give a file name, "
                          f"or leave --output out to write to stdout")
    if not path.parent.is_dir():
        raise OutputError(f"--output {output}: folder {path.parent} does not exist")
    return path


def format_for(output: str | None, fmt: str | None) -> str:
    """The format asked for, else the one --output's suffix names, else the table."""
    if fmt:
        return fmt
    if output is None:
        return "table"
    suffix = Path(output).suffix.lower()
    if suffix not in SUFFIXES:
        raise OutputError(f"--output {output}: say --format csv, json or parquet "
                          f"(or end the name in {', '.join(SUFFIXES)})")
    return SUFFIXES[suffix]


def write_atomically(path: Path, write: Callable[[IO[bytes]], int]) -> int:
    """`write(file)` into a temporary file beside `path`, renamed over `path` once complete;
    on any error or interrupt the temporary file is removed and `path` is untouched."""
    temporary = temporary_path(path)
    try:
        with open(temporary, "xb") as file:
            rows = write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        return rows
    finally:
        temporary.unlink(missing_ok=True)


def temporary_path(path: Path) -> Path:
    """Where `write_atomically` writes before the rename (hidden, per process)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")
