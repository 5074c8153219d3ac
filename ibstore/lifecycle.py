"""A run's lifecycle as every command sees it: the status it is shown with, who holds it, and
whether a new writer may replace it.

`trainer ls`, `trainer run`, the sweep (planning, its workers' re-check, waiting for held
runs, the final tally) and `trainer estimate` ask these questions; this is the one place
that answers them (DESIGN.md, "Runs, locks and sweeps").
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from pathlib import Path

from ibstore import layout, lock
from ibstore.record import RecordError, RunRecord, Status
from ibstore.scan import live_status

# What a writer that starts a run afresh may always replace, read under the run's lock: a run
# that was interrupted, or whose writer died (`running` with a free lock).
ALWAYS_REPLACEABLE = frozenset({Status.INTERRUPTED, Status.RUNNING})


@dataclass(frozen=True)
class Redo:
    """Which earlier outcomes a command trains again (the rest are kept).

    `interrupted`: interrupted runs (sweep --resume or --force; `trainer run` always);
    `failed`: failed and diverged runs (sweep --retry-failed or --force; `trainer run` always);
    `completed`: completed runs (--force)."""

    interrupted: bool = False
    failed: bool = False
    completed: bool = False

    @property
    def replaceable(self) -> frozenset[Status]:
        """Statuses of an earlier record that a fresh start may replace."""
        return ALWAYS_REPLACEABLE | ({Status.FAILED, Status.DIVERGED} if self.failed else set()) \
            | ({Status.COMPLETED} if self.completed else set())


def may_replace(record: RunRecord | None, redo: Redo) -> bool:
    """May a writer holding the run's lock start it afresh? Yes if it has no record or one whose
    status `redo` allows (under the lock a `running` record is a dead writer's)."""
    return record is None or record.status in redo.replaceable


class Action(enum.Enum):
    """What planning does with one run."""

    TRAIN = "train"          # never started, or an outcome `redo` trains again
    CONTINUE = "continue"    # interrupted and `redo.interrupted`: resumed from a checkpoint or restarted
    HELD = "held"            # a live process holds it: not touched
    KEEP = "keep"            # an outcome `redo` keeps


def action(shown: Status | None, redo: Redo) -> Action:
    """What to do with a run whose status as shown (`shown_status`) is `shown` (None: no record)."""
    if shown is None:
        return Action.TRAIN
    if shown is Status.RUNNING:
        return Action.HELD
    if shown is Status.INTERRUPTED:
        return Action.CONTINUE if redo.interrupted else Action.KEEP
    return Action.TRAIN if shown in redo.replaceable else Action.KEEP


def read_record(root: Path, run_id: str) -> RunRecord | None:
    """The run's record, or None if it has none or it cannot be used."""
    try:
        return RunRecord.from_json_bytes(layout.run_json_path(root, run_id).read_bytes())
    except (OSError, RecordError):
        return None


def shown_status(root: Path, record: RunRecord, now: float | None = None) -> Status:
    """The record's status as `trainer ls` shows it: a `running` run whose writer is gone
    (its lock is free, or on another host its heartbeat is stale) is interrupted."""
    return live_status(record, layout.run_dir(root, record.run_id), time.time() if now is None else now)


def current_status(root: Path, run_id: str, now: float | None = None) -> Status | None:
    """The run's status as shown, or None if it has no usable run.json."""
    record = read_record(root, run_id)
    return None if record is None else shown_status(root, record, now)


def holder_text(root: Path, record: RunRecord) -> str:
    """Who holds a live run: 'held by pid P on host H since T' from its lock on this host,
    else what its run.json says (a run on another host, alive by its heartbeat)."""
    run_dir = layout.run_dir(root, record.run_id)
    if lock.is_live(run_dir):
        return lock.describe_holder(lock.holder(run_dir))
    heartbeat = f"{record.heartbeat_at:%H:%M:%S} UTC" if record.heartbeat_at else "no heartbeat"
    return f"running as pid {record.pid} on host {record.host} (heartbeat {heartbeat})"


@dataclass(frozen=True)
class Existing:
    """A run as found now: its status as shown (None: no record) and a note, who holds it if
    it is live, else the first line of its error."""

    status: Status | None
    note: str | None = None


def existing(root: Path, run_id: str) -> Existing:
    record = read_record(root, run_id)
    if record is None:
        return Existing(None)
    status = shown_status(root, record)
    if status is Status.RUNNING:
        return Existing(status, holder_text(root, record))
    return Existing(status, record.error.splitlines()[0] if record.error else None)


@dataclass(frozen=True)
class Outcome:
    """What a training call did with one run: the status it recorded, or why it did not train it."""

    status: Status | None                 # as recorded in run.json; None: not trained
    refused: str | None = None            # not trained: who holds it, the status it may not replace, or
                                          # (status FAILED) why it could not be resumed
    write_error: str | None = None        # its results could not be written (it is recorded failed)
