"""The stat pass of a warm scan (ibstore.index): the signature of every run folder, and when
runs/ need not be listed again.

A signature is the lstat of the run folder itself (type, inode, ctime, mtime) and of its
run.json (type, inode, ctime, mtime, size; zeros when it is missing), packed into 72 bytes.
Every writer of a run renames whole files into place or removes files, which changes the
folder's mtime and ctime; rsync (which sets a folder's mtime back) and `touch -m` cannot set a
ctime; an edit of run.json in place changes only run.json's stat, so it is taken too (DESIGN.md,
"Threat model"). A change of a table file in place is not noticed here: the query that reads the
file as it is then and finds it damaged has its run read again (ibstore.index.reread).

At 100,000 runs this pass is two hundred thousand system calls a refresh: the loop does nothing
else per run but pack the fields (one C call; formatting them as text cost a good part of the pass),
and the paths are looked up from an open runs/ folder, not walked from /.

The listing of runs/ is kept while runs/ itself keeps its signature: a run folder that comes,
goes or is renamed changes runs/'s mtime and ctime.
"""

from __future__ import annotations

import operator
import os
import stat
import struct
from collections.abc import Mapping

from ibstore.index_file import Entry
from ibstore.scan import RUN_JSON

SIGNATURE = struct.Struct("<9q")
NO_RECORD = (0, 0, 0, 0, 0)
_RECORD = f"{os.sep}{RUN_JSON}"
_NEVER = 1 << 63   # a cutoff no time passes
STRIDE = 1024      # signatures compared at once by `suspects`
_SIGNATURE_OF = operator.attrgetter("signature")


def signatures(runs_dir: str, names: list[str], settled_before_ns: int | None) -> list[bytes]:
    """The signature of each folder `names` of `runs_dir`, in order: b"" for one that is not a
    real folder, cannot be inspected, is not named in UTF-8 text (no run id), or whose folder or
    run.json was modified after `settled_before_ns` (a file system stamps times with a
    coarse clock, so a later change in the same tick would keep its signature: git's "racily
    clean" rule); such a folder is read at every scan."""
    try:
        runs_fd = os.open(runs_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return [b""] * len(names)
    try:
        return _signatures(names, runs_fd, _NEVER if settled_before_ns is None else settled_before_ns)
    finally:
        os.close(runs_fd)


def signature(run_dir: str, settled_before_ns: int | None = None) -> bytes:
    """`signatures` of one folder, by its path."""
    head, name = os.path.split(run_dir)
    return signatures(head or ".", [name], settled_before_ns)[0]


def is_text(name: str) -> bool:
    """Whether a folder name is UTF-8 text (os.listdir hands other bytes as lone surrogates): a
    name that is not is no run id, has no rows in any table and no signature."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _signatures(names: list[str], runs_fd: int, cutoff: int) -> list[bytes]:
    # One loop, no call per run but the two lstat and the pack: at 100,000 runs a function call
    # per run was a measurable part of the pass (bench/RESULTS.md).
    lstat, pack, is_dir = os.lstat, SIGNATURE.pack, stat.S_ISDIR
    result: list[bytes] = []
    append = result.append
    for name in names:
        if not (name.isascii() or is_text(name)):
            append(b"")
            continue
        try:
            folder = lstat(name, dir_fd=runs_fd)
            if not is_dir(folder.st_mode):
                append(b"")
                continue
            try:
                record = lstat(name + _RECORD, dir_fd=runs_fd)
            except FileNotFoundError:
                record = None
        except OSError:
            append(b"")
            continue
        if record is None:
            append(b"" if folder.st_mtime_ns > cutoff else
                   pack(folder.st_mode, folder.st_ino, folder.st_ctime_ns, folder.st_mtime_ns, *NO_RECORD))
        elif folder.st_mtime_ns > cutoff or record.st_mtime_ns > cutoff:
            append(b"")
        else:
            append(pack(folder.st_mode, folder.st_ino, folder.st_ctime_ns, folder.st_mtime_ns,
                        record.st_mode, record.st_ino, record.st_ctime_ns, record.st_mtime_ns, record.st_size))
    return result


def suspects(names: list[str], signatures: list[bytes], entries: Mapping[str, Entry],
             in_order: bool) -> list[tuple[str, bytes]]:
    """(name, signature) of the folders `names` to read: those without a signature (read at every
    scan), without an entry, or whose entry has another signature. `in_order`: `entries` are
    those of `names`, in its order (the index's, when the listing is the last one)."""
    if not in_order or len(names) != len(entries):
        get = entries.get
        return [(name, signature) for name, signature in zip(names, signatures)
                if not signature or (old := get(name)) is None or old.signature != signature]
    # Compared a stride at a time (a list comparison, in C), a step per run only in the strides
    # that differ: at 100,000 runs a step per run was a measurable part of a refresh's Python.
    known = list(map(_SIGNATURE_OF, entries.values()))
    positions = set(_unsigned(signatures))
    for start in range(0, len(names), STRIDE):
        if signatures[start:start + STRIDE] != known[start:start + STRIDE]:
            positions.update(i for i in range(start, min(start + STRIDE, len(names))) if signatures[i] != known[i])
    return [(names[i], signatures[i]) for i in sorted(positions)]


def _unsigned(signatures: list[bytes]):
    """The positions of the empty signatures, found by list.index (in C)."""
    position = -1
    while True:
        try:
            position = signatures.index(b"", position + 1)
        except ValueError:
            return
        yield position


def listing_signature(runs_dir: str, settled_before_ns: int) -> bytes:
    """The signature of runs/ itself, under which its listing may be kept: b"" (list it again)
    if it is not a real folder, cannot be inspected or was modified after
    `settled_before_ns`."""
    try:
        folder = os.lstat(runs_dir)
    except OSError:
        return b""
    if not stat.S_ISDIR(folder.st_mode) or folder.st_mtime_ns > settled_before_ns:
        return b""
    return SIGNATURE.pack(folder.st_mode, folder.st_ino, folder.st_ctime_ns, folder.st_mtime_ns, folder.st_dev,
                          *NO_RECORD[1:])
