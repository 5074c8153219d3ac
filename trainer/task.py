"""One unit of sweep work, in a worker process: train a group's runs and report what run.json says.

The planner's view may be out of date by the time a group starts (two sweeps of one
cohort plan the same runs). So each run is checked again under its lock: a run
another live process holds is reported `held` and left alone; a run that meanwhile
got a status the group may not replace (completed by the other sweep) is reported
with that status and left alone. The writer repeats the check when it takes the
lock for training (training.run_group then skips the run), so a run is never
trained twice nor overwritten by a race.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ibstore import layout
from ibstore.lifecycle import Outcome, may_replace, read_record, shown_status
from ibstore.lock import RunLock, RunLocked, describe_holder, holder, is_live
from ibstore.progress import HELD, LOST, NOT_STARTED
from ibstore.record import Status, run_flags
from trainer.plan import Group, Task
from trainer.progress import Trained
from trainer.store import FolderLost, StoreError, unwritable


@dataclass(frozen=True)
class RunResult:
    run_id: str
    name: str
    seed: int
    status: str                     # a Status value, HELD, NOT_STARTED or LOST
    test_accuracy: float | None
    error: str | None = None        # the run's error, or who holds it
    trained_here: bool = True       # False: this worker found it done (or held) by another process
    seconds: float | None = None    # from taking the run to its end, as its run.json records them
    flags: tuple[str, ...] = ()     # its health flags (ibstore.record.run_flags): dead, saturated, diverged


@dataclass(frozen=True)
class GroupResult:
    runs: list[RunResult]
    seconds: float
    store_error: str | None = None  # the results root cannot be written: the sweep stops
    interrupted: bool = False       # the worker got SIGINT/SIGTERM: its runs are marked interrupted, it stops


def check_run(root: Path, task: Task, seed: int) -> RunResult | None:
    """None if the task may train this run now; else why not, as a result to report."""
    run_id = task.experiment.run_id(seed)
    try:
        with RunLock.acquire(layout.run_dir(root, run_id), wait_s=0.2):
            record = read_record(root, run_id)
    except RunLocked as locked:
        return RunResult(run_id, task.experiment.name, seed, HELD, None, describe_holder(locked.holder), False)
    except OSError:
        return None  # the writer reports the unwritable root
    if task.resume or may_replace(record, task.redo):
        return None
    return RunResult(run_id, task.experiment.name, seed, record.status.value, record.final_test_accuracy,
                     record.error, False, flags=tuple(run_flags(record)))


def users_mistakes() -> tuple[type[Exception], ...]:
    """What training raises for a bad config, schedule, estimator or data file: a user's mistake,
    reported by its message alone (a missing data file is found only when a worker loads it)."""
    from trainer import config, datasets, estimators, schedule
    return config.ConfigError, datasets.DatasetError, estimators.EstimatorError, schedule.ScheduleError


def train_group(group: Group, root: Path, progress: bool = False,
                raise_errors: tuple[type[BaseException], ...] = (),
                on_trained: Callable[[Trained], None] | None = None) -> GroupResult:
    """Train the group's runs that are still to do, stacked, and read back what they recorded.

    `progress`: show the training loop's progress bar. Exceptions of `raise_errors` (a user's
    mistake `trainer run` reports as such) propagate; any other failure is recorded in the
    runs' results and the group's. `on_trained` gets the group's progress after every compiled
    call (trainer.progress)."""
    from trainer.training import run_group

    start = time.monotonic()
    error = store_error = lost = None
    interrupted = False
    results: dict[str, RunResult] = {}
    members = still_to_do(group, root, results)
    run_ids = tuple(group.run_ids)
    outcomes: dict[str, Outcome] = {}
    try:
        if members:
            outcomes = run_group([(task.experiment, seeds, task.resume) for task, seeds in members], root,
                                 progress=progress, redo=group.redo, data_sha256=group.data_sha256,
                                 on_trained=None if on_trained is None else
                                 lambda network_epochs, logged: on_trained(Trained(run_ids, network_epochs, logged)))
    except raise_errors:
        raise
    except KeyboardInterrupt:
        interrupted = True
    except StoreError as failure:
        error = store_error = str(failure)
        lost = failure.run_id if isinstance(failure, FolderLost) else None   # its record went with its folder
    except Exception as failure:  # its runs are recorded failed; the sweep goes on
        if not isinstance(failure, users_mistakes()):   # said in the runs' lines; a bug gets its traceback
            traceback.print_exc()
        error = f"{type(failure).__name__}: {failure}"
    for task, seeds in members:
        for seed in seeds:
            run_id = task.experiment.run_id(seed)
            outcome = outcomes.get(run_id, Outcome(None))
            if outcome.refused is not None and outcome.status is Status.FAILED:   # could not be resumed
                results[run_id] = RunResult(run_id, task.experiment.name, seed, NOT_STARTED, None, outcome.refused,
                                            False)
                continue
            if outcome.refused is not None:
                # Another process took or finished this run between the check and the writer's lock.
                results[run_id] = check_run(root, task, seed) or RunResult(
                    run_id, task.experiment.name, seed, HELD, None, outcome.refused, False)
                continue
            results[run_id] = recorded_result(root, task, seed, error, lost=run_id == lost)
            # A writer that failed at its last flush records `failed` without raising: the sweep
            # must still stop, as when a flush during training fails.
            if outcome.write_error and not store_error:
                store_error = str(unwritable(root, OSError(outcome.write_error)))
    return GroupResult([results[run_id] for run_id in group.run_ids], time.monotonic() - start, store_error,
                       interrupted)


def still_to_do(group: Group, root: Path, found: dict[str, RunResult]) -> list[tuple[Task, list[int]]]:
    """Each task with the seeds it may train now (check_run); the others' results go into `found`."""
    members = []
    for task in group.tasks:
        seeds = []
        for seed in task.seeds:
            result = check_run(root, task, seed)
            if result is None:
                seeds.append(seed)
            else:
                found[result.run_id] = result
        if seeds:
            members.append((task, seeds))
    return members


def recorded_result(root: Path, task: Task, seed: int, error: str | None, lost: bool = False) -> RunResult:
    """A trained run's outcome as its run.json records it (status as `trainer ls` shows it); LOST
    where its folder was `lost` while it trained and no record is left (it read "not started")."""
    run_id = task.experiment.run_id(seed)
    record = read_record(root, run_id)
    if record is None:
        return RunResult(run_id, task.experiment.name, seed, LOST if lost else NOT_STARTED, None,
                         error or "its run.json could not be written or read", lost)
    status = shown_status(root, record)
    seconds = (record.finished_at - record.started_at).total_seconds() \
        if record.started_at and record.finished_at else None
    return RunResult(run_id, task.experiment.name, seed, status.value, record.final_test_accuracy,
                     record.error or (error if status is not Status.COMPLETED else None), seconds=seconds,
                     flags=tuple(run_flags(record)))


def lost_group(group: Group, root: Path, reason: str) -> GroupResult:
    """A group whose worker vanished: the locks of the runs it trained are free, so they read as
    interrupted (and --resume continues them); runs it never started have no record. A run whose
    lock a live process holds again has been taken since (a second sweep of an overlapping grid):
    held, so the sweep waits for it and plans it again, not reported as its own."""
    return GroupResult([_taken_since(root, task, seed) or recorded_result(root, task, seed, reason)
                        for task in group.tasks for seed in task.seeds], 0.0)


def _taken_since(root: Path, task: Task, seed: int) -> RunResult | None:
    """The HELD result of a run a live process holds now, else None."""
    run_id = task.experiment.run_id(seed)
    run_dir = layout.run_dir(root, run_id)
    if not is_live(run_dir):
        return None
    return RunResult(run_id, task.experiment.name, seed, HELD, None, describe_holder(holder(run_dir)), False)
