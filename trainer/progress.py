"""The sweep's progress line: network-epochs trained of network-epochs planned, summed over runs.

Workers report `Trained` after every compiled call (stacked networks advance together, so a
group of 9 networks that trains 100 epochs reports 900), with the network-epochs of it that
were logged (measured: MI, histograms, statistics). The driver adds them up; when a group
ends, the work it planned but did not do leaves the ETA. Where its runs stopped on their own (a
network at `stop_at_accuracy`, a diverged one) or were held by another process it leaves the total
too; where a run failed or was interrupted it stays in the total, undone, so that the bar says how
far the plan got (with every run killed it read 100 %).

The ETA is not tqdm's (work left / mean rate): a logged network-epoch costs several times a
trained one (many times with the estimators cohort's nine estimators; bench/RESULTS.md), and the
schedules log densely early (every epoch below 50), so a single rate overestimated the rest of a
sweep many times over in its first minute (bench/RESULTS.md, issue 18 stop 44). `Eta` fits wall
time = a * network-epochs + b * logged network-epochs over the reports instead.

On a terminal the line is a tqdm bar on stderr, redrawn at least every BAR_SECONDS; without
one (a log file, a pipe, CI) it is a plain line, no carriage returns or escape codes, printed
every LINE_SECONDS. Both carry the mean rate and the ETA. The lines printed above it (a run's
line, notes) carry config names, run ids and errors quoting them: they are escaped
(`ibstore.text.terminal_text`).
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TextIO

import numpy as np

from ibstore.record import Status
from ibstore.text import terminal_text

# The bar is redrawn at least this often (seconds), even while no worker reports.
BAR_SECONDS = 1.0
# Without a terminal, one plain progress line this often (seconds; `trainer sweep --progress-seconds`).
LINE_SECONDS = 10.0
# {postfix}: ", ETA mm:ss, k/n runs ended[, m training]" (SweepBar._postfix)
PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} network-epochs ({percentage:.0f}%) [{elapsed}, {rate_fmt}{postfix}]"
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} network-epochs [{elapsed}, {rate_fmt}{postfix}]"


@dataclass(frozen=True)
class Work:
    """Network-epochs to train (or trained) and how many of them are logged."""

    epochs: int = 0
    logged: int = 0

    def __add__(self, other: Work) -> Work:
        return Work(self.epochs + other.epochs, self.logged + other.logged)

    def __neg__(self) -> Work:
        return Work(-self.epochs, -self.logged)

    def __sub__(self, other: Work) -> Work:
        return self + -other


@dataclass(frozen=True)
class Trained:
    """A worker's report while its group trains: these networks trained this many epochs in all,
    and were logged this many times."""

    run_ids: tuple[str, ...]    # the group's runs (which group it is)
    network_epochs: int
    logged_network_epochs: int = 0

    @property
    def work(self) -> Work:
        return Work(self.network_epochs, self.logged_network_epochs)


class Eta:
    """Seconds left of a sweep from the work done so far: wall time since the first report =
    a * network-epochs + b * logged network-epochs since it, a and b (seconds per unit, >= 0)
    fitted by least squares over every report, from running sums (constant time per report). The
    time before the first report (TensorFlow's import, tracing, compiling) is left out of the fit.
    While the reports have seen one mix of the two (every epoch logged, as the schedules start), a
    and b cannot be told apart: the rest is priced only if it is that same mix, else the ETA is
    unknown ("?") rather than a guess that was 2-9 times the truth."""

    def __init__(self) -> None:
        self.first: tuple[float, int, int] | None = None      # (seconds, epochs, logged) of the first report
        self.gram, self.moment = np.zeros((2, 2)), np.zeros(2)   # sums of x x' and x * seconds
        self.last: tuple[np.ndarray, float] | None = None       # x and seconds of the latest report
        self.one_mix = False     # the last seconds_left was unknown for the mix of the work seen so far

    def observe(self, now: float, done: Work) -> None:
        if self.first is None:
            self.first = (now, done.epochs, done.logged)
            return
        work = np.array([done.epochs - self.first[1], done.logged - self.first[2]], dtype=float)
        seconds = now - self.first[0]
        self.gram += np.outer(work, work)
        self.moment += work * seconds
        self.last = (work, seconds)

    def seconds_left(self, left: Work) -> float | None:
        """a * left.epochs + b * left.logged; None before two reports, or while it is unknown
        (`one_mix`: the rest is another mix of logged and unlogged epochs than the reports')."""
        self.one_mix = False
        if self.last is None or not self.last[0].any():
            return None
        rest = np.maximum([left.epochs, left.logged], 0).astype(float)
        if not self._two_mixes():           # one direction of work so far: price the rest along it
            work, seconds = self.last
            if abs(work[0] * rest[1] - work[1] * rest[0]) > SAME_MIX * np.linalg.norm(work) * np.linalg.norm(rest):
                self.one_mix = True
                return None
            return float(seconds * (rest @ work) / (work @ work))
        costs = np.linalg.solve(self.gram, self.moment)
        if (costs < 0).any():        # one cost negative: the other column alone
            column = int(np.argmax(costs))
            costs = np.zeros(2)
            costs[column] = max(0.0, self.moment[column] / self.gram[column, column])
        return float(costs @ rest)

    def _two_mixes(self) -> bool:
        """Whether the reports' work [reports, 2], its columns scaled to norm 1, has a smaller
        singular value at least MIN_CONDITION times the larger: sqrt((1 - |c|) / (1 + |c|)), c the
        cosine between the columns."""
        if not (self.gram[0, 0] and self.gram[1, 1]):
            return False
        cosine = min(1.0, abs(self.gram[0, 1]) / np.sqrt(self.gram[0, 0] * self.gram[1, 1]))
        return bool(np.sqrt((1 - cosine) / (1 + cosine)) >= MIN_CONDITION)


# Two mixes of trained and logged network-epochs tell their costs apart once the smaller singular
# value of the reports' work (columns scaled to norm 1) is this share of the larger one: under the
# default schedule from about epoch 58 on (every epoch below 50 is logged), under ibsgd's from 22.
MIN_CONDITION = 0.01
# The rest is "the same mix" as the work so far within this sine of the angle between them.
SAME_MIX = 0.01


def to_driver(send: Callable[[Trained], None],
              gone: tuple[type[BaseException], ...]) -> Callable[[Trained], None]:
    """A worker's `on_trained`: `send`, where an error of `gone` (the sweep that would read it has
    ended) stops the training as an interrupt does, so its runs are marked interrupted."""
    def report(trained: Trained) -> None:
        try:
            send(trained)
        except gone:
            raise KeyboardInterrupt from None

    return report


class Listener(Protocol):
    """What a pool tells the sweep (trainer.sweep.Progress): results, progress, and that time passes."""

    def report(self, result) -> bool:
        """A group's GroupResult; False: start no more groups."""

    def trained(self, report: Trained) -> None: ...

    def note(self, line: str) -> None:
        """A line for the user, above the bar."""

    def tick(self) -> None:
        """Called at least every BAR_SECONDS while the pool waits."""


class SweepBar:
    """One progress line for the sweep (see the module docstring); `trainer run` on workers and
    `trainer estimate` show theirs with it too, the latter counting `unit` "saved epochs" (a new
    user read its "270/270 network-epochs" as the 600 epochs trained)."""

    def __init__(self, total: Work, runs: int, terminal: bool | None = None,
                 line_seconds: float = LINE_SECONDS, stream: TextIO | None = None, name: str = "sweep",
                 ledger: GroupEpochs | None = None, unit: str = "network-epochs"):
        # Imported here, not at the top: `trainer ls` imports this module (for LINE_SECONDS).
        from tqdm import tqdm

        self.tqdm = tqdm
        self.stream = stream or sys.stderr
        self.terminal = shows_a_bar(self.stream) if terminal is None else terminal
        self.total, self.done, self.runs, self.runs_ended = total, Work(), runs, 0
        self.abandoned = Work()     # planned for runs that failed or were interrupted: in the total, not the ETA
        self.eta, self.ledger, self.most_in_flight = Eta(), ledger, 0
        self.line_seconds, self.name = line_seconds, name
        self.started = self.last_shown = time.monotonic()
        self.plain_format = PLAIN_FORMAT.replace("network-epochs", unit)
        self.bar = tqdm(total=total.epochs, desc=name, unit="epoch", dynamic_ncols=True,
                        bar_format=BAR_FORMAT.replace("network-epochs", unit),
                        mininterval=0.5, file=self.stream) if self.terminal else None
        self._show_postfix()

    def trained(self, work: Work) -> None:
        self.done += work
        self.eta.observe(time.monotonic(), self.done)
        if self.ledger is not None:
            self.most_in_flight = max(self.most_in_flight, self.ledger.in_flight())
        if self.bar is not None:
            self.bar.update(work.epochs)
            self._show_postfix()
        self.tick()

    def replan(self, work: Work, runs: int = 0) -> None:
        """Change what is planned (negative: work or runs that will not be done)."""
        self.total += work
        self.runs += runs
        if self.bar is not None:
            self.bar.total = self.total.epochs
        self._show_postfix()

    def group_ended(self, undone: Work, statuses: Iterable[object]) -> None:
        """A group ended with `undone` of its planned work not trained (`GroupEpochs.untrained`),
        its runs with `statuses` (see the module docstring)."""
        if any(status in (Status.FAILED, Status.INTERRUPTED) for status in statuses):
            self.abandoned += undone
            self._show_postfix()
        else:
            self.replan(-undone)

    def run_ended(self, line: str) -> None:
        """A run's line (on stdout, escaped), above the bar."""
        self.runs_ended += 1
        self.note(line)
        self._show_postfix()

    def note(self, line: str) -> None:
        """A line for the user (on stdout, escaped), above the bar."""
        self.tqdm.write(terminal_text(line), file=sys.stdout)

    def tick(self) -> None:
        """Redraw the bar, or print the plain line when it is due; call at least every BAR_SECONDS."""
        now = time.monotonic()
        if self.bar is not None and now - self.last_shown >= BAR_SECONDS:
            self.bar.refresh()
            self.last_shown = now
        elif self.bar is None and now - self.last_shown >= self.line_seconds:
            self._print_line(now)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self._print_line(time.monotonic())

    def plain_line(self, now: float) -> str:
        return self.tqdm.format_meter(self.done.epochs, max(self.total.epochs, self.done.epochs), now - self.started,
                                      prefix=self.name, unit="epoch", bar_format=self.plain_format,
                                      postfix=self._postfix())

    def _print_line(self, now: float) -> None:
        print(self.plain_line(now), file=self.stream, flush=True)
        self.last_shown = now

    def _postfix(self) -> str:
        left = self.eta.seconds_left(self.total - self.abandoned - self.done)
        if left is not None and self.ledger is not None and not self.ledger.queued():
            # The fit's costs are those of every worker busy; with nothing left to start, the groups
            # still training are all there is, each at one worker's share of that rate.
            left *= self.most_in_flight / max(self.ledger.in_flight(), 1)
        # why it is "?" for minutes under ibsgd's schedule, which logs each of epochs 0-20 (a new user's)
        unknown = "? until both logged and unlogged epochs are seen" if self.eta.one_mix else "?"
        # the runs training now: "0/45 runs ended" alone read as nothing happening while the first
        # stacks trained (a notebook user's)
        training = self.ledger.runs_training() if self.ledger is not None else 0
        return (f"ETA {unknown if left is None else self.tqdm.format_interval(round(left))}, "
                f"{self.runs_ended}/{self.runs} runs ended" + (f", {training} training" if training else ""))

    def _show_postfix(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix())


def shows_a_bar(stream: TextIO) -> bool:
    """A terminal that reports its width (a terminal of 0 columns, e.g. a pty nobody sized, would
    show an empty bar: it gets the plain lines)."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


class GroupEpochs:
    """The driver's ledger: work planned per run and reported per group, so that a finished
    group's undone work can leave the total."""

    def __init__(self) -> None:
        self.planned: dict[str, Work] = {}
        self.reported: dict[frozenset[str], Work] = {}

    def plan(self, planned: dict[str, Work]) -> Work:
        """Add runs with their planned work; returns the work added."""
        self.planned.update(planned)
        return sum(planned.values(), Work())

    def trained(self, report: Trained) -> None:
        group = frozenset(report.run_ids)
        self.reported[group] = self.reported.get(group, Work()) + report.work

    def in_flight(self) -> int:
        """How many groups have reported and not ended: the workers busy."""
        return len(self.reported)

    def runs_training(self) -> int:
        """How many runs are in groups that have reported and not ended."""
        return sum(len(group) for group in self.reported)

    def queued(self) -> bool:
        """Whether a planned run is in no group that has reported: work a worker has still to start."""
        started = set().union(*self.reported) if self.reported else set()
        return any(run_id not in started for run_id in self.planned)

    def untrained(self, run_ids: Iterable[str]) -> Work:
        """A group ended: the work it planned and did not report (forgotten from the ledger).
        Reports of a part of the group count too (a shipped group trains only the runs the
        driver could claim)."""
        run_ids = frozenset(run_ids)
        planned = sum((self.planned.pop(run_id, Work()) for run_id in run_ids), Work())
        reported = sum((self.reported.pop(key) for key in [key for key in self.reported if key <= run_ids]), Work())
        return planned - reported
