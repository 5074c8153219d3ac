"""Atomic file writes: a reader sees a whole file or the previous one, never half of one.

Each file is written to a temporary file beside it (".name.XXXXXXXX.tmp", which no reader
opens: the scan skips names starting with "."), flushed to disk and renamed over it.
Used by the run writer (run.json and the Parquet tables), saved activations,
checkpoints and the sweep's progress file.

A flush writes up to six small files per run every few seconds, so each file costs as few system
calls as it can: one exclusive open with the final mode, the data in one write, fsync on the same
descriptor, the rename. Python's mkstemp, a close, Arrow opening the path again (resolving its file
system, one write per page) and a reopen for fsync cost more CPU per small file, and a Parquet part
also Arrow's opening of the path (bench/RESULTS.md). Parquet files are
encoded in memory first, so a file that cannot be encoded never touches the disk.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ibstore import layout

# Codecs. A file that stays (a table's base) is zstd, the smallest. A part file lives until its run
# ends, when the compaction reads it back once into the base: snappy encodes and decodes a part of a
# flush in much less CPU than zstd (Arrow's zstd sets up a context per column chunk, which
# dominates a small file), at a slightly larger size (bench/RESULTS.md, issue 18 stop 30).
LASTING_CODEC = "zstd"
PART_CODEC = "snappy"
MODE = 0o644  # results are readable by the other users of a shared root, whatever the umask
TEMPORARY_NAME_TRIES = 100


def atomic_write(path: Path, write: Callable[[BinaryIO], None], sync: bool = True) -> None:
    """Call write(handle) on a temporary file beside `path`, then rename it over `path`.

    On any failure the temporary file is removed and `path` is left as it was. `sync`: flush
    the file to disk before the rename, so that a machine crash cannot leave an empty file
    under the final name (only a generator that can write everything again skips it).
    """
    fd, tmp = create_temporary(path)
    try:
        with open(fd, "wb") as handle:
            write(handle)
            handle.flush()
            if sync:
                os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_temporary(path: Path) -> tuple[int, str]:
    """A new, empty file ".name.XXXXXXXX.tmp" beside `path` with mode MODE, opened for writing: its
    descriptor and path. Created exclusively (O_EXCL, no link followed), as tempfile.mkstemp does."""
    for _ in range(TEMPORARY_NAME_TRIES):
        tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, MODE)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, MODE)  # the umask may have removed bits; cheap beside the fsync
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        return fd, tmp
    raise FileExistsError(f"no free temporary name beside {path} after {TEMPORARY_NAME_TRIES} tries")


def write_bytes(path: Path, data: bytes | pa.Buffer, sync: bool = True) -> None:
    atomic_write(path, lambda handle: handle.write(data), sync)


def write_arrays(path: Path, arrays: dict[str, np.ndarray], compressed: bool = False) -> None:
    """An .npz file of named arrays."""
    save = np.savez_compressed if compressed else np.savez
    atomic_write(path, lambda handle: save(handle, **arrays))


def parquet_bytes(table: pa.Table, compacted_through: int | None = None,
                  use_dictionary: bool | list[str] = True, codec: str = LASTING_CODEC) -> pa.Buffer:
    """A results Parquet file, encoded in memory (the one encoder of the trainer's tables; also
    bench/make_results.py's). A base file records the last part it holds (ibstore.layout).
    `use_dictionary`: the columns to dictionary-encode (Arrow's default: all). `codec`: LASTING_CODEC
    or, for a part file, PART_CODEC."""
    if compacted_through:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), layout.COMPACTED_THROUGH_KEY: str(compacted_through).encode()})
    sink = pa.BufferOutputStream()
    # Page checksums (CRC-32 per data page) let a reader tell a damaged page from data (ibstore.scan).
    pq.write_table(table, sink, compression=codec, use_dictionary=use_dictionary, write_page_checksum=True)
    return sink.getvalue()


def write_table(path: Path, table: pa.Table, compacted_through: int | None = None,
                codec: str = LASTING_CODEC) -> None:
    """A results Parquet file (`parquet_bytes`), written atomically."""
    write_bytes(path, parquet_bytes(table, compacted_through, codec=codec))
