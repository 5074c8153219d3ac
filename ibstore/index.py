"""The index of a results root: what scanning it learned, kept between scans and processes.

Reading a root from nothing means listing every run folder and reading its run.json (the
table files' footers and pages are read when a query first reads their table, ibstore.index_pages).
The index keeps, per run folder, what `read_run` gave (the validated record, its table files,
the problems), under the stat signature of the folder itself and of its run.json
(`run_signature`), taken *before* the read. A warm scan lstats two paths a run (no file is
opened, no run folder listed; runs/ itself is listed again only when its own signature changed,
ibstore.index_stat) and reads again only the folders whose signature changed; whatever changes
during a read changes the signature again, so it is read again next time; a folder changed
moments before the scan is read again by the next one. Runs whose record says `running` get
their live status again at every scan (a killed writer changes no file). The `runs` and
`config` view tables, the file table and the fingerprint are kept too and patched for the runs
that changed: at 100,000 runs the lstat calls are what a refresh costs.

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

import dataclasses
import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pydantic

from ibstore import collector, index_file, index_pages, index_pending, index_stat, index_views, layout, scan_workers, views
from ibstore.index_file import Entry
from ibstore.record import RunRecord, Status
from ibstore.scan import FILES_SCHEMA, Problem, Scan, files_table, live_status, run_dirs
from ibstore.schema import TABLE_SCHEMAS

SAVE_INTERVAL_S = 5.0    # a process rewrites the index at most this often (a stale one only costs re-reads)
# A folder or run.json modified less than this before a scan is read again by the next scan
# (`run_signature`): more than the coarsest file system clock (FAT: 2 s; ext4, XFS: a kernel tick).
RACY_NS = 3_000_000_000
# The same rule for the listing of runs/ (ibstore.index_stat): its own constant, since the tests
# turn RACY_NS off (they write a run and scan it within milliseconds) but add runs just as fast.
LISTING_RACY_NS = 3_000_000_000
_READS = itertools.count(1)   # tells the reads of a folder apart (`Entry.read_token`)

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
    pending: dict[str, Path] = field(default_factory=dict)   # pending files listed since the last save
    queued: list = field(default_factory=list)   # page-check changes that found the lock busy (`_snapshot`)
    names: list[str] | None = None       # the listing of runs/ the entries are in (the order of every table)
    listed: tuple[bytes, list[str]] | None = None   # runs/'s signature and its listing taken under it
    running: set[str] = field(default_factory=set)   # runs whose record says `running`
    shown_names: list[str] = field(default_factory=list)   # the shown runs, in folder order
    fingerprint: list[tuple] | None = None   # of the last scan (Scan.fingerprint), an entry per shown run
    positions: dict[str, int] = field(default_factory=dict)   # run id -> its entry in `fingerprint`
    reread: set[str] = field(default_factory=set)   # runs to read from their folders, not a hand-over (`reread`)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


_STATES: dict[str, State] = {}            # per absolute root: kept between scans in this process
_STATES_LOCK = threading.Lock()


def scan(root: str | os.PathLike, now: float | None = None, *, save: bool = True) -> Scan:
    """The root's runs, files and problems, reading only run folders that changed since the
    index saw them; the index is updated (and saved, at most every SAVE_INTERVAL_S). With
    `save=False` neither this scan nor its snapshot's page checks save: the caller does, with
    `save_index` (the explorer, in the background: at 100,000 runs a save writes hundreds of MB)."""
    with collector.paused():   # a cold scan's reads, views and save all hold every entry alive
        return _scan(Path(root).absolute(), time.time() if now is None else now, save)


def _scan(root: Path, now: float, save: bool) -> Scan:
    with _STATES_LOCK:
        state = _STATES.get(str(root))
        listing = None
        if state is None:
            state = _STATES[str(root)] = State()
            listing = _listing(state, layout.runs_dir(root), time.time_ns())   # its size bounds the index's
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
        index_pending.remove_held(pending, held[0], layout.runs_dir(root))
        for name in pending:   # listed again by the next scan that has suspects
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


# A signature no folder has: the entry's run is read again by the next scan (`reread`).
STALE = b"stale"


def reread(root: str | os.PathLike, run_ids: list[str]) -> None:
    """Have the next scan of `root` in this process read these runs' folders again, and the
    index it saves say so to the next process: a file of theirs changed in place since they were
    read (sandbox.FileDamaged), which their folders' signatures do not show, so the verdicts kept
    on their files are stale."""
    with _STATES_LOCK:
        state = _STATES.get(str(Path(root).absolute()))
    if state is None:
        return
    with state.lock:
        for run_id in run_ids:
            if (entry := state.entries.get(run_id)) is not None:
                state.entries[run_id] = dataclasses.replace(entry, signature=STALE)
                state.reread.add(run_id)   # its writer's hand-over, if still there, holds the stale verdicts
        state.unsaved = True


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
    now_ns = time.time_ns()
    names, root_problem = listing or _listing(state, runs_dir, now_ns)
    signatures = index_stat.signatures(str(runs_dir), names, now_ns - RACY_NS)
    # with the stat pass above, all a refresh does per run (at 100,000 runs): the rest is per changed run
    suspects = index_stat.suspects(names, signatures, state.entries, in_order=names is state.names)
    read = _read_changed(state, root, runs_dir, suspects)
    fresh = read.entries
    # The same listing as the last scan's: its entries, in its order, with the changed ones replaced.
    same_names = names is state.names
    entries = {**state.entries, **fresh} if same_names else {name: fresh.get(name) or state.entries[name]
                                                              for name in names}
    changed = set(fresh) if same_names else set(fresh) | (state.entries.keys() - entries.keys())
    if changed:
        state.file_table = index_views.patched_files(state.file_table, changed, read.file_tables)

    # Statuses: a run whose record says `running` gets its live one again at every scan (a killed
    # writer changes no file); with the same listing only those and the changed runs are looked at.
    shown: dict[str, Status] = dict(state.shown) if same_names else {}   # folder name (= run id) -> status shown
    running: set[str] = set()
    for name in (changed | state.running) & entries.keys() if same_names else entries:
        entry = entries[name]
        status = entry.written_status
        if status is Status.RUNNING:
            running.add(name)
            record = _record(entry)
            status = None if record is None else live_status(record, runs_dir / name, now)
        if status is None:
            shown.pop(name, None)
            continue
        if state.shown.get(name) is not status:
            changed.add(name)
        shown[name] = status

    same_runs = shown.keys() == state.shown.keys()
    if changed or state.runs_view is None or not same_runs:
        state.runs_view, state.config_view = _patched_views(state, entries, shown, changed, same_runs)
        state.unsaved = True
        for entry in entries.values():   # the views hold them now; parsed again when asked (each is large)
            entry.forget_record()
    _fingerprint(state, entries, shown, changed, same_names and same_runs)
    state.entries, state.shown, state.names, state.running = entries, shown, names, running
    result = _snapshot(root, entries, shown, root_problem, state, save)
    result.folders_read, result.index_note = read.folders_read, read.note
    return result


def _listing(state: State, runs_dir: Path, now_ns: int) -> tuple[list[str], Problem | None]:
    """The folder names in runs/ (ibstore.scan.run_dirs): the last listing, the same list, while
    runs/ keeps the signature it had before that listing (a run folder that comes, goes or is
    renamed changes runs/'s mtime and ctime), else listed again."""
    signature = index_stat.listing_signature(str(runs_dir), now_ns - LISTING_RACY_NS)
    if signature and state.listed is not None and state.listed[0] == signature:
        return state.listed[1], None
    names, problem = run_dirs(runs_dir)
    if names == state.names:
        # the same folders (a writer's file system may change runs/ without a run coming or going,
        # as an overlay's copy-up does): the last listing, so that the scan patches what it made
        names = state.names
    state.listed = (signature, names) if signature and problem is None else None
    return names, problem


class Changed(NamedTuple):
    """The entries of the run folders a scan found changed, and their table files."""
    entries: dict[str, Entry]
    file_tables: list[pa.Table]       # FILES_SCHEMA rows of those runs
    folders_read: int                 # how many were read (the others were handed over by their writers)
    note: str                         # why worker processes could not read them, if they could not


def _read_changed(state: State, root: Path, runs_dir: Path, suspects: list[tuple[str, bytes]]) -> Changed:
    """The entries of the folders whose signature is not their entry's: from a writer's hand-over
    if one matches the folder's current signature, else read (in worker processes when many)."""
    fresh: dict[str, Entry] = {}
    fresh_files: list[pa.Table] = []
    to_read: list[tuple[str, bytes]] = []
    pending = index_pending.listing(root) if suspects else {}   # entries writers handed over (usually none)
    for name, signature in suspects:
        # A writer's entry is taken even if the folder changed a moment ago: its writer read it
        # holding the run's lock, after its last change (`record_run`).
        written = (signature or run_signature(str(runs_dir / name))) if pending and name not in state.reread else b""
        handed = None
        if written:
            path = pending.get(index_pending.file_name(name, written))
            handed = None if path is None else index_pending.read(path, name, written)
        if handed is not None:
            fresh[name] = handed[0]
            fresh_files.append(handed[1])
        else:
            to_read.append((name, signature))
    state.pending.update(pending)
    read_files: list[tuple] = []
    reads, note = scan_workers.read_entries(root, runs_dir, to_read)
    for (name, _), (entry, files) in zip(to_read, reads):
        # A folder read under no signature is read again by every scan; each read is told apart
        # in the fingerprint, so that a change it found replaces the snapshot (its signature cannot).
        entry.read_token = next(_READS)
        fresh[name] = entry
        read_files.extend(files)
        state.reread.discard(name)
    return Changed(fresh, [*fresh_files, files_table(read_files)], len(to_read), note)


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


def run_signature(run_dir: str) -> bytes:
    """The signature of one run folder (ibstore.index_stat: the lstat of the folder itself and of
    its run.json), or b"" if it is not a real folder or cannot be inspected (then it is read every
    time). Without the "racily clean" rule a scan applies (`_update`): its callers are the
    writer's hand-over under the run's lock (`record_run`) and the reads that match it."""
    return index_stat.signature(run_dir, None)


def _fingerprint(state: State, entries: dict[str, Entry], shown: dict[str, Status], changed: set[str],
                 same: bool) -> None:
    """The shown runs in folder order and the scan's fingerprint, an entry per shown run (name,
    signature, status) into `state`: with the last scan's listing and shown runs (`same`), its
    fingerprint patched for the changed runs (made anew, it is a pass over every run)."""
    def mark(name: str) -> tuple:
        entry = entries[name]
        # a folder read under no signature (changed moments ago), or read again under the same one
        # (`reread`), is told apart by its read, so that what the read found replaces the snapshot
        return name, entry.signature, entry.read_token, shown[name]

    if same and state.fingerprint is not None:
        if changed:
            state.fingerprint = list(state.fingerprint)
            for name in changed & state.positions.keys():   # a changed run may be one not shown
                state.fingerprint[state.positions[name]] = mark(name)
        return
    state.shown_names = list(entries) if len(shown) == len(entries) else [name for name in entries if name in shown]
    state.fingerprint = [mark(name) for name in state.shown_names]
    state.positions = {name: position for position, name in enumerate(state.shown_names)}


def _patched_views(state: State, entries: dict[str, Entry], shown: dict[str, Status],
                   changed: set[str], same_runs: bool) -> tuple[pa.Table, pa.Table]:
    """`runs` and `config` for the shown runs: the old tables patched for the changed runs
    (ibstore.index_views), or built from every record when there are none or the patch does not fit."""
    if state.runs_view is not None and state.config_view is not None:
        fresh = _records(entries, shown, sorted(changed & shown.keys()))
        dropped = changed if same_runs else changed | (state.shown.keys() - shown.keys())
        views_now = index_views.patched(state.runs_view, state.config_view, dropped, fresh, same_runs=same_runs)
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
    problems += [problem for entry in entries.values() if entry.problems for problem in entry.problems]
    names, fingerprint = state.shown_names, tuple(state.fingerprint)
    file_table = state.file_table
    if len(shown) < len(entries):   # files of runs without a usable record are not shown
        file_table = index_views.rows_of(file_table, pa.array(names, pa.string()))
    result = Scan(root=root, file_table=file_table, problems=problems, fingerprint=fingerprint,
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
