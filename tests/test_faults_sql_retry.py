"""The SQL page's statements and `ResultStore.sql` survive a compaction (issue 17): a statement
that loses a file it was about to read runs again on a new scan, as the store's other reads do;
a reader looping through compactions sees no exception."""

from __future__ import annotations

import os

import pytest
from test_compaction_readers import loop_against_a_compacting_writer

from explorer.results import ResultStore
from ibstore import sandbox
from trainer.store import RunWriter
from trainer.tables import compact_run

pytestmark = pytest.mark.slow   # every statement runs in a sandbox worker process

ITERATIONS = 10   # each a scan and a worker; the fixed-order tests below pin the retry itself
COUNT = "SELECT count(*) AS n, count(DISTINCT epoch) AS epochs FROM metrics WHERE run_id = 'r'"


@pytest.fixture
def root(tmp_path, private_index):
    return tmp_path / "results"


def write_parts(root, run_id: str, epochs: int) -> None:
    """A run whose writer stopped before compacting: one part file per flush."""
    writer = RunWriter(root, {"run_id": run_id, "epochs_total": epochs}, flush_seconds=0)
    for epoch in range(epochs):
        writer.add("metrics", {"run_id": run_id, "epoch": epoch, "split": ["train", "test"],
                               "loss": [1.0, 2.0], "accuracy": [0.5, 0.6]})
        writer.flush(epoch)
    writer.close()


def test_a_statement_that_loses_a_file_to_compaction_runs_again_on_a_new_scan(root):
    write_parts(root, "r", 3)
    store = ResultStore(root, max_age_s=3600)   # no background refresh: only the retry rescans
    stale = store.snapshot()
    assert compact_run(root / "runs" / "r") == 3

    # Without the retry: the stale scan's statement names the part file that is gone.
    with pytest.raises(sandbox.FileVanished, match=r"metrics of run r cannot be read: .*metrics\.part-000001\.parquet is gone"):
        sandbox.run_query(stale, COUNT)
    assert store.snapshot() is stale
    counted = store.sql(COUNT)
    assert (counted["n"][0], counted["epochs"][0]) == (6, 3)
    assert [os.path.basename(p) for p in store.snapshot().table_paths("metrics")[0]] == ["metrics.parquet"]


def test_the_sql_pages_statement_is_retried_too(root):
    write_parts(root, "r", 3)
    store = ResultStore(root, max_age_s=3600)
    stale = store.snapshot()
    compact_run(root / "runs" / "r")
    table, total = store.sql_head("SELECT epoch FROM metrics ORDER BY epoch", 2)
    assert total == 6 and table["epoch"].to_pylist() == [0, 0]
    assert store.snapshot() is not stale


def test_sql_statements_looping_through_compactions_see_no_exception(root):
    def read(store, runs):
        listed = ", ".join(f"'{run_id}'" for run_id in runs)
        counts = store.sql(f"SELECT run_id, count(*) AS n FROM metrics WHERE run_id IN ({listed}) GROUP BY 1")
        assert set(counts["run_id"]) <= set(runs) and set(counts["n"]) <= {2, 4, 6}   # whole flushes
        table, _ = store.sql_head(f"SELECT * FROM mi WHERE run_id IN ({listed})", 10)
        assert table.num_rows <= 10
    assert loop_against_a_compacting_writer(root, ITERATIONS, read) == []
