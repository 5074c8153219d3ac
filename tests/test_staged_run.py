"""A synthetic run is written whole (bench/staged_run.py): its files are the bytes the trainer's
own writer gives the same rows, with the trainer's file mode; a run that fails midway leaves
nothing a reader sees; a run written again replaces only its own files; and the hidden folders a
stopped generation left are removed by the next one."""

from __future__ import annotations

import os
import stat

import pyarrow.parquet as pq
import pytest

from bench.make_results import FEW_VALUES, FLUSHES, make_root, write_run
from bench.staged_run import SUFFIX, StagedRun, remove_stale
from ibstore import layout
from ibstore.record import RunRecord
from trainer.atomic import parquet_bytes, write_bytes
from trainer.store import write_record

TANH = {"activation_fn": "tanh", "epochs": 20, "architecture": [5, 3]}


def test_every_file_is_what_the_trainers_writer_makes_of_its_rows(tmp_path):
    old_umask = os.umask(0o077)   # the trainer's files are 0644 whatever the umask
    try:
        run_id = write_run(tmp_path / "generated", "tanh", TANH, logged=5)
    finally:
        os.umask(old_umask)
    generated = layout.run_dir(tmp_path / "generated", run_id)
    names = sorted(os.listdir(generated))
    assert names == sorted([f"{table}.parquet" for table in layout.TABLE_SCHEMAS] + ["run.json"])
    product = tmp_path / "product"
    product.mkdir()
    for name in names:
        path = generated / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, name
        if name == "run.json":
            write_record(product / name, RunRecord.from_json_bytes(path.read_bytes()), sync=False)
        else:
            rows = pq.read_table(path)
            assert pq.read_metadata(path).metadata[layout.COMPACTED_THROUGH_KEY] == str(FLUSHES).encode()
            encoded = parquet_bytes(rows.replace_schema_metadata(), compacted_through=FLUSHES,
                                    use_dictionary=[c for c in rows.column_names if c in FEW_VALUES])
            write_bytes(product / name, encoded, sync=False)
        assert (product / name).read_bytes() == path.read_bytes(), name


def test_a_run_that_fails_midway_leaves_nothing(tmp_path):
    layout.runs_dir(tmp_path).mkdir(parents=True)
    with pytest.raises(RuntimeError), StagedRun(tmp_path, "half") as run:
        run.write("run.json", b"{}")
        raise RuntimeError("stopped")
    assert os.listdir(layout.runs_dir(tmp_path)) == []


def test_a_run_written_again_replaces_its_files_and_keeps_the_others(tmp_path):
    run_id = write_run(tmp_path, "tanh", TANH, logged=5)
    folder = layout.run_dir(tmp_path, run_id)
    (folder / "metrics.part-000041.parquet").write_bytes(b"a later flush")
    metrics = folder / "metrics.parquet"
    first = metrics.read_bytes(), metrics.stat().st_ino
    metrics.write_bytes(b"damaged")
    assert write_run(tmp_path, "tanh", TANH, logged=5) == run_id
    assert metrics.read_bytes() == first[0] and metrics.stat().st_ino != first[1]   # replaced, by rename
    assert (folder / "metrics.part-000041.parquet").read_bytes() == b"a later flush"
    assert [name for name in os.listdir(layout.runs_dir(tmp_path)) if name.startswith(".")] == []


def test_the_next_generation_removes_what_a_stopped_one_left(tmp_path):
    runs = layout.runs_dir(tmp_path)
    (runs / f".lost-run.4242{SUFFIX}").mkdir(parents=True)
    (runs / f".lost-run.4242{SUFFIX}" / "metrics.parquet").write_bytes(b"half")
    (runs / ".not-a-staging-folder").mkdir()
    written = make_root(tmp_path, 3, epochs=20, logged=5, seeds=3, processes=1, resume=True)
    assert sorted(os.listdir(runs)) == sorted([".not-a-staging-folder", *written])
    remove_stale(tmp_path / "no-root-yet")   # nothing to remove, nothing made
    assert not (tmp_path / "no-root-yet").exists()
