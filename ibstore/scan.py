"""Scan a results root: the runs that can be read, their valid Parquet files, and what is wrong.

Every run folder is read by `read_run`, which cannot be made to raise, hang or leave the
root: it reads only regular files directly inside a real (not symlinked) run folder, checks
the file type with lstat before opening and opens with O_NOFOLLOW | O_NONBLOCK (a FIFO named
run.json or a symlink to /etc never blocks or leaks), validates run.json through
`ibstore.record.RunRecord` (size, depth, int64, types) and lists the table files. Reading a
table file's footer (columns and their types checked against the schema) and decoding its pages
is left until a query first reads that table (ibstore.scan_pages: `Scan.check`), unless this
process already knows the verdict for the file's version; `ParquetFile.checked` says which (a
base file's footer is read at once only when parts lie beside it: it says which parts it
holds). Anything else
becomes a `Problem` for that run; every other run stays visible. Problems are returned, not
raised.

A run's table is its base file plus part files (DESIGN.md, "Results root"); `read_run`
returns the files that currently make it up, parts already compacted into the base left out.
"""

from __future__ import annotations

import bisect
import os
import socket
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from ibstore import layout, lock
from ibstore.record import MAX_RECORD_BYTES, SCHEMA_VERSION, RecordError, RunRecord, Status
from ibstore.scan_footer import OPEN_FLAGS, read_footer
from ibstore.schema import HEARTBEAT_STALE_SECONDS, TABLE_SCHEMAS

RUN_JSON = "run.json"
_HOST = socket.gethostname()
_FILE_KINDS = {stat.S_IFLNK: "a symlink", stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe (FIFO)",
               stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


@dataclass(frozen=True)
class Problem:
    run_id: str
    path: str
    problem: str
    left_out: bool = True     # False: a warning, the run and its files read all the same


def left_out(problems: list[Problem]) -> list[Problem]:
    """The problems that left a run or file out of the views: the counts that say "left out" count
    these, not warnings (a root of four runs, two with an ESC in their folder's name, said "2 file(s)
    ... left out" while every view held all four: an attacker's)."""
    return [problem for problem in problems if problem.left_out]


@dataclass(frozen=True)
class ParquetFile:
    run_id: str
    path: str
    part: int | None = None          # None: the table's base file; n: part file n
    checked: bool = True             # its footer and pages were read and cast to the schema (scan_pages)


@dataclass(frozen=True)
class RunScan:
    """What one run folder holds, as read (status as written; `live_status` derives the shown one)."""
    run_id: str
    run_dir: Path
    record: RunRecord | None                                  # None if run.json is missing or unusable
    files: dict[str, list[ParquetFile]] = field(default_factory=dict)   # table -> base then parts
    problems: tuple[Problem, ...] = ()


# One row per file of a table of a shown run, in reading order (base, then parts by number).
FILES_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("table", pa.string()), ("name", pa.string()), ("part", pa.int64()),
    ("checked", pa.bool_()),
])


def file_tuples(files: dict[str, list[ParquetFile]]) -> list[tuple]:
    """FILES_SCHEMA rows of one run's table files (as read_run returns them), as tuples."""
    return [(f.run_id, table, os.path.basename(f.path), f.part, f.checked)
            for table, table_files in files.items() for f in table_files]


def files_table(rows: list[tuple]) -> pa.Table:
    """FILES_SCHEMA rows as a table: built once for many runs (an Arrow table per run costs more
    than reading the run; bench/RESULTS.md)."""
    return pa.Table.from_arrays([pa.array(column, type=kind.type) for column, kind in
                                 zip(zip(*rows) if rows else [[]] * len(FILES_SCHEMA), FILES_SCHEMA)],
                                schema=FILES_SCHEMA)


@dataclass
class Scan:
    """One state of a results root, as scanned; never changed afterwards (the explorer answers from it meanwhile)."""
    root: Path
    file_table: pa.Table = field(default_factory=FILES_SCHEMA.empty_table, repr=False)   # FILES_SCHEMA
    problems: list[Problem] = field(default_factory=list)
    fingerprint: tuple = ()                                          # changes when anything read changes
    views: dict = field(default_factory=dict, repr=False)            # Arrow data of the views (ibstore.views)
    # The readable runs, status derived, in folder order: made on first use of `runs` (the index
    # keeps records as JSON, and most scans, e.g. `trainer sql`, never need them as objects).
    records: Callable[[], list[RunRecord]] = field(default=list, repr=False)
    lookup: Callable[[str], RunRecord | None] = field(default=lambda run_id: None, repr=False)
    index_note: str = ""                                             # which index was used, or why none
    index_path: Path | None = None                                   # where this scan saved the index
    folders_read: int = 0                                            # run folders read (not only listed)
    # Checks the pages of the unchecked files of some tables (of some runs, or all if None),
    # drops the damaged ones from `file_table` and adds their problems (ibstore.index_pages).
    checker: Callable[[Scan, tuple[str, ...], list[str] | None], None] = field(
        default=lambda scan, tables, run_ids: None, repr=False)
    pages_checked: int = 0                                           # table files whose pages it decoded
    check_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @cached_property
    def runs(self) -> list[RunRecord]:
        return self.records()

    def run(self, run_id: str) -> RunRecord | None:
        """One run's record (status derived), without making every other run's."""
        return self.lookup(run_id)

    def check(self, tables: Iterable[str], run_ids: list[str] | None = None) -> None:
        """Make sure the files of `tables` (of the runs `run_ids`, or of every run) that this scan
        lists had their pages checked: what reads a table calls this first, so a damaged file
        is left out (and is its run's problem) before it can break a query over all runs."""
        wanted = tuple(table for table in TABLE_SCHEMAS if table in set(tables))
        if wanted:
            with self.check_lock:
                self.checker(self, wanted, run_ids)

    @cached_property
    def files(self) -> dict[str, dict[str, list[ParquetFile]]]:
        """table -> run_id -> its files (base, then parts), for every table of TABLE_SCHEMAS, as
        listed now (files whose pages are not checked yet included: `checked`)."""
        files: dict[str, dict[str, list[ParquetFile]]] = {table: {} for table in TABLE_SCHEMAS}
        runs_dir = layout.runs_dir(self.root)
        for run_id, table, name, part, checked in zip(*(self.file_table[c].to_pylist() for c in FILES_SCHEMA.names)):
            files[table].setdefault(run_id, []).append(ParquetFile(run_id, str(runs_dir / run_id / name), part, checked))
        return files

    def table_paths(self, table: str, run_ids: list[str] | None = None) -> tuple[list[str], list[str]]:
        """(path, run_id) of every file of `table` (of the runs `run_ids` only, if given), as two
        lists, without making a ParquetFile each; their pages checked first (`check`)."""
        self.check([table], run_ids)
        wanted = pc.equal(self.file_table["table"], table)
        if run_ids is not None:
            wanted = pc.and_(wanted, pc.is_in(self.file_table["run_id"], value_set=pa.array(run_ids, pa.string())))
        rows = self.file_table.filter(wanted)
        paths = pc.binary_join_element_wise(str(layout.runs_dir(self.root)), rows["run_id"], rows["name"], os.sep)
        return paths.to_pylist(), rows["run_id"].to_pylist()


def run_dirs(runs_dir: Path) -> tuple[list[str], Problem | None]:
    """Every entry name of runs/ not starting with ".", sorted (read_run says what is wrong with the odd ones)."""
    try:
        mode = os.lstat(runs_dir).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return [], None
    except OSError as error:
        return [], Problem("", _shown(runs_dir), f"cannot be read ({error.strerror}): no runs listed")
    if not stat.S_ISDIR(mode):
        return [], Problem("", _shown(runs_dir), f"is {_kind(mode)}, not a folder: not followed, no runs listed")
    try:
        names = sorted(os.listdir(runs_dir))
    except OSError as error:
        return [], Problem("", _shown(runs_dir), f"cannot be read ({error.strerror}): no runs listed")
    # hidden ones lie together once sorted ("." sorts just before "/", which no name holds): cut at once
    return names[:bisect.bisect_left(names, ".")] + names[bisect.bisect_left(names, "/"):], None


def read_run(root: Path, run_dir: Path) -> RunScan:
    """Read one run folder safely; never raises, never blocks, never follows a symlink.

    The folder name is the run id, and a run.json naming another id is a problem, not a run (a
    copy of a run folder would be its group's seed twice); `run_dir` must be an entry of `root`'s
    runs folder."""
    run_id = run_dir.name
    problems: list[Problem] = []

    def problem(path: Path, text: str) -> RunScan:
        problems.append(Problem(_shown_name(run_id), _shown(path), text))
        return RunScan(run_id, run_dir, None, {}, tuple(problems))

    if run_dir.parent != layout.runs_dir(root) or run_id in ("", ".", ".."):
        return problem(run_dir, f"is not a folder of {_shown(layout.runs_dir(root))}: not read")

    try:
        run_id.encode("utf-8")
    except UnicodeEncodeError:
        return problem(run_dir, "folder name is not UTF-8 text: not a run id, skipped")
    if not run_id.isprintable():
        problems.append(Problem(run_id, _shown(run_dir), "folder name holds control characters (shown escaped)",
                                left_out=False))
    try:
        dir_fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        return problem(run_dir, _unopenable_dir(run_dir, error))
    try:
        try:
            entries = _entries(dir_fd)
        except OSError as error:   # e.g. EIO, or a folder that may be entered but not listed
            return problem(run_dir, f"cannot be listed ({error.strerror or error}): skipped")
        for name, entry in entries.items():
            if stat.S_ISLNK(entry.st_mode) and name != RUN_JSON:  # run.json's own check says so
                problems.append(Problem(run_id, _shown(run_dir / name), "is a symlink: never followed",
                                        left_out=layout.parse_table_file(name) is not None))
        if RUN_JSON not in entries:
            problems.append(Problem(run_id, _shown(run_dir), "no run.json (yet): skipped"))
            return RunScan(run_id, run_dir, None, {}, tuple(problems))
        record, error = _read_record(dir_fd, run_dir, entries[RUN_JSON])
        if error:
            problems.append(Problem(run_id, _shown(run_dir / RUN_JSON), error))
            return RunScan(run_id, run_dir, None, {}, tuple(problems))
        if record.run_id != run_id:   # a copy (`cp -r RUN RUN.bak`) read as a run was a second seed of its group
            problems.append(Problem(run_id, _shown(run_dir / RUN_JSON),
                                    f"names the run {_shown_name(record.run_id)}, not this folder: a copied or "
                                    "renamed run folder, skipped (a run is read from the folder named by its id)"))
            return RunScan(run_id, run_dir, None, {}, tuple(problems))
        if record.schema_version > SCHEMA_VERSION:
            problems.append(Problem(run_id, _shown(run_dir / RUN_JSON),
                                    f"written with schema_version {record.schema_version}, this version "
                                    f"reads {SCHEMA_VERSION}: newer fields are not shown", left_out=False))
        files = _table_files(dir_fd, run_id, run_dir, entries, problems)
    finally:
        os.close(dir_fd)
    return RunScan(run_id, run_dir, record, files, tuple(problems))


def live_status(record: RunRecord, run_dir: Path, now: float) -> Status:
    """The status to show: a `running` record whose writer is gone is `interrupted`.

    On this host the run's lock decides at once (a killed writer's lock is free); elsewhere
    (or for runs written before locks) a heartbeat older than HEARTBEAT_STALE_SECONDS does, and
    one dated more than that ahead of this host's clock: a clock that far off, or a record written
    by hand, kept a run "running" for ever (a sweep waited on it, `trainer run --force` refused it)."""
    if record.status is not Status.RUNNING:
        return record.status
    if record.host == _HOST:
        live = lock.is_live(run_dir)
        if live is not None:
            return Status.RUNNING if live else Status.INTERRUPTED
    heartbeat = record.heartbeat_at
    if heartbeat is None or abs(now - heartbeat.timestamp()) > HEARTBEAT_STALE_SECONDS:
        return Status.INTERRUPTED
    return Status.RUNNING


def _entries(dir_fd: int) -> dict[str, os.stat_result]:
    """lstat of each entry not starting with "." (temporary files and the lock are never read)."""
    entries = {}
    for name in os.listdir(dir_fd):
        if name.startswith("."):
            continue
        try:
            entries[name] = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:  # replaced or removed meanwhile
            continue
    return entries


def _read_record(dir_fd: int, run_dir: Path, entry: os.stat_result) -> tuple[RunRecord | None, str | None]:
    if not stat.S_ISREG(entry.st_mode):
        return None, f"is {_kind(entry.st_mode)}, not a file: not read, run skipped"
    if entry.st_size > MAX_RECORD_BYTES:
        return None, f"is {entry.st_size} bytes; at most {MAX_RECORD_BYTES} are read: run skipped"
    key = ("run.json", str(run_dir), *identity(entry))
    return _RECORDS.get(key, lambda: _parse_record(dir_fd))


def _parse_record(dir_fd: int) -> tuple[RunRecord | None, str | None]:
    try:
        data = _read_regular(dir_fd, RUN_JSON, MAX_RECORD_BYTES + 1)
        return RunRecord.from_json_bytes(data), None
    except FileNotFoundError:
        return None, "disappeared while reading: run skipped"
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error}): run skipped"
    except RecordError as error:
        return None, f"{error}: run skipped"


def _read_regular(dir_fd: int, name: str, limit: int) -> bytes:
    """At most `limit` bytes of a regular file; OSError for anything else (checked on the open file)."""
    fd = os.open(name, OPEN_FLAGS, dir_fd=dir_fd)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(f"is {_kind(mode)}, not a file")
        chunks, size = [], 0
        while size < limit and (chunk := os.read(fd, limit - size)):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _table_files(dir_fd: int, run_id: str, run_dir: Path, entries: dict[str, os.stat_result],
                 problems: list[Problem]) -> dict[str, list[ParquetFile]]:
    """The files of each table: the base, then the parts it does not already hold. No footer is
    read unless a table has parts beside its base (whose `ib.compacted_through` says which parts
    it holds): the footers' checks are part of the pages' (ibstore.scan_pages), when a query
    first reads the table. Parsing five footers a run was most of a cold scan's time."""
    listed: dict[str, dict[int | None, str]] = {}   # table -> part (None: base) -> file name
    for name, entry in entries.items():
        parsed = layout.parse_table_file(name)
        if parsed is None or stat.S_ISLNK(entry.st_mode):  # a symlink is already reported
            continue
        if not stat.S_ISREG(entry.st_mode):
            problems.append(Problem(run_id, _shown(run_dir / name),
                                    f"is {_kind(entry.st_mode)}, not a file: table file skipped"))
            continue
        listed.setdefault(parsed[0], {})[parsed[1]] = name
    usable: dict[str, dict[int | None, ParquetFile]] = {}   # as `listed`, the usable files only
    compacted_through: dict[str, int] = {}   # table -> its base file's ib.compacted_through
    folder = f"{run_dir}{os.sep}"   # str(run_dir / name) without pathlib's parsing (most of a read's time)
    for table, by_part in listed.items():
        for part, name in by_part.items():
            version = (folder + name, *identity(entries[name]))
            checked, error = PAGES.known(("pages", *version))   # this version's verdict, if known here
            if part is None and len(by_part) > 1 and not error:
                _, _, compacted_through[table], error = _FOOTERS.get(
                    ("parquet", *version), lambda name=name, table=table: read_footer(dir_fd, name, table, pages=False))
            if error:
                problems.append(Problem(run_id, _shown(run_dir / name), error))
                continue
            usable.setdefault(table, {})[part] = ParquetFile(run_id, version[0], part, checked)
    return layout.current_files(usable, compacted_through)


def _unopenable_dir(run_dir: Path, error: OSError) -> str:
    try:
        mode = os.lstat(run_dir).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISDIR(mode):
        return f"is {_kind(mode)}, not a run folder: not followed, skipped"
    return f"cannot be read ({error.strerror or error}): skipped"


def identity(entry: os.stat_result) -> tuple[int, int, int, int]:
    """Changes whenever the file's content, permissions or identity do (ctime: chmod too)."""
    return entry.st_ino, entry.st_ctime_ns, entry.st_mtime_ns, entry.st_size


def _kind(mode: int) -> str:
    return _FILE_KINDS.get(stat.S_IFMT(mode), "a file" if stat.S_ISREG(mode) else "not a regular file")


def _shown(path: Path) -> str:
    """A path as text that can always be printed and stored (undecodable bytes as \\xNN)."""
    return _shown_name(str(path))


def _shown_name(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


T = TypeVar("T")


class _Cache:
    """What was read from a file, by (path, inode, mtime, size): a rescan of an unchanged root
    reads no file again. Bounded: least recently used entries go first. Thread-safe."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict[tuple, object] = OrderedDict()
        self.lock = threading.Lock()   # the index reads run folders on several threads

    def known(self, key: tuple) -> tuple[bool, object]:
        """(True, the value) if `key` is kept, else (False, None); computes nothing."""
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return True, self.items[key]
        return False, None

    def get(self, key: tuple, compute: Callable[[], T]) -> T:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = compute()   # outside the lock: reading files is what the threads share out
        with self.lock:
            self.items[key] = value
            if len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


# Few: a parsed record is large (tens of thousands kept took hundreds of MB; bench/RESULTS.md), and the
# index keeps every record as JSON; these spare parsing again the run.json of a folder read again for
# its other files.
_RECORDS = _Cache(4_096)
_FOOTERS = _Cache(20_000)   # only base files beside parts have their footer read by a scan
# ("pages", path, *identity) -> why the file's pages do not read as its table, or None (scan_pages)
PAGES = _Cache(200_000)
