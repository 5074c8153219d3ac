"""Where a root's index lives and its file: the user's private cache folder, and the format.

Format: MAGIC, the header's length (u32, little-endian), the header (JSON: the code version,
the body's length and CRC-32, the byte range of each segment), then the body: one Arrow IPC
stream per segment (the run entries, their table files, the `runs` and `config` tables), each
starting at a multiple of 64 bytes so that Arrow reads the tables in place. It is
written to a temporary file in the same folder and renamed over the old index, so readers and
other writers see the old or the new index, never part of one. An index with another magic,
version, length or checksum, or that does not parse, is ignored and rebuilt, never trusted;
the code version is a digest of the ibstore sources, so an index written by other reading code
is rebuilt too.

Where and why: see ibstore.index and DESIGN.md, "Threat model".
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ibstore import index_prune, layout, views
from ibstore.private_file import read_index_file, why_not_private
from ibstore.record import MAX_RECORD_BYTES, RunRecord, Status
from ibstore.scan import FILES_SCHEMA, Problem

MAGIC = b"ib-lab results index\n"
INDEX_FILE = "index.bin"
MAX_HEADER_BYTES = 1 << 16
ALIGNMENT = 64           # the body and each segment start at a multiple of it: Arrow reads them in place
STALE_TEMP_S = 600.0     # temporary files of writers killed mid-write are removed after this

ENTRIES_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("signature", pa.binary()), ("record", pa.binary()),
    ("written_status", pa.string()), ("problems", pa.string()),
])
SEGMENTS = ("entries", "files", "runs", "config")
STATUSES = {status.value: status for status in Status}   # a lookup: Status(value) twice a run was slow at 100,000


def _code_version() -> str:
    """A digest of the code that reads runs and builds the views: an index written by other code
    may hold what this code would read differently, so it is not used."""
    digest = hashlib.sha256(MAGIC)
    package = Path(__file__).parent
    for name in ("index.py", "index_file.py", "index_pending.py", "index_stat.py", "index_views.py", "scan_workers.py",
                 "scan.py", "scan_footer.py", "scan_pages.py", "index_pages.py", "record.py", "views.py", "layout.py", "schema.py",
                 "flatten.py"):
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
    read_token: int = field(default=0, compare=False)   # which read of its folder gave it (ibstore.index)

    def record(self) -> RunRecord | None:
        """The record, parsed from the index on first use. It was validated through
        `RunRecord.from_json_bytes` when its run was read, and the index's checksum held, so
        pydantic's own JSON parser (bounded depth, typed, much faster) validates it again;
        ValidationError if the index was tampered with."""
        if self._record is None and self.record_json is not None:
            self._record = RunRecord.model_validate_json(self.record_json)
        return self._record

    def forget_record(self) -> None:
        """Drop the parsed record (`record()` parses it again from the JSON kept)."""
        self._record = None


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
    resolved = Path(os.path.realpath(root))   # not Path.resolve: a symlink loop raised RuntimeError
    try:
        identity = os.stat(resolved)
        key = f"{resolved}\0{identity.st_dev}\0{identity.st_ino}"
    except OSError:
        key = str(resolved)
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return cache_home / "ib-lab" / "index" / digest


def writable_index_dir(root: Path) -> Path | None:
    """The user's index folder of `root`, made (0700) if missing; None if it cannot be made or
    is not private."""
    directory = cache_dir(root)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    else:   # a new index: say whose, and drop those of roots that are gone
        index_prune.write_root_file(directory, root)
        index_prune.prune(directory.parent, keep=directory)
    return directory if why_not_private(directory) is None else None


def save(root: Path, entries_by_name: dict[str, Entry], file_table: pa.Table, runs_view: pa.Table,
         config_view: pa.Table) -> Path | None:
    """Write the index atomically; where it went, or None if no folder could be written."""
    entries: dict[str, list] = {name: [] for name in ENTRIES_SCHEMA.names}
    for name, entry in entries_by_name.items():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:   # not a run id: such a folder is read (and refused) every time
            continue
        for column, value in zip(ENTRIES_SCHEMA.names, (
                name, entry.signature, entry.record_json, entry.written_status and entry.written_status.value,
                json.dumps([[p.run_id, p.path, p.problem, p.left_out] for p in entry.problems]))):
            entries[column].append(value)
    segments = {"entries": pa.Table.from_pydict(entries, ENTRIES_SCHEMA), "files": file_table,
                "runs": runs_view, "config": config_view}
    # The segments are written from Arrow's buffers as they are: at 100,000 runs the body is
    # hundreds of MB, and joining it into one bytes object first took two more copies of it.
    pieces, ranges, length, crc = [], {}, 0, 0
    for name in SEGMENTS:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, segments[name].schema) as writer:
            writer.write_table(segments[name])
        stream = sink.getvalue()
        ranges[name] = [length, stream.size]
        for piece in (memoryview(stream), bytes(-stream.size % ALIGNMENT)):
            pieces.append(piece)
            crc = zlib.crc32(piece, crc)
            length += len(piece)
    header = json.dumps({"version": CODE_VERSION, "length": length, "crc32": crc, "segments": ranges}).encode()
    header += b" " * (-(len(MAGIC) + 4 + len(header)) % ALIGNMENT)   # the body starts aligned
    directory = writable_index_dir(root)
    if directory is None:
        return None
    path = directory / INDEX_FILE
    temporary = directory / f".{INDEX_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(temporary, "wb") as handle:
            for piece in (MAGIC, struct.pack("<I", len(header)), header, *pieces):
                handle.write(piece)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        return None
    remove_stale_temporaries(directory, f".{INDEX_FILE}.*.tmp")
    return path


def remove_stale_temporaries(directory: Path, pattern: str) -> None:
    """Remove the temporary files matching `pattern` that writers killed mid-write left."""
    cutoff = time.time() - STALE_TEMP_S
    for path in directory.glob(pattern):
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
    why = why_not_private(directory)
    if why is not None:
        return None, f"{directory}: not used, it {why}; rebuilt in memory"
    try:
        data = read_index_file(path, max_index_bytes(run_folders), mapped=True)
    except FileNotFoundError:
        return None, "no index yet: built"
    except (OSError, ValueError) as error:
        return None, f"{path}: not used ({getattr(error, 'strerror', None) or error}); rebuilt"
    try:
        return _parse(data), f"loaded {path}"
    except (ValueError, KeyError, TypeError, OSError, pa.ArrowException) as error:
        return None, f"{path}: not used ({error}); rebuilt"


def _parse(data: pa.Buffer) -> tuple:
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
        entries[name] = Entry(name, signature, record, STATUSES[written] if written else None,
                              tuple(Problem(*map(str, problem[:3]), problem[3:] != [False])
                                    for problem in json.loads(problems)) if problems != "[]" else ())
    files = tables["files"]
    # A file row may only name a table file (never a path) of a listed run.
    if not pc.all(pc.is_in(files["run_id"], value_set=tables["entries"]["run_id"])).as_py() in (True, None):
        raise ValueError("a file row names a run that is not listed")
    kinds = files.group_by(["name", "table", "part"]).aggregate([])   # a few distinct file names
    for name, table, part in zip(*(kinds[c].to_pylist() for c in ("name", "table", "part"))):
        if layout.parse_table_file(name) != (table, part):
            raise ValueError(f"{name!r} is not a table file")
    shown = {run_id: STATUSES[value] for run_id, value in
             zip(tables["runs"]["run_id"].to_pylist(), tables["runs"]["status"].to_pylist())}
    return entries, shown, files, tables["runs"], tables["config"]
