"""A run's table files: which files hold each table now, reading them, rewriting and compacting.

A run's table T is a base file `T.parquet` plus part files `T.part-NNNNNN.parquet`
(ibstore.layout; DESIGN.md, "Results root"). A rewrite writes a new base holding the rows
to keep, recording the highest part number it holds (`ib.compacted_through`), then deletes
the parts: a crash between the two leaves parts that readers ignore. The caller holds the
run's lock (ibstore.lock), so no writer adds parts meanwhile.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ibstore import layout
from ibstore.lock import RunLock, RunLocked, describe_holder
from ibstore.schema import TABLE_SCHEMAS
from trainer.atomic import write_table


class Listing(NamedTuple):
    """A run folder's table files, as one listing of the folder saw them."""
    files: dict[str, list[Path]]                # per table, the files that hold it now (`table_files`)
    parts: dict[str, list[tuple[int, Path]]]    # per table, every part on disk by number (`all_parts`)
    through: dict[str, int]                     # per table with a base, its `ib.compacted_through`


def list_tables(run_dir: Path) -> Listing:
    """The run folder's table files, from one listing of it (the compaction lists a folder once,
    not once per table). pa.ArrowInvalid naming the file if a base file's footer cannot be read."""
    try:
        entries = list(os.scandir(run_dir))
    except FileNotFoundError:
        return Listing({}, {}, {})
    regular = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
    through = {}
    for name in regular:
        parsed = layout.parse_table_file(name)
        if parsed and parsed[1] is None:
            try:
                through[parsed[0]] = layout.compacted_through(pq.read_metadata(run_dir / name).metadata)
            except pa.ArrowException as error:      # named: "Parquet file size is 0 bytes" did not say which
                raise pa.ArrowInvalid(f"{run_dir / name}: {error}") from None
    parts: dict[str, list[tuple[int, Path]]] = {}
    for entry in entries:
        parsed = layout.parse_table_file(entry.name)
        if parsed and parsed[1] is not None:
            parts.setdefault(parsed[0], []).append((parsed[1], run_dir / entry.name))
    files = {table: [run_dir / name for name in names]
             for table, names in layout.current_table_files(regular, through).items()}
    return Listing(files, {table: sorted(numbered) for table, numbered in parts.items()}, through)


def table_files(run_dir: Path) -> dict[str, list[Path]]:
    """The files that hold each table now: the base, then the parts it does not already hold."""
    return list_tables(run_dir).files


def all_parts(run_dir: Path) -> dict[str, list[tuple[int, Path]]]:
    """Every part file on disk per table (those a base already holds too), by number."""
    return list_tables(run_dir).parts


def next_part(run_dir: Path) -> int:
    """The number the next flush's parts get: above every part on disk and every base's
    `ib.compacted_through`."""
    listing = list_tables(run_dir)
    return 1 + max([n for parts in listing.parts.values() for n, _ in parts] + list(listing.through.values()),
                   default=0)


def read_table(files: list[Path], table: str) -> pa.Table:
    """One table from its base and parts, in that order."""
    schema = TABLE_SCHEMAS[table]
    return pa.concat_tables([read_file(path, schema) for path in files]) if files else schema.empty_table()


def read_file(path: Path, schema: pa.Schema) -> pa.Table:
    """One file's rows in `schema`. A file with exactly its columns (every file this version writes)
    is read as it is, in this thread: the dataset reader costs more per file than a small part's
    rows (the compaction at a run's end reads every part back). Others go through the dataset
    reader, which fills the columns an older file lacks with NULL. The file is read into memory in
    one call: Arrow opening a path (resolving its file system, then several reads) costs a small
    part more than its decoding."""
    with open(path, "rb") as handle:
        data = pa.py_buffer(handle.read())
    with pq.ParquetFile(pa.BufferReader(data)) as file:
        if file.schema_arrow.remove_metadata().equals(schema):
            return file.read(use_threads=False).replace_schema_metadata(None)
    return pq.read_table(pa.BufferReader(data), schema=schema).replace_schema_metadata(None)


def rewrite_table(run_dir: Path, table: str, transform: Callable[[pa.Table], pa.Table],
                  listing: Listing | None = None) -> None:
    """Replace a table by transform(its rows) as one base file, then delete its parts. `listing`:
    the folder's `list_tables`, if the caller has it (rewriting a table changes no other's files)."""
    listing = listing or list_tables(run_dir)
    parts = listing.parts.get(table, [])
    through = max([n for n, _ in parts] + [listing.through.get(table, 0)])
    rows = read_table(listing.files.get(table, []), table)
    write_table(run_dir / f"{table}.parquet", transform(rows), compacted_through=through)
    for _, path in parts:
        path.unlink(missing_ok=True)


def leftover_temporaries(run_dir: Path) -> list[Path]:
    """Temporary files of writes that never finished (".T.parquet.XXXX.tmp" of a table, and
    ".epoch_NNNNNN.npz.XXXX.tmp" in its activations/ or checkpoints/, trainer.atomic): a process
    killed while writing leaves one, which no reader opens."""
    tables = [path for path in sorted(run_dir.glob(".*.tmp"))
              if layout.parse_table_file(path.name[1:].removesuffix(".tmp").rsplit(".", 1)[0])]
    root, run_id = run_dir.parent.parent, run_dir.name
    arrays = [path for folder in (layout.activations_dir(root, run_id), layout.checkpoints_dir(root, run_id))
              if folder.is_dir() and not folder.is_symlink() for path in sorted(folder.glob(".*.npz.*.tmp"))]
    return tables + arrays


def compact_run(run_dir: Path) -> int:
    """Merge each table's parts into its base file and remove what killed writes left; returns
    how many part files were merged. Under the run's lock no live process is writing the
    temporaries, so each is a dead write's."""
    merged = 0
    listing = list_tables(run_dir)
    for table, parts in listing.parts.items():
        rewrite_table(run_dir, table, lambda rows: rows, listing)
        merged += len(parts)
    for path in leftover_temporaries(run_dir):
        path.unlink(missing_ok=True)
    return merged


def load_tables(root: Path, run_id: str, up_to_epoch: int) -> dict[str, pa.Table]:
    """The tables of a run (base and parts) cut to epochs <= up_to_epoch."""
    return {table: (rows := read_table(files, table)).filter(pc.less_equal(rows["epoch"], up_to_epoch))
            for table, files in table_files(layout.run_dir(root, run_id)).items()}


def compact(root: Path) -> tuple[dict[str, int], dict[str, str], dict[str, str]]:
    """`trainer compact`: merge the part files of every run no live process holds.

    Returns ({run_id: parts merged}, {run_id: who holds it} for live runs left alone,
    {run_id: error} for runs that could not be compacted)."""
    merged, held, failed = {}, {}, {}
    runs_dir = layout.runs_dir(root)
    run_dirs = sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink()
                      and not p.name.startswith(".")) if runs_dir.is_dir() else []
    for run_dir in run_dirs:
        try:      # one damaged run is named and the others are compacted
            if not all_parts(run_dir) and not leftover_temporaries(run_dir):
                continue
            with RunLock.acquire(run_dir, wait_s=0.2):
                merged[run_dir.name] = compact_run(run_dir)
        except RunLocked as locked:
            held[run_dir.name] = describe_holder(locked.holder)
        except (OSError, pa.ArrowException) as error:
            failed[run_dir.name] = f"{type(error).__name__}: {error}"
    return merged, held, failed
