"""ibstore.layout: the names of a run's table files and which of them make up a table."""

from pathlib import Path

import pytest

from ibstore import layout


def test_table_file_names():
    root = Path("root")
    assert layout.table_part_path(root, "r", "mi", 7) == root / "runs" / "r" / "mi.part-000007.parquet"
    assert layout.parse_table_file("mi.part-000007.parquet") == ("mi", 7)
    assert layout.parse_table_file("activation_stats.part-1234567.parquet") == ("activation_stats", 1234567)
    assert layout.parse_table_file("metrics.parquet") == ("metrics", None)
    for other in ("run.json", "notes.parquet", ".metrics.parquet.abc.tmp", "metrics.part-1.parquet",
                  "metrics.part-000000.parquet", "metrics.parquet.bak", "metrics.part-00000x.parquet"):
        assert layout.parse_table_file(other) is None, other
    with pytest.raises(ValueError):
        layout.table_part_path(root, "r", "mi", 0)
    names = ["mi.parquet", "mi.part-000003.parquet", "mi.part-000001.parquet", "mi.part-000002.parquet",
             "metrics.part-000002.parquet", "metrics.part-000001.parquet", "run.json", ".lock"]
    assert layout.current_table_files(names, {"mi": 2}) == {
        "metrics": ["metrics.part-000001.parquet", "metrics.part-000002.parquet"],
        "mi": ["mi.parquet", "mi.part-000003.parquet"]}
    assert layout.compacted_through({layout.COMPACTED_THROUGH_KEY: b"12"}) == 12
    assert layout.compacted_through({layout.COMPACTED_THROUGH_KEY: b"-1"}) == 0
    assert layout.compacted_through(None) == 0


def test_epoch_files_are_listed_by_number_and_nothing_else_counts(tmp_path):
    assert layout.epochs_in(tmp_path / "missing") == []
    for name in ("epoch_000010.npz", "epoch_000002.npz", "epoch_1234567.npz", "index.npz", "epoch_3.npz.tmp",
                 ".epoch_000004.npz.abc.tmp", "epoch_x.npz"):
        (tmp_path / name).write_bytes(b"")
    assert layout.epochs_in(tmp_path) == [2, 10, 1234567]
    assert layout.epoch_file(tmp_path, 7) == tmp_path / "epoch_000007.npz"
    (tmp_path / "epoch_000007.npz").write_bytes(b"")
    assert 7 in layout.epochs_in(tmp_path)
