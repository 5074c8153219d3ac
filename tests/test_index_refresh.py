"""The shortcuts of a refresh (ibstore.index_stat, ibstore.index: the listing of runs/ kept while
runs/ keeps its signature, the fingerprint patched for the changed runs) against the changes they
must still see: a run folder deleted, copied in by another tool (rsync sets a folder's mtime back),
updated with its times set back, renamed, a record rewritten in place, a second change within the racy window, a change to a run
whose record cannot be read."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from explorer.results import ResultStore
from ibstore import index, index_file, index_stat, layout
from ibstore.index import scan
from ibstore.record import RunRecord, Status

RACY_NS = 3_000_000_000   # the module's value, restored where a test needs the racy rule (conftest turns it off)


@pytest.fixture
def root(small_tanh_root):
    return small_tanh_root(3)


@pytest.fixture
def listings(monkeypatch):
    """The listings of runs/ the scans made (the names listed each time)."""
    made: list[list[str]] = []
    original = index.run_dirs
    monkeypatch.setattr(index, "run_dirs", lambda runs_dir: made.append(original(runs_dir)[0]) or original(runs_dir))
    return made


@pytest.fixture
def listing_kept(monkeypatch):
    """runs/'s listing kept however recent its change: what a scan notices by runs/'s signature alone."""
    monkeypatch.setattr(index, "LISTING_RACY_NS", 0)


def run_ids(root) -> list[str]:
    return sorted(os.listdir(layout.runs_dir(root)))


def rewrite_record(root, run_id: str, **update) -> None:
    """Rewrite run.json in place (no rename: the folder's stat stays as it was)."""
    path = layout.run_json_path(root, run_id)
    record = RunRecord.from_json_bytes(path.read_bytes()).model_copy(update=update)
    with open(path, "r+b") as handle:
        handle.truncate(0)
        handle.write(record.to_json_bytes())


def shown_ids(result) -> list[str]:
    return [name for name, *_ in result.fingerprint]


def test_the_listing_is_kept_while_runs_keeps_its_signature(root, listings, listing_kept):
    ids = run_ids(root)
    scan(root)
    listings.clear()
    assert shown_ids(scan(root)) == ids and listings == []


def test_a_deleted_run_folder_is_seen_though_the_listing_was_kept(root, listings, listing_kept):
    ids = run_ids(root)
    scan(root)
    shutil.rmtree(layout.run_dir(root, ids[1]))
    later = scan(root)
    assert shown_ids(later) == [ids[0], ids[2]] and [r.run_id for r in later.runs] == [ids[0], ids[2]]
    assert listings[-1] == [ids[0], ids[2]]


def test_a_run_folder_copied_in_with_old_times_is_seen(root, tmp_path, listing_kept):
    """rsync -a: a folder made and its files written, then every mtime set back to the source's."""
    ids = run_ids(root)
    source = tmp_path / "elsewhere" / "copied-s9"
    shutil.copytree(layout.run_dir(root, ids[0]), source)
    record = RunRecord.from_json_bytes((source / "run.json").read_bytes()).model_copy(update={"run_id": "copied-s9"})
    (source / "run.json").write_bytes(record.to_json_bytes())
    scan(root)
    past = time.time() - 3600
    runs_before = os.lstat(layout.runs_dir(root))
    shutil.copytree(source, layout.run_dir(root, "copied-s9"))
    for path in (*layout.run_dir(root, "copied-s9").iterdir(), layout.run_dir(root, "copied-s9")):
        os.utime(path, (past, past))
    os.utime(layout.runs_dir(root), ns=(runs_before.st_atime_ns, runs_before.st_mtime_ns))   # runs/ too
    assert "copied-s9" in shown_ids(scan(root))


def test_a_run_folder_updated_with_its_times_set_back_is_seen(root, reads, listing_kept):
    """rsync -a --delete into a run folder: a table file removed, then the folder's and run.json's
    mtimes set back to what they were; only the folder's ctime tells."""
    ids = run_ids(root)
    folder, gradients = layout.run_dir(root, ids[0]), layout.table_path(root, ids[0], "gradients")
    scan(root)
    before = {path: os.lstat(path) for path in (folder, layout.run_json_path(root, ids[0]))}
    gradients.unlink()
    for path, old in before.items():
        os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    reads.clear()
    later = scan(root)
    assert reads == [ids[0]] and ids[0] not in later.files["gradients"]


def test_a_run_folder_renamed_is_seen(root, listing_kept):
    # its run.json names the run by its old id: a problem, not a run (a copy would be a seed twice)
    ids = run_ids(root)
    scan(root)
    os.rename(layout.run_dir(root, ids[2]), layout.run_dir(root, "renamed-s7"))
    later = scan(root)
    assert shown_ids(later) == sorted([ids[0], ids[1]]) and later.run("renamed-s7") is None
    assert [p.run_id for p in later.problems if "copied or renamed run folder" in p.problem] == ["renamed-s7"]


def test_a_record_rewritten_in_place_is_seen_with_the_listing_kept(root, reads, listing_kept):
    ids = run_ids(root)
    scan(root)
    reads.clear()
    rewrite_record(root, ids[0], status=Status.FAILED, error="rewritten")
    later = scan(root)
    assert reads == [ids[0]] and later.run(ids[0]).status is Status.FAILED


def test_runs_changed_moments_ago_is_listed_again(root, listings, monkeypatch):
    monkeypatch.setattr(index, "LISTING_RACY_NS", RACY_NS)
    scan(root)   # the runs were written just now
    listings.clear()
    scan(root)
    assert len(listings) == 1   # a folder added later in the same clock tick would keep runs/'s signature


def test_a_second_change_within_the_racy_window_replaces_the_snapshot(root, monkeypatch):
    monkeypatch.setattr(index, "RACY_NS", RACY_NS)
    run_id = run_ids(root)[0]
    store = ResultStore(root)
    store.refresh()
    for epochs in (7, 8):   # each a moment after the last: the folder has no signature to keep
        rewrite_record(root, run_id, epochs_done=epochs)
        assert store.refresh()
        assert store.runs().set_index("run_id").loc[run_id, "epochs_done"] == epochs


def test_a_change_to_a_run_that_is_not_shown_is_taken(root, listing_kept):
    ids = run_ids(root)
    record = layout.run_json_path(root, ids[1])
    good = record.read_bytes()
    record.write_bytes(b"{not json")
    broken = scan(root)
    assert ids[1] not in shown_ids(broken) and any(p.run_id == ids[1] for p in broken.problems)
    record.write_bytes(b"[]")   # changed again, still unreadable: not shown, its problem replaced
    assert ids[1] not in shown_ids(scan(root))
    record.write_bytes(good)
    assert shown_ids(scan(root)) == ids


def test_the_stat_pass_signs_what_one_folder_signature_does(root):
    runs_dir = str(layout.runs_dir(root))
    names = [*run_ids(root), "missing", "\udcff-not-utf8"]
    (layout.runs_dir(root) / "a-file").write_bytes(b"")
    names.append("a-file")
    signatures = index_stat.signatures(runs_dir, names, None)
    assert signatures == [index.run_signature(os.path.join(runs_dir, name)) for name in names]
    assert all(signatures[:3]) and signatures[3:] == [b"", b"", b""]
    folder, record = os.lstat(os.path.join(runs_dir, names[0])), os.lstat(layout.run_json_path(root, names[0]))
    assert index_stat.SIGNATURE.unpack(signatures[0]) == (
        folder.st_mode, folder.st_ino, folder.st_ctime_ns, folder.st_mtime_ns,
        record.st_mode, record.st_ino, record.st_ctime_ns, record.st_mtime_ns, record.st_size)
    # modified after the cutoff: no signature (read again by every scan)
    assert index_stat.signatures(runs_dir, names[:1], folder.st_mtime_ns - 1) == [b""]


def test_runs_listed_again_with_the_same_folders_is_patched_not_rebuilt(root, listings, listing_kept, monkeypatch):
    """runs/ changed but no run came or went (an overlay's copy-up of a run a writer changed): the
    scan takes the changed run and patches the fingerprint, as with the listing kept."""
    ids = run_ids(root)
    scan(root)
    rebuilt = []
    original = index._fingerprint
    monkeypatch.setattr(index, "_fingerprint", lambda state, entries, shown, changed, same: (
        rebuilt.append(not same), original(state, entries, shown, changed, same)))
    runs = layout.runs_dir(root)
    os.utime(runs, ns=(os.lstat(runs).st_atime_ns, os.lstat(runs).st_mtime_ns + 1))   # its signature changes
    listings.clear()
    rewrite_record(root, ids[1], epochs_done=9)
    later = scan(root)
    assert len(listings) == 1 and rebuilt == [False]
    assert shown_ids(later) == ids and later.run(ids[1]).epochs_done == 9


def test_the_file_table_after_a_flush_equals_a_cold_scans(root, listing_kept):
    """A run's files changed (a part added, a table removed) and a run gone: the index's file
    table, spliced or filtered, is the one a scan from nothing makes, row for row."""
    ids = run_ids(root)
    scan(root)
    part = layout.table_part_path(root, ids[0], "metrics", 999_999)
    shutil.copyfile(layout.table_path(root, ids[0], "metrics"), part)
    layout.table_path(root, ids[1], "gradients").unlink()
    assert scan(root).file_table.equals(_cold(root).file_table)
    shutil.rmtree(layout.run_dir(root, ids[1]))
    assert scan(root).file_table.equals(_cold(root).file_table)


def _cold(root):
    index.forget(root)
    for folder in {index_file.cache_dir(root.absolute()), index_file.cache_dir(root)}:
        shutil.rmtree(folder, ignore_errors=True)
    return scan(root)


def test_the_listing_leaves_out_exactly_the_hidden_names(tmp_path):
    """Names about "." in sort order, hidden and not: only those starting with "." are cut."""
    runs = tmp_path / "runs"
    runs.mkdir()
    names = ["+a", "-.b", "..x", ".staging", ". ", ".~", "0run", "Zrun", "x.", "~run", "é-run"]
    for name in names:
        (runs / name).mkdir()
    assert index.run_dirs(runs) == (sorted(name for name in names if not name.startswith(".")), None)


@pytest.mark.parametrize("stride", [1, 2, 1024])
def test_the_changed_runs_are_found_stride_by_stride(root, reads, listing_kept, monkeypatch, stride):
    """The signatures compared a stride at a time: a change in any stride is read, only it; a
    folder without a signature (changed moments ago) is read at every scan, though its entry
    has none either."""
    monkeypatch.setattr(index_stat, "STRIDE", stride)
    ids = run_ids(root)
    scan(root)
    for changed in (ids[2], ids[0]):
        reads.clear()
        rewrite_record(root, changed, epochs_done=5)
        assert scan(root).run(changed).epochs_done == 5 and reads == [changed]
    monkeypatch.setattr(index, "RACY_NS", RACY_NS)
    rewrite_record(root, ids[1], epochs_done=6)
    for _ in range(2):
        reads.clear()
        assert scan(root).run(ids[1]).epochs_done == 6 and reads == ids   # all written moments ago
