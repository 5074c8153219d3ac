"""The index of a results root: what scanning it learned, kept between scans and processes.

Reading a root from nothing means reading every run.json and every Parquet footer (about
10 ms a run: 100 s at 10,000 runs). The index keeps, per run folder, what `read_run` gave
(the validated record, the table files with their columns and row counts, the problems),
under the stat signature of the folder's entries (name, type, inode, ctime, mtime and size
of each) taken *before* the read. A scan lists every run folder's entries (lstat only, no
file is opened) and reads again only the folders whose signature changed; whatever changes
during a read changes the signature again, so it is read again next time. Runs whose record
says `running` get their live status again at every scan (a killed writer changes no file).
The `runs` and `config` view tables are kept too and patched for the runs that changed.

Where: only in the user's own cache, `$XDG_CACHE_HOME/ib-lab/index/<key>/index.bin` (default
`~/.cache`), the key a digest of the root's resolved path and its device and inode numbers.
The index is a cache, never an authority: a results root is often shared, and whoever can
write it could otherwise plant an index that shows records and values no run folder holds
(a CRC is not a signature). So nothing in the root is read as an index; the cache folder is
used only if it is a folder of this user that no one else can write (mode 0700 is what we
make), and `index.bin` only if it opens without following a link or blocking
(O_NOFOLLOW | O_NONBLOCK: a named pipe or device is never waited on) and `fstat` says a
regular file of this user no larger than `max_index_bytes(number of run folders)`.
Anything else is not read and is rebuilt (`Scan.index_note` says why). See DESIGN.md, "Threat
model".

Format: MAGIC, the header's length (u32, little-endian), the header (JSON: the code version,
the body's length and CRC-32, the byte range of each segment), then the body: one Arrow IPC
stream per segment (the run entries, their table files, the `runs` and `config` tables), each
starting at a multiple of 64 bytes so that Arrow reads the tables in place. It is
written to a temporary file in the same folder and renamed over the old index, so readers and
other writers see the old or the new index, never part of one. An index with another magic,
version, length or checksum, or that does not parse, is ignored and rebuilt, never trusted;
the code version is a digest of the ibstore sources, so an index written by other reading code
is rebuilt too.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pydantic

from ibstore import layout, views
from ibstore.record import MAX_RECORD_BYTES, RunRecord, Status
from ibstore.scan import FILES_SCHEMA, Problem, Scan, file_rows, live_status, read_run, run_dirs

MAGIC = b"ib-lab results index\n"
INDEX_FILE = "index.bin"
MAX_HEADER_BYTES = 1 << 16
ALIGNMENT = 64           # the body and each segment start at a multiple of it: Arrow reads them in place
SAVE_INTERVAL_S = 5.0    # a process rewrites the index at most this often (a stale one only costs re-reads)
STALE_TEMP_S = 600.0     # temporary files of writers killed mid-write are removed after this

ENTRIES_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("signature", pa.binary()), ("record", pa.binary()),
    ("written_status", pa.string()), ("problems", pa.string()),
])
SEGMENTS = ("entries", "files", "runs", "config")


def _code_version() -> str:
    """A digest of the code that reads runs and builds the views: an index written by other code
    may hold what this code would read differently, so it is not used."""
    digest = hashlib.sha256(MAGIC)
    package = Path(__file__).parent
    for name in ("index.py", "scan.py", "record.py", "views.py", "layout.py", "schema.py", "flatten.py"):
        digest.update((package / name).read_bytes())
    return digest.hexdigest()[:16]


CODE_VERSION = _code_version()


@dataclass
class Entry:
    """What reading one run folder gave, under the signature its entries had before the read."""
    run_id: str
    signature: bytes                       # b"" when the folder could not be listed: read every time
    record_json: bytes | None              # the validated record, None if the run has none
    written_status: Status | None
    problems: tuple[Problem, ...]
    _record: RunRecord | None = field(default=None, repr=False)

    def record(self) -> RunRecord | None:
        """The record, parsed from the index on first use. It was validated through
        `RunRecord.from_json_bytes` when its run was read, and the index's checksum held, so
        pydantic's own JSON parser (bounded depth, typed, ~30x faster) validates it again;
        ValidationError if the index was tampered with."""
        if self._record is None and self.record_json is not None:
            self._record = RunRecord.model_validate_json(self.record_json)
        return self._record


@dataclass
class State:
    """One root's index in memory: the entries by folder name and the view tables they give."""
    entries: dict[str, Entry] = field(default_factory=dict)
    shown: dict[str, Status] = field(default_factory=dict)    # run_id -> live status in the view tables
    file_table: pa.Table = field(default_factory=FILES_SCHEMA.empty_table)   # the runs' table files
    runs_view: pa.Table | None = None
    config_view: pa.Table | None = None
    saved_at: float | None = None          # time.monotonic() of the last save; None: not saved yet
    unsaved: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


_STATES: dict[str, State] = {}            # per absolute root: kept between scans in this process
_STATES_LOCK = threading.Lock()


def scan(root: str | os.PathLike, now: float | None = None) -> Scan:
    """The root's runs, files and problems, reading only run folders that changed since the
    index saw them; the index is updated (and saved, at most every SAVE_INTERVAL_S)."""
    root = Path(root).absolute()
    now = time.time() if now is None else now
    with _STATES_LOCK:
        state = _STATES.get(str(root))
        if state is None:
            state = _STATES[str(root)] = State()
            loaded, note = load(root, run_folder_count(root))
            if loaded is not None:
                state.entries, state.shown, state.file_table, state.runs_view, state.config_view = loaded
                state.unsaved = False
        else:
            note = "in memory"
    with state.lock:
        result = _update(state, root, now)
        result.index_note = note
        # nothing is kept for a root without runs (it may not exist at all: no folder is made for it)
        if state.unsaved and state.entries and (
                state.saved_at is None or time.monotonic() - state.saved_at >= SAVE_INTERVAL_S):
            result.index_path = save(root, state)
    return result


def forget(root: str | os.PathLike | None = None) -> None:
    """Drop what this process keeps of `root`'s index (of every root if None): the next scan
    starts from the index on disk, as a new process would."""
    with _STATES_LOCK:
        if root is None:
            _STATES.clear()
        else:
            _STATES.pop(str(Path(root).absolute()), None)


def run_folder_count(root: Path) -> int:
    return len(run_dirs(layout.runs_dir(root))[0])


def _update(state: State, root: Path, now: float) -> Scan:
    runs_dir = layout.runs_dir(root)
    names, root_problem = run_dirs(runs_dir)
    prefix = f"{runs_dir}{os.sep}"
    entries: dict[str, Entry] = {}
    changed: set[str] = set()
    fresh_files = []
    for name in names:
        signature = run_signature(prefix + name)
        old = state.entries.get(name)
        if old is not None and signature and old.signature == signature:
            entries[name] = old
            continue
        entries[name], files = _read(root, runs_dir / name, signature)
        fresh_files.append(files)
        changed.add(name)
    changed |= state.entries.keys() - entries.keys()
    if changed:
        unchanged = pa.array(sorted(entries.keys() - changed), pa.string())
        # one chunk: compute kernels over a table of 10,000 one-run chunks take 100x longer
        state.file_table = pa.concat_tables([_rows_of(state.file_table, unchanged), *fresh_files]).combine_chunks()

    shown: dict[str, Status] = {}      # folder name (= run id) -> the status to show
    for name, entry in entries.items():
        status = entry.written_status
        if status is Status.RUNNING:
            record = _record(entry)
            status = None if record is None else live_status(record, runs_dir / name, now)
        if status is None:
            continue
        if state.shown.get(name) is not status:
            changed.add(name)
        shown[name] = status

    if changed or state.runs_view is None:
        state.runs_view, state.config_view = _patched_views(state, entries, shown, changed)
        state.unsaved = True
    state.entries, state.shown = entries, shown
    return _snapshot(root, entries, shown, root_problem, state)


def _record(entry: Entry) -> RunRecord | None:
    try:
        return entry.record()
    except (pydantic.ValidationError, ValueError):   # a tampered index entry: read the run again
        entry.signature, entry.record_json, entry.written_status = b"", None, None
        return None


def _shown_record(entry: Entry, status: Status) -> RunRecord | None:
    record = _record(entry)
    if record is None or record.status is status:
        return record
    return record.model_copy(update={"status": status})


def _read(root: Path, run_dir: Path, signature: bytes) -> tuple[Entry, pa.Table]:
    """The entry of a run folder read now, and the rows of its table files."""
    run = read_run(root, run_dir)
    record = run.record
    entry = Entry(run_dir.name, signature, None if record is None else record.model_dump_json().encode(),
                  None if record is None else record.status, run.problems, record)
    return entry, file_rows(run.files)


def run_signature(run_dir: str) -> bytes:
    """name/type/inode/ctime/mtime/size of every entry not starting with "." (lstat, sorted), or
    b"" if the folder cannot be listed or is not a real folder (then it is read every time)."""
    try:
        if not stat.S_ISDIR(os.lstat(run_dir).st_mode):
            return b""
        parts = []
        with os.scandir(run_dir) as listing:
            for entry in listing:
                name = entry.name
                if name[0] == ".":
                    continue
                s = entry.stat(follow_symlinks=False)
                parts.append(f"{name}/{s.st_mode >> 12}/{s.st_ino}/{s.st_ctime_ns}/{s.st_mtime_ns}/{s.st_size}")
    except OSError:
        return b""
    parts.sort()
    return "\0".join(parts).encode("utf-8", "surrogateescape")


def _patched_views(state: State, entries: dict[str, Entry], shown: dict[str, Status],
                   changed: set[str]) -> tuple[pa.Table, pa.Table]:
    """`runs` and `config` for the shown runs: the old tables without the changed runs, plus rows
    built for them; built from every record when there are no old tables or the new rows' types
    do not fit the old columns (a config key that held numbers now holds text)."""
    if state.runs_view is not None and state.config_view is not None:
        keep = pa.array(sorted(shown.keys() - changed), pa.string())
        fresh = _records(entries, shown, sorted(changed & shown.keys()))
        try:
            runs = pa.concat_tables([_rows_of(state.runs_view, keep), views.runs_table(fresh)],
                                    promote_options="permissive")
            if len({name.lower() for name in runs.column_names}) == runs.num_columns:
                config = pa.concat_tables([_rows_of(state.config_view, keep), views.config_table(fresh)])
                return (runs.sort_by("run_id").combine_chunks(),
                        config.sort_by([("run_id", "ascending"), ("key", "ascending")]).combine_chunks())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
    every = _records(entries, shown, sorted(shown))
    return views.runs_table(every), views.config_table(every)


def _records(entries: dict[str, Entry], shown: dict[str, Status], names: list[str]) -> list[RunRecord]:
    records = (_shown_record(entries[name], shown[name]) for name in names)
    return [record for record in records if record is not None]


def _rows_of(table: pa.Table, run_ids: pa.Array) -> pa.Table:
    return table.filter(pc.is_in(table["run_id"], value_set=run_ids))


def _snapshot(root: Path, entries: dict[str, Entry], shown: dict[str, Status],
              root_problem: Problem | None, state: State) -> Scan:
    problems = [root_problem] if root_problem else []
    fingerprint = []
    for name, entry in entries.items():
        problems.extend(entry.problems)
        if name in shown:
            fingerprint.append((name, entry.signature, shown[name]))
    names = [name for name in entries if name in shown]
    file_table = state.file_table
    if len(shown) < len(entries):   # files of runs without a usable record are not shown
        file_table = _rows_of(file_table, pa.array(names, pa.string()))
    result = Scan(root=root, file_table=file_table, problems=problems, fingerprint=tuple(fingerprint),
                  records=lambda: _records(entries, shown, names),
                  lookup=lambda run_id: _shown_record(entries[run_id], shown[run_id]) if run_id in shown else None)
    result.views.update(runs=state.runs_view, config=state.config_view)
    return result


# --- on disk -------------------------------------------------------------------------------

# Per run folder, the most an index may hold: the record (at most MAX_RECORD_BYTES) kept as
# JSON, again in the `runs` and `config` tables, and the folder's entries, problems and files.
INDEX_BYTES_PER_RUN = 4 * MAX_RECORD_BYTES
INDEX_BYTES_FIXED = 1 << 20


def max_index_bytes(run_folders: int) -> int:
    """The largest plausible index of a root with `run_folders` run folders."""
    return INDEX_BYTES_FIXED + INDEX_BYTES_PER_RUN * run_folders


def cache_dir(root: Path) -> Path:
    """The user's index folder of `root`: keyed by the root's resolved path and its device and
    inode, so a root moved or replaced by another folder at the same path gets a new index."""
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    resolved = root.resolve()
    try:
        identity = os.stat(resolved)
        key = f"{resolved}\0{identity.st_dev}\0{identity.st_ino}"
    except OSError:
        key = str(resolved)
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return cache_home / "ib-lab" / "index" / digest


def _private(directory: Path) -> str | None:
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


def writable_index_dir(root: Path) -> Path | None:
    """The user's index folder of `root`, made (0700) if missing; None if it cannot be made or
    is not private."""
    directory = cache_dir(root)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.mkdir(exist_ok=True, mode=0o700)
    except OSError:
        return None
    return directory if _private(directory) is None else None


def save(root: Path, state: State) -> Path | None:
    """Write the index atomically; where it went, or None if no folder could be written."""
    entries: dict[str, list] = {name: [] for name in ENTRIES_SCHEMA.names}
    for name, entry in state.entries.items():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:   # not a run id: such a folder is read (and refused) every time
            continue
        for column, value in zip(ENTRIES_SCHEMA.names, (
                name, entry.signature, entry.record_json, entry.written_status and entry.written_status.value,
                json.dumps([[p.run_id, p.path, p.problem] for p in entry.problems]))):
            entries[column].append(value)
    segments = {"entries": pa.Table.from_pydict(entries, ENTRIES_SCHEMA), "files": state.file_table,
                "runs": state.runs_view, "config": state.config_view}
    body, ranges = bytearray(), {}
    for name in SEGMENTS:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, segments[name].schema) as writer:
            writer.write_table(segments[name])
        ranges[name] = [len(body), sink.tell()]
        body += sink.getvalue().to_pybytes()
        body += bytes(-len(body) % ALIGNMENT)
    header = json.dumps({"version": CODE_VERSION, "length": len(body), "crc32": zlib.crc32(body),
                         "segments": ranges}).encode()
    header += b" " * (-(len(MAGIC) + 4 + len(header)) % ALIGNMENT)   # the body starts aligned
    data = MAGIC + struct.pack("<I", len(header)) + header + body
    directory = writable_index_dir(root)
    if directory is None:
        return None
    path = directory / INDEX_FILE
    temporary = directory / f".{INDEX_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        return None
    _remove_stale_temporaries(directory)
    state.saved_at, state.unsaved = time.monotonic(), False
    return path


def _remove_stale_temporaries(directory: Path) -> None:
    cutoff = time.time() - STALE_TEMP_S
    for path in directory.glob(f".{INDEX_FILE}.*.tmp"):
        try:
            if path.lstat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue


def load(root: Path, run_folders: int) -> tuple[tuple | None, str]:
    """(entries, shown statuses, file table, runs table, config table) from the user's index of
    `root` if it may be used, and a note saying it was used or why not."""
    directory = cache_dir(root)
    path = directory / INDEX_FILE
    if not os.path.lexists(directory):
        return None, "no index yet: built"
    why = _private(directory)
    if why is not None:
        return None, f"{directory}: not used, it {why}; rebuilt in memory"
    try:
        data = read_index_file(path, max_index_bytes(run_folders))
    except FileNotFoundError:
        return None, "no index yet: built"
    except (OSError, ValueError) as error:
        return None, f"{path}: not used ({getattr(error, 'strerror', None) or error}); rebuilt"
    try:
        return _parse(root, data), f"loaded {path}"
    except (ValueError, KeyError, TypeError, OSError, pa.ArrowException) as error:
        return None, f"{path}: not used ({error}); rebuilt"


def read_index_file(path: Path, max_bytes: int) -> pa.Buffer:
    """The file at `path`, if it is a regular file of this user of at most `max_bytes`: opened
    without following a link and without blocking, checked on the open descriptor, read into a
    64-byte aligned buffer (Arrow then reads the tables in place). ValueError says why not."""
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


def _parse(root: Path, data: pa.Buffer) -> tuple:
    view = memoryview(data)
    start = len(MAGIC) + 4
    if bytes(view[:len(MAGIC)]) != MAGIC or len(view) < start:
        raise ValueError("not an index file")
    (length,) = struct.unpack("<I", view[len(MAGIC):start])
    if length > MAX_HEADER_BYTES:
        raise ValueError("header too long")
    header = json.loads(bytes(view[start:start + length]))
    if header["version"] != CODE_VERSION:
        raise ValueError(f"written by other code (version {header['version']!r}, this is {CODE_VERSION!r})")
    body = data.slice(start + length)
    if body.size != header["length"] or zlib.crc32(memoryview(body)) != header["crc32"]:
        raise ValueError("length or checksum does not match: damaged or cut short")
    tables = {}
    for name in SEGMENTS:
        offset, size = header["segments"][name]
        if not 0 <= offset <= offset + size <= body.size:
            raise ValueError(f"segment {name} lies outside the body")
        tables[name] = pa.ipc.open_stream(body.slice(offset, size)).read_all()
    if not (tables["entries"].schema.equals(ENTRIES_SCHEMA) and tables["files"].schema.equals(FILES_SCHEMA)
            and tables["config"].schema.equals(views.CONFIG_SCHEMA) and "run_id" in tables["runs"].column_names):
        raise ValueError("unexpected columns")

    entries = {}
    for name, signature, record, written, problems in zip(
            *(tables["entries"][c].to_pylist() for c in ENTRIES_SCHEMA.names)):
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"{name!r} is not a run folder name")
        entries[name] = Entry(name, signature, record, Status(written) if written else None,
                              tuple(Problem(*problem) for problem in json.loads(problems)) if problems != "[]" else ())
    files = tables["files"]
    # A file row may only name a table file (never a path) of a listed run.
    if not pc.all(pc.is_in(files["run_id"], value_set=tables["entries"]["run_id"])).as_py() in (True, None):
        raise ValueError("a file row names a run that is not listed")
    kinds = files.group_by(["name", "table", "part"]).aggregate([])   # a few distinct file names
    for name, table, part in zip(*(kinds[c].to_pylist() for c in ("name", "table", "part"))):
        if layout.parse_table_file(name) != (table, part):
            raise ValueError(f"{name!r} is not a table file")
    shown = {run_id: Status(value) for run_id, value in
             zip(tables["runs"]["run_id"].to_pylist(), tables["runs"]["status"].to_pylist())}
    return entries, shown, files, tables["runs"], tables["config"]
