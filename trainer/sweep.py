"""`trainer sweep`: train a whole cohort, skipping what is done, on local worker processes or Ray.

Read top to bottom: plan (trainer.plan: validate every config, decide per run, stack
tasks of one shape into groups), hand the groups to a backend (trainer.local_pool or
trainer.ray_pool, which run trainer.task.train_group), show progress, then wait for runs that other live
processes held: once they are free, they are planned again (a run the other
process completed is done; an interrupted one follows the usual rules). The
sweep's plan and progress are kept in `<root>/.sweeps/<sweep_id>.json`
(ibstore.progress) for programs to read.

True (exit 0) only if every planned run is completed when the sweep ends.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace as changed
from pathlib import Path

from ibstore import layout, lock
from ibstore.lifecycle import Redo, current_status, read_record
from ibstore.progress import (
    HELD,
    LOST,
    NOT_STARTED,
    QUEUED,
    SweepProgress,
    SweepState,
    holder,
    progress_path,
)
from ibstore.record import Status, utc_now
from ibstore.stats import MIN_SEEDS_TESTED
from ibstore.text import terminal_text
from trainer.atomic import write_bytes
from trainer.checkpoint import start_epoch
from trainer.config import Experiment
from trainer.datasets import DatasetError
from trainer.local_pool import run_local
from trainer.plan import (Plan, PlanData, SweepError, check_data_unchanged, load_experiments, load_plan_data,
                          plan_sweep, stack_groups, workers_that_fit, writer_stamp)
from trainer.progress import LINE_SECONDS, GroupEpochs, SweepBar, Trained, Work
from trainer.ray_pool import AUTO, run_ray
from trainer.schedule import logged_epochs
from trainer.store import StoreError, unwritable
from trainer.task import GroupResult, RunResult

__all__ = ["SweepError", "sweep"]

WAIT_POLL_SECONDS = 1.0


class Progress:
    """The parent's view: one bar of network-epochs (trainer.progress), a line per finished run,
    the progress file, and what is still held by other processes."""

    def __init__(self, root: Path, path: str | Path, plan: Plan, sweep_id: str,
                 line_seconds: float = LINE_SECONDS):
        self.root, self.store_error = root, None
        self.epochs = GroupEpochs()
        self.bar = SweepBar(self.epochs.plan(planned_work(root, plan)), plan.to_do, line_seconds=line_seconds,
                            ledger=self.epochs)
        self.held: dict[str, str] = dict(plan.held)
        statuses = {run_id: status for status, ids in plan.skipped.items() for run_id in ids}
        self.file = SweepProgress(
            sweep_id=sweep_id, path=str(path), pid=os.getpid(), host=socket.gethostname(),
            started_at=_now(), updated_at=_now(), state=SweepState.RUNNING,
            runs={run_id: HELD if run_id in plan.held else statuses.get(run_id, QUEUED) for run_id in plan.run_ids})
        self.trained_here = 0
        self.write()

    def trained(self, report: Trained) -> None:
        self.epochs.trained(report)
        self.bar.trained(report.work)

    def tick(self) -> None:
        self.bar.tick()

    def note(self, line: str) -> None:
        self.bar.note(line)

    def report(self, result: GroupResult) -> bool:
        """Show one finished group; False once the results root cannot be written (start no more)."""
        self.bar.group_ended(self.epochs.untrained(run.run_id for run in result.runs),
                             [run.status for run in result.runs])
        for run in result.runs:
            if run.status == HELD:
                self.held[run.run_id] = run.error or "held by another process"
                self.bar.note(f"{HELD:11} {run.name} seed {run.seed}  ({self.held[run.run_id]}; waiting for it)")
                self.bar.replan(Work(), runs=-1)
            else:
                self.bar.run_ended(run_line(run))
                self.trained_here += run.trained_here
            self.file.runs[run.run_id] = run.status
        self.store_error = self.store_error or result.store_error
        self.write()
        return self.store_error is None

    def plan_again(self, plan: Plan) -> None:
        """Runs held before are planned again now that they are free."""
        self.held = dict(plan.held)
        for status, ids in plan.skipped.items():
            for run_id in ids:
                self.file.runs[run_id] = status
        for task in plan.tasks:
            for run_id in task.run_ids:
                self.file.runs[run_id] = QUEUED
        self.bar.replan(self.epochs.plan(planned_work(self.root, plan)), runs=plan.to_do)
        self.write()

    def write(self, state: SweepState | None = None, exit_code: int | None = None) -> None:
        self.file = changed(self.file, updated_at=_now(), state=state or self.file.state, exit_code=exit_code)
        data = self.file.to_json_bytes()
        path = progress_path(self.root, self.file.sweep_id)
        try:
            write_bytes(layout.real_folder(path.parent) / path.name, data)
        except OSError as error:
            raise unwritable(self.root, error) from error

    def close(self) -> None:
        self.bar.close()


def run_line(run: RunResult) -> str:
    """A finished run: status, name, seed, test accuracy, its health flags (a dead network's chance
    accuracy reads like any other), its own time (or who trained it), error. A run that was never
    started was trained by nobody: its error says why."""
    accuracy = "-" if run.test_accuracy is None else f"{run.test_accuracy:.3f}"
    line = f"{run.status:11} {run.name} seed {run.seed}  test acc {accuracy}"
    if flagged := [flag for flag in run.flags if flag != run.status]:     # a diverged run says so in its status
        line += f"  [{', '.join(flagged)}]"
    if not run.trained_here and run.status != NOT_STARTED:
        line += "  (by another process)"
    elif run.seconds is not None:
        line += f"  {run.seconds:.0f} s"
    if run.status != Status.COMPLETED and run.error:
        line += f"  ({run.error.splitlines()[0]})"
    return line


def planned_work(root: Path, plan: Plan) -> dict[str, Work]:
    """The epochs each run of the plan is to train, all of them or from its checkpoint when resumed,
    and how many of them its schedule logs."""
    planned = {}
    for task in plan.tasks:
        config = task.experiment.config
        start = start_epoch(root, task.run_ids, task.resume, config.save_checkpoints)
        logged = sum(epoch > start for epoch in logged_epochs(config.log_schedule, config.epochs))
        planned.update({run_id: Work(config.epochs - start, logged) for run_id in task.run_ids})
    return planned


def _now() -> str:
    return utc_now().isoformat()


def default_sweep_id() -> str:
    return f"{utc_now():%Y%m%dT%H%M%SZ}-{os.getpid()}"


def sweep(path: str | Path, root: Path, workers: int | None = None, ray_address: str | None = None,
          retry_failed: bool = False, resume: bool = False, force: bool = False,
          sweep_id: str | None = None, ray_mode: str | None = None, line_seconds: float = LINE_SECONDS,
          overrides: list[str] = ()) -> bool:
    """The `trainer sweep` command. True if every planned run is completed at the end.

    `overrides`: `--set KEY=VALUE` applied to every config under `path` (trainer.config.apply_overrides).

    `ray_mode`: how Ray workers reach the root (trainer.arguments.RAY_MODES; default auto).
    `line_seconds`: without a terminal, a plain progress line this often (trainer.progress).
    Raises ConfigError (a bad config: nothing was written), SweepError, StoreError.
    """
    if ray_mode is not None and ray_address is None:
        raise SweepError("--ray-mode applies to Ray sweeps; add --ray ADDRESS")
    sweep_id = check_options(root, workers, ray_address, sweep_id)
    experiments = load_experiments(path, overrides)
    leads_somewhere(root)       # before realpath, which names a dangling link's missing target
    root = Path(os.path.realpath(root))     # not Path.resolve: a symlink loop raised RuntimeError
    not_a_runs_folder(root)     # before planning: its runs read as none, "5 to do"
    redo = Redo(interrupted=resume or force, failed=retry_failed or force, completed=force)
    plan = plan_sweep(experiments, root, redo, resume=resume and not force)
    # Each file read once, here: its SHA-256 is what the check compares and what every group's worker,
    # in every round, holds its data to (Group.data_sha256), Ray's too. Local workers read this
    # machine's files: one missing is bad input now (Ray's may see others).
    data = load_plan_data(plan.tasks, strict=not ray_address)
    check_data_unchanged(plan, data)
    data.say_notes()
    workers = workers or os.cpu_count() or 1
    print_plan(path, root, plan, overrides)
    if note := few_seeds_note(experiments):
        print(note)
    check_writable(root)
    print(terminal_text(f"progress file: {progress_path(root, sweep_id)}"))
    progress = Progress(root, path, plan, sweep_id, line_seconds)
    try:
        while True:
            train(plan, root, workers, ray_address, progress, ray_mode or AUTO, data)
            if progress.store_error or not progress.held:
                break
            plan = plan_held_again(experiments, root, redo, resume or force, progress, plan)
            # the files this sweep had not read (all their runs held) read now; what the other processes
            # left to keep or continue checked against the data this sweep trained on
            data = load_plan_data(plan.tasks, known=data)
            check_data_unchanged(plan, data, trained_beside=True)
    except (KeyboardInterrupt, SweepError, BrokenPipeError, DatasetError) as stopped:
        # the runs as they ended (interrupted, or completed before the signal), not "queued"; a run
        # another process still trains stays "held". A SweepError (e.g. no Ray cluster answers), or
        # its output's reader leaving (`trainer sweep ... | head`), once left the file "running".
        now = final_statuses(root, progress.file.runs)
        progress.file.runs.update({run_id: status for run_id, status in now.items()
                                   if not (status == Status.RUNNING.value and progress.file.runs[run_id] == HELD)})
        if isinstance(stopped, KeyboardInterrupt):
            progress.write(state=SweepState.INTERRUPTED, exit_code=130)
        else:   # the exit codes trainer.cli gives them
            progress.write(state=SweepState.FAILED, exit_code=1 if isinstance(stopped, BrokenPipeError) else 2)
        raise
    finally:
        progress.close()
    if progress.store_error:
        progress.write(state=SweepState.FAILED, exit_code=2)
        raise StoreError(progress.store_error)
    return finish(root, progress)


def check_options(root: Path, workers: int | None, ray_address: str | None, sweep_id: str | None) -> str:
    """SweepError for options that do not go together or a bad sweep id; returns the sweep id."""
    if ray_address not in (None, "local") and workers is not None:
        raise SweepError("--workers applies to local workers and --ray local; a Ray cluster uses its own CPUs")
    sweep_id = sweep_id or default_sweep_id()
    try:
        path = progress_path(root, sweep_id)
    except ValueError as error:
        raise SweepError(str(error)) from None
    # Two live sweeps under one id took turns writing one progress file (the explorer's quickstart
    # reads it); a file left by a sweep that is gone does not hold the id.
    if held := holder(root, sweep_id):
        gone_elsewhere = (f"; if it was stopped on {held.host} without ending, remove {path}"
                          if held.host != socket.gethostname() else "")
        raise SweepError(terminal_text(
            f"sweep id {sweep_id!r} is in use: a sweep of {held.path} (process {held.pid} on {held.host}) has been "
            f"{held.state} since {held.started_at}; give another --sweep-id, or none for a new one{gone_elsewhere}"))
    return sweep_id


def finish(root: Path, progress: Progress) -> bool:
    """Print and record the final tally; True if every planned run is completed."""
    final = final_statuses(root, progress.file.runs)
    progress.file.runs.update(final)
    tally = Counter(final.values())
    print(f"done: {', '.join(f'{n} {status}' for status, n in sorted(tally.items()))} of {len(final)} "
          f"planned ({progress.trained_here} trained by this sweep)")
    complete = tally.get(Status.COMPLETED.value, 0) == len(final)
    progress.write(state=SweepState.FINISHED, exit_code=0 if complete else 1)
    return complete


def plan_held_again(experiments: list[Experiment], root: Path, redo: Redo, resume: bool,
                    progress: Progress, before: Plan) -> Plan:
    """Wait until no other process holds the runs it held, then plan them again. A run another
    process trained meanwhile (it was running when `before` planned it, or a writer has taken it
    since: `trained_since`) and completed is complete, even with --force (else two forced sweeps
    would train it twice); what it left failed or interrupted is redone as --force would have done it. A run held
    by a process that did not train it (`trainer estimate`, `trainer compact`) is planned as
    `redo` says, --force included."""
    progress.note(f"waiting for {len(progress.held)} run(s) held by other processes: "
                        + "; ".join(f"{run_id} {text}" for run_id, text in sorted(progress.held.items())))
    progress.write(state=SweepState.WAITING)
    held = set(progress.held)
    wait_until_free(root, held, progress.tick)
    trained_by_others = {run_id for run_id in held if run_id in before.held or trained_since(root, run_id, before)}
    plans = [plan_sweep(experiments, root, redo_of, resume=resume, only=run_ids)
             for run_ids, redo_of in ((trained_by_others, changed(redo, completed=False)),
                                      (held - trained_by_others, redo)) if run_ids]
    plan = sum(plans[1:], plans[0])
    progress.plan_again(plan)
    progress.write(state=SweepState.RUNNING)
    return plan


def print_plan(path: str | Path, root: Path, plan: Plan, overrides: list[str] = ()) -> None:
    # the overrides are part of the runs' ids: a resume without them plans other runs
    changed = f" with {' '.join(f'--set {text}' for text in overrides)}" if overrides else ""
    complete = len(plan.skipped.get(Status.COMPLETED, []))
    print(terminal_text(f"sweep {path}{changed}: {plan.planned} runs planned, {complete} already complete (skipped), "
                        f"{plan.to_do} to do; results in {root}"))
    for status, hint in ((Status.FAILED, "--retry-failed reruns them"), (Status.DIVERGED, "--retry-failed reruns them"),
                         (Status.INTERRUPTED, "--resume continues them")):
        if plan.skipped.get(status):
            print(f"  {len(plan.skipped[status])} {status} (skipped; {hint})")
    if plan.held:
        print(f"  {len(plan.held)} held by other live processes (this sweep waits for them)")
    if plan.same_as:
        planned, done = next(iter(plan.same_as.items()))
        print(terminal_text(f"  {len(plan.same_as)} run(s) already complete under another name (their grid written "
                            f"in another key order or number form: the same config and seed), e.g. {done} for "
                            f"{planned}; not trained again"))
    for cohort, count in Counter(plan.elsewhere.values()).items():
        where = f"in cohort {cohort!r}" if cohort else "without a cohort"
        print(terminal_text(f"  {count} skipped run(s) recorded {where}, not in their config's (a cohort is not part "
                            "of a run's id: the runs are the same, and keep the cohort they were trained in)"))
    resumed = sum(len(task.seeds) for task in plan.tasks if task.resume)
    if resumed:
        print(f"  {resumed} interrupted run(s) continue from their last checkpoint")


def few_seeds_note(experiments: list[Experiment]) -> str | None:
    """A note where experiments have fewer seeds than the compression test needs (a new user's 3 seeds
    a group found every `compresses` NULL, and the reason only in each row's note), else None."""
    few = Counter(len(experiment.seeds) for experiment in experiments if len(experiment.seeds) < MIN_SEEDS_TESTED)
    if not few:
        return None
    counts = ", ".join(f"{experiments_of} with {seeds}" for seeds, experiments_of in sorted(few.items(), reverse=True))
    return (f"  note: {few.total()} experiment(s) have fewer than {MIN_SEEDS_TESTED} seeds ({counts}): the test of "
            f"whether a layer compresses needs {MIN_SEEDS_TESTED} seeds a group to measure their noise, so their "
            f"layers get no test (--set n_runs={MIN_SEEDS_TESTED} later trains only the seeds added)")


def train(plan: Plan, root: Path, workers: int, ray_address: str | None, progress: Progress,
          ray_mode: str, data: PlanData) -> None:
    """The plan's tasks, stacked into groups, on local workers or Ray; each result to `progress`.
    `data`: its datasets (`load_plan_data`)."""
    if not plan.tasks:
        return
    groups = stack_groups(plan.tasks, workers, shapes=data.shapes, sha256=data.sha256)
    if not ray_address:        # each Ray node has its own memory
        workers = workers_that_fit(groups, workers, shapes=data.shapes)
    backend = f"Ray ({ray_address})" if ray_address else f"{min(workers, len(groups))} local worker(s)"
    progress.note(f"training {plan.to_do} run(s) of {len(plan.tasks)} experiment(s) as "
                        f"{len(groups)} stacked group(s) on {backend}")
    if ray_address:
        run_ray(groups, root, ray_address, progress, local_cpus=workers, mode=ray_mode)
    else:
        run_local(groups, root, workers, progress)


def trained_since(root: Path, run_id: str, before: Plan) -> bool:
    """Has a writer taken the run since `before` planned it (another process trained it, afresh or
    resumed)? Its record's writer stamp (trainer.plan.writer_stamp) then differs."""
    record = read_record(root, run_id)
    return record is not None and writer_stamp(record) != before.stamps.get(run_id)


def wait_until_free(root: Path, run_ids: set[str], tick: Callable[[], None]) -> None:
    """Block until no live process holds any of these runs: its lock is free (a process that
    does not train, `trainer estimate`, holds it with the run's status unchanged), and a run
    running on another host has a stale heartbeat; `tick` every poll (the progress line)."""
    while True:
        now = time.time()
        busy = [run_id for run_id in run_ids
                if lock.is_live(layout.run_dir(root, run_id)) or current_status(root, run_id, now) is Status.RUNNING]
        if not busy:
            return
        tick()
        time.sleep(WAIT_POLL_SECONDS)


def final_statuses(root: Path, runs: dict[str, str]) -> dict[str, str]:
    """What the run.json of each of `runs` (run id -> its state in the progress file) says now (as
    `trainer ls` shows it); where it has none, LOST if it was lost while training, else 'not started'."""
    now = time.time()
    shown = {run_id: current_status(root, run_id, now) for run_id in runs}
    return {run_id: (LOST if runs[run_id] == LOST else NOT_STARTED) if status is None else status.value
            for run_id, status in shown.items()}


def leads_somewhere(root: Path) -> None:
    """StoreError if `root` is a symlink to nothing (a loop, a missing target: mkdir said "File exists")."""
    if layout.leads_nowhere(root):
        raise StoreError(f"cannot write results under {str(root)!r}: it is a symlink that leads nowhere (its target "
                         "is missing, or it loops). Choose a folder with --results DIR or $IB_RESULTS.")


def not_a_runs_folder(root: Path) -> None:
    """StoreError if `root` is a root's runs/ folder, or a run's folder: its runs would go to
    runs/runs/ (or inside that run), where no reader looks (every read verb refuses such a root)."""
    try:
        real = root.resolve()     # a run's folder reached through `..` or a link is one too (an attacker's)
    except (OSError, RuntimeError):       # a link loop: what writes there next says so
        real = root
    if real.parent.name == layout.runs_dir(real).name and (real / "run.json").is_file():   # not a stray run.json
        raise StoreError(f"cannot write results under {str(root)!r}: it is a run's folder (it holds run.json); give "
                         f"the results root that holds it (--results {str(real.parent.parent)!r})")
    if root.is_dir() and not layout.runs_dir(root).is_dir() and layout.holds_run_folders(root):
        raise StoreError(f"cannot write results under {str(root)!r}: it holds run folders itself, so it is a root's "
                         f"runs/ folder; give the folder that holds it (--results {str(root.parent)!r})")


def check_writable(root: Path) -> None:
    """Fail before training, with a clear message, if runs cannot be written under `root` or it is
    a root's runs/ folder (`not_a_runs_folder`)."""
    leads_somewhere(root)
    not_a_runs_folder(root)
    runs = layout.runs_dir(root)
    try:
        runs.mkdir(parents=True, exist_ok=True)
        probe = runs / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise unwritable(root, error) from None
