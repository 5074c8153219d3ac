"""A table's files are checked when something first reads that table (issue 20): a cold scan
reads run.json and the footers and decodes no page; the first read of table T decodes the
pages of T's unchecked files (of the runs read), leaves a damaged one out as its run's problem,
and keeps the verdicts in the index, so no later process decodes them again."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest
from conftest import write_tanh_runs

from explorer.results import ResultStore
from ibstore import index, scan_footer, views
from ibstore import scan as scan_module
from ibstore.index import scan
from ibstore.sandbox import connect, view_sources
from ibstore.schema import TABLE_SCHEMAS
from trainer.store import write_table

RUNS = 4


@pytest.fixture
def root(tmp_path, private_index):
    results = tmp_path / "results"
    return results, write_tanh_runs(results, RUNS)


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """The paths of the table files whose pages were decoded (every call of scan_footer._damage,
    whoever made it), counted apart from the scan's own counter."""
    calls: list[str] = []
    original = scan_footer._damage

    def counting(handle, *args):
        calls.append(os.readlink(f"/proc/self/fd/{handle.fileno()}"))
        return original(handle, *args)

    monkeypatch.setattr(scan_footer, "_damage", counting)
    return calls


def new_process() -> None:
    """What a new process starts from: the saved index, no in-memory verdicts."""
    index.forget()
    with scan_module.PAGES.lock:
        scan_module.PAGES.items.clear()
    with scan_module._FOOTERS.lock:
        scan_module._FOOTERS.items.clear()


def corrupt_pages(path) -> None:
    """Rewrite with page checksums (as the trainer writes), then flip bytes inside the first
    data page: the footer stays intact, so only decoding the pages finds it."""
    write_table(path, pq.read_table(path))
    data = bytearray(path.read_bytes())
    for offset in range(64, 128):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_cold_scan_decodes_no_page_until_a_table_is_read(root, decoded):
    results, _ = root
    found = scan(results)
    assert found.folders_read == RUNS and found.pages_checked == 0 and decoded == []
    assert not any(found.file_table["checked"].to_pylist())
    assert found.file_table.num_rows == RUNS * len(TABLE_SCHEMAS)   # the footers were read

    connect(scan=found, names=["mi"])   # what the first query on mi does
    assert found.pages_checked == RUNS and len(decoded) == RUNS
    assert all(path.endswith("mi.parquet") for path in decoded)
    checked = found.file_table.filter(found.file_table["checked"])
    assert set(checked["table"].to_pylist()) == {"mi"} and checked.num_rows == RUNS

    connect(scan=found, names=["mi"])   # a second read checks nothing again
    assert found.pages_checked == RUNS and len(decoded) == RUNS


def test_a_query_on_runs_alone_checks_no_table_file(root, decoded):
    results, _ = root
    found = scan(results)
    assert views.read_by("SELECT count(*) FROM runs") == ("runs",)
    sources = view_sources(found, views.read_by("SELECT count(*) FROM runs"))
    assert list(sources) == ["runs"] and sources["runs"].num_rows == RUNS
    store = ResultStore(results)
    assert len(store.runs()) == RUNS
    assert store.snapshot().pages_checked == 0 and found.pages_checked == 0 and decoded == []


def test_a_damaged_mi_file_is_found_by_the_first_read_of_mi_and_costs_only_its_run(root, decoded):
    results, ids = root
    damaged = results / "runs" / ids[1] / "mi.parquet"
    corrupt_pages(damaged)
    store = ResultStore(results)
    assert store.problems == [] and len(store.runs()) == RUNS   # not known before mi is read

    mi = store.mi()
    assert sorted(mi["run_id"].unique()) == sorted(set(ids) - {ids[1]})
    expected = sum(pq.read_metadata(results / "runs" / run / "mi.parquet").num_rows for run in ids if run != ids[1])
    assert len(mi) == expected
    assert [(p.run_id, p.path) for p in store.problems] == [(ids[1], str(damaged))]
    assert "damaged data pages" in store.problems[0].problem
    assert len(store.metrics()) > 0 and ids[1] in set(store.metrics()["run_id"])   # its other tables stay

    # The verdicts are in the index once the store saves it (in the background, when due: saved
    # here at once): a new process knows the damage and decodes nothing again.
    assert index.save_index(results) is not None
    new_process()
    decoded.clear()
    again = scan(results)
    assert again.folders_read == 0 and again.index_note.startswith("loaded")
    assert [(p.run_id, p.path) for p in again.problems] == [(ids[1], str(damaged))]
    connect(scan=again, names=["mi"])
    assert again.pages_checked == 0 and decoded == []
    assert ids[1] not in again.table_paths("mi")[1] and len(again.table_paths("mi")[1]) == RUNS - 1


def test_a_read_of_some_runs_checks_only_their_files(root, decoded):
    results, ids = root
    store = ResultStore(results)
    wanted = ids[:2]
    assert sorted(store.mi(wanted)["run_id"].unique()) == sorted(wanted)
    # a store's query checks the files of the tables it reads, of those runs only
    assert store.snapshot().pages_checked == len(wanted) == len(decoded)
    assert {tuple(path.rsplit("/", 2)[1:]) for path in decoded} == {(run_id, "mi.parquet") for run_id in wanted}
    assert len(store.metrics(wanted)) > 0 and store.snapshot().pages_checked == 2 * len(wanted) == len(decoded)


def test_the_problems_view_checks_every_table(root, decoded):
    results, ids = root
    damaged = results / "runs" / ids[2] / "gradients.parquet"
    corrupt_pages(damaged)
    found = scan(results)
    con = connect(scan=found, names=["problems"])
    assert con.execute("SELECT run_id, path FROM problems").fetchall() == [(ids[2], str(damaged))]
    assert found.pages_checked == RUNS * len(TABLE_SCHEMAS)


def test_a_writer_hands_over_checked_files(root, decoded):
    results, ids = root
    for run_id in ids:
        index.record_run(results, run_id)
    assert len(decoded) == RUNS * len(TABLE_SCHEMAS)   # the writer checks its own files
    new_process()
    decoded.clear()
    found = scan(results)
    assert found.folders_read == 0 and all(found.file_table["checked"].to_pylist())
    connect(scan=found)
    assert found.pages_checked == 0 and decoded == []
