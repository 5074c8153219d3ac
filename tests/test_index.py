"""The results root's index (ibstore.index): incremental, persistent, never trusted when damaged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zlib

import pyarrow.parquet as pq
import pytest

from bench.make_results import write_run
from ibstore import index, index_file, layout, views
from ibstore.record import RunRecord, Status
from ibstore.index import scan

from conftest import REPO

TANH = {"activation_fn": "tanh", "epochs": 20}


@pytest.fixture
def root(small_tanh_root):
    """Six small runs; the user cache folder is inside tmp_path, the process keeps no index."""
    return small_tanh_root(6)


def statuses(result) -> dict[str, str]:
    return {record.run_id: record.status.value for record in result.runs}


def rewrite_record(root, run_id, **fields) -> None:
    path = layout.run_json_path(root, run_id)
    record = RunRecord.from_json_bytes(path.read_bytes()).model_copy(update=fields)
    path.write_bytes(record.to_json_bytes())


def runs_view(result) -> dict[str, tuple]:
    """run_id -> (status, epochs_done, final test accuracy) from the `runs` view the scan carries."""
    table = views.view_data(result)["runs"]
    return {row["run_id"]: (row["status"], row["epochs_done"], row["final_test_accuracy"])
            for row in table.select(["run_id", "status", "epochs_done", "final_test_accuracy"]).to_pylist()}


def test_only_changed_runs_are_read_again(root, reads):
    first = scan(root)
    ids = sorted(statuses(first))
    assert sorted(reads) == ids and first.index_note == "no index yet: built"
    assert first.index_path == index_file.cache_dir(root) / index_file.INDEX_FILE and first.index_path.is_file()
    assert not (root / ".index").exists()   # nothing is written into the root

    reads.clear()
    assert statuses(scan(root)) == statuses(first) and reads == []

    changed, removed, damaged = ids[0], ids[1], ids[2]
    rewrite_record(root, changed, status=Status.FAILED, error="out of memory", epochs_done=7)
    shutil.rmtree(layout.run_dir(root, removed))
    mi = layout.table_path(root, damaged, "mi")
    cut = mi.with_name(".mi.parquet.tmp")   # replaced as a writer does (an in-place edit: test_index_signature)
    cut.write_bytes(mi.read_bytes()[:100])
    cut.replace(mi)
    added = write_run(root, "late", TANH, logged=5)
    reads.clear()
    later = scan(root)
    assert sorted(reads) == sorted([changed, damaged, added])
    shown = statuses(later)
    assert set(shown) == (set(ids) - {removed}) | {added}
    assert shown[changed] == "failed" and shown[added] == "completed"
    later.check(["mi", "metrics"])   # footers and pages are read when a table is first read
    assert damaged not in later.files["mi"] and damaged in later.files["metrics"]
    assert [p.problem for p in later.problems if p.run_id == damaged][0].startswith("unreadable Parquet")
    # the patched `runs` table equals one built from every record
    rebuilt = views.runs_table(later.runs)
    assert runs_view(later) == {row["run_id"]: (row["status"], row["epochs_done"], row["final_test_accuracy"])
                                for row in rebuilt.to_pylist()}
    assert runs_view(later)[changed][:2] == ("failed", 7)
    # a new process starts from the saved index: nothing is read again
    index.forget()
    reads.clear()
    again = scan(root)
    assert reads == [] and again.index_note.startswith("loaded")
    assert statuses(again) == shown and runs_view(again) == runs_view(later) and again.files == later.files


def test_a_running_run_whose_heartbeat_stops_is_interrupted_without_any_file_changing(root, reads):
    running = write_run(root, "running", TANH, logged=5, status="running", epochs_done=10)
    now = time.time()
    assert statuses(scan(root, now=now))[running] == "running"
    index.forget()   # and from the saved index too
    reads.clear()
    later = scan(root, now=now + 3600)
    assert statuses(later)[running] == "interrupted" and reads == []
    assert runs_view(later)[running][0] == "interrupted"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped byte", "other version", "empty"])
def test_a_damaged_or_foreign_index_is_rebuilt_not_trusted(root, reads, damage):
    first = scan(root)
    path = first.index_path
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif damage == "flipped byte":
        path.write_bytes(data[:-50] + bytes([data[-50] ^ 1]) + data[-49:])
    elif damage == "other version":
        path.write_bytes(data.replace(index_file.CODE_VERSION.encode(), b"0" * len(index_file.CODE_VERSION), 1))
    else:
        path.write_bytes(b"")
    index.forget()
    reads.clear()
    rebuilt = scan(root)
    assert "not used" in rebuilt.index_note and "rebuilt" in rebuilt.index_note
    assert sorted(reads) == sorted(statuses(first))
    assert statuses(rebuilt) == statuses(first) and runs_view(rebuilt) == runs_view(first)
    index.forget()
    assert scan(root).index_note.startswith("loaded")   # and the rebuilt index was saved


def test_an_index_naming_files_outside_the_run_is_not_used(root):
    first = scan(root)
    data = first.index_path.read_bytes()
    assert b"metrics.parquet" in data
    # keep the checksum right so only the content check can refuse it
    header_end = len(index_file.MAGIC) + 4 + int.from_bytes(data[len(index_file.MAGIC):len(index_file.MAGIC) + 4], "little")
    body = bytearray(data[header_end:])
    header = json.loads(data[len(index_file.MAGIC) + 4:header_end])
    at = body.index(b"metrics.parquet", header["segments"]["files"][0])   # a name in the files segment
    body[at:at + len(b"metrics.parquet")] = b"../../../etc/pw"
    header["crc32"] = zlib.crc32(body)
    encoded = json.dumps(header).encode()
    first.index_path.write_bytes(index_file.MAGIC + len(encoded).to_bytes(4, "little") + encoded + bytes(body))
    index.forget()
    again = scan(root)
    assert "is not a table file" in again.index_note
    assert statuses(again) == statuses(first)


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: file modes do not stop writes")
def test_a_read_only_root_is_indexed_in_the_user_cache(root, tmp_path, reads):
    copy = tmp_path / "read-only"
    shutil.copytree(root, copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        first = scan(copy)
        assert first.index_path.is_relative_to(tmp_path / "cache") and not (copy / ".index").exists()
        index.forget()
        reads.clear()
        assert statuses(scan(copy)) == statuses(first) and reads == []
    finally:
        for path in [copy, *copy.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


CONCURRENT = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from ibstore import index
from ibstore.index import scan
index.SAVE_INTERVAL_S = 0.0
root, me = Path(sys.argv[2]), int(sys.argv[3])
seen = set()
deadline = time.monotonic() + 2
rounds = 0
while time.monotonic() < deadline or rounds < 5:
    index.forget()
    result = scan(root)
    seen.add(result.index_note.split(" ")[0])
    # change one run, so every scan has something to save
    (root / "runs" / sys.argv[4 + me] / "run.json").touch()
    rounds += 1
print(json.dumps([sorted(seen), rounds, len(result.runs)]))
"""


@pytest.mark.slow
def test_two_processes_refreshing_at_once_never_see_half_an_index(root):
    ids = sorted(statuses(scan(root)))
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(REPO), str(root), str(i), ids[0], ids[1]],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"]})
             for i in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        seen, rounds, runs = json.loads(out)
        assert seen == ["loaded"] and rounds >= 5 and runs == len(ids)
    index.forget()
    assert scan(root).index_note.startswith("loaded")
    assert not list(index_file.cache_dir(root).glob(".*.tmp"))


def test_queries_answer_from_their_snapshot_while_a_refresh_runs(root, monkeypatch):
    from explorer import results

    monkeypatch.setattr(results, "SCAN_SHARE", 0)   # a refresh is due at once, however long the scan took
    store = results.ResultStore(root, max_age_s=0)
    before = set(store.runs()["run_id"])
    gate = threading.Event()
    real_scan = results.scan
    monkeypatch.setattr(results, "scan", lambda path, **options: gate.wait(30) and real_scan(path, **options))
    added = write_run(root, "late", TANH, logged=5)
    shown = set(store.runs()["run_id"])     # the snapshot is stale: a background refresh starts
    assert store._background.is_alive()     # ... and is still held at the gate: runs() did not wait
    assert shown == before
    gate.set()
    store._background.join(30)
    assert set(store.runs()["run_id"]) == before | {added}


def test_a_root_without_runs_gets_no_index_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index.forget()
    missing = tmp_path / "no-such-root"
    assert scan(missing).runs == [] and scan(tmp_path).runs == []
    assert not missing.exists() and not (tmp_path / ".index").exists() and not (tmp_path / "cache").exists()


def test_a_run_filter_reaches_the_parquet_scan_so_other_runs_files_are_never_opened(root):
    import duckdb

    result = scan(root)
    ids = sorted(statuses(result))
    wanted, others = ids[:2], ids[2:]
    con = duckdb.connect()
    views.register(con, result)
    con.execute("SET enable_external_access = false")
    for other in others:   # after the scan: a query that opened these files would fail
        for path in layout.run_dir(root, other).glob("*.parquet"):
            path.unlink()
    expected = sum(pq.read_metadata(f.path).num_rows for run in wanted for f in result.files["mi"][run])
    in_list = ", ".join(f"'{run_id}'" for run_id in wanted)
    assert con.execute(f"SELECT count(*) FROM mi WHERE run_id IN ({in_list})").fetchall() == [(expected,)]
    assert con.execute("SELECT count(*) FROM mi WHERE list_contains(?, run_id)", [wanted]).fetchall() == [(expected,)]
    assert con.execute("SELECT count(*) FROM mi WHERE run_id = ?", [wanted[0]]).fetchall() != [(0,)]
    # a filter that only a join or subquery produces is not pushed down: every file is opened
    with pytest.raises(duckdb.Error, match="Failed to open"):
        con.execute(f"SELECT count(*) FROM mi WHERE run_id IN (SELECT run_id FROM runs WHERE run_id IN ({in_list}))"
                    ).fetchall()


@pytest.mark.parametrize("sql, names", [
    ("SELECT count(*) FROM runs", ("runs",)),
    ("SELECT * FROM MI m JOIN main.runs r ON m.run_id = r.run_id", ("runs", "mi")),
    ("SELECT (SELECT max(epoch) FROM metrics), * FROM config", ("config", "metrics")),
    ("SHOW TABLES", views.EVERYDAY_VIEWS),
    ("SELECT * FROM information_schema.columns, runs", views.EVERYDAY_VIEWS),
    ("PIVOT runs ON status USING count(*)", views.EVERYDAY_VIEWS),
    # every FROM empty: no view (given every view, SELECT 1 checked every table file of the root)
    ("SELECT 1", ()), ("SELECT 1 UNION ALL SELECT now()", ()), ("SELECT (SELECT 2)", ()),
    ("SELECT 1 WHERE EXISTS (SELECT 1 FROM runs)", ("runs",)),
    ("SELECT * FROM query_table('mi')", ("mi",)),
    ("DESCRIBE", views.EVERYDAY_VIEWS), ("VALUES (1)", views.EVERYDAY_VIEWS), ("SELEC broken", views.EVERYDAY_VIEWS),
    ("WITH t AS (SELECT 1) SELECT * FROM t", views.EVERYDAY_VIEWS),
    ("SELECT table_name FROM duckdb_columns() WHERE table_name IN (SELECT 'mi' FROM runs)", views.EVERYDAY_VIEWS),
    # a derived view brings what it reads; phase_stats (statistics) only when the text names it
    ("SELECT * FROM phases", ("runs", "config", "mi", "gradients", "activation_stats", "phases")),
    ("SELECT * FROM phase_stats", ("runs", "config", "mi", "gradients", "activation_stats", "phases",
                                   "phase_stats")),
    ("SELECT 1 FROM phase_stats, information_schema.tables", views.VIEWS),
])
def test_a_statement_gets_the_views_it_reads(sql, names):
    assert views.read_by(sql) == names


def test_a_scan_without_saving_leaves_the_index_on_disk_until_save_index(root):
    path = index_file.cache_dir(root) / index_file.INDEX_FILE
    found = scan(root, save=False)
    assert found.index_path is None and not path.exists()
    found.check(("mi",), None)                       # a page check of that snapshot saves nothing either
    assert not path.exists()
    assert index.save_index(root) == path and path.is_file()
    assert index.save_index(root) is None            # nothing unsaved since
    index.forget()
    again = scan(root, save=False)
    assert again.index_note.startswith("loaded") and again.folders_read == 0 and again.pages_checked == 0
    again.check(("mi",), None)
    assert again.pages_checked == 0                  # the verdicts went into the saved index too


def test_a_page_check_that_does_not_save_never_waits_for_the_index_lock(root):
    found = scan(root, save=False)
    state = index._STATES[str(root.absolute())]
    with state.lock:                                 # a rescan in another thread holds the index
        found.check(("mi",), None)                   # returns: the verdicts wait in the queue
        assert found.pages_checked == len(found.runs) and len(state.queued) == 1
    assert index.save_index(root) is not None and state.queued == []
    index.forget()
    again = scan(root, save=False)
    again.check(("mi",), None)
    assert again.pages_checked == 0                  # the queued verdicts were saved
