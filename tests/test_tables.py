"""Compacting a run's tables (trainer.tables): part files in the cheap codec, and the base the
compaction writes from them byte for byte the file its rows give when encoded whole, as before."""

import pyarrow as pa
import pyarrow.parquet as pq

from ibstore import layout
from trainer.store import RunWriter
from trainer.tables import read_table, table_files


def codecs(path) -> set[str]:
    metadata = pq.read_metadata(path)
    return {metadata.row_group(group).column(column).compression
            for group in range(metadata.num_row_groups) for column in range(metadata.num_columns)}


def test_parts_are_snappy_and_the_compacted_base_is_the_whole_table_in_zstd(tmp_path):
    writer = RunWriter(tmp_path, {"run_id": "r", "epochs_total": 9}, flush_seconds=0)
    for epoch in range(4):
        writer.add("metrics", {"run_id": "r", "epoch": epoch, "split": ["train", "test"],
                               "loss": [1.0 / (epoch + 1), 2.0], "accuracy": [0.5, 0.5 + epoch / 100]})
        writer.add("mi", {"run_id": "r", "epoch": epoch, "layer": [0, 1], "layer_name": ["dense", "dense_1"],
                          "units": [4, 2], "split": "train", "estimator": "binning", "params": "{}",
                          "i_xt": [1.0, 0.5 + epoch], "i_yt": 0.5, "h_t_bits": None})
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
