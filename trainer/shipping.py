"""Sweeps whose workers cannot see the results root: workers train into node-local scratch
and ship every file they write to the driver, the only writer of the root.

Worker side (`train_shipped`, a generator run as a Ray streaming-generator task): the
group trains into a private scratch root (trainer.task.train_group, unchanged) on a
thread, while the generator polls the scratch run folders and yields each new, changed
or removed file as a `RunChanges`; last it yields the GroupResult.

Driver side (`ShippedRuns`): before the task starts it takes each run's lock in the root
(so liveness is the driver's, and the live explorer on its machine shows the runs
running), decides as trainer.task.check_run does whether the run may be trained, and
collects what the worker needs: for a resumed run, its whole folder (run.json, tables,
checkpoints); for a fresh run, nothing (its old results are removed in the root, as a
fresh RunWriter would). Each `RunChanges` is then written into the root atomically.

Order keeps readers consistent, as the local writer does: the worker reads run.json
before it lists the tables, so every part that run.json's epochs_done counts was
already listed; the driver writes the other files first, run.json after them, and
removes files last (a compacted base is in place before its parts go).
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ibstore import index, layout
from ibstore.lifecycle import may_replace, read_record
from ibstore.lock import LOCK_FILE, RunLock, RunLocked, describe_holder
from ibstore.progress import HELD
from ibstore.record import RecordError, RunRecord, run_flags
from trainer.atomic import write_bytes
from trainer.plan import Group, Task
from trainer.progress import Trained
from trainer.store import remove_results, unwritable
from trainer.task import GroupResult, RunResult, train_group

RUN_JSON = "run.json"
# How often the worker looks for new files: a worker killed between a flush and the next
# poll loses that flush (its run keeps everything shipped before).
POLL_SECONDS = 0.25
# The environment variable naming the worker's scratch folder (default: its temp dir).
SCRATCH_ENV = "IB_SCRATCH"


@dataclass(frozen=True)
class FileChange:
    path: str               # relative to the run folder, "/"-separated ("checkpoints/epoch_000010.npz")
    data: bytes | None      # None: the file was removed


@dataclass(frozen=True)
class RunChanges:
    run_id: str
    changes: tuple[FileChange, ...]


# ---------------------------------------------------------------- worker side

def run_files(run_dir: Path) -> dict[str, Path]:
    """The files of a run folder that travel, by relative path: everything but the lock and
    temporary files (names starting with ".")."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(run_dir):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and name != LOCK_FILE:
                path = Path(dirpath) / name
                found[path.relative_to(run_dir).as_posix()] = path
    return found


@dataclass
class ScratchWatcher:
    """What the driver has of each run, and the changes since (`poll`)."""

    root: Path
    run_ids: list[str]
    # run id -> relative path -> the version the driver has: run.json's bytes, else the
    # file's (inode, size, mtime_ns) (the writer replaces files by rename: a new inode)
    shipped: dict[str, dict[str, bytes | tuple[int, int, int] | None]] = field(default_factory=dict)

    def mark_shipped(self, run_id: str) -> None:
        """The driver already has the run's files as they are now (they came from it)."""
        files = run_files(layout.run_dir(self.root, run_id))
        self.shipped[run_id] = {relative: path.read_bytes() if relative == RUN_JSON else _signature(path)
                                for relative, path in files.items()}

    def poll(self) -> list[RunChanges]:
        found = []
        for run_id in self.run_ids:
            changes = self._changes(run_id)
            if changes:
                found.append(RunChanges(run_id, tuple(changes)))
        return found

    def _changes(self, run_id: str) -> list[FileChange]:
        run_dir = layout.run_dir(self.root, run_id)
        shipped = self.shipped.setdefault(run_id, {})
        # run.json first, so the tables listed after it hold every row it counts. It is rewritten
        # often and small: compared by content (two writes within one mtime tick look alike).
        record = _read(run_dir / RUN_JSON)
        files = {relative: path for relative, path in run_files(run_dir).items() if relative != RUN_JSON}
        writes, now_shipped = [], {}
        for relative, path in sorted(files.items()):
            signature = _signature(path)
            if shipped.get(relative) != signature:
                data = _read(path)
                if data is None:  # removed since it was listed: shipped as a removal below
                    continue
                writes.append(FileChange(relative, data))
            now_shipped[relative] = signature
        if record is not None:
            if shipped.get(RUN_JSON) != record:
                writes.append(FileChange(RUN_JSON, record))
            now_shipped[RUN_JSON] = record
        removals = [FileChange(relative, None) for relative in sorted(set(shipped) - set(now_shipped))]
        self.shipped[run_id] = now_shipped
        return writes + removals


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def scratch_base() -> str:
    """Where a worker's scratch roots live: $IB_SCRATCH, else the temp dir ($TMPDIR, /tmp)."""
    return os.environ.get(SCRATCH_ENV) or tempfile.gettempdir()


def train_shipped(group: Group, seeds: dict[str, tuple[FileChange, ...]]) -> Iterator[RunChanges | Trained | GroupResult]:
    """Train the group in a fresh scratch root, yielding its file changes and its progress
    (`Trained`) as they appear, then its GroupResult. `seeds`: run id -> the files the run
    starts from (resumed runs)."""
    scratch = Path(tempfile.mkdtemp(prefix="ib-scratch-", dir=scratch_base()))
    try:
        watcher = ScratchWatcher(scratch, group.run_ids)
        for run_id, files in seeds.items():
            apply_changes(layout.run_dir(scratch, run_id), files)
            watcher.mark_shipped(run_id)
        outcome: list[GroupResult] = []
        progress: queue.SimpleQueue[Trained] = queue.SimpleQueue()
        trainer = threading.Thread(target=lambda: outcome.append(train_group(group, scratch, on_trained=progress.put)),
                                   name="train-group")
        trainer.start()
        # Plain loops, not `yield from` a list: Ray drives the generator with send().
        while trainer.is_alive():
            trainer.join(POLL_SECONDS)
            for changes in watcher.poll():
                yield changes
            while not progress.empty():
                yield progress.get()
        for changes in watcher.poll():
            yield changes
        while not progress.empty():
            yield progress.get()
        yield outcome[0]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------- driver side

class ShipError(ValueError):
    """A worker sent something that is not a file of one of its runs."""


def checked_path(run_dir: Path, relative: str) -> Path:
    """`run_dir / relative`, refusing anything that could leave the run folder (a `..`, or a
    symlinked folder on the way) or touch its lock or temporary files."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts) \
            or any(run_dir.joinpath(*parts[:depth]).is_symlink() for depth in range(1, len(parts))):
        raise ShipError(f"a worker sent the file {relative!r}: only plain paths inside its run folder are allowed")
    return run_dir.joinpath(*parts)


def apply_changes(run_dir: Path, changes: tuple[FileChange, ...]) -> None:
    """Write each file atomically (in the order given), then remove the removed ones.

    If a write fails, the files this call wrote are removed again and the error is raised,
    so run.json never counts rows that are not on disk."""
    targets = [(checked_path(run_dir, change.path), change.data) for change in changes]
    written = []
    try:
        for path, data in targets:
            if data is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_bytes(path, data)
                written.append(path)
    except BaseException:
        for path in written:
            if path.name != RUN_JSON:
                path.unlink(missing_ok=True)
        raise
    for path, data in targets:
        if data is None:
            path.unlink(missing_ok=True)


@dataclass
class ShippedRuns:
    """The driver's side of one shipped group: the runs' locks, what the worker starts from,
    and the runs it does not train (held by another process, or done meanwhile)."""

    root: Path
    group: Group
    locks: dict[str, RunLock] = field(default_factory=dict)
    seeds: dict[str, tuple[FileChange, ...]] = field(default_factory=dict)
    not_trained: dict[str, RunResult] = field(default_factory=dict)

    @classmethod
    def claim(cls, root: Path, group: Group) -> ShippedRuns:
        """Lock every run of the group that may be trained now (raises StoreError if the root
        cannot be written; then no lock is kept)."""
        claimed = cls(root, group)
        try:
            for task in group.tasks:
                for seed in task.seeds:
                    claimed._claim(task, seed)
        except OSError as error:
            claimed.release()
            raise unwritable(root, error) from error
        return claimed

    def _claim(self, task: Task, seed: int) -> None:
        run_id = task.experiment.run_id(seed)
        run_dir = layout.run_dir(self.root, run_id)
        try:
            lock = RunLock.acquire(run_dir, wait_s=0.2)
        except RunLocked as locked:
            self.not_trained[run_id] = RunResult(run_id, task.experiment.name, seed, HELD, None,
                                                 describe_holder(locked.holder), False)
            return
        record = read_record(self.root, run_id)
        if not task.resume and not may_replace(record, task.redo):
            lock.release()
            self.not_trained[run_id] = RunResult(run_id, task.experiment.name, seed, record.status.value,
                                                 record.final_test_accuracy, record.error, False,
                                                 flags=tuple(run_flags(record)))
            return
        self.locks[run_id] = lock
        if task.resume:
            self.seeds[run_id] = tuple(FileChange(relative, path.read_bytes())
                                       for relative, path in sorted(run_files(run_dir).items()))
        else:
            remove_results(self.root, run_id)

    @property
    def to_train(self) -> Group | None:
        """The group cut to the runs this driver holds (None: nothing to train)."""
        tasks = []
        for task in self.group.tasks:
            seeds = tuple(seed for seed in task.seeds if task.experiment.run_id(seed) in self.locks)
            if seeds:
                tasks.append(replace(task, seeds=seeds))
        return Group(tuple(tasks)) if tasks else None

    def write(self, changes: RunChanges) -> None:
        """One run's changes into the root (OSError if it cannot be written).

        run.json is validated and gets this process's host and pid: readers on this host
        then judge liveness by the lock it holds (ibstore.scan.live_status), at once, not
        by the heartbeat age they use for a run of another host."""
        if changes.run_id not in self.locks:
            raise ShipError(f"a worker sent files of run {changes.run_id!r}, which it does not train")
        apply_changes(layout.run_dir(self.root, changes.run_id),
                      tuple(self._as_driver(change) if change.path == RUN_JSON and change.data is not None else change
                            for change in changes.changes))

    @staticmethod
    def _as_driver(change: FileChange) -> FileChange:
        try:
            record = RunRecord.from_json_bytes(change.data)
        except RecordError as error:
            raise ShipError(f"a worker sent a run.json that is not a valid record: {error}") from None
        return replace(change, data=record.model_copy(update={"host": socket.gethostname(),
                                                              "pid": os.getpid()}).to_json_bytes())

    def result(self, trained: GroupResult) -> GroupResult:
        """The whole group's result: the worker's for the runs it trained, ours for the others."""
        by_id = {run.run_id: run for run in trained.runs} | self.not_trained
        return replace(trained, runs=[by_id[run_id] for run_id in self.group.run_ids])

    def release(self) -> None:
        """Free the runs: one the worker left `running` now reads as interrupted. Each run's entry
        goes to the driver's index first (the driver is the root's only writer), so readers after
        the sweep do not read these folders."""
        for run_id, lock in self.locks.items():
            index.record_run(self.root, run_id)
            lock.release()

