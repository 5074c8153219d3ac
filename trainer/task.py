"""One sweep task, in a worker process: train its seeds and report what run.json says.

The planner's view may be out of date by the time a task starts (two sweeps of one
cohort plan the same runs). So each run is checked again under its lock: a run
another live process holds is reported `held` and left alone; a run that meanwhile
got a status the task may not replace (completed by the other sweep) is reported
with that status and left alone. The writer repeats the check when it takes the
lock for training, so a run is never trained twice nor overwritten by a race.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from ibstore import layout
from ibstore.lock import RunLock, RunLocked, describe_holder
from ibstore.progress import HELD, NOT_STARTED
from ibstore.record import Status
from ibstore.scan import live_status
from trainer.plan import Task
from trainer.store import RunExists, StoreError, read_record, unwritable, write_failure

@dataclass(frozen=True)
class RunResult:
    run_id: str
    name: str
    seed: int
    status: str                     # a Status value, HELD or NOT_STARTED
    test_accuracy: float | None
    error: str | None = None        # the run's error, or who holds it
    trained_here: bool = True       # False: this task found it done (or held) by another process


@dataclass(frozen=True)
class TaskResult:
    runs: list[RunResult]
    seconds: float
    store_error: str | None = None  # the results root cannot be written: the sweep stops
    interrupted: bool = False       # the worker got SIGINT/SIGTERM: its runs are marked interrupted, it stops


def check_run(root: Path, run_id: str, task: Task) -> RunResult | None:
    """None if the task may train this run now; else why not, as a result to report."""
    run_dir = layout.run_dir(root, run_id)
    seed = task.seeds[task.run_ids.index(run_id)]
    try:
        with RunLock.acquire(run_dir, wait_s=0.2):
            record = read_record(root, run_id)
    except RunLocked as locked:
        return RunResult(run_id, task.experiment.name, seed, HELD, None, describe_holder(locked.holder), False)
    except OSError:
        return None  # the writer reports the unwritable root
    if record is None or task.resume or record.status in task.replace:
        return None
    return RunResult(run_id, task.experiment.name, seed, record.status.value, record.final_test_accuracy,
                     record.error, False)


def train_task(task: Task, root: Path) -> TaskResult:
    """Train the task's runs that are still to do and read back what they recorded."""
    from trainer.training import run_experiment

    start = time.monotonic()
    error = store_error = None
    interrupted = False
    results: dict[str, RunResult] = {}
    for run_id in task.run_ids:
        if (found := check_run(root, run_id, task)) is not None:
            results[run_id] = found
    to_train = [seed for seed, run_id in zip(task.seeds, task.run_ids) if run_id not in results]
    while to_train:
        try:
            run_experiment(task.experiment, root, seeds=to_train, progress=False, resume=task.resume,
                           replace=task.replace)
            break
        except (RunLocked, RunExists) as refused:
            # Another process took or finished this run between the check and the writer's lock:
            # report it and train the others (the writers taken so far were released unused).
            run_id = refused.run_id
            seed = task.seeds[task.run_ids.index(run_id)]
            results[run_id] = check_run(root, run_id, task) or RunResult(
                run_id, task.experiment.name, seed, HELD, None, str(refused), False)
            to_train.remove(seed)
        except KeyboardInterrupt:
            interrupted = True
            break
        except StoreError as failure:
            error = store_error = str(failure)
            break
        except Exception as failure:  # its runs are recorded failed; the sweep goes on
            traceback.print_exc()
            error = f"{type(failure).__name__}: {failure}"
            break
    for seed in to_train:
        run_id = task.experiment.run_id(seed)
        results.setdefault(run_id, recorded_result(root, task, seed, error))
        # A writer that failed at its last flush records `failed` without raising: the sweep
        # must still stop, as when a flush during training fails.
        failure = write_failure(read_record(root, run_id))
        store_error = store_error or (failure and str(unwritable(root, OSError(failure))))
    return TaskResult([results[run_id] for run_id in task.run_ids], time.monotonic() - start, store_error,
                      interrupted)


def recorded_result(root: Path, task: Task, seed: int, error: str | None) -> RunResult:
    """A trained run's outcome as its run.json records it (status as `trainer ls` shows it)."""
    run_id = task.experiment.run_id(seed)
    record = read_record(root, run_id)
    if record is None:
        return RunResult(run_id, task.experiment.name, seed, Status.FAILED.value, None,
                         error or "its run.json could not be written or read")
    status = live_status(record, layout.run_dir(root, run_id), time.time())
    return RunResult(run_id, task.experiment.name, seed, status.value, record.final_test_accuracy,
                     record.error or (error if status is not Status.COMPLETED else None))


def lost_task(task: Task, root: Path, reason: str) -> TaskResult:
    """A task whose worker vanished: the locks of the runs it trained are free, so they read as
    interrupted (and --resume continues them); runs it never started have no record."""
    return TaskResult([recorded_result(root, task, seed, reason) if read_record(root, run_id) is not None
                       else RunResult(run_id, task.experiment.name, seed, NOT_STARTED, None, reason, False)
                       for seed, run_id in zip(task.seeds, task.run_ids)], 0.0)
