"""A sweep's plan and progress as a file: `<root>/.sweeps/<sweep_id>.json`.

`trainer sweep` rewrites it atomically whenever a run changes state, so a program
(the explorer's quickstart button, a notebook) reads the planned runs and their
statuses instead of parsing the sweep's printed lines. Readers get None for a
missing or unusable file, never an exception.
"""

from __future__ import annotations

import enum
import json
import os
import re
import socket
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ibstore.record import Status

SWEEPS_DIR = ".sweeps"   # starts with "." so the scan of runs never sees it
SWEEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Run states besides the run statuses of ibstore.record.Status: planned and waiting for a
# worker; held by another live process; planned but without a run.json (its worker died first);
# trained by this sweep until its folder was removed, moved or replaced (no run.json is left).
QUEUED, HELD, NOT_STARTED, LOST = "queued", "held", "not started", "lost"
MAX_PROGRESS_BYTES = 64 << 20   # about a million runs; anything larger is not read


class SweepState(str, enum.Enum):
    RUNNING = "running"             # training
    WAITING = "waiting"             # for runs other processes hold
    FINISHED = "finished"
    INTERRUPTED = "interrupted"     # Ctrl-C / SIGTERM
    FAILED = "failed"               # stopped by an error, e.g. the root cannot be written
    GONE = "gone"                   # read only: the file says running or waiting, but its process on
                                    # this host has ended without writing so (SIGKILL, a crash)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SweepProgress:
    sweep_id: str
    path: str                       # what `trainer sweep` was given
    pid: int
    host: str
    started_at: str                 # ISO 8601, UTC
    updated_at: str
    state: str                      # a SweepState value
    runs: dict[str, str] = field(default_factory=dict)   # run_id -> queued, held or a run status
    exit_code: int | None = None    # set when the sweep has ended

    @property
    def planned(self) -> int:
        return len(self.runs)

    def counts(self) -> Counter[str]:
        return Counter(self.runs.values())

    @property
    def completed(self) -> int:
        return self.counts().get(Status.COMPLETED.value, 0)

    def to_json_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json_bytes(cls, data: bytes) -> "SweepProgress | None":
        if len(data) > MAX_PROGRESS_BYTES:
            return None
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("runs"), dict):
            return None
        try:
            progress = cls(**raw)
        except TypeError:  # missing or unknown keys
            return None
        typed = (isinstance(progress.sweep_id, str) and isinstance(progress.state, str)
                 and all(isinstance(k, str) and isinstance(v, str) for k, v in progress.runs.items()))
        return progress if typed else None


def progress_path(root: Path, sweep_id: str) -> Path:
    if not SWEEP_ID.fullmatch(sweep_id):
        raise ValueError(f"sweep id {sweep_id!r} is not allowed: letters, digits, '.', '_' and '-', starting with a "
                         "letter or digit (at most 100)")
    return Path(root) / SWEEPS_DIR / f"{sweep_id}.json"


def read_progress(root: Path, sweep_id: str) -> SweepProgress | None:
    """The sweep's progress file, or None if it is missing, not a regular file or not usable. A
    sweep that says it is running or waiting, on this host, whose process no longer exists reads
    as GONE: a SIGKILLed sweep cannot write its end, and its file said `running` for ever (the
    runs' own records say how each ended: `trainer ls`)."""
    path = progress_path(root, sweep_id)
    try:
        if not path.is_file() or path.is_symlink():  # a FIFO or a link planted here is not read
            return None
        with open(path, "rb") as handle:
            progress = SweepProgress.from_json_bytes(handle.read(MAX_PROGRESS_BYTES + 1))
    except OSError:
        return None
    if (progress is not None and progress.state in (SweepState.RUNNING, SweepState.WAITING)
            and progress.host == socket.gethostname() and not _alive(progress.pid)):
        return replace(progress, state=SweepState.GONE.value)
    return progress


def holder(root: Path, sweep_id: str) -> SweepProgress | None:
    """The sweep that holds `sweep_id` in `root`: its progress file, where it says running or waiting
    and its process is alive (or on another host, whose processes cannot be seen); else None."""
    progress = read_progress(root, sweep_id)
    return progress if progress is not None and progress.state in (SweepState.RUNNING, SweepState.WAITING) else None


def _alive(pid: object) -> bool:
    """Whether process `pid` exists on this host (another user's counts: signalling it is refused).
    A pid reused since stays `alive`: the file then reads as it was written."""
    if not isinstance(pid, int) or pid <= 0:
        return True         # no pid to look for: nothing is claimed
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
