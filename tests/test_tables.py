"""Compacting a run's tables (trainer.tables): part files in the cheap codec, and the base the
compaction writes from them byte for byte the file its rows give when encoded whole, as before."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from ibstore import layout
from trainer import store
from trainer.store import RunWriter
from trainer.tables import compact_run, read_table, table_files


def codecs(path) -> set[str]:
    metadata = pq.read_metadata(path)
    return {metadata.row_group(group).column(column).compression
            for group in range(metadata.num_row_groups) for column in range(metadata.num_columns)}


def add_epoch(writer: RunWriter, epoch: int) -> None:
    """One epoch's metrics and mi rows of run "r"."""
    writer.add("metrics", {"run_id": "r", "epoch": epoch, "split": ["train", "test"],
                           "loss": [1.0 / (epoch + 1), 2.0], "accuracy": [0.5, 0.5 + epoch / 100]})
    writer.add("mi", {"run_id": "r", "epoch": epoch, "layer": [0, 1], "layer_name": ["dense", "dense_1"],
                      "units": [4, 2], "split": "train", "estimator": "binning", "params": "{}",
                      "i_xt": [1.0, 0.5 + epoch], "i_yt": 0.5, "h_t_bits": None})


def test_parts_are_snappy_and_the_compacted_base_is_the_whole_table_in_zstd(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "git_commit", lambda: None)   # no subprocess in the fast tier
    writer = RunWriter(tmp_path, {"run_id": "r", "epochs_total": 9}, flush_seconds=0)
    for epoch in range(4):
        add_epoch(writer, epoch)
        writer.flush(epoch)
    run_dir = layout.run_dir(tmp_path, "r")
    parts = sorted(run_dir.glob("*.part-*.parquet"))
    assert len(parts) == 8 and all(codecs(part) == {"SNAPPY"} for part in parts)
    rows = {table: read_table(files, table) for table, files in table_files(run_dir).items()}
    assert writer.finish("completed", 3) == "completed"
    assert not list(run_dir.glob("*.part-*.parquet"))
    for table, expected in rows.items():
        assert expected.num_rows == {"metrics": 8, "mi": 8}[table]
        whole = pa.BufferOutputStream()     # the base as the trainer always wrote it: zstd, dictionaries, CRCs
        pq.write_table(expected.replace_schema_metadata({layout.COMPACTED_THROUGH_KEY: b"4"}), whole,
                       compression="zstd", use_dictionary=True, write_page_checksum=True)
        assert (run_dir / f"{table}.parquet").read_bytes() == whole.getvalue().to_pybytes(), table


def ended_run(root, monkeypatch, flush_at_end: bool):
    """A run with rows in parts (two flushes) and rows still pending at its end, in metrics, mi
    and gradients (the last only pending); ended by `finish`, or (`flush_at_end`) the plain way:
    the pending rows flushed as parts, then compacted (compact_run). Its folder."""
    monkeypatch.setattr(store, "git_commit", lambda: None)
    writer = RunWriter(root, {"run_id": "r", "epochs_total": 9}, flush_seconds=0)
    for epoch in range(5):
        add_epoch(writer, epoch)
        if epoch < 2:
            writer.flush(epoch)
    writer.add("gradients", {"run_id": "r", "epoch": 4, "layer": [0, 1], "layer_name": ["dense", "dense_1"],
                             "grad_mean_norm": [0.1, 0.2], "grad_std_norm": 0.3, "snr": [1.0, 2.0],
                             "weight_norm": 1.5, "health": "ok"})
    run_dir = layout.run_dir(root, "r")
    if flush_at_end:
        writer.flush(4)
        assert compact_run(run_dir) == 3 + 3 + 1    # parts 1-3 of metrics and mi, part 3 of gradients
        writer.close()
    else:
        assert writer.finish("completed", 4) == "completed"
    return run_dir


def test_a_runs_last_flush_into_the_bases_writes_what_flushing_then_compacting_writes(tmp_path, monkeypatch):
    shortcut = ended_run(tmp_path / "shortcut", monkeypatch, flush_at_end=False)
    plain = ended_run(tmp_path / "plain", monkeypatch, flush_at_end=True)
    assert sorted(p.name for p in shortcut.glob("*.parquet")) == ["gradients.parquet", "metrics.parquet",
                                                                 "mi.parquet"]
    for base in plain.glob("*.parquet"):
        assert (shortcut / base.name).read_bytes() == base.read_bytes(), base.name
    assert read_table([shortcut / "metrics.parquet"], "metrics")["epoch"].to_pylist() == [e for e in range(5)
                                                                                         for _ in "tt"]
    assert json.loads((shortcut / "run.json").read_text())["epochs_done"] == 4


def test_a_base_that_cannot_be_written_at_a_runs_end_leaves_the_rows_in_parts(tmp_path, monkeypatch):
    def unwritable(path, write, sync=True):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(store, "staged", unwritable)
    run_dir = ended_run(tmp_path, monkeypatch, flush_at_end=False)
    assert not list(run_dir.glob(".*.tmp"))
    rows = {table: read_table(files, table).num_rows for table, files in table_files(run_dir).items()}
    assert rows == {"metrics": 10, "mi": 10, "gradients": 2}
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
