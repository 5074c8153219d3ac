"""Atomic file writes: a reader sees a whole file or the previous one, never half of one.

Each file is written to a temporary file beside it (".name.XXXX.tmp", which no reader
opens: the scan skips names starting with "."), flushed to disk and renamed over it.
Used by the run writer (run.json and the Parquet tables), saved activations,
checkpoints and the sweep's progress file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ibstore import layout


def atomic_write(path: Path, write: Callable[[Path], None], sync: bool = True) -> None:
    """Call write(tmp) on a temporary file beside `path`, then rename it over `path`.

    On any failure the temporary file is removed and `path` is left as it was. `sync`: flush
    the file to disk before the rename, so that a machine crash cannot leave an empty file
    under the final name (only a generator that can write everything again skips it).
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide results from other users of a shared root
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        if sync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes, sync: bool = True) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data), sync)


def write_arrays(path: Path, arrays: dict[str, np.ndarray], compressed: bool = False) -> None:
    """An .npz file of named arrays."""
    save = np.savez_compressed if compressed else np.savez

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            save(handle, **arrays)
    atomic_write(path, write)


def parquet_bytes(table: pa.Table, compacted_through: int | None = None,
                  use_dictionary: bool | list[str] = True) -> pa.Buffer:
    """`write_table`'s file as bytes, encoded in memory (bench/make_results.py writes each file
    with one write)."""
    sink = pa.BufferOutputStream()
    write_parquet(table, sink, compacted_through, use_dictionary)
    return sink.getvalue()


def write_table(path: Path, table: pa.Table, compacted_through: int | None = None,
                use_dictionary: bool | list[str] = True, sync: bool = True) -> None:
    """A results Parquet file (`write_parquet`), atomically."""
    atomic_write(path, lambda tmp: write_parquet(table, tmp, compacted_through, use_dictionary), sync)


def write_parquet(table: pa.Table, where: Path | pa.NativeFile, compacted_through: int | None = None,
                  use_dictionary: bool | list[str] = True) -> None:
    """A results Parquet file (zstd); a base file records the last part it holds (ibstore.layout).
    `use_dictionary`: the columns to dictionary-encode (Arrow's default: all)."""
    if compacted_through:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), layout.COMPACTED_THROUGH_KEY: str(compacted_through).encode()})
    # Page checksums (CRC-32 per data page) let a reader tell a damaged page from data (ibstore.scan).
    pq.write_table(table, where, compression="zstd", use_dictionary=use_dictionary, write_page_checksum=True)
