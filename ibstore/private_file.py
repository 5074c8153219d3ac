"""Files only this user's own: a folder no one else can write, and a file read only if it is a
regular file of this user of bounded size, opened without following a link or blocking. The
index (ibstore.index_file), the writers' pending entries and the index folders' root.json are
read only through these (DESIGN.md, "Threat model").
"""

from __future__ import annotations

import mmap
import os
import stat
from pathlib import Path

import pyarrow as pa


def why_not_private(directory: Path) -> str | None:
    """Why `directory` is not a folder only this user can write (None if it is)."""
    try:
        info = os.lstat(directory)
    except OSError as error:
        return f"cannot be inspected ({error.strerror})"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    if info.st_uid != os.geteuid():
        return "belongs to another user"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "can be written by other users"
    return None


def read_index_file(path: Path, max_bytes: int, mapped: bool = False) -> pa.Buffer:
    """The file at `path`, if it is a regular file of this user of at most `max_bytes`: opened
    without following a link and without blocking, checked on the open descriptor, read into a
    64-byte aligned buffer (Arrow then reads the tables in place). ValueError says why not.

    `mapped`: the file mapped read-only instead of read (page aligned). Reading copied all of
    it, hundreds of MB at 100,000 runs, most of a warm open's time there (bench/RESULTS.md, issue 20
    round 4); a mapping copies nothing
    and the process keeps only the pages it touches. The index is replaced by renaming a new
    file over it, never written in place, so the mapped file never changes under a reader
    (one truncated in place by hand would end the process with SIGBUS)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_uid != os.geteuid():
            raise ValueError("belongs to another user")
        if info.st_size > max_bytes:
            raise ValueError(f"{info.st_size:,} bytes, more than an index of this root can hold "
                             f"({max_bytes:,})")
        if mapped and info.st_size:
            return pa.py_buffer(mmap.mmap(descriptor, info.st_size, prot=mmap.PROT_READ))
        buffer = pa.allocate_buffer(info.st_size)
        view, filled = memoryview(buffer).cast("B"), 0
        while filled < info.st_size:
            got = os.readv(descriptor, [view[filled:]])
            if got == 0:
                raise ValueError("cut short while read")
            filled += got
        return buffer
    finally:
        os.close(descriptor)
