"""One results format: a synthetic run (bench/make_results.py, the test fixtures' writer) and a
run the trainer trained are indistinguishable to every reader: the same files, the same
Parquet columns and types, the same run.json fields and JSON types, the same view columns."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from bench.make_results import write_run
from ibstore import layout
from ibstore.sandbox import connect, run_query
from ibstore.scan import scan
from ibstore.views import VIEWS
from trainer import config
from trainer.training import run_experiment

pytestmark = pytest.mark.slow  # trains a network

SHAPE = {"epochs": 3, "architecture": [4], "batch_size": 1024, "log_schedule": {"log_spaced": 3}}


def json_kinds(value):
    """The JSON type of every field, recursively (None stays None: a null must be null in both)."""
    if isinstance(value, dict):
        return {key: json_kinds(item) for key, item in value.items()}
    return None if value is None else type(value).__name__


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    (experiment,) = config.plan({"name": "trained", **SHAPE})
    (trained,) = run_experiment(experiment, root, progress=False)
    overrides = {key: value for key, value in SHAPE.items() if key != "log_schedule"}
    synthetic = write_run(root, "synthetic", overrides, logged=SHAPE["log_schedule"]["log_spaced"])
    return root, trained, synthetic


def test_the_same_files_with_the_same_columns_and_types(two_runs):
    root, trained, synthetic = two_runs
    files = {run_id: sorted(p.name for p in layout.run_dir(root, run_id).iterdir() if not p.name.startswith("."))
             for run_id in (trained, synthetic)}
    assert files[trained] == files[synthetic]
    for name in files[trained]:
        if name.endswith(".parquet"):
            schemas = [pq.read_schema(layout.run_dir(root, run_id) / name) for run_id in (trained, synthetic)]
            assert schemas[0].remove_metadata() == schemas[1].remove_metadata(), name
            through = [pq.read_metadata(layout.run_dir(root, run_id) / name).metadata[layout.COMPACTED_THROUGH_KEY]
                       for run_id in (trained, synthetic)]
            assert all(value.isdigit() for value in through), name


def test_the_same_record_fields_and_json_types(two_runs):
    root, trained, synthetic = two_runs
    records = [json.loads(layout.run_json_path(root, run_id).read_text()) for run_id in (trained, synthetic)]
    kinds = [json_kinds(record) for record in records]
    # Values differ (the config's name and numbers); which fields exist and their JSON types do not.
    assert kinds[0] == kinds[1]
    assert records[0]["config"].keys() == records[1]["config"].keys()


def test_every_view_shows_both_with_the_same_columns_filled(two_runs):
    root, trained, synthetic = two_runs
    found = scan(root)
    assert not found.problems and {run.run_id for run in found.runs} == {trained, synthetic}
    con = connect(root)
    for view in VIEWS:
        if view == "problems":
            continue
        rows = run_query(con, f"SELECT * FROM {view}")
        if view == "config":
            assert (set(rows[rows.run_id == trained].key) == set(rows[rows.run_id == synthetic].key))
            continue
        assert set(rows.run_id) == {trained, synthetic}, view
        filled = {run_id: tuple(rows[rows.run_id == run_id].notna().all()) for run_id in (trained, synthetic)}
        assert filled[trained] == filled[synthetic], view
