"""A synthetic run's folder written whole: its files go into a hidden folder beside the runs
(`runs/.<run_id>.<pid>.staging`, which no reader opens: the scan skips names starting with ".")
and the folder is renamed to `runs/<run_id>` once every file is in it.

One rename per run instead of the trainer's temporary file and rename per file (trainer.atomic):
a reader still sees a run whole or not at all, and a generator stopped mid-run leaves only a
hidden folder (`remove_stale` clears them). Each file is created with one open and its bytes
written at once, without fsync: a lost synthetic root is written again. Only a run that is
written again into an existing folder has its files renamed over the old ones one by one, as
the trainer replaces them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Self

from ibstore import layout

SUFFIX = ".staging"
FILE_MODE = 0o644   # as trainer.atomic: readable by the other users of a shared root


class StagedRun:
    """`with StagedRun(root, run_id) as run: run.write(name, data)`: the folder is published when
    the block ends without an exception, removed when it ends with one."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.final = str(layout.run_dir(root, run_id))
        self.folder = str(layout.runs_dir(root) / f".{run_id}.{os.getpid()}{SUFFIX}")

    def __enter__(self) -> Self:
        try:
            os.mkdir(self.folder)
        except FileNotFoundError:   # the root's first run
            os.makedirs(os.path.dirname(self.folder), exist_ok=True)
            os.mkdir(self.folder)
        return self

    def write(self, name: str, data: bytes | memoryview) -> None:
        fd = os.open(f"{self.folder}/{name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)   # not narrowed by the umask, as trainer.atomic's files
            view = memoryview(data)
            while view:   # a regular file takes it all in one write unless the disk is full
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        try:
            os.rename(self.folder, self.final)
        except OSError:   # the run's folder exists (written again): its files are replaced
            if not os.path.isdir(self.final):
                raise
            for name in os.listdir(self.folder):
                os.replace(f"{self.folder}/{name}", f"{self.final}/{name}")
            os.rmdir(self.folder)


def remove_stale(root: Path) -> None:
    """Remove the hidden folders of runs a stopped generator did not finish."""
    runs = layout.runs_dir(root)
    for name in os.listdir(runs) if runs.is_dir() else ():
        if name.startswith(".") and name.endswith(SUFFIX):
            shutil.rmtree(runs / name)
