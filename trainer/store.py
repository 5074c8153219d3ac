"""The run writer: writes one run into the results root, run.json and the Parquet tables, as appends.

Each flush writes one new part per table with new rows (trainer.tables: a table is a
base file plus part files), so the cost of a run is linear in its rows; nothing already
on disk is rewritten while the run trains. When a run ends, its parts are compacted.
Every file is written atomically (trainer.atomic). run.json is written last, only
through ibstore.record.RunRecord, so its epochs_done never runs ahead of the tables.

A writer holds the run's lock (ibstore.lock) from construction to finish/close:
no other process trains, compacts or re-estimates the run meanwhile.
"""

from __future__ import annotations

import errno
import itertools
import os
import platform
import shutil
import socket
import sys
import time
from concurrent.futures import Executor, Future, wait
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ibstore import index, layout
from ibstore.git_commit import git_commit
from ibstore.lifecycle import Redo, may_replace, read_record
from ibstore.lock import RunLock
from ibstore.record import SCHEMA_VERSION, RunRecord, SplitFacts, Status, utc_now
from ibstore.schema import TABLE_SCHEMAS
from trainer.atomic import PART_CODEC, write_bytes, write_table
from trainer.config import Experiment, group_id
from trainer.final_metrics import FinalMetrics
from trainer.tables import compact_run, list_tables, load_tables, next_part, rewrite_table

# How run.json's `error` begins when the run failed because its results could not be written.
WRITE_FAILED = "writing the results failed: "


class StoreError(OSError):
    """The results root cannot be written (not writable, disk full, ...)."""


class FolderLost(StoreError):
    """A run's folder was removed, moved or replaced while it trained (`RunWriter.folder_lost`)."""

    def __init__(self, message: str, run_id: str):
        super().__init__(message)
        self.run_id = run_id

    def __reduce__(self):      # whole across processes (a worker's, a Ray task's)
        return type(self), (self.args[0], self.run_id)


class RunExists(Exception):
    """The run already has a result this writer was not allowed to replace (e.g. completed)."""

    def __init__(self, run_id: str, status: Status):
        self.run_id, self.status = run_id, status
        super().__init__(f"run {run_id!r} is already {status}")


class RunDamaged(Exception):
    """A run to resume whose tables cannot be read: its run.json now says failed, and why."""


def unwritable(root: Path, error: OSError) -> StoreError:
    # another folder helps where this one refuses writes or is full, not where one of its files is wrong
    helps = error.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT) or error.errno is None
    advice = " Choose a writable folder with --results DIR or $IB_RESULTS." if helps else ""
    return StoreError(f"cannot write results under {str(root)!r}: {error.strerror or error}.{advice}")


def run_fields(experiment: Experiment, seed: int) -> dict[str, Any]:
    """The RunRecord fields of one run known before it trains (a RunWriter's `record_fields`)."""
    config = experiment.config.model_dump()     # the edge: run.json records the config in its JSON form
    return {"run_id": experiment.run_id(seed), "group_id": group_id(experiment.name, config),
            "name": experiment.name, "cohort": experiment.cohort, "config": {**config, "seed": seed},
            "seed": seed, "epochs_total": config["epochs"], "split_seed": config["split_seed"],
            "ignored_keys": sorted(experiment.ignored)}


def write_record(path: Path, record: RunRecord, sync: bool = True) -> None:
    """run.json, atomically, through the typed record (the only way run.json is written)."""
    write_bytes(path, record.to_json_bytes(), sync)


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


def remove_results(root: Path, run_id: str) -> None:
    """What an earlier run with this id left (tables, activations, checkpoints), before a fresh
    start replaces it; the caller holds the run's lock and has written the new run.json first."""
    run_dir = layout.run_dir(root, run_id)
    for path in run_dir.glob("*.parquet"):
        if layout.parse_table_file(path.name):
            path.unlink(missing_ok=True)
    for folder in (layout.activations_dir(root, run_id), layout.checkpoints_dir(root, run_id)):
        if folder.is_symlink():   # the link goes, not what it points to (rmtree refused it, unsaid)
            folder.unlink()
        else:
            shutil.rmtree(folder, ignore_errors=True)


def is_column(value: Any) -> bool:
    """Whether a value given for a column holds one value per row (np.ndim(value) > 0), not a scalar
    that repeats. Lists and tuples are columns without asking np.ndim, which would convert each one
    to an array: a network's mi rows are eleven lists, queued at every logged epoch."""
    if isinstance(value, (list, tuple)):
        return True
    if isinstance(value, (str, bytes, int, float, type(None))):
        return False
    return np.ndim(value) > 0


def queued_table(queued: list[dict[str, Any] | pa.Table], schema: pa.Schema) -> pa.Table:
    """The queued rows of one table as one Arrow table, in their order: Arrow tables as they are
    (no copy), each run of column dicts concatenated first (one conversion to Arrow per run)."""
    parts = []
    for is_table, group in itertools.groupby(queued, key=lambda rows: isinstance(rows, pa.Table)):
        group = list(group)
        parts += group if is_table else [pa.Table.from_pydict(
            {column: np.concatenate([rows[column] for rows in group]) for column in group[0]}, schema=schema)]
    return pa.concat_tables(parts)


class RunWriter:
    """Writes one run: holds its lock, appends its rows as part files, keeps run.json current.

    `record_fields`: the run's RunRecord fields known before training (run_id, group_id,
    name, cohort, config, seed, split_seed, epochs_total, ignored_keys, ...).
    `flush_seconds`: at most this long between flushes, so a killed run keeps all but
    the last few seconds. `resume_epoch`: continue a run from this epoch (its rows
    after it are dropped); None or 0 starts it afresh, removing what an earlier run
    with this id left. `redo`: which earlier outcomes a fresh start may replace
    (ibstore.lifecycle.may_replace); any other raises RunExists (nothing is changed).

    Raises RunLocked if another live process holds the run, StoreError if the
    root cannot be written.
    """

    def __init__(self, root: Path, record_fields: dict[str, Any], flush_seconds: float = 5.0,
                 resume_epoch: int | None = None, redo: Redo = Redo()):
        self.root = Path(root)
        self.run_id = record_fields["run_id"]
        self.dir = layout.run_dir(self.root, self.run_id)
        self.flush_seconds = flush_seconds
        # Rows waiting for the next flush: column dicts, converted to Arrow once per flush (thousands
        # of tiny Arrow tables, one per epoch, would fragment memory), or slices of a stack's Arrow
        # tables (trainer.stack_rows: views of one table per logged epoch for the whole stack).
        self.pending: dict[str, list[dict[str, Any] | pa.Table]] = {name: [] for name in TABLE_SCHEMAS}
        self.last_flush = time.monotonic()
        # The flush writing in the background (`start_flush`) and the rows it took, until settled.
        self.writing: tuple[Future, dict[str, list[dict[str, Any] | pa.Table]]] | None = None
        self.write_error: str | None = None
        self.finals = FinalMetrics()
        try:
            self.lock = RunLock.acquire(self.dir)
        except OSError as error:
            raise unwritable(self.root, error) from error
        try:
            previous = read_record(self.root, self.run_id)
            resuming = bool(resume_epoch)
            if not resuming and not may_replace(previous, redo):
                raise RunExists(self.run_id, previous.status)
            for stray in self.dir.glob(".*.tmp"):   # left by a writer killed mid-write
                stray.unlink(missing_ok=True)
            # The new record first, then what it replaces: a kill while the tables are removed or cut
            # back leaves a running record of a dead process (read as interrupted) at the epoch the
            # tables are cut to, with the final metrics of that epoch (read before: a kill between two
            # writes once left them blank). In the other order a kill left "completed" over removed
            # tables, or an epochs_done beyond the rows kept.
            self.record = RunRecord(**{
                **record_fields,
                "status": Status.RUNNING, "error": None,
                "started_at": previous.started_at if resuming and previous else utc_now(),
                # the data its checkpoint was trained on, until the run's data loads (training._set_up compares)
                "data_sha256": previous.data_sha256 if resuming and previous else None,
                "finished_at": None, "heartbeat_at": utc_now(),
                "epochs_done": resume_epoch or 0, "versions": versions(), "host": socket.gethostname(),
                "pid": os.getpid(), "schema_version": SCHEMA_VERSION})
            try:
                if resuming:
                    self.finals.observe(load_tables(self.root, self.run_id, resume_epoch).get("metrics"))
                    self.record = self.record.model_copy(update=self.finals.fields())
                write_record(self.dir / "run.json", self.record)
                if resuming:
                    listing = list_tables(self.dir)
                    for table in listing.files:
                        rewrite_table(self.dir, table, lambda rows: rows.filter(
                            pc.less_equal(rows["epoch"], resume_epoch)), listing)
            except pa.ArrowException as damage:   # a truncated or foreign file: the run cannot go on
                self._record_damage(damage)
            if not resuming:
                remove_results(self.root, self.run_id)
            self.next_part = next_part(self.dir)
        except OSError as error:
            self.lock.release()
            raise unwritable(self.root, error) from error
        except BaseException:
            self.lock.release()
            raise

    def _record_damage(self, damage: Exception) -> None:
        error = (f"cannot resume: a table of this run cannot be read ({' '.join(str(damage).split())}); "
                 f"train it again from the start (--force)")
        self.record = self.record.model_copy(update={"status": Status.FAILED, "error": error,
                                                     "finished_at": utc_now()})
        write_record(self.dir / "run.json", self.record)
        raise RunDamaged(error) from None

    def describe_data(self, splits: dict[str, SplitFacts], sha256: str) -> None:
        """The run's data, once loaded (RunRecord.splits, .data_sha256), in run.json at once: another
        sweep planning beside this one compares the digest (an attacker's swapped the file in the
        seconds before the first flush, and a second sweep trained the group's other seeds on it)."""
        self.record = self.record.model_copy(update={"splits": splits, "data_sha256": sha256})
        write_record(self.dir / "run.json", self.record, sync=False)

    def add(self, table: str, columns: dict[str, Any] | pa.Table) -> None:
        """Queue rows given as an Arrow table of the table's schema (e.g. a slice of a stack's rows,
        trainer.stack_rows), or as columns (name -> list or array; scalars repeat)."""
        if isinstance(columns, pa.Table):
            self.pending[table].append(columns)
            return
        n = max((len(v) for v in columns.values() if is_column(v)), default=1)
        self.pending[table].append({name: (v if is_column(v) else [v] * n) for name, v in columns.items()})

    def flush_due(self) -> bool:
        """Whether the flush interval has passed since the last flush."""
        return time.monotonic() - self.last_flush >= self.flush_seconds

    def flush(self, epochs_done: int) -> None:
        """Write one part per table with new rows, then run.json (heartbeat, epochs_done, final_*).

        All or nothing: if any part cannot be written (disk full, ...), the parts of this
        flush are removed again, the rows stay pending and StoreError is raised, so the
        tables on disk and run.json's epochs_done still agree. A flush still writing in the
        background (`start_flush`) ends first; its failure is raised here."""
        self.settle()
        taken = self._take()
        try:
            self._write(taken, epochs_done)
        except BaseException:
            self._put_back(taken)
            raise

    def start_flush(self, epochs_done: int, pool: Executor) -> None:
        """`flush`, written by `pool` while the caller goes on (trains the next chunk): the rows
        queued so far are taken now, rows added meanwhile wait for the next flush. The next
        flush, `settle` or `finish` waits for it and raises its failure (its rows pending again)."""
        self.settle()
        taken = self._take()
        self.writing = (pool.submit(self._write, taken, epochs_done), taken)

    def settle(self) -> None:
        """Wait for the flush writing in the background, if any; raise its failure (StoreError,
        ...) with its rows queued again before those added since (all or nothing, as `flush`)."""
        if self.writing is None:
            return
        future, taken = self.writing
        wait([future])   # a Ctrl-C here leaves it in `writing`: the next settle waits again
        self.writing = None
        if future.exception() is not None:
            self._put_back(taken)
            raise future.exception()

    def _take(self) -> dict[str, list[dict[str, Any] | pa.Table]]:
        taken, self.pending = self.pending, {name: [] for name in TABLE_SCHEMAS}
        self.last_flush = time.monotonic()
        return taken

    def _put_back(self, taken: dict[str, list[dict[str, Any] | pa.Table]]) -> None:
        self.pending = {name: taken[name] + self.pending[name] for name in TABLE_SCHEMAS}

    def _write(self, taken: dict[str, list[dict[str, Any] | pa.Table]], epochs_done: int) -> None:
        """The parts of these rows, then run.json; on failure the parts written are removed again.
        Nothing where the run's folder is no longer the one it locked (`folder_lost`)."""
        self.folder_lost()
        written: list[Path] = []
        batches = {}
        try:
            for name, queued in taken.items():
                if queued:
                    batches[name] = queued_table(queued, TABLE_SCHEMAS[name])
            for name, batch in batches.items():
                path = layout.table_part_path(self.root, self.run_id, name, self.next_part)
                written.append(path)
                write_table(path, batch, codec=PART_CODEC)
            self._write_record(epochs_done=epochs_done, metrics=batches.get("metrics"))
        except OSError as error:
            for path in written:
                path.unlink(missing_ok=True)
            self.write_error = error.strerror or str(error)
            raise unwritable(self.root, error) from error
        if batches:
            self.next_part += 1

    def folder_lost(self) -> None:
        """StoreError where the run's folder was removed, moved or replaced while it trains
        (`RunLock.in_place`): its rows would go to a new folder, without the earlier ones."""
        if self.lock.held and not self.lock.in_place():
            raise FolderLost(f"run folder {str(self.dir)!r} was removed, moved or replaced (or its .lock removed) "
                             "while the run trained: nothing more is written for it, and the sweep stops (`trainer "
                             "ls` shows how the runs beside it ended)", self.run_id)

    def _write_record(self, metrics: pa.Table | None = None, **fields: Any) -> None:
        """run.json with these fields changed; the in-memory state changes only if the write succeeds."""
        before = self.finals.copy()
        self.finals.observe(metrics)
        try:
            record = RunRecord.model_validate(
                {**self.record.model_dump(), **fields, "heartbeat_at": utc_now(), **self.finals.fields()})
            write_record(self.dir / "run.json", record)
        except BaseException:
            self.finals = before
            raise
        self.record = record

    def finish(self, status: Status | str, epochs_done: int, error: str | None = None,
               dead_network: bool | None = None, diverged: bool | None = None,
               dead_layers: list[int] | None = None, saturated_network: bool | None = None) -> Status:
        """Flush what is left, record the final status, compact the tables, release the lock.
        Returns the status recorded in run.json.

        If the tables cannot be written, the run is recorded `failed` with the write error
        and the epochs_done of its last successful flush (so run.json agrees with the
        tables). StoreError only if run.json itself cannot be written."""
        if not self.lock.held:
            raise RuntimeError(f"run {self.run_id!r}: finish() after the writer was closed")
        ending = {"finished_at": utc_now(), "dead_network": dead_network, "diverged": diverged,
                  "dead_layers": dead_layers, "saturated_network": saturated_network}
        try:
            try:
                self.flush(epochs_done)
            except StoreError:
                self.folder_lost()   # no record where the folder is gone: it would make a new one
                reason = WRITE_FAILED + self.write_error
                self._write_record(status=Status.FAILED, error=f"{reason}; {error}" if error else reason, **ending)
                return self.record.status
            self._write_record(status=Status(status), error=error, epochs_done=epochs_done, **ending)
            if self.record.status != Status.INTERRUPTED:  # an interrupted process should stop quickly
                try:
                    compact_run(self.dir)
                except (OSError, pa.ArrowException):
                    pass  # the parts stay valid and readable; `trainer compact` merges them later
            # While the lock is held nothing else changes the folder: readers after the sweep
            # take this entry instead of reading the run (ibstore.index_pending).
            index.record_run(self.root, self.run_id)
            return self.record.status
        except StoreError:
            raise
        except OSError as failure:
            raise unwritable(self.root, failure) from failure
        finally:
            self.close()

    def close(self) -> None:
        """Release the run's lock without writing (idempotent). A run left `running` with a
        free lock reads as interrupted. A flush still writing in the background ends first (no
        other process may take the run while it writes); its failure stays in `write_error`."""
        if self.writing is not None:
            wait([self.writing[0]])
            self.writing = None
        self.lock.release()
