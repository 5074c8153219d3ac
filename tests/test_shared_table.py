"""A view table reaches a query worker as a memory file, not pickled (ibstore.shared_table)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ibstore import query_process
from ibstore.sandbox import Limits, Statement
from ibstore.shared_table import SharedTable


def echo(table: pa.Table, out) -> None:
    """In the worker: what it got, and whether its buffers lie in a mapping (not copied)."""
    out.send((table.to_pylist(), type(table).__name__))
    out.close()


@pytest.mark.slow
def test_a_worker_reads_the_table_it_was_handed_in_place():
    table = pa.table({"run_id": ["a", "b", "c"], "value": [1.5, None, -2.0], "n": pa.array([1, 2, 3], pa.int32())})
    shared = SharedTable(table)
    received, sent = query_process.CONTEXT.Pipe(duplex=False)
    query_process.start_server()
    worker = query_process.CONTEXT.Process(target=echo, args=(shared, sent))
    worker.start()
    shared.close()   # the worker holds its own descriptor
    sent.close()
    rows, kind = received.recv()
    worker.join(30)
    assert worker.exitcode == 0 and kind == "Table" and rows == table.to_pylist()


@pytest.mark.slow
def test_a_statement_over_runs_hands_its_worker_no_table_to_pickle(monkeypatch, tmp_path):
    from bench.make_results import write_run
    from ibstore import sandbox
    for seed in range(3):
        write_run(tmp_path, "tanh", {"activation_fn": "tanh", "epochs": 20}, seed=seed, logged=5)
    handed = []
    original = sandbox.QueryProcess

    def inspected(open_reader, args, memory_bytes, cpu_seconds):
        handed.extend(args[1].values())
        return original(open_reader, args, memory_bytes, cpu_seconds)
    monkeypatch.setattr(sandbox, "QueryProcess", inspected)
    statement = Statement(tmp_path, "SELECT count(*) AS n, sum(epochs_done) AS done FROM runs", Limits(timeout_s=60))
    result = statement.run(lambda batches, schema: pa.Table.from_batches(list(batches), schema))
    assert result.to_pylist() == [{"n": 3, "done": 60}]
    assert handed and all(isinstance(source, SharedTable) for source in handed)
