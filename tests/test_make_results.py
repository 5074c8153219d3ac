"""The synthetic results generator (bench/make_results.py): its health flags are what its own
tables say, and it can name the runs it will write without writing them."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.make_results import health_flags, make_root, planned_experiment, planned_run_ids, synthetic_tables, write_run
from ibstore import layout
from ibstore.record import RunRecord
from trainer import schedule
from trainer.store import run_fields

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


def every_epoch_observed(data) -> dict:
    """The flags as the training loop gets them: trainer.health observing every epoch in order."""
    from trainer.health import LayerHealth, NetworkHealth
    health = NetworkHealth()
    rows = sorted(data["metrics"].to_pylist(), key=lambda row: (row["epoch"], row["split"]))
    by_epoch = {}
    for row in rows:
        by_epoch.setdefault(row["epoch"], {})[row["split"]] = row
    for epoch, splits in sorted(by_epoch.items()):
        health.observe_metrics(splits["train"]["loss"], splits["test"]["loss"], splits["train"]["accuracy"])
    states = {}
    for row in data["gradients"].to_pylist():
        states.setdefault(row["epoch"], []).append((row["layer"], row["health"]))
    for epoch, layers in sorted(states.items()):
        health.observe_layers(epoch, [LayerHealth(state) for _, state in sorted(layers) if state is not None])
    return health.flags()


def test_the_health_flags_are_those_of_observing_every_epoch(tmp_path):
    """health_flags observes only the first epoch with a loss that is not finite and the last."""
    cases = {"alive": {**SHAPE, "activation_fn": "tanh", "initial_bias": 0.0},
             "dead": {**SHAPE, "activation_fn": "relu", "initial_bias": -1.0}}
    for name, overrides in cases.items():
        planned = planned_experiment(name, overrides, None, 12)
        config = run_fields(planned, 0)["config"]
        logged = np.array(schedule.logged_epochs(config["log_schedule"], config["epochs"]))
        data = synthetic_tables(f"{name}-run", config, logged, config["epochs"], np.random.default_rng(7))
        metrics = data["metrics"]
        losses = metrics["loss"].to_numpy().copy()
        variants = {"as made": losses}
        for where, value in ((5, math.nan), (30, math.inf)):   # a test loss mid-run, a train loss late
            broken = losses.copy()
            broken[np.flatnonzero(metrics["epoch"].to_numpy() == where)[1 if where == 5 else 0]] = value
            variants[f"{value} at {where}"] = broken
        for variant, loss in variants.items():
            data["metrics"] = metrics.set_column(metrics.schema.get_field_index("loss"), "loss", pa.array(loss))
            expected = every_epoch_observed(data)
            assert health_flags(data) == expected, (name, variant)
            assert expected["diverged"] is (variant != "as made")
        assert expected["dead_network"] is (name == "dead")
