"""Writes one run into the results root: run.json and the Parquet tables, as appends.

A run's table T is a base file `T.parquet` plus part files `T.part-NNNNNN.parquet`
(ibstore.layout, contract C3). Each flush writes one new part per table with new
rows, so the cost of a run is linear in its rows; nothing already on disk is
rewritten while the run trains. When a run ends, its parts are compacted into a
new base file that records the last part it holds (`ib.compacted_through`), then
the parts are deleted: a crash between the two leaves parts that readers ignore.

Every file is written to a temporary file (".name...tmp", never read) and renamed,
so a reader sees a whole file or none. run.json is written last, only through
ibstore.record.RunRecord, so its epochs_done never runs ahead of the tables.

A writer holds the run's lock (ibstore.lock) from construction to finish/close:
no other process trains, compacts or re-estimates the run meanwhile.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ibstore import layout
from ibstore.lock import RunLock, RunLocked, describe_holder
from ibstore.record import SCHEMA_VERSION, RecordError, RunRecord, Status
from ibstore.scan import live_status
from ibstore.schema import TABLE_SCHEMAS

# What a fresh writer may replace without being told to: a run that died or was
# interrupted ("running" with a free lock is a dead run). Completed, failed and
# diverged runs are replaced only when the command says so (--force, --retry-failed).
REPLACEABLE_BY_DEFAULT = frozenset({Status.INTERRUPTED, Status.RUNNING})
# How run.json's `error` begins when the run failed because its results could not be written.
WRITE_FAILED = "writing the results failed: "


class StoreError(OSError):
    """The results root cannot be written (not writable, disk full, ...)."""


class RunExists(Exception):
    """The run already has a result this writer was not allowed to replace (e.g. completed)."""

    def __init__(self, run_id: str, status: Status):
        self.run_id, self.status = run_id, status
        super().__init__(f"run {run_id!r} is already {status}")


def unwritable(root: Path, error: OSError) -> StoreError:
    return StoreError(f"cannot write results under {str(root)!r}: {error.strerror or error}. "
                      f"Choose a writable folder with --results DIR or $IB_RESULTS.")


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a temporary file beside `path`, then rename it over `path`.

    On any failure the temporary file is removed and `path` is left as it was.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide results from other users of a shared root
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


def write_record(path: Path, record: RunRecord) -> None:
    """run.json, atomically, through the typed record (the only way run.json is written)."""
    data = record.to_json_bytes()
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_arrays(path: Path, arrays: dict[str, np.ndarray], compressed: bool = False) -> None:
    """An .npz file of named arrays, written atomically."""
    save = np.savez_compressed if compressed else np.savez

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            save(handle, **arrays)
    atomic_write(path, write)


def write_table(path: Path, table: pa.Table, compacted_through: int | None = None) -> None:
    """A Parquet file, atomically; a base file records the last part it holds."""
    if compacted_through:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), layout.COMPACTED_THROUGH_KEY: str(compacted_through).encode()})
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_failure(record: RunRecord | None) -> str | None:
    """Why the run's results could not be written (e.g. "No space left on device"), if that is
    why it failed."""
    if record is None or record.status is not Status.FAILED or not (record.error or "").startswith(WRITE_FAILED):
        return None
    return record.error.removeprefix(WRITE_FAILED).split("; ", 1)[0]


def read_record(root: Path, run_id: str) -> RunRecord | None:
    """The run's record, or None if it has none or it cannot be used."""
    try:
        return RunRecord.from_json_bytes(layout.run_json_path(root, run_id).read_bytes())
    except (OSError, RecordError):
        return None


def shown_status(root: Path, run_id: str, now: float) -> Status | None:
    """The run's status as `trainer ls` shows it (a `running` run whose writer is gone is
    interrupted), or None if it has no usable run.json."""
    record = read_record(root, run_id)
    return None if record is None else live_status(record, layout.run_dir(root, run_id), now)


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


# ---------------------------------------------------------------- a run's table files

def table_files(run_dir: Path) -> dict[str, list[Path]]:
    """The files that hold each table now: the base, then the parts it does not already hold."""
    try:
        names = [entry.name for entry in os.scandir(run_dir) if entry.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return {}
    through = {}
    for name in names:
        parsed = layout.parse_table_file(name)
        if parsed and parsed[1] is None:
            through[parsed[0]] = layout.compacted_through(pq.read_metadata(run_dir / name).metadata)
    return {table: [run_dir / name for name in files]
            for table, files in layout.current_table_files(names, through).items()}


def all_parts(run_dir: Path) -> dict[str, list[tuple[int, Path]]]:
    """Every part file on disk per table (those a base already holds too), by number."""
    parts: dict[str, list[tuple[int, Path]]] = {}
    for path in sorted(run_dir.glob("*.part-*.parquet")):
        parsed = layout.parse_table_file(path.name)
        if parsed and parsed[1] is not None:
            parts.setdefault(parsed[0], []).append((parsed[1], path))
    return parts


def read_table(files: list[Path], table: str) -> pa.Table:
    """One table from its base and parts, in that order."""
    schema = TABLE_SCHEMAS[table]
    return pa.concat_tables([pq.read_table(path, schema=schema).replace_schema_metadata(None) for path in files]) \
        if files else schema.empty_table()


def rewrite_table(run_dir: Path, table: str, transform: Callable[[pa.Table], pa.Table]) -> None:
    """Replace a table by transform(its rows) as one base file, then delete its parts.

    The new base records the highest part number on disk as compacted through, so
    if this process dies before the parts are deleted, readers ignore them. The
    caller holds the run's lock (no writer adds parts meanwhile)."""
    files = table_files(run_dir).get(table, [])
    parts = all_parts(run_dir).get(table, [])
    base = run_dir / f"{table}.parquet"
    through = max([n for n, _ in parts], default=0)
    if base.exists():
        through = max(through, layout.compacted_through(pq.read_metadata(base).metadata))
    write_table(base, transform(read_table(files, table)), compacted_through=through)
    for _, path in parts:
        path.unlink(missing_ok=True)


def compact_run(run_dir: Path) -> int:
    """Merge each table's parts into its base file; returns how many part files were merged.
    The caller holds the run's lock."""
    merged = 0
    for table, parts in all_parts(run_dir).items():
        rewrite_table(run_dir, table, lambda rows: rows)
        merged += len(parts)
    return merged


def load_tables(root: Path, run_id: str, up_to_epoch: int) -> dict[str, pa.Table]:
    """The tables of a run (base and parts) cut to epochs <= up_to_epoch."""
    return {table: (rows := read_table(files, table)).filter(pc.less_equal(rows["epoch"], up_to_epoch))
            for table, files in table_files(layout.run_dir(root, run_id)).items()}


def remove_results(root: Path, run_id: str) -> None:
    """What an earlier run with this id left (tables, activations, checkpoints), before a fresh
    start replaces it; run.json stays until the new one is written. The caller holds the run's lock."""
    run_dir = layout.run_dir(root, run_id)
    for path in run_dir.glob("*.parquet"):
        if layout.parse_table_file(path.name):
            path.unlink(missing_ok=True)
    for folder in (layout.activations_dir(root, run_id), layout.checkpoints_dir(root, run_id)):
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- the writer

class RunWriter:
    """Writes one run: holds its lock, appends its rows as part files, keeps run.json current.

    `record_fields`: the run's RunRecord fields known before training (run_id, group_id,
    name, cohort, config, seed, split_seed, epochs_total, ignored_keys, ...).
    `flush_seconds`: at most this long between flushes, so a killed run keeps all but
    the last few seconds. `resume_epoch`: continue a run from this epoch (its rows
    after it are dropped); None or 0 starts it afresh, removing what an earlier run
    with this id left. `replace`: statuses of an earlier run that a fresh start may
    replace; any other existing status raises RunExists (nothing is changed).

    Raises RunLocked if another live process holds the run, StoreError if the
    root cannot be written.
    """

    def __init__(self, root: Path, record_fields: dict[str, Any], flush_seconds: float = 5.0,
                 resume_epoch: int | None = None, replace: Iterable[Status | str] = REPLACEABLE_BY_DEFAULT):
        self.root = Path(root)
        self.run_id = record_fields["run_id"]
        self.dir = layout.run_dir(self.root, self.run_id)
        self.flush_seconds = flush_seconds
        # Rows waiting for the next flush, as per-call column dicts: thousands of tiny
        # Arrow tables (one per epoch) would fragment memory, so Arrow sees one batch per flush.
        self.pending: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLE_SCHEMAS}
        self.last_flush = time.monotonic()
        self.write_error: str | None = None
        self._final: dict[str, tuple[int, float, float]] = {}   # split -> (epoch, loss, accuracy)
        self._best_test: float | None = None
        try:
            self.lock = RunLock.acquire(self.dir)
        except OSError as error:
            raise unwritable(self.root, error) from error
        try:
            previous = read_record(self.root, self.run_id)
            resuming = bool(resume_epoch)
            if previous is not None and not resuming and previous.status not in {Status(s) for s in replace}:
                raise RunExists(self.run_id, previous.status)
            for stray in self.dir.glob(".*.tmp"):   # left by a writer killed mid-write
                stray.unlink(missing_ok=True)
            if resuming:
                for table in table_files(self.dir):
                    rewrite_table(self.dir, table, lambda rows: rows.filter(
                        pc.less_equal(rows["epoch"], resume_epoch)))
                self._observe_metrics(load_tables(self.root, self.run_id, resume_epoch).get("metrics"))
            else:
                remove_results(self.root, self.run_id)
            self.next_part = 1 + max([n for parts in all_parts(self.dir).values() for n, _ in parts]
                                     + [layout.compacted_through(pq.read_metadata(files[0]).metadata)
                                        for files in table_files(self.dir).values()], default=0)
            self.record = RunRecord(**{
                **record_fields,
                "status": Status.RUNNING, "error": None,
                "started_at": previous.started_at if resuming and previous else now(),
                "finished_at": None, "heartbeat_at": now(),
                "epochs_done": resume_epoch or 0, "versions": versions(), "host": socket.gethostname(),
                "pid": os.getpid(), "schema_version": SCHEMA_VERSION, **self._finals()})
            write_record(self.dir / "run.json", self.record)
        except OSError as error:
            self.lock.release()
            raise unwritable(self.root, error) from error
        except BaseException:
            self.lock.release()
            raise

    def add(self, table: str, columns: dict[str, Any]) -> None:
        """Queue rows given as columns (name -> list or array; scalars repeat)."""
        n = max((len(v) for v in columns.values() if np.ndim(v)), default=1)
        self.pending[table].append({name: (v if np.ndim(v) else [v] * n) for name, v in columns.items()})

    def maybe_flush(self, epochs_done: int) -> None:
        if time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush(epochs_done)

    def flush(self, epochs_done: int) -> None:
        """Write one part per table with new rows, then run.json (heartbeat, epochs_done, final_*).

        All or nothing: if any part cannot be written (disk full, ...), the parts of this
        flush are removed again, the rows stay pending and StoreError is raised, so the
        tables on disk and run.json's epochs_done still agree."""
        written: list[Path] = []
        batches = {}
        try:
            for name, queued in self.pending.items():
                if queued:
                    batches[name] = pa.Table.from_pydict(
                        {column: np.concatenate([rows[column] for rows in queued]) for column in queued[0]},
                        schema=TABLE_SCHEMAS[name])
            for name, batch in batches.items():
                path = layout.table_part_path(self.root, self.run_id, name, self.next_part)
                written.append(path)
                write_table(path, batch)
            self._write_record(epochs_done=epochs_done, metrics=batches.get("metrics"))
        except OSError as error:
            for path in written:
                path.unlink(missing_ok=True)
            self.write_error = error.strerror or str(error)
            raise unwritable(self.root, error) from error
        if batches:
            self.next_part += 1
        self.pending = {name: [] for name in TABLE_SCHEMAS}
        self.last_flush = time.monotonic()

    def _write_record(self, metrics: pa.Table | None = None, **fields: Any) -> None:
        """run.json with these fields changed; the in-memory state changes only if the write succeeds."""
        final, best = dict(self._final), self._best_test
        self._observe_metrics(metrics)
        try:
            record = RunRecord.model_validate(
                {**self.record.model_dump(), **fields, "heartbeat_at": now(), **self._finals()})
            write_record(self.dir / "run.json", record)
        except BaseException:
            self._final, self._best_test = final, best
            raise
        self.record = record

    def _observe_metrics(self, metrics: pa.Table | None) -> None:
        """Keep the last epoch's loss and accuracy per split and the best test accuracy."""
        if metrics is None or metrics.num_rows == 0:
            return
        rows = metrics.select(["epoch", "split", "loss", "accuracy"]).to_pylist()
        for row in rows:
            if row["split"] in ("train", "test") and row["epoch"] >= self._final.get(row["split"], (-1,))[0]:
                self._final[row["split"]] = (row["epoch"], row["loss"], row["accuracy"])
            if row["split"] == "test" and row["accuracy"] is not None and np.isfinite(row["accuracy"]) \
                    and (self._best_test is None or row["accuracy"] > self._best_test):
                self._best_test = row["accuracy"]

    def _finals(self) -> dict[str, float | None]:
        finals: dict[str, float | None] = {"best_test_accuracy": self._best_test}
        for split in ("train", "test"):
            _, loss, accuracy = self._final.get(split, (None, None, None))
            finals[f"final_{split}_loss"], finals[f"final_{split}_accuracy"] = loss, accuracy
        return finals

    def finish(self, status: Status | str, epochs_done: int, error: str | None = None,
               dead_network: bool | None = None, diverged: bool | None = None) -> Status:
        """Flush what is left, record the final status, compact the tables, release the lock.
        Returns the status recorded in run.json.

        If the tables cannot be written, the run is recorded `failed` with the write error
        and the epochs_done of its last successful flush (so run.json agrees with the
        tables). StoreError only if run.json itself cannot be written."""
        if not self.lock.held:
            raise RuntimeError(f"run {self.run_id!r}: finish() after the writer was closed")
        ending = {"finished_at": now(), "dead_network": dead_network, "diverged": diverged}
        try:
            try:
                self.flush(epochs_done)
            except StoreError:
                reason = WRITE_FAILED + self.write_error
                self._write_record(status=Status.FAILED, error=f"{reason}; {error}" if error else reason, **ending)
                return self.record.status
            self._write_record(status=Status(status), error=error, epochs_done=epochs_done, **ending)
            if self.record.status != Status.INTERRUPTED:  # an interrupted process should stop quickly
                try:
                    compact_run(self.dir)
                except (OSError, pa.ArrowException):
                    pass  # the parts stay valid and readable; `trainer compact` merges them later
            return self.record.status
        except OSError as failure:
            raise unwritable(self.root, failure) from failure
        finally:
            self.close()

    def close(self) -> None:
        """Release the run's lock without writing (idempotent). A run left `running` with a
        free lock reads as interrupted."""
        self.lock.release()


# ---------------------------------------------------------------- `trainer compact`

def compact(root: Path) -> tuple[dict[str, int], dict[str, str], dict[str, str]]:
    """Merge the part files of every run no live process holds.

    Returns ({run_id: parts merged}, {run_id: who holds it} for live runs left alone,
    {run_id: error} for runs that could not be compacted)."""
    merged, held, failed = {}, {}, {}
    runs_dir = layout.runs_dir(root)
    run_dirs = sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink()
                      and not p.name.startswith(".")) if runs_dir.is_dir() else []
    for run_dir in run_dirs:
        if not all_parts(run_dir):
            continue
        try:
            with RunLock.acquire(run_dir, wait_s=0.2):
                merged[run_dir.name] = compact_run(run_dir)
        except RunLocked as locked:
            held[run_dir.name] = describe_holder(locked.holder)
        except (OSError, pa.ArrowException) as error:
            failed[run_dir.name] = f"{type(error).__name__}: {error}"
    return merged, held, failed
