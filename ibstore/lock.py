"""The lock a live run holds on its folder: an OS lock, so a killed process frees it at once.

`<run>/.lock` is locked with `fcntl.flock` (exclusive) by the one process that
trains or rewrites the run, and holds {"pid", "host", "since"} as JSON so others
can say who holds it. The kernel drops the lock when the holder's file
descriptor closes, which includes any death of the process (kill -9 too), so
"the lock is free" means "no live process on this host writes this run".

The lock file is never deleted: a process could still hold the lock on the
deleted file while another locks a new file of the same name, and both would
believe they own the run. Only the lock is taken and released.

flock is advisory and local: on a network filesystem shared by several hosts it
may not be seen across hosts, so readers on other hosts fall back to the
heartbeat in run.json (DESIGN.md, "Locks and liveness").
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ibstore import layout
from ibstore.text import terminal_text

LOCK_FILE = ".lock"
# A holder's JSON is a few dozen bytes; anything bigger is not ours and is not read.
MAX_HOLDER_BYTES = 4096
RETRY_SECONDS = 0.02


class RunLocked(Exception):
    """Another live process holds the run's lock."""

    def __init__(self, run_dir: Path, holder: dict[str, Any] | None):
        self.run_dir = Path(run_dir)
        self.holder = holder or {}
        super().__init__(str(self))

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def __str__(self) -> str:
        return f"run {self.run_id!r} is {describe_holder(self.holder)}"


def describe_holder(holder: dict[str, Any] | None) -> str:
    """'held by pid P on host H since T' (or what of it is known)."""
    holder = holder or {}
    if "pid" not in holder:
        return "held by another process"
    # The lock file is written by whoever holds the run: its fields are text, never commands.
    text = f"held by pid {terminal_text(str(holder['pid']))} on host {terminal_text(str(holder.get('host', '?')))}"
    return text + (f" since {terminal_text(str(holder['since']))}" if holder.get("since") else "")


class RunLock:
    """An exclusive lock on one run folder; release() or leave the `with` block to free it."""

    def __init__(self, run_dir: Path, fd: int):
        self.run_dir = Path(run_dir)
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, run_dir: Path, wait_s: float = 1.0) -> "RunLock":
        """Lock `run_dir` (created if missing), retrying for up to `wait_s` seconds.

        Retrying covers a reader's momentary probe (is_live); a live holder keeps
        the lock much longer and raises RunLocked with who holds it. OSError if the
        folder or lock file cannot be created, or the folder is a link (layout.real_folder)."""
        run_dir = layout.real_folder(layout.real_folder(Path(run_dir).parent) / Path(run_dir).name)   # runs/, the run's
        try:
            fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as error:   # named: "Is a directory" alone did not say which of the root's files
            raise OSError(error.errno, f"{run_dir / LOCK_FILE}: {error.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, f"{run_dir / LOCK_FILE} is not a regular file")
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise RunLocked(run_dir, holder(run_dir)) from None
                    time.sleep(RETRY_SECONDS)
            record = {"pid": os.getpid(), "host": socket.gethostname(),
                      "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode(), 0)
        except BaseException:
            os.close(fd)  # closing drops the lock if it was taken
            raise
        return cls(run_dir, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def in_place(self) -> bool:
        """Whether the held lock file is still `run_dir`/.lock, reached through no link: False once
        the run's folder was removed, moved or replaced, or its .lock removed, while held (its
        writer would have made a new folder, without its earlier rows, and recorded it complete: an
        attacker's)."""
        if self._fd is None:
            return False
        held = os.fstat(self._fd)
        try:
            # the run's folder and runs/ swapped for links to the moved originals lead to the same
            # file, outside the root (an attacker's): each must still be a folder of its own
            if any(stat.S_ISLNK(os.lstat(folder).st_mode) for folder in (self.run_dir, self.run_dir.parent)):
                return False
            there = os.lstat(self.run_dir / LOCK_FILE)
        except OSError:
            return False
        return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)

    def release(self) -> None:
        """Free the lock (idempotent). The holder JSON stays; only the lock says who is live."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def _open_for_probe(run_dir: Path) -> int | None:
    """A read-only descriptor of the lock file, or None if there is none (or it is not a file).

    O_NONBLOCK: a FIFO planted as `.lock` must not hang the reader."""
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def is_live(run_dir: Path) -> bool | None:
    """True: a live process holds the run's lock; False: the lock file exists and is free;
    None: there is no lock file (a run written before locks, or never started here).

    Probes with a shared non-blocking lock that is released at once (writers retry)."""
    fd = _open_for_probe(run_dir)
    if fd is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # also releases the probe's shared lock
    return False


def holder(run_dir: Path) -> dict[str, Any] | None:
    """The {"pid", "host", "since"} last written to the lock file (whether or not it is held now)."""
    fd = _open_for_probe(run_dir)
    if fd is None:
        return None
    try:
        data = os.read(fd, MAX_HOLDER_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_HOLDER_BYTES:
        return None
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError), or nested too deep
        return None
    return record if isinstance(record, dict) else None

