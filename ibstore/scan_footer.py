"""A table file's footer and pages as the scan checks them: the columns, row count and
`ib.compacted_through` it declares, and whether every page decodes (CRC checked) and every
column casts to the table's schema. Split from ibstore.scan, which reads run folders with it;
the sandbox names a file that failed a query after its scan with `table_file_problem`.
"""

from __future__ import annotations

import os
import stat

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ibstore import layout
from ibstore.schema import TABLE_SCHEMAS
from ibstore.text import terminal_text

REQUIRED_COLUMNS = ("run_id", "epoch")
# Nothing is opened that could block: regular files only, never through a symlink.
OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
DAMAGE_BATCH_ROWS = 65_536    # rows decoded at a time by the page check: a few MB of memory, whatever the file


def read_footer(dir_fd: int, name: str, table: str, pages: bool = True,
                run_id: str | None = None) -> tuple[tuple[str, ...], int, int, str | None]:
    """Column names, row count and `ib.compacted_through` from the Parquet footer, or why the
    file cannot be used; with `pages`, every data page is decoded too (`_damage`, which also
    checks that every row is of `run_id`, the file's folder), else that check is left to
    ibstore.scan_pages, when a query first reads the table."""
    try:
        fd = os.open(name, OPEN_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return (), 0, 0, "file disappeared while reading"
    except OSError as error:
        return (), 0, 0, f"cannot be read ({error.strerror or error}): table skipped for this run"
    try:
        with open(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return (), 0, 0, "is not a regular file: table skipped for this run"
            metadata = pq.read_metadata(handle)
            schema = metadata.schema.to_arrow_schema()
            missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
            if missing:
                return (), 0, 0, f"Parquet file lacks column(s) {', '.join(missing)}: table skipped for this run"
            expected = TABLE_SCHEMAS[table]
            for column in schema.names:
                if column in expected.names and not _compatible(schema.field(column).type,
                                                                expected.field(column).type):
                    return (), 0, 0, (f"column {column} has type {schema.field(column).type}, expected "
                                      f"{expected.field(column).type}: table skipped for this run")
            damage = _damage(handle, metadata, schema, expected, run_id) if pages else None
            if damage:
                return (), 0, 0, f"{damage}: table skipped for this run"
    except (OSError, pa.ArrowException) as error:
        return (), 0, 0, f"unreadable Parquet file ({error}): table skipped for this run"
    return tuple(schema.names), metadata.num_rows, layout.compacted_through(metadata.metadata), None


def table_file_problem(path: str, table: str) -> str | None:
    """What `read_run` would report about the table file at `path` now, or None if it reads
    whole as `table` (used to name the file behind a query that failed after its scan)."""
    try:
        dir_fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        return f"its folder cannot be read ({error.strerror})"
    try:
        return read_footer(dir_fd, os.path.basename(path), table, run_id=run_of(path))[3]
    finally:
        os.close(dir_fd)


def pages_problem(dir_fd: int, name: str, table: str, run_id: str | None = None) -> str | None:
    """Why the table file `name` (in the folder `dir_fd`) cannot be read whole as `table` (of run
    `run_id`, if given), or None: its footer and every page checked (what `read_footer` with
    `pages` finds)."""
    return read_footer(dir_fd, name, table, pages=True, run_id=run_id)[3]


def run_of(path: str) -> str:
    """The run id of a table file's path: its folder's name."""
    return os.path.basename(os.path.dirname(path))


def _damage(handle, metadata: pq.FileMetaData, schema: pa.Schema, expected: pa.Schema,
            run_id: str | None = None) -> str | None:
    """Why the file's data cannot be read as the table's schema, or None: every page is decoded
    (and its CRC checked, where the writer stored one: trainer.store writes them), DAMAGE_BATCH_ROWS
    rows at a time, and every column cast to the schema's type as the views will (an `epoch` stored
    as a float with fractions, or an int64 beyond int32, fails here instead of failing every
    query over all runs). Done once per file version: the scan's caches and the index keep the
    verdict under the file's identity. In batches, not row groups: a small file of one row group of
    many millions of zeros took gigabytes to decode whole (a reviewer's; bench/RESULTS.md), in the
    scan's own process."""
    columns = [name for name in schema.names if name in expected.names]
    target = pa.schema([expected.field(name) for name in columns])
    handle.seek(0)
    try:
        parquet = pq.ParquetFile(handle, metadata=metadata, page_checksum_verification=True)   # footer parsed once
        for batch in parquet.iter_batches(batch_size=DAMAGE_BATCH_ROWS, columns=columns, use_threads=False):
            try:
                pa.Table.from_batches([batch]).select(columns).cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                return f"a column's values do not fit the table's types ({str(error).splitlines()[0]})"
            if run_id is not None and (other := _other_run(batch.column("run_id"), run_id)) is not None:
                return (f"holds rows of run {terminal_text(repr(other))}, not of its folder's (another run's "
                        "file copied in)")
    except (OSError, pa.ArrowException) as error:
        return f"damaged data pages ({str(error).splitlines()[0]})"
    return None


def _other_run(run_ids: pa.Array, run_id: str) -> str | None:
    """The first of `run_ids` that is not `run_id` (a null one too), or None. The views take a row's
    run from its folder, so another run's file copied in read as this run's (two attackers': a seed
    showed another seed's accuracy, named nowhere)."""
    others = pc.filter(run_ids, pc.invert(pc.fill_null(pc.equal(run_ids, run_id), False)))
    return None if not len(others) else str(others[0].as_py())


def _compatible(found: pa.DataType, expected: pa.DataType) -> bool:
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if pa.types.is_string(expected) or pa.types.is_large_string(expected):
        return pa.types.is_string(found) or pa.types.is_large_string(found)
    return any(kind(found) for kind in numeric) and any(kind(expected) for kind in numeric)
