"""The synthetic results generator (bench/make_results.py): its health flags are what its own
tables say, and it can name the runs it will write without writing them."""

from __future__ import annotations

import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.make_results import make_root, planned_run_ids, write_run
from ibstore import layout
from ibstore.record import RunRecord

SHAPE = {"epochs": 40, "architecture": [6, 4, 3]}


def record_and_gradients(root, run_id):
    record = RunRecord.from_json_bytes(layout.run_json_path(root, run_id).read_bytes())
    return record, pq.read_table(layout.table_path(root, run_id, "gradients"))


def test_a_dead_relu_run_is_flagged_with_every_hidden_layer_dead_at_the_last_logged_epoch(tmp_path):
    run_id = write_run(tmp_path, "dead", {**SHAPE, "activation_fn": "relu", "initial_bias": -1.0}, logged=12)
    record, gradients = record_and_gradients(tmp_path, run_id)
    last = gradients.filter(pc.equal(gradients["epoch"], pc.max(gradients["epoch"])))
    dead_in_table = sorted(layer for layer, state in zip(last["layer"].to_pylist(), last["health"].to_pylist())
                           if state == "dead")
    assert dead_in_table == [0, 1, 2]              # the three hidden layers of SHAPE
    assert record.dead_layers == dead_in_table
    assert record.dead_network is True and record.diverged is False


def test_a_learning_tanh_run_is_not_flagged(tmp_path):
    run_id = write_run(tmp_path, "alive", {**SHAPE, "activation_fn": "tanh", "initial_bias": 0.0}, logged=12)
    record, gradients = record_and_gradients(tmp_path, run_id)
    assert set(gradients["health"].drop_null().to_pylist()) == {"alive"}
    assert record.dead_layers == [] and record.dead_network is False


def test_the_planned_run_ids_are_the_ones_written_in_order(tmp_path):
    written = make_root(tmp_path, 7, epochs=20, logged=5, seeds=3, processes=1)
    assert planned_run_ids(7, epochs=20, logged=5, seeds=3) == written
    assert sorted(path.name for path in layout.runs_dir(tmp_path).iterdir()) == sorted(written)
    assert len(set(written)) == 7


def test_resume_writes_only_the_runs_not_yet_whole(tmp_path):
    written = make_root(tmp_path, 6, epochs=20, logged=5, seeds=3, processes=1)
    whole, cut_short = written[0], written[4]
    layout.run_json_path(tmp_path, cut_short).unlink()          # as a generator stopped before its run.json
    kept = layout.table_path(tmp_path, whole, "metrics")
    before = kept.stat().st_mtime_ns, kept.stat().st_ino
    assert make_root(tmp_path, 6, epochs=20, logged=5, seeds=3, processes=1, resume=True) == written
    assert layout.run_json_path(tmp_path, cut_short).is_file()
    assert (kept.stat().st_mtime_ns, kept.stat().st_ino) == before   # not written again
