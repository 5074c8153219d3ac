"""The index of a results root: what scanning it learned, kept between scans and processes.

Reading a root from nothing means listing every run folder and reading its run.json (the
table files' footers and pages are read when a query first reads their table, ibstore.index_pages).
The index keeps, per run folder, what `read_run` gave (the validated record, its table files,
the problems), under the stat signature of the folder itself and of its run.json
(`run_signature`), taken *before* the read. A warm scan lists runs/ and lstats two paths a run
(no file is opened, no run folder listed) and reads again only the folders whose signature
changed; whatever changes during a read changes the signature again, so it is read again next
time; a folder changed moments before the scan is read again by the next one. Runs whose record
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

The file and where it lives: ibstore.index_file.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pydantic

from ibstore import collector, index_file, index_pages, index_pending, index_views, layout, scan_workers, views
from ibstore.index_file import Entry
from ibstore.record import RunRecord, Status
from ibstore.scan import FILES_SCHEMA, RUN_JSON, Problem, Scan, files_table, live_status, run_dirs
from ibstore.schema import TABLE_SCHEMAS

SAVE_INTERVAL_S = 5.0    # a process rewrites the index at most this often (a stale one only costs re-reads)
# A folder or run.json modified less than this before a scan is read again by the next scan
# (`run_signature`): more than the coarsest file system clock (FAT: 2 s; ext4, XFS: a kernel tick).
RACY_NS = 3_000_000_000

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
    pending: dict[str, Path] = field(default_factory=dict)   # writers' entries listed, not yet saved
    queued: list = field(default_factory=list)   # page-check changes that found the lock busy (`_snapshot`)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


_STATES: dict[str, State] = {}            # per absolute root: kept between scans in this process
_STATES_LOCK = threading.Lock()


def scan(root: str | os.PathLike, now: float | None = None, *, save: bool = True) -> Scan:
    """The root's runs, files and problems, reading only run folders that changed since the
    index saw them; the index is updated (and saved, at most every SAVE_INTERVAL_S). With
    `save=False` neither this scan nor its snapshot's page checks save: the caller does, with
    `save_index` (the explorer, in the background: at 100,000 runs a save writes ~430 MB)."""
    with collector.paused():   # a cold scan's reads, views and save all hold every entry alive
        return _scan(Path(root).absolute(), time.time() if now is None else now, save)


def _scan(root: Path, now: float, save: bool) -> Scan:
    with _STATES_LOCK:
        state = _STATES.get(str(root))
        listing = None
        if state is None:
            state = _STATES[str(root)] = State()
            listing = run_dirs(layout.runs_dir(root))   # its size bounds the index's; listed once
            loaded, note = index_file.load(root, len(listing[0]))
            if loaded is not None:
                state.entries, state.shown, state.file_table, state.runs_view, state.config_view = loaded
                state.unsaved = False
        else:
            note = "in memory"
    with state.lock:
        result = _update(state, root, now, listing, save)
        result.index_note = f"{note}; {result.index_note}" if result.index_note else note
        due = save and (state.saved_at is None or time.monotonic() - state.saved_at >= SAVE_INTERVAL_S)
    if due:
        result.index_path = _save(state, root)
    return result


def save_index(root: str | os.PathLike) -> Path | None:
    """Save what this process's scans of `root` learned, if anything is unsaved; where it went, or None."""
    with _STATES_LOCK:
        state = _STATES.get(str(Path(root).absolute()))
    return None if state is None else _save(state, Path(root).absolute())


def _save(state: State, root: Path) -> Path | None:
    """Save the index if it changed; where it went, or None. The file is written outside
    state.lock (seconds at 100,000 runs): scans in other threads go on meanwhile, and what they
    change is saved by the next save."""
    with state.lock:
        _apply(state)
        # nothing is kept for a root without runs (it may not exist at all: no folder is made for it)
        if not (state.unsaved and state.entries):
            return None
        held = (dict(state.entries), state.file_table, state.runs_view, state.config_view)
        pending, state.unsaved = dict(state.pending), False
    path = index_file.save(root, *held)
    with state.lock:
        if path is None:
            state.unsaved = True
            return None
        state.saved_at = time.monotonic()
        index_pending.remove(pending)   # index.bin holds them now, or what overrules them
        for name in pending:
            state.pending.pop(name, None)
    return path


def forget(root: str | os.PathLike | None = None) -> None:
    """Drop what this process keeps of `root`'s index (of every root if None): the next scan
    starts from the index on disk, as a new process would."""
    with _STATES_LOCK:
        if root is None:
            _STATES.clear()
        else:
            _STATES.pop(str(Path(root).absolute()), None)


def record_run(root: str | os.PathLike, run_id: str) -> Path | None:
    """Hand the user's index of `root` the entry of a run whose writer has just finished it
    (and still holds its lock): its folder is read as a scan would, under the signature taken
    before the read, so no scan reads it again while it stays as it is. Where the entry went,
    or None if the index folder cannot be written (the run is then read by the next scan)."""
    root = Path(root).absolute()
    run_dir = layout.runs_dir(root) / run_id
    signature = run_signature(str(run_dir))
    if not signature:
        return None
    entry, files = scan_workers.read_entry(root, run_dir, signature)
    # Its writer checks the footers and pages too (a few ms a run): no reader checks them again.
    holder = Scan(root=root, file_table=files_table(files), problems=list(entry.problems))
    index_pages.check(holder, tuple(TABLE_SCHEMAS), None, {}, lambda change, save: None)
    entry.problems = tuple(holder.problems)
    return index_pending.write(root, entry, holder.file_table)


def _apply(state: State, change=None) -> None:
    """The page checks' changes of the index's file table that were queued, then `change` (under
    state.lock; before the entries the checks' snapshots were made from are replaced)."""
    changes = []
    while state.queued:
        changes.append(state.queued.pop(0))
    for one in [*changes, *([change] if change else [])]:
        state.file_table = one(state.entries, state.file_table)
        state.unsaved = True


def _update(state: State, root: Path, now: float, listing: tuple[list[str], Problem | None] | None,
            save: bool) -> Scan:
    _apply(state)
    runs_dir = layout.runs_dir(root)
    names, root_problem = listing or run_dirs(runs_dir)
    prefix = f"{runs_dir}{os.sep}"
    entries: dict[str, Entry] = {}
    changed: set[str] = set()
    fresh_files = []
    to_read: list[tuple[str, bytes]] = []
    pending = index_pending.listing(root)   # entries writers handed over (usually none)
    now_ns = time.time_ns()
    for name in names:
        # a folder name that is not UTF-8 text is no run id: read (and refused) every time
        signature = run_signature(prefix + name, now_ns) if _is_text(name) else b""
        old = state.entries.get(name)
        if old is not None and signature and old.signature == signature:
            entries[name] = old
            continue
        handed = None
        # A writer's entry is taken even if the folder changed a moment ago: its writer read it
        # holding the run's lock, after its last change (`record_run`).
        written = (signature or run_signature(prefix + name)) if pending else b""
        if written:
            path = pending.get(index_pending.file_name(name, written))
            handed = None if path is None else index_pending.read(path, name, written)
        if handed is not None:
            entries[name] = handed[0]
            fresh_files.append(handed[1])
        else:
            to_read.append((name, signature))
        changed.add(name)
    read_files: list[tuple] = []
    reads, read_note = scan_workers.read_entries(root, runs_dir, to_read)
    for (name, _), (entry, files) in zip(to_read, reads):
        entries[name] = entry
        read_files.extend(files)
    fresh_files.append(files_table(read_files))
    entries = {name: entries[name] for name in names}   # folder order: the fingerprint's, the views'
    state.pending.update(pending)
    changed |= state.entries.keys() - entries.keys()
    if changed:
        unchanged = pa.array(sorted(entries.keys() - changed), pa.string())
        # one chunk: compute kernels over a table of 10,000 one-run chunks take 100x longer
        state.file_table = pa.concat_tables([index_views.rows_of(state.file_table, unchanged), *fresh_files]).combine_chunks()

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
        for entry in entries.values():   # the views hold them now; parsed again when asked (~9 KB each)
            entry.forget_record()
    state.entries, state.shown = entries, shown
    result = _snapshot(root, entries, shown, root_problem, state, save)
    result.folders_read = len(to_read)
    result.index_note = read_note
    return result


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


def _is_text(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def run_signature(run_dir: str, now_ns: int | None = None) -> bytes:
    """The stat of the run folder itself (type, inode, ctime, mtime) and of its run.json (lstat,
    no file opened), or b"" if the folder is not a real folder or cannot be inspected (then it is
    read every time). Every writer of a run renames whole files into place and removes the
    parts it compacts, so every change a writer makes changes the folder's mtime and ctime; an
    in-place edit by another process changes only the file (DESIGN.md, "Threat model"): noticed
    for run.json, whose record the index serves, not for a table file, whose rows every query
    reads from the file itself. With `now_ns` (time.time_ns() before the listing), b"" too if
    the folder or run.json was modified less than RACY_NS before: a file system stamps times
    with a coarse clock, so a change later in the same tick would keep this signature (git's
    "racily clean" entries, the same cure)."""
    try:
        folder = os.lstat(run_dir)
        if not stat.S_ISDIR(folder.st_mode):
            return b""
        try:
            record = os.lstat(f"{run_dir}{os.sep}{RUN_JSON}")
        except FileNotFoundError:
            record = None
    except OSError:
        return b""
    modified = folder.st_mtime_ns if record is None else max(folder.st_mtime_ns, record.st_mtime_ns)
    if now_ns is not None and now_ns - modified < RACY_NS:
        return b""
    signature = f"{folder.st_ino}/{folder.st_ctime_ns}/{folder.st_mtime_ns}"
    if record is not None:
        signature += (f"|{record.st_mode >> 12}/{record.st_ino}/{record.st_ctime_ns}/{record.st_mtime_ns}"
                      f"/{record.st_size}")
    return signature.encode()


def _patched_views(state: State, entries: dict[str, Entry], shown: dict[str, Status],
                   changed: set[str]) -> tuple[pa.Table, pa.Table]:
    """`runs` and `config` for the shown runs: the old tables patched for the changed runs
    (ibstore.index_views), or built from every record when there are none or the patch does not fit."""
    if state.runs_view is not None and state.config_view is not None:
        fresh = _records(entries, shown, sorted(changed & shown.keys()))
        views_now = index_views.patched(state.runs_view, state.config_view, sorted(shown.keys() - changed), fresh,
                                        same_runs=shown.keys() == state.shown.keys())
        if views_now is not None:
            return views_now
    every = _records(entries, shown, sorted(shown))
    return views.runs_table(every), views.config_table(every)


def _records(entries: dict[str, Entry], shown: dict[str, Status], names: list[str]) -> list[RunRecord]:
    records = (_shown_record(entries[name], shown[name]) for name in names)
    return [record for record in records if record is not None]


def _snapshot(root: Path, entries: dict[str, Entry], shown: dict[str, Status],
              root_problem: Problem | None, state: State, save: bool) -> Scan:
    problems = [root_problem] if root_problem else []
    fingerprint = []
    for name, entry in entries.items():
        problems.extend(entry.problems)
        if name in shown:
            fingerprint.append((name, entry.signature, shown[name]))
    names = [name for name in entries if name in shown]
    file_table = state.file_table
    if len(shown) < len(entries):   # files of runs without a usable record are not shown
        file_table = index_views.rows_of(file_table, pa.array(names, pa.string()))
    result = Scan(root=root, file_table=file_table, problems=problems, fingerprint=tuple(fingerprint),
                  records=lambda: _records(entries, shown, names),
                  lookup=lambda run_id: _shown_record(entries[run_id], shown[run_id]) if run_id in shown else None)
    result.views.update(runs=state.runs_view, config=state.config_view)

    def apply_to_index(change, worth_saving: bool) -> None:
        # A reader that does not save at once (the explorer) never waits for a rescan in another
        # thread (seconds at 100,000 runs): the next scan or save applies the change.
        if not state.lock.acquire(blocking=save):
            state.queued.append(change)
            return
        try:
            _apply(state, change)
        finally:
            state.lock.release()
        if save and worth_saving:
            _save(state, root)   # at once: the verdicts spare every later process the check

    result.checker = lambda scan, tables, run_ids: index_pages.check(scan, tables, run_ids, entries, apply_to_index)
    return result


# --- on disk -------------------------------------------------------------------------------
