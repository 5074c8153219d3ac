"""Entries that writers hand to a root's index: one file per run state,
`pending/<run_id>.<digest of its signature>.json` in the user's index folder of the root
(ibstore.index_file.cache_dir).

A writer that has finished a run reads its run folder as a scan would (ibstore.index.record_run)
and saves the entry here, removing the run's older pending files (it holds the run's lock: no
newer state exists); the next scan, in any process of this user, takes it instead of reading
the folder if the folder's signature is still the one the entry was read under, and folds it
into index.bin when it saves the index. The reader then removes only the pending files index.bin
holds (same run, same signature) and those of runs whose folder is gone: a file it listed under
another signature may be a writer's newer state, handed over after the scan's stat pass. Each file is
written to a temporary file and renamed: writers never contend for index.bin or wait for each
other, a reader sees a whole entry or none, and a writer killed mid-write leaves a temporary
file that is never read (removed after index_file.STALE_TEMP_S).

The same trust as index.bin (DESIGN.md, "Threat model"): read only from the private index folder,
opened without following a link or blocking, used only if `fstat` says a regular file of this
user of at most index_file.INDEX_BYTES_PER_RUN bytes, written by this code version, naming the
run of its file name and only table files. Anything else is ignored and the folder read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from pathlib import Path

import pyarrow as pa

from ibstore import index_file, layout
from ibstore.index_file import Entry
from ibstore.record import Status
from ibstore.scan import FILES_SCHEMA, Problem, files_table

PENDING_DIR = "pending"
SUFFIX = ".json"


DIGEST_CHARS = 24


def file_name(run_id: str, signature: bytes) -> str:
    """`<run_id>.<digest of the signature>.json`: a writer never replaces a file a reader may be
    folding in, and a reader finds the one entry that can match a folder without opening the others."""
    return f"{run_id}.{hashlib.sha256(signature).hexdigest()[:DIGEST_CHARS]}{SUFFIX}"


def run_id_of(name: str) -> str:
    """The run id a pending file's name gives (`file_name`), or "" for a name of another form.

    >>> run_id_of(file_name("tanh-e52a9cff-s0", b"signature"))
    'tanh-e52a9cff-s0'
    """
    stem = name[:-len(SUFFIX)] if name.endswith(SUFFIX) else ""
    run_id, dot, digest = stem.rpartition(".")
    return run_id if dot and len(digest) == DIGEST_CHARS else ""


def write(root: Path, entry: Entry, files: pa.Table) -> Path | None:
    """Save a run's entry and its table files' rows (FILES_SCHEMA) atomically; where it went, or
    None if the user's index folder cannot be written (the run is then read by the next scan)."""
    try:
        name = file_name(entry.run_id, entry.signature)
        name.encode("utf-8")
    except UnicodeEncodeError:   # not a run id a writer makes; such folders are read every time
        return None
    directory = index_file.writable_index_dir(root)
    if directory is None:
        return None
    data = json.dumps({
        "version": index_file.CODE_VERSION, "run_id": entry.run_id,
        "signature": base64.b64encode(entry.signature).decode(),
        "record": None if entry.record_json is None else entry.record_json.decode(),
        "written_status": entry.written_status and entry.written_status.value,
        "problems": [[p.run_id, p.path, p.problem, p.left_out] for p in entry.problems],
        "files": [list(row.values()) for row in files.to_pylist()],
    }, ensure_ascii=False).encode()   # UTF-8 as in run.json: within INDEX_BYTES_PER_RUN whatever the text
    pending = directory / PENDING_DIR
    temporary = pending / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        pending.mkdir(exist_ok=True, mode=0o700)
        temporary.write_bytes(data)
        os.replace(temporary, pending / name)
    except OSError:
        temporary.unlink(missing_ok=True)
        return None
    # the run's writer holds its lock and has just read it: the run's other pending files are older
    _unlink(path for other, path in listing(root).items() if other != name and run_id_of(other) == entry.run_id)
    index_file.remove_stale_temporaries(pending, ".*.tmp")
    return pending / name


def listing(root: Path) -> dict[str, Path]:
    """File name -> path of every pending entry of `root` (none if the index folder is missing
    or not private). One listdir: what a scan pays when nothing is pending."""
    directory = index_file.cache_dir(root)
    pending = directory / PENDING_DIR
    if not os.path.lexists(pending) or index_file.why_not_private(directory) is not None \
            or index_file.why_not_private(pending) is not None:
        return {}
    try:
        return {name: pending / name for name in os.listdir(pending)
                if not name.startswith(".") and name.endswith(SUFFIX)}
    except OSError:
        return {}


def read(path: Path, name: str, signature: bytes) -> tuple[Entry, pa.Table] | None:
    """The entry and file rows of run folder `name` read under `signature`, from its pending
    file at `path`, or None if the file may not be used (see the module's docstring)."""
    try:
        data = index_file.read_index_file(path, index_file.INDEX_BYTES_PER_RUN)
        saved = json.loads(data.to_pybytes())
        if saved["version"] != index_file.CODE_VERSION or saved["run_id"] != name:
            return None
        if base64.b64decode(saved["signature"], validate=True) != signature:
            return None
        record, written = saved["record"], saved["written_status"]
        entry = Entry(name, signature, None if record is None else record.encode(),
                      None if written is None else Status(written),
                      tuple(Problem(*map(str, problem[:3]), problem[3:] != [False]) for problem in saved["problems"]))
        return entry, _file_rows(name, saved["files"])
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None


def _file_rows(name: str, rows: list) -> pa.Table:
    """FILES_SCHEMA rows that may only name table files (never a path) of run `name`."""
    if any(len(row) != len(FILES_SCHEMA) for row in rows):
        raise ValueError("a file row of another shape")
    table = files_table([tuple(row) for row in rows])
    for run_id, table_name, file, part in zip(*(table[c].to_pylist() for c in ("run_id", "table", "name", "part"))):
        if run_id != name or layout.parse_table_file(file) != (table_name, part):
            raise ValueError(f"{file!r} is not a table file of run {name!r}")
    return table


def remove_held(listed: dict[str, Path], entries: dict[str, Entry], runs_dir: Path) -> None:
    """Remove those of the `listed` pending files that the saved index's `entries` hold (same run,
    same signature) or whose run folder is gone. Any other file is kept: it may be a newer state
    than the saved entry, handed over after the scan's stat pass (its writer removes it once a
    newer one replaces it)."""
    def done_with(name: str) -> bool:
        run_id = run_id_of(name)
        entry = entries.get(run_id)
        if entry is not None:
            return bool(entry.signature) and name == file_name(run_id, entry.signature)
        return bool(run_id) and not os.path.lexists(runs_dir / run_id)
    _unlink(path for name, path in listed.items() if done_with(name))


def _unlink(paths) -> None:
    for path in paths:
        try:
            path.unlink()
        except OSError:
            continue
