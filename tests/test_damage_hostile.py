"""Damage costs one run (issue 17.3): a table file with an intact footer whose pages cannot be
decoded, or whose columns do not hold the schema's types, is found before the first query that
reads its table (issue 20: the scan reads footers only, `Scan.check` the pages) and reported as
its run's problem; every other run stays queryable, through every reader."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import write_tanh_runs

from explorer.results import ResultStore
from ibstore.index import scan
from ibstore.sandbox import SqlError, run_query
from trainer import cli
from trainer.store import write_table


def corrupt_pages(path) -> None:
    """Rewrite with page checksums (as the trainer writes), then flip bytes inside the first
    data page: the footer stays intact."""
    write_table(path, pq.read_table(path))
    data = bytearray(path.read_bytes())
    for offset in range(64, 128):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def epoch_with_fractions(path) -> None:
    table = pq.read_table(path)
    epochs = pa.array([e + 0.5 for e in table["epoch"].to_pylist()], pa.float64())
    pq.write_table(table.set_column(table.schema.get_field_index("epoch"), "epoch", epochs), path)


def epoch_beyond_int32(path) -> None:
    table = pq.read_table(path)
    epochs = pa.array([e + 2**40 for e in table["epoch"].to_pylist()], pa.int64())
    pq.write_table(table.set_column(table.schema.get_field_index("epoch"), "epoch", epochs), path)


@pytest.fixture
def root(tmp_path, private_index):
    results = tmp_path / "results"
    return results, write_tanh_runs(results, 3)


def test_a_config_whose_keys_flatten_alike_is_its_runs_problem_not_a_hidden_value(root):
    """{"x.y": 1, "x": {"y": 2}}: the trainer refuses keys that flatten alike; in a hand-made run.json
    the `runs` view would have shown one value as the run's and hidden the other."""
    results, ids = root
    record_path = results / "runs" / ids[0] / "run.json"
    record = json.loads(record_path.read_text())
    record["config"] = {**record["config"], "x.y": 1, "x": {"y": 2}}
    record_path.write_text(json.dumps(record))
    found = scan(results)
    assert [p.run_id for p in found.problems] == [ids[0]]
    assert "run.json: config: two config keys flatten to 'x.y'" in found.problems[0].problem
    assert sorted(record.run_id for record in found.runs) == sorted(ids[1:])


@pytest.mark.slow
@pytest.mark.parametrize("damage", [corrupt_pages, epoch_with_fractions, epoch_beyond_int32])
def test_a_damaged_file_costs_only_its_run(root, damage, capsys):
    results, ids = root
    damaged = results / "runs" / ids[0] / "mi.parquet"
    damage(damaged)
    found = scan(results)
    assert found.problems == [] and found.pages_checked == 0   # pages not read yet
    per_run = run_query(results, "SELECT run_id, avg(i_xt) AS i_xt FROM mi GROUP BY 1 ORDER BY 1")
    found = scan(results)
    assert [(p.run_id, p.path) for p in found.problems] == [(ids[0], str(damaged))]
    assert "table skipped for this run" in found.problems[0].problem

    assert per_run["run_id"].tolist() == sorted(ids[1:])
    assert run_query(results, "SELECT count(*) AS n FROM mi")["n"][0] > 0
    problems = run_query(results, "SELECT run_id, path FROM problems")
    assert problems.to_dict("records") == [{"run_id": ids[0], "path": str(damaged)}]

    store = ResultStore(results)
    assert sorted(store.mi()["run_id"].unique()) == sorted(ids[1:])
    assert [p.run_id for p in store.problems] == [ids[0]]   # the explorer's problem list

    assert cli.main(["ls", "--results", str(results)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {damaged}:" in err and "table skipped for this run" in err


def test_the_trainer_writes_page_checksums(tmp_path):
    """A byte flipped in a data page's payload is a CRC failure, not a decoding accident."""
    path = tmp_path / "t.parquet"
    write_table(path, pa.table({"run_id": ["a"] * 1000, "epoch": pa.array(range(1000), pa.int32())}))
    chunk = pq.read_metadata(path).row_group(0).column(1)
    last_payload_byte = (chunk.dictionary_page_offset or chunk.data_page_offset) + chunk.total_compressed_size - 1
    corrupt = bytearray(path.read_bytes())
    corrupt[last_payload_byte] ^= 0xFF
    path.write_bytes(bytes(corrupt))
    with pytest.raises(OSError, match="CRC checksum verification failed"):
        pq.ParquetFile(path, page_checksum_verification=True).read()


@pytest.mark.slow
def test_damage_after_the_scan_is_named_at_query_time(root, capsys):
    results, ids = root
    damaged = results / "runs" / ids[1] / "mi.parquet"
    found = scan(results)
    found.check(["mi"])   # what the first query on mi does: the pages are checked, then damaged
    corrupt_pages(damaged)
    with pytest.raises(SqlError) as raised:
        run_query(found, "SELECT run_id, avg(i_xt) FROM mi GROUP BY 1")
    assert f"mi of run {ids[1]} cannot be read: {damaged} damaged data pages" in str(raised.value)
    assert "\n" not in str(raised.value)
    store = ResultStore(results)   # a new scan: the run's problem, the others answer
    assert sorted(store.mi()["run_id"].unique()) == sorted([ids[0], ids[2]])


@pytest.mark.slow   # measures its own process's peak memory
def test_the_page_check_decodes_a_file_that_expands_a_thousandfold_in_bounded_memory(tmp_path):
    """A 0.5 MB metrics file of one row group of 20 million zero rows (a reviewer's bomb had 150
    million: 2.8 MB on disk, 6 GB to decode whole, in the scan's own process): the page check
    passes it, since nothing in it is damaged, and its process's peak stays under 300 MB (a
    row group at a time: about 1.1 GB)."""
    rows = 20_000_000
    zeros = pa.array(np.zeros(rows, dtype=np.int32))
    pq.write_table(pa.table({"run_id": pa.array(["bomb"]).take(zeros), "epoch": zeros,
                             "split": pa.array(["train"]).take(zeros), "loss": pa.array(np.zeros(rows)),
                             "accuracy": pa.array(np.zeros(rows))}),
                   tmp_path / "metrics.parquet", compression="zstd", row_group_size=rows)
    assert (tmp_path / "metrics.parquet").stat().st_size < 2_000_000
    # the peak of the process's own memory (VmHWM, kB; ru_maxrss would keep the parent's across exec)
    check = ("import os; from ibstore import scan_footer; "
             f"print(scan_footer.pages_problem(os.open({str(tmp_path)!r}, os.O_RDONLY), 'metrics.parquet', 'metrics')); "
             "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))")
    problem, peak_kb = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                                      check=True).stdout.split("\n")[:2]
    assert problem == "None" and int(peak_kb) < 300_000, (problem, peak_kb)
