"""What the index's run signature notices (ibstore.index.run_signature: the stat of the run folder
and of its run.json) and its racy rule (a folder modified moments before a scan is read again by
the next one); DESIGN.md, "Threat model"."""

from __future__ import annotations

import os
import time

import pyarrow.parquet as pq
import pytest

from ibstore import index, layout
from ibstore.index import scan
from ibstore.record import RunRecord, Status

RACY_NS = 3_000_000_000   # the module's value, restored here (conftest turns the rule off)


@pytest.fixture
def root(small_tanh_root):
    return small_tanh_root(3)


def run_ids(root) -> list[str]:
    return sorted(os.listdir(layout.runs_dir(root)))


def settle(root, run_id: str, age_s: float = 60.0) -> None:
    """Move the folder's and run.json's mtime `age_s` into the past (their ctime becomes now)."""
    past = time.time() - age_s
    for path in (layout.run_json_path(root, run_id), layout.run_dir(root, run_id)):
        os.utime(path, (past, past), follow_symlinks=False)


def replace_bytes(path, data: bytes) -> None:
    """Replace a file as every writer does: a temporary file renamed over it."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


def test_a_folder_changed_moments_before_a_scan_is_read_again_until_it_has_settled(root, reads, monkeypatch):
    monkeypatch.setattr(index, "RACY_NS", RACY_NS)
    ids = run_ids(root)
    assert [r.run_id for r in scan(root).runs] == ids and sorted(reads) == ids
    reads.clear()
    scan(root)
    assert sorted(reads) == ids   # written just now: a change later in the same clock tick could hide
    for run_id in ids:
        settle(root, run_id)
    reads.clear()
    scan(root)
    assert sorted(reads) == ids   # settled: read once more under a signature that is kept
    reads.clear()
    assert [r.run_id for r in scan(root).runs] == ids and reads == []


def test_a_writers_hand_over_is_taken_however_recent_its_folder(root, reads, monkeypatch):
    monkeypatch.setattr(index, "RACY_NS", RACY_NS)
    for run_id in run_ids(root):
        index.record_run(root, run_id)
    reads.clear()   # the writers' own reads
    assert len(scan(root).runs) == 3 and reads == []


def test_every_change_a_writer_makes_and_an_in_place_record_edit_are_noticed(root, reads):
    ids = run_ids(root)
    scan(root)
    mi = layout.table_path(root, ids[0], "mi")
    replace_bytes(mi, mi.read_bytes())                                   # a file renamed into place
    layout.table_path(root, ids[1], "gradients").unlink()                # a file removed
    record = layout.run_json_path(root, ids[2])
    failed = RunRecord.from_json_bytes(record.read_bytes()).model_copy(update={"status": Status.FAILED, "error": "x"})
    with open(record, "r+b") as handle:                                  # run.json edited in place
        handle.truncate(0)
        handle.write(failed.to_json_bytes())
    reads.clear()
    later = scan(root)
    assert sorted(reads) == ids
    assert {r.run_id: r.status.value for r in later.runs}[ids[2]] == "failed"
    assert ids[1] not in later.files["gradients"] and ids[1] in later.files["mi"]


def test_a_table_file_edited_in_place_is_not_noticed_by_the_scan_but_by_the_first_read_of_its_table(root, reads):
    ids = run_ids(root)
    first = scan(root)
    mi = layout.table_path(root, ids[0], "mi")
    rows = pq.read_metadata(mi).num_rows
    with open(mi, "r+b") as handle:   # in place: the folder's and run.json's stat stay as they were
        handle.truncate(120)
    reads.clear()
    later = scan(root)
    assert reads == [] and later.fingerprint == first.fingerprint
    # never checked before: the first read of mi checks the bytes the file holds now
    later.check(["mi"])
    assert ids[0] not in later.files["mi"] and rows > 0
    assert any(p.run_id == ids[0] and p.path.endswith("mi.parquet") for p in later.problems)
