"""Writes one run into the results root: run.json and the Parquet tables.

Every file is replaced atomically (written to a temporary file in the same
folder, then renamed), so a reader sees the old or the new file, never half of
one. Rows are kept in memory and the tables rewritten at each flush, which
keeps one file per table (as DESIGN.md lays out) and costs little at these
sizes. run.json is updated last, so its epochs_done never runs ahead of the
tables.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ibstore import layout
from ibstore.schema import SCHEMA_VERSION, TABLE_SCHEMAS


class StoreError(OSError):
    """The results root cannot be written (not writable, disk full, ...)."""


def unwritable(root: Path, error: OSError) -> StoreError:
    return StoreError(f"cannot write results under {str(root)!r}: {error.strerror or error}. "
                      f"Choose a writable folder with --results DIR or $IB_RESULTS.")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a temporary file beside `path`, then rename it over `path`.

    On any failure the temporary file is removed and `path` is left as it was.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1, default=str)))


def write_arrays(path: Path, arrays: dict[str, np.ndarray], compressed: bool = False) -> None:
    """An .npz file of named arrays, written atomically."""
    save = np.savez_compressed if compressed else np.savez

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            save(handle, **arrays)
    atomic_write(path, write)


def write_table(path: Path, table: pa.Table) -> None:
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def read_run_json(root: Path, run_id: str) -> dict[str, Any] | None:
    path = layout.run_json_path(root, run_id)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def versions() -> dict[str, str | None]:
    """Python, TensorFlow, package and git commit, for run.json."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("information-plane-lab")
    except PackageNotFoundError:
        package = None
    tensorflow = sys.modules.get("tensorflow")
    return {
        "python": platform.python_version(),
        "tensorflow": getattr(tensorflow, "__version__", None),
        "package": package,
        "git_commit": git_commit(),
    }


def git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


class RunWriter:
    """Accumulates the rows of one run and flushes them atomically.

    `flush_seconds`: at most this long between flushes during training, so a
    killed run keeps all but the last few seconds.
    """

    def __init__(self, root: Path, meta: dict[str, Any], flush_seconds: float = 5.0,
                 existing: dict[str, pa.Table] | None = None):
        self.root = Path(root)
        self.run_id = meta["run_id"]
        self.dir = layout.run_dir(self.root, self.run_id)
        self.flush_seconds = flush_seconds
        self.tables: dict[str, pa.Table] = dict(existing or {})
        # Rows waiting for the next flush, as per-call column dicts: thousands of tiny
        # Arrow tables (one per epoch) would fragment memory, so Arrow sees one batch per flush.
        self.pending: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLE_SCHEMAS}
        self.last_flush = time.monotonic()
        self.meta = {
            **meta,
            "status": "running", "error": None,
            "started_at": meta.get("started_at") or now_iso(), "finished_at": None,
            "heartbeat_at": now_iso(), "epochs_done": meta.get("epochs_done", 0),
            "versions": versions(), "host": socket.gethostname(), "schema_version": SCHEMA_VERSION,
        }
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            for stray in self.dir.glob(".*.tmp"):   # left by a writer killed mid-write
                stray.unlink(missing_ok=True)
            if existing is None:
                self._remove_previous_results()
            write_json(self.dir / "run.json", self.meta)
        except OSError as error:
            raise unwritable(self.root, error) from error

    def _remove_previous_results(self) -> None:
        """A fresh run replaces whatever an earlier run with this id left behind."""
        for name in TABLE_SCHEMAS:
            (self.dir / f"{name}.parquet").unlink(missing_ok=True)
        for folder in (layout.activations_dir(self.root, self.run_id), layout.checkpoints_dir(self.root, self.run_id)):
            shutil.rmtree(folder, ignore_errors=True)

    def add(self, table: str, columns: dict[str, Any]) -> None:
        """Queue rows given as columns (name -> list or array; scalars repeat)."""
        n = max((len(v) for v in columns.values() if np.ndim(v)), default=1)
        self.pending[table].append({name: (v if np.ndim(v) else [v] * n) for name, v in columns.items()})

    def maybe_flush(self, epochs_done: int) -> None:
        if time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush(epochs_done)

    def flush(self, epochs_done: int) -> None:
        """Write every table with new rows, then run.json (heartbeat, epochs_done).

        A failed write (disk full, ...) raises StoreError and keeps the rows pending."""
        try:
            for name, parts in self.pending.items():
                if not parts:
                    continue
                new = pa.Table.from_pydict(
                    {column: np.concatenate([part[column] for part in parts]) for column in parts[0]},
                    schema=TABLE_SCHEMAS[name])
                table = pa.concat_tables(([self.tables[name]] if name in self.tables else []) + [new])
                write_table(self.dir / f"{name}.parquet", table)
                self.tables[name], self.pending[name] = table, []
            self.meta.update(heartbeat_at=now_iso(), epochs_done=epochs_done)
            write_json(self.dir / "run.json", self.meta)
        except OSError as error:
            raise unwritable(self.root, error) from error
        self.last_flush = time.monotonic()

    def finish(self, status: str, epochs_done: int, error: str | None = None) -> None:
        """Flush what is left and record the final status."""
        self.meta.update(status=status, error=error, finished_at=now_iso())
        self.flush(epochs_done)


def load_tables(root: Path, run_id: str, up_to_epoch: int) -> dict[str, pa.Table]:
    """The tables of a run cut to epochs <= up_to_epoch (to resume from a checkpoint)."""
    import pyarrow.compute as pc

    tables = {}
    for name in TABLE_SCHEMAS:
        path = layout.table_path(root, run_id, name)
        if path.exists():
            table = pq.read_table(path, schema=TABLE_SCHEMAS[name])
            tables[name] = table.filter(pc.less_equal(table["epoch"], up_to_epoch))
    return tables
