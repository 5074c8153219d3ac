"""The sweep's progress line: network-epochs trained of network-epochs planned, summed over runs.

Workers report `Trained` after every compiled call (stacked networks advance together, so a
group of 9 networks that trains 100 epochs reports 900). The driver adds them up; when a
group ends, the epochs it planned but did not train (a network that stopped early at
`stop_at_accuracy`, a failed or held run) leave the total, so the ETA stays honest.

On a terminal the line is a tqdm bar on stderr, redrawn at least every BAR_SECONDS; without
one (a log file, a pipe, CI) it is a plain line, no carriage returns or escape codes, printed
every LINE_SECONDS. Both carry rate and ETA (tqdm's own formatting).
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TextIO

# The bar is redrawn at least this often (seconds), even while no worker reports.
BAR_SECONDS = 1.0
# Without a terminal, one plain progress line this often (seconds; `trainer sweep --progress-seconds`).
LINE_SECONDS = 10.0
PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} network-epochs ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_fmt}]{postfix}"
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} network-epochs [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


@dataclass(frozen=True)
class Trained:
    """A worker's report while its group trains: these networks trained this many epochs in all."""

    run_ids: tuple[str, ...]    # the group's runs (which group it is)
    network_epochs: int


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
    """One progress line for the sweep (see the module docstring)."""

    def __init__(self, total: int, runs: int, terminal: bool | None = None,
                 line_seconds: float = LINE_SECONDS, stream: TextIO | None = None, name: str = "sweep"):
        # Imported here, not at the top: `trainer ls` imports this module (for LINE_SECONDS).
        from tqdm import tqdm

        self.tqdm = tqdm
        self.stream = stream or sys.stderr
        self.terminal = shows_a_bar(self.stream) if terminal is None else terminal
        self.total, self.done, self.runs, self.runs_ended = total, 0, runs, 0
        self.line_seconds, self.name = line_seconds, name
        self.started = self.last_shown = time.monotonic()
        self.bar = tqdm(total=total, desc=name, unit="epoch", bar_format=BAR_FORMAT, dynamic_ncols=True,
                        mininterval=0.5, file=self.stream) if self.terminal else None
        self._show_postfix()

    def trained(self, network_epochs: int) -> None:
        self.done += network_epochs
        if self.bar is not None:
            self.bar.update(network_epochs)
        self.tick()

    def replan(self, network_epochs: int, runs: int = 0) -> None:
        """Change what is planned (negative: epochs or runs that will not be trained)."""
        self.total += network_epochs
        self.runs += runs
        if self.bar is not None:
            self.bar.total = self.total
        self._show_postfix()

    def run_ended(self, line: str) -> None:
        """A run's line (on stdout), above the bar."""
        self.runs_ended += 1
        self.tqdm.write(line, file=sys.stdout)
        self._show_postfix()

    def note(self, line: str) -> None:
        self.tqdm.write(line, file=sys.stdout)

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
        return self.tqdm.format_meter(self.done, max(self.total, self.done), now - self.started, prefix=self.name,
                                 unit="epoch", bar_format=PLAIN_FORMAT, postfix=self._postfix())

    def _print_line(self, now: float) -> None:
        print(self.plain_line(now), file=self.stream, flush=True)
        self.last_shown = now

    def _postfix(self) -> str:
        return f"{self.runs_ended}/{self.runs} runs ended"

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
    """The driver's ledger: epochs planned per run and reported per group, so that a finished
    group's untrained epochs can leave the total."""

    def __init__(self) -> None:
        self.planned: dict[str, int] = {}
        self.reported: Counter[frozenset[str]] = Counter()

    def plan(self, planned: dict[str, int]) -> int:
        """Add runs with their planned epochs; returns the epochs added."""
        self.planned.update(planned)
        return sum(planned.values())

    def trained(self, report: Trained) -> None:
        self.reported[frozenset(report.run_ids)] += report.network_epochs

    def untrained(self, run_ids: Iterable[str]) -> int:
        """A group ended: the epochs it planned and did not report (forgotten from the ledger).
        Reports of a part of the group count too (a shipped group trains only the runs the
        driver could claim)."""
        run_ids = frozenset(run_ids)
        planned = sum(self.planned.pop(run_id, 0) for run_id in run_ids)
        reported = sum(self.reported.pop(key) for key in [key for key in self.reported if key <= run_ids])
        return planned - reported
