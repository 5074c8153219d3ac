"""`trainer run`: every run of one config, planned as a sweep plans them.

Networks that make one stacked group (one seed, one core, or `--workers 1`) train in this
process. More are split as `trainer sweep` splits them, one group per worker (default: per core;
plan.stack_groups), and trained on the sweep's local workers (trainer.local_pool): ten seeds in
one process left a core idle.
Either way each run's line is printed when its group ends (without a terminal, progress is the
sweep's plain line, after a compiled call at most every 10 s and at the end: no carriage returns in
a log file), a run another process holds is
said so (exit 1), and Ctrl-C or SIGTERM marks the runs being trained interrupted (exit 130).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ibstore import layout
from ibstore.lifecycle import Redo, existing
from ibstore.progress import HELD
from ibstore.record import Status
from ibstore.text import terminal_text
from trainer import config
from trainer.arguments import EXIT_OK, EXIT_RUN_FAILED
from trainer.local_pool import run_local
from trainer.plan import (Plan, check_data_unchanged, check_plan_size, load_plan_data, plan_sweep, runs_of,
                          stack_groups, workers_that_fit)
from trainer.progress import GroupEpochs, SweepBar, Trained, shows_a_bar
from trainer.quiet import native_info_dropped
from trainer.store import StoreError
from trainer.sweep import check_writable, planned_work
from trainer.task import GroupResult, train_group


def run_config(args, user_errors: tuple[type[BaseException], ...]) -> int:
    """The `trainer run` verb (arguments as trainer.cli parses them). A completed run is kept (said
    so, exit 0) unless --force; a run another live process holds is never touched (said so, exit 1);
    failed, diverged and interrupted runs are trained again from the start. `user_errors`: what the
    in-process path lets through for the command to report as bad input."""
    raw = config.apply_overrides(config.load_file(args.config), args.set or [])
    root = layout.results_root(args.results)
    # Counted from the grid before it is expanded, as `trainer sweep` counts.
    check_plan_size(runs_of(raw), root, confirmed=args.yes)
    experiments = config.plan(raw)
    ignored = sorted({key for experiment in experiments for key in experiment.ignored})
    if ignored:
        print(terminal_text(f"note: ignoring keys with no meaning here: {', '.join(ignored)}"), file=sys.stderr)
    plan = plan_sweep(experiments, root, Redo(interrupted=True, failed=True, completed=args.force))
    # each file read once, for the check and for the groups' digests (trainer.sweep.sweep says why)
    data = load_plan_data(plan.tasks, strict=True)
    check_data_unchanged(plan, data)
    data.say_notes()
    named = {done: planned for planned, done in plan.same_as.items()}
    for run_id in plan.skipped.get(Status.COMPLETED, []):
        # a run of these networks under another name (plan.same_networks): --force trains the config's own
        print(terminal_text(f"{run_id}: already completed, not trained again (--force retrains it)" if run_id not in
                            named else f"{run_id}: already completed, the same networks as {named[run_id]} under "
                            f"another name: not trained again (--force trains {named[run_id]})"))
    outcome = RunOutcome(root, plan)
    if plan.tasks:
        check_writable(root)
        workers = args.workers or os.cpu_count() or 1
        # sized by the loaded data: a file's configs each fit, but stacked together they did not (an attacker's)
        groups = stack_groups(plan.tasks, workers, shapes=data.shapes, sha256=data.sha256)
        workers = workers_that_fit(groups, workers, shapes=data.shapes)
        if len(groups) > 1:
            train_on_workers(groups, root, workers, plan, outcome, quiet=args.quiet)
        else:
            train_here(groups[0], root, plan, outcome, args.quiet, user_errors)
        if outcome.interrupted:
            raise KeyboardInterrupt
        if outcome.store_error:
            raise StoreError(outcome.store_error)
    for line in outcome.not_trained:
        print(terminal_text(line), file=sys.stderr)
    return EXIT_OK if outcome.complete and not outcome.not_trained else EXIT_RUN_FAILED


class RunOutcome:
    """The groups' results as they end: each trained run's line (its status as `trainer ls` shows
    it), the runs not trained, and whether to stop."""

    def __init__(self, root: Path, plan: Plan):
        self.root = root
        self.not_trained = [f"{run_id}: {holder}; not trained" for run_id, holder in plan.held.items()]
        self.complete, self.interrupted, self.store_error = True, False, None

    def report(self, result: GroupResult, show: Callable[[str], None] = print) -> bool:
        """Show the group's runs; False (start no more groups) once one was interrupted or the
        results root cannot be written."""
        if result.interrupted or result.store_error:   # the command stops with that
            self.interrupted |= result.interrupted
            self.store_error = self.store_error or result.store_error
            return False
        for run in result.runs:
            if run.status == HELD:   # another process took it since planning
                self.not_trained.append(f"{run.run_id}: {run.error}; not trained")
                continue
            found = existing(self.root, run.run_id)
            show(terminal_text(
                f"{run.run_id}: {found.status or 'not recorded'}  ({layout.run_dir(self.root, run.run_id)})"
                + (f"  {found.note}" if found.note and found.status is not Status.COMPLETED else "")))
            self.complete &= found.status is Status.COMPLETED
        return True


class WorkersProgress:
    """What the groups tell `trainer run` (trainer.progress.Listener; the local pool's, or one group's
    in this process): the runs' lines as their groups end, and unless quiet the sweep's bar of
    network-epochs."""

    def __init__(self, root: Path, plan: Plan, outcome: RunOutcome, quiet: bool):
        self.epochs = GroupEpochs()
        self.bar = None if quiet else SweepBar(self.epochs.plan(planned_work(root, plan)), plan.to_do, name="run",
                                                ledger=self.epochs)
        self.outcome = outcome

    def report(self, result: GroupResult) -> bool:
        if self.bar is not None:
            self.bar.group_ended(self.epochs.untrained(run.run_id for run in result.runs),
                                 [run.status for run in result.runs])
            return self.outcome.report(result, show=self.bar.run_ended)   # above the bar
        return self.outcome.report(result)

    def trained(self, report: Trained) -> None:
        if self.bar is not None:
            self.epochs.trained(report)
            self.bar.trained(report.work)

    def note(self, line: str) -> None:
        if self.bar is not None:
            self.bar.note(line)

    def tick(self) -> None:
        if self.bar is not None:
            self.bar.tick()


def train_here(group, root: Path, plan: Plan, outcome: RunOutcome, quiet: bool,
               user_errors: tuple[type[BaseException], ...]) -> None:
    """One stacked group in this process. On a terminal the training loop's bar shows the networks'
    accuracy; without one (a log file) the sweep's plain lines, not a bar's carriage returns."""
    loop_bar = not quiet and shows_a_bar(sys.stderr)
    lines = None if quiet or loop_bar else WorkersProgress(root, plan, outcome, quiet=False)
    # TensorFlow's start-up notice can come after its import, from the first compilation (a loaded
    # machine's run printed it): dropped for the whole training, as a worker's are, but beside a
    # terminal's bar, whose redraws a relay by lines would hold back
    dropped = contextlib.nullcontext() if loop_bar else native_info_dropped()
    try:
        with dropped:
            result = train_group(group, root, progress=loop_bar, raise_errors=user_errors,
                                 on_trained=None if lines is None else lines.trained)
        (outcome if lines is None else lines).report(result)
    finally:
        if lines is not None:
            lines.bar.close()


def train_on_workers(groups, root: Path, workers: int, plan: Plan, outcome: RunOutcome, quiet: bool) -> None:
    """The groups on the sweep's local worker processes, one TensorFlow thread each."""
    progress = WorkersProgress(root, plan, outcome, quiet)
    try:
        run_local(groups, root, workers, progress)
    finally:
        if progress.bar is not None:
            progress.bar.close()
