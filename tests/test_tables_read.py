"""Reading a run's table files: files of this version read directly, older ones with NULL for what they lack."""

import pyarrow as pa
import pyarrow.parquet as pq

from ibstore.schema import TABLE_SCHEMAS
from trainer.atomic import write_table
from trainer.tables import read_table

ROW = {"run_id": "r", "epoch": 3, "layer": 1, "layer_name": "dense_1", "grad_mean_norm": 0.5,
       "grad_std_norm": 0.25, "snr": 2.0, "weight_norm": 1.5, "health": "alive"}


def test_a_base_and_a_part_of_this_version_read_as_the_dataset_reader_reads_them(tmp_path):
    schema = TABLE_SCHEMAS["gradients"]
    write_table(tmp_path / "gradients.parquet", pa.Table.from_pylist([ROW], schema=schema), compacted_through=1)
    write_table(tmp_path / "gradients.part-000002.parquet",
                pa.Table.from_pylist([{**ROW, "epoch": 4, "health": None}], schema=schema))
    files = [tmp_path / "gradients.parquet", tmp_path / "gradients.part-000002.parquet"]
    rows = read_table(files, "gradients")
    assert rows.schema == schema and rows.schema.metadata is None
    assert rows.equals(pa.concat_tables([pq.read_table(path, schema=schema).replace_schema_metadata(None)
                                         for path in files]))
    assert rows["epoch"].to_pylist() == [3, 4] and rows["health"].to_pylist() == ["alive", None]


def test_a_file_written_before_a_column_existed_reads_it_as_null(tmp_path):
    older = pa.schema([field for field in TABLE_SCHEMAS["gradients"] if field.name not in ("layer_name", "health")])
    pq.write_table(pa.Table.from_pylist([ROW], schema=older), tmp_path / "gradients.parquet")
    rows = read_table([tmp_path / "gradients.parquet"], "gradients")
    assert rows.schema == TABLE_SCHEMAS["gradients"]
    assert rows["layer_name"].to_pylist() == [None] and rows["health"].to_pylist() == [None]
    assert rows["snr"].to_pylist() == [2.0]
