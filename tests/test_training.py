"""Training end to end: the written schema, plausible values, determinism, seeds
trained together, divergence, early stopping, interruption."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ibstore.schema import TABLE_SCHEMAS
from trainer import checkpoint, cli, compiled, config, tables, training
from trainer.model import NetworkSettings, StackedMLP
from trainer.config import shape_key
from trainer.datasets import load_data
from trainer.training import run_experiment, run_group

pytestmark = pytest.mark.slow  # trains networks or starts `trainer run`

REPO = Path(__file__).resolve().parents[1]
SMALL = {"name": "small", "epochs": 4, "architecture": [10, 7, 5], "log_schedule": {"every": 2}}


def train(root, raw, seeds=None):
    (experiment,) = config.plan(raw)
    return experiment, run_experiment(experiment, root, seeds=seeds, progress=False)


def table(root, run_id, name):
    return pq.read_table(root / "runs" / run_id / f"{name}.parquet").to_pandas()


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    _, statuses = train(root, SMALL)
    (run_id,) = statuses
    return root, run_id, statuses[run_id].status


def test_run_completes_and_writes_every_table_with_its_schema(small_run):
    root, run_id, status = small_run
    assert status == "completed"
    for name, schema in TABLE_SCHEMAS.items():
        written = pq.read_schema(root / "runs" / run_id / f"{name}.parquet")
        assert written.names == schema.names, name
    meta = json.loads((root / "runs" / run_id / "run.json").read_text())
    assert meta["status"] == "completed" and meta["epochs_done"] == 4 and meta["epochs_total"] == 4
    assert meta["config"]["architecture"] == [10, 7, 5] and meta["seed"] == 0
    assert meta["versions"]["tensorflow"] and meta["versions"]["python"]
    assert meta["finished_at"] and meta["split_seed"] == 0
    # each split's inputs and label entropy, the ceilings of a discrete estimate (ibstore.phases)
    labels = load_data(config.plan(SMALL)[0].config).full.y       # train rows, then test rows
    for split, rows in {"train": labels[:3277], "test": labels[3277:], "full": labels}.items():
        p = np.bincount(rows) / len(rows)
        assert meta["splits"][split] == {"inputs": len(rows), "h_y_bits": pytest.approx(-(p * np.log2(p)).sum(), abs=1e-12),
                                         "h_x_bits": pytest.approx(np.log2(len(rows)), abs=1e-12),   # 4096 distinct
                                         "class_counts": np.bincount(rows).tolist()}
    assert meta["splits"]["full"]["h_y_bits"] == pytest.approx(0.99916, abs=1e-5)     # Tishby's data: p(y=1) = 0.5171


def test_metrics_cover_every_epoch_and_mi_the_logged_ones(small_run):
    root, run_id, _ = small_run
    metrics = table(root, run_id, "metrics")
    assert sorted(metrics.epoch.unique()) == [0, 1, 2, 3, 4]
    assert set(metrics.split) == {"train", "test"}
    assert metrics.accuracy.between(0, 1).all() and (metrics.loss > 0).all()
    mi = table(root, run_id, "mi")
    assert sorted(mi.epoch.unique()) == [0, 2, 4]
    assert sorted(mi.layer.unique()) == [0, 1, 2, 3]      # 3 hidden layers and the output
    assert list(mi[mi.epoch == 0].sort_values("layer").drop_duplicates("layer").layer_name) == [
        "dense_0", "dense_1", "dense_2", "output"]
    assert set(mi.split) == {"train", "test"} and set(mi.estimator) == {"binning"}
    assert json.loads(mi.params.iloc[0]) == {"bin_size": 0.07}


def test_initial_first_layer_keeps_nearly_all_information(small_run):
    """10 tanh units with bin size 0.07 separate almost all of the 3277 training inputs:
    I(X;T) close to log2(3277) = 11.68 bits, and I(Y;T) <= H(Y) (about 1 bit)."""
    root, run_id, _ = small_run
    mi = table(root, run_id, "mi")
    first = mi[(mi.epoch == 0) & (mi.layer == 0) & (mi.split == "train")].iloc[0]
    assert 11.0 < first.i_xt <= math.log2(3277) + 1e-9
    assert 0.5 < first.i_yt <= 1.0
    assert (mi.i_xt >= mi.i_yt - 1e-9).all()


def test_gradients_and_activation_summaries_are_plausible(small_run):
    root, run_id, _ = small_run
    gradients = table(root, run_id, "gradients")
    assert sorted(gradients.epoch.unique()) == [2, 4]      # epoch 0 has no minibatches
    assert (gradients.grad_mean_norm > 0).all() and (gradients.weight_norm > 0).all()
    assert np.allclose(gradients.snr, gradients.grad_mean_norm / gradients.grad_std_norm)
    histogram = table(root, run_id, "activations")
    per_layer = histogram[(histogram.epoch == 0) & (histogram.split == "train")].groupby("layer")["count"].sum()
    assert list(per_layer) == [3277 * 10, 3277 * 7, 3277 * 5, 3277 * 2]  # every activation in one bin
    stats = table(root, run_id, "activation_stats")
    first = stats[(stats.epoch == 0) & (stats.layer == 0) & (stats.split == "train")]
    assert len(first) == 10 and (first["min"] >= -1).all() and (first["max"] <= 1).all()


def test_gradients_and_activations_name_their_layers_as_mi_does_in_sql(small_run):
    from ibstore.index import scan
    from ibstore.sandbox import run_query

    root, _, _ = small_run
    names = ["dense_0", "dense_1", "dense_2", "output"]
    for view in ("mi", "gradients", "activations"):
        named = run_query(scan(root), f"SELECT DISTINCT layer, layer_name FROM {view} ORDER BY layer")
        assert list(named["layer_name"]) == names and list(named["layer"]) == [0, 1, 2, 3], view
    unnamed = run_query(scan(root), "SELECT count(*) AS n FROM gradients g JOIN activations a USING (run_id, layer) "
                                    "WHERE g.layer_name IS DISTINCT FROM a.layer_name")
    assert unnamed["n"].iloc[0] == 0


def test_same_config_and_seed_give_identical_metrics(small_run, tmp_path):
    root, run_id, _ = small_run
    train(tmp_path, SMALL)
    again = table(tmp_path, run_id, "metrics")
    first = table(root, run_id, "metrics")
    assert again[["epoch", "split", "loss", "accuracy"]].equals(first[["epoch", "split", "loss", "accuracy"]])


def test_seeds_trained_together_equal_seeds_trained_alone(tmp_path):
    raw = {**SMALL, "n_runs": 2}
    experiment, together = train(tmp_path / "together", raw)
    run_experiment(experiment, tmp_path / "alone", seeds=[1], progress=False)
    run_id = experiment.run_id(1)
    joint = table(tmp_path / "together", run_id, "metrics")
    alone = table(tmp_path / "alone", run_id, "metrics")
    assert len(together) == 2
    np.testing.assert_allclose(joint.loss, alone.loss, rtol=1e-5)
    np.testing.assert_allclose(joint.accuracy, alone.accuracy, atol=1e-9)
    other = table(tmp_path / "together", experiment.run_id(0), "metrics")
    assert not np.allclose(other.loss, joint.loss)        # different seeds, different networks


def test_batchnorm_and_max_norm_variants_train(tmp_path):
    _, statuses = train(tmp_path, {**SMALL, "model": "feedforward_batchnorm", "max_norm_weights": 0.5,
                                   "optimizer": "sgd", "learning_rate": 0.01, "activation_fn": "relu"})
    (run_id,) = statuses
    assert statuses[run_id].status == "completed"
    assert table(tmp_path, run_id, "metrics").loss.notna().all()


def test_a_nan_loss_marks_the_run_diverged(tmp_path):
    _, statuses = train(tmp_path, {**SMALL, "optimizer": "sgd", "learning_rate": 1e30, "activation_fn": "relu",
                                   "epochs": 20})
    (run_id,) = statuses
    meta = json.loads((tmp_path / "runs" / run_id / "run.json").read_text())
    assert statuses[run_id].status == "diverged" == meta["status"]
    assert "loss became" in meta["error"] and meta["epochs_done"] < 20
    # Its NaN outputs predict nothing: no accuracy where the loss is not finite (the argmax of NaN
    # outputs, the first class, once counted every input of that class right), none as final.
    metrics = table(tmp_path, run_id, "metrics")
    finite = np.isfinite(metrics.loss)
    assert not finite.all() and metrics.accuracy[~finite].isna().all()
    assert metrics.accuracy[finite].between(0, 1).all()
    assert meta["final_test_accuracy"] is None and meta["final_train_accuracy"] is None
    assert meta["best_test_accuracy"] == metrics.accuracy[finite & (metrics.split == "test")].max()


def test_target_accuracy_stops_early_and_logs_the_last_epoch(tmp_path):
    _, statuses = train(tmp_path, {**SMALL, "epochs": 200, "stop_at_accuracy": 0.6, "learning_rate": 0.01,
                                   "log_schedule": {"every": 1000}})
    (run_id,) = statuses
    metrics = table(tmp_path, run_id, "metrics")
    last = metrics.epoch.max()
    assert last < 200
    assert metrics[(metrics.epoch == last) & (metrics.split == "test")].accuracy.iloc[0] >= 0.6
    assert table(tmp_path, run_id, "mi").epoch.max() == last


def test_ctrl_c_leaves_an_interrupted_run_with_readable_tables(tmp_path):
    config_file = tmp_path / "long.json"
    config_file.write_text(json.dumps({**SMALL, "name": "long", "epochs": 100000}))
    env = {**os.environ, "IB_RESULTS": str(tmp_path / "results")}
    process = subprocess.Popen([sys.executable, "-m", "trainer", "run", str(config_file), "--quiet"],
                               cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    runs = tmp_path / "results" / "runs"
    deadline = time.time() + 120
    while not list(runs.glob("*/metrics*.parquet")) and time.time() < deadline:
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    (run_dir,) = runs.iterdir()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "interrupted"
    metrics = tables.read_table(tables.table_files(run_dir)["metrics"], "metrics").to_pandas()
    epochs = sorted(metrics.epoch.unique())
    assert epochs == list(range(len(epochs))) and meta["epochs_done"] == epochs[-1] > 0


def test_cli_run_reports_ignored_keys_and_succeeds(tmp_path, capsys):
    config_file = tmp_path / "legacy.json"
    config_file.write_text(json.dumps({**SMALL, "plotters": [["plotter.snr", []]], "epochs": 1}))
    assert cli.main(["run", str(config_file), "--quiet", "--results", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "ignoring keys" in captured.err and "plotters" in captured.err
    assert ": completed" in captured.out
    assert cli.main(["ls", "--results", str(tmp_path)]) == 0
    assert "completed" in capsys.readouterr().out


def test_the_progress_bar_escapes_the_experiments_name(capsys):
    # `trainer run` of one stack showed a config's name raw as the bar's label: ESC sequences cleared
    # or retitled the terminal
    from types import SimpleNamespace

    experiment = SimpleNamespace(name="x\x1b[2J\x1b]2;pwned\x07\u202ey")
    training._progress_bar([SimpleNamespace(experiment=experiment)], 3, 0).close()
    err = capsys.readouterr().err
    assert "x\\x1b[2J\\x1b]2;pwned\\x07\\u202ey: " in err and "\x1b" not in err and "\u202e" not in err


def test_a_new_writer_clears_temporary_files_a_killed_writer_left(tmp_path):
    (experiment,) = config.plan({**SMALL, "epochs": 1})
    run_id = experiment.run_id(0)
    run_dir = tmp_path / "runs" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / ".metrics.parquet.abc.tmp").write_bytes(b"half a file")
    run_experiment(experiment, tmp_path, progress=False)
    assert not list(run_dir.glob(".*.tmp"))
    assert len(table(tmp_path, run_id, "metrics")) == 4


def recorded(root, run_id):
    """The numbers a run recorded, in a fixed row order."""
    keys = {"metrics": ["epoch", "split"], "mi": ["epoch", "layer", "split"], "gradients": ["epoch", "layer"]}
    return {name: table(root, run_id, name).sort_values(by).reset_index(drop=True) for name, by in keys.items()}


def assert_same_numbers(ours, theirs):
    for name in ("metrics", "mi", "gradients"):
        assert len(ours[name]) == len(theirs[name]) > 0, name
        for column in ("loss", "accuracy", "i_xt", "i_yt", "grad_mean_norm", "grad_std_norm", "weight_norm"):
            if column in ours[name]:
                np.testing.assert_allclose(ours[name][column], theirs[name][column], rtol=1e-5, atol=1e-7,
                                           err_msg=f"{name}.{column}")


def test_many_epochs_per_compiled_call_equal_one_epoch_per_call(small_run, tmp_path):
    root, run_id, _ = small_run      # trained 2 epochs per compiled call: up to each logged epoch
    (experiment,) = config.plan(SMALL)
    run_experiment(experiment, tmp_path, progress=False, epochs_per_call=1)
    assert_same_numbers(recorded(root, run_id), recorded(tmp_path, run_id))


def test_a_group_of_experiments_trained_stacked_equals_each_trained_alone(tmp_path):
    """Different initial bias, learning rate, kernel init, max-norm and hidden activation per network,
    one computation (the sigmoid network between the relu ones: three blocks of one activation)."""
    first, = config.plan({**SMALL, "name": "a", "activation_fn": "relu"})
    second, = config.plan({**SMALL, "name": "b", "activation_fn": "relu", "initial_bias": 0.3,
                           "learning_rate": 0.01, "kernel_init_stddev": 0.5, "max_norm_weights": 0.8, "seed": 3})
    third, = config.plan({**SMALL, "name": "c", "activation_fn": "sigmoid", "initial_bias": 0.1, "seed": 5})
    assert shape_key(first.config) == shape_key(second.config) == shape_key(third.config)
    together = run_group([(first, [0], False), (third, [5], False), (second, [3], False)], tmp_path / "together",
                         progress=False)
    assert {outcome.status for outcome in together.values()} == {"completed"}
    for experiment, seed in ((first, 0), (second, 3), (third, 5)):
        run_experiment(experiment, tmp_path / "alone", progress=False)
        run_id = experiment.run_id(seed)
        ours, theirs = recorded(tmp_path / "together", run_id), recorded(tmp_path / "alone", run_id)
        assert_same_numbers(ours, theirs)
        assert ours["gradients"].health.tolist() == theirs["gradients"].health.tolist()   # by its own activation
    a, c, b = (recorded(tmp_path / "together", run_id)["metrics"].loss for run_id in together)
    assert not np.allclose(a, b) and not np.allclose(a, c)


def test_max_norm_constrains_the_hidden_layers_only():
    """deep-bottleneck puts the MaxNorm kernel constraint on hidden layers, not on the softmax output."""
    experiment, = config.plan({**SMALL, "max_norm_weights": 0.5, "kernel_init_stddev": 2.0})
    settings = [NetworkSettings.of(experiment.config, 0),
                NetworkSettings.of(experiment.config.model_copy(update={"max_norm_weights": False}), 1)]
    model = StackedMLP(experiment.config, 12, 2, settings)
    weights, _ = model.read()
    constrained = model.constrain(weights)
    for layer, position in zip(model.layers, model.kernel_positions):
        before, after = weights[position].numpy(), constrained[position].numpy()
        norms = np.sqrt((after[0] ** 2).sum(axis=0))
        if layer.name == "output":
            np.testing.assert_array_equal(after, before)
        else:
            assert norms.max() == pytest.approx(0.5, rel=1e-5) and np.sqrt((before[0] ** 2).sum(axis=0)).max() > 0.5
            np.testing.assert_array_equal(after[1], before[1])   # the network without max-norm


def interrupted_at_the_third_call():
    """A CompiledSteps.train that stops (KeyboardInterrupt) at its third call: of a 6-epoch run
    checkpointed every call, one interrupted with a checkpoint at epoch 4."""
    plain_train = compiled.CompiledSteps.train
    calls = []

    def train(steps, orders, active):
        calls.append(len(orders))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return plain_train(steps, orders, active)
    return train


def test_a_run_resumed_from_its_checkpoint_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    raw = {**SMALL, "epochs": 6, "save_checkpoints": True}
    (experiment,) = config.plan(raw)
    run_experiment(experiment, tmp_path / "straight", progress=False, flush_seconds=0)
    plain_train = compiled.CompiledSteps.train
    monkeypatch.setattr(compiled.CompiledSteps, "train", interrupted_at_the_third_call())
    with pytest.raises(KeyboardInterrupt):
        run_experiment(experiment, tmp_path / "resumed", progress=False, flush_seconds=0)
    monkeypatch.setattr(compiled.CompiledSteps, "train", plain_train)
    run_id = experiment.run_id(0)
    assert checkpoint.checkpoint_epochs(tmp_path / "resumed", run_id) == [4]
    # A stop while the resumed stack is set up (seconds of compiling) once recorded it interrupted
    # at epoch 0, over tables and a checkpoint at epoch 4.
    def stopped_while_set_up(*args, **kwargs):
        raise KeyboardInterrupt
    with monkeypatch.context() as patched:
        patched.setattr(training, "_set_up", stopped_while_set_up)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(experiment, tmp_path / "resumed", progress=False, resume=True, flush_seconds=0)
    record = json.loads((tmp_path / "resumed" / "runs" / run_id / "run.json").read_text())
    metrics = recorded(tmp_path / "resumed", run_id)["metrics"]
    at_4 = metrics[(metrics["epoch"] == 4) & (metrics["split"] == "test")]["accuracy"].item()
    assert (record["status"], record["epochs_done"], record["final_test_accuracy"]) == ("interrupted", 4, at_4)
    run_experiment(experiment, tmp_path / "resumed", progress=False, resume=True, flush_seconds=0)
    assert_same_numbers(recorded(tmp_path / "resumed", run_id), recorded(tmp_path / "straight", run_id))



def test_a_checkpoint_is_not_resumed_on_a_data_file_that_changed_since(tmp_path, monkeypatch):
    # An attacker's: a sweep that waited for another process's runs reloaded the file, which had
    # changed, and resumed a checkpoint trained on the former data (train loss 1e-7, then 0.93); its
    # record then named the new digest alone. The run's own record holds the data it trained on.
    data = tmp_path / "data.csv"
    former = "y,a,b\n" + "\n".join(f"{i % 2},{i},{i * 3 % 7}" for i in range(40)) + "\n"
    data.write_text(former)
    (experiment,) = config.plan({**SMALL, "epochs": 6, "save_checkpoints": True, "dataset": "file",
                                 "dataset_path": str(data), "label_column": "y"})
    with monkeypatch.context() as patched:
        patched.setattr(compiled.CompiledSteps, "train", interrupted_at_the_third_call())
        with pytest.raises(KeyboardInterrupt):
            run_experiment(experiment, tmp_path, progress=False, flush_seconds=0)
    run_id = experiment.run_id(0)
    path = tmp_path / "runs" / run_id / "run.json"
    interrupted = json.loads(path.read_text())
    assert interrupted["status"] == "interrupted" and interrupted["data_sha256"] == load_data(experiment.config).sha256
    data.write_text(former.replace("\n1,1,3\n", "\n1,1,4\n"))
    from trainer.plan import Group, Task
    from trainer.task import train_group
    (run,) = train_group(Group([Task(experiment, (0,), resume=True)]), tmp_path).runs    # no digest planned: Ray's
    record = json.loads(path.read_text())
    assert run.status == "failed"
    assert record["status"] == "failed" and f"data file {str(data)!r} changed since {run_id} trained on it" in (
        record["error"])
    assert record["data_sha256"] == interrupted["data_sha256"]                 # the data its tables are of
    assert recorded(tmp_path, run_id)["metrics"]["epoch"].max() == 4           # nothing trained on the new file
    data.write_text(former)                                                    # restored: it resumes
    (run,) = train_group(Group([Task(experiment, (0,), resume=True)]), tmp_path).runs
    assert run.status == "completed" == json.loads(path.read_text())["status"]


def test_a_file_of_repeated_rows_records_each_splits_input_entropy_as_its_ceiling(tmp_path):
    # A new user's 3000 rows were 443 distinct ones: dense_0 sat at 7.4 bits, H(X), and read "not
    # shown" below a ceiling of log2 n = 11.2
    data = tmp_path / "data.csv"
    data.write_text("y,a,b\n" + "\n".join(f"{i % 2},{i % 5},{i * 3 % 4}" for i in range(60)) + "\n")
    (experiment,) = config.plan({**SMALL, "epochs": 3, "dataset": "file", "dataset_path": str(data),
                                 "label_column": "y"})
    run_experiment(experiment, tmp_path, progress=False, flush_seconds=0)
    record = json.loads((tmp_path / "runs" / experiment.run_id(0) / "run.json").read_text())
    loaded = load_data(experiment.config)
    for split, inputs in (("train", loaded.train.x), ("test", loaded.test.x), ("full", loaded.full.x)):
        _, counts = np.unique(inputs, axis=0, return_counts=True)
        p = counts / counts.sum()
        assert record["splits"][split]["h_x_bits"] == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-12), split
        assert record["splits"][split]["h_x_bits"] < np.log2(len(inputs)) - 0.4
    assert record["splits"]["full"]["h_x_bits"] == pytest.approx(np.log2(20))           # 20 rows, each 3 times
    from explorer.results import ResultStore
    phases = ResultStore(tmp_path).phases()
    for split, ceiling in phases.groupby("split")["i_xt_ceiling_bits"]:
        assert ceiling.to_numpy() == pytest.approx(np.full(len(ceiling), record["splits"][split]["h_x_bits"]))


def test_a_run_killed_after_its_last_epoch_keeps_its_health_flags_when_resumed(tmp_path, monkeypatch):
    # relu with initial bias -1 is dead from epoch 1 on. The flags come from what the training loop
    # observed; a resumed run once started observing afresh, so a run killed after its last
    # checkpoint (the last epoch) and resumed, with nothing left to train, was recorded alive.
    raw = {**SMALL, "epochs": 6, "save_checkpoints": True, "activation_fn": "relu", "initial_bias": -1.0}
    (experiment,) = config.plan(raw)
    run_experiment(experiment, tmp_path / "straight", progress=False, flush_seconds=0)
    run_id = experiment.run_id(0)

    def killed_before_finishing(stack):
        raise KeyboardInterrupt   # outside the loop's handler: the run is left `running`, as by kill -9

    with monkeypatch.context() as patched:
        patched.setattr(training, "_finish_completed", killed_before_finishing)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(experiment, tmp_path / "resumed", progress=False, flush_seconds=0)
    assert checkpoint.checkpoint_epochs(tmp_path / "resumed", run_id) == [6]
    run_experiment(experiment, tmp_path / "resumed", progress=False, resume=True, flush_seconds=0)
    flags = ("status", "dead_network", "dead_layers", "diverged", "final_train_accuracy")
    straight, resumed = ({flag: json.loads((root / "runs" / run_id / "run.json").read_text())[flag] for flag in flags}
                         for root in (tmp_path / "straight", tmp_path / "resumed"))
    assert straight["dead_network"] is True and resumed == straight


# A learning rate of 1e30 diverges during training. A kernel stddev of 1e38 overflows float32 at once:
# the network's loss and activations are NaN at epoch 0, before any training; its epoch-0 tables once
# took the whole group down (the histogram of NaN activations failed), failing its stack-mate too.
@pytest.mark.parametrize("shared, wild_keys, diverged_at_0", [
    ({"optimizer": "sgd", "learning_rate": 0.01}, {"learning_rate": 1e30}, False),
    ({}, {"kernel_init_stddev": 1e38}, True),
])
def test_a_network_that_diverges_in_a_group_ends_alone_and_leaves_the_others_unchanged(tmp_path, shared, wild_keys,
                                                                                       diverged_at_0):
    base = {**SMALL, "activation_fn": "relu", "epochs": 6, **shared}
    steady, = config.plan({**base, "name": "steady"})
    wild, = config.plan({**base, "name": "wild", **wild_keys})
    statuses = run_group([(steady, [0], False), (wild, [0], False)], tmp_path / "together", progress=False)
    steady_id, wild_id = (e.run_id(0) for e in (steady, wild))
    assert {run_id: outcome.status for run_id, outcome in statuses.items()} == {
        steady_id: "completed", wild_id: "diverged"}
    record = json.loads((tmp_path / "together" / "runs" / wild_id / "run.json").read_text())
    assert record["diverged"] is True and record["epochs_done"] < 6
    assert (record["epochs_done"] == 0 and "at epoch 0" in record["error"]) == diverged_at_0
    run_experiment(steady, tmp_path / "alone", progress=False)
    assert_same_numbers(recorded(tmp_path / "together", steady_id), recorded(tmp_path / "alone", steady_id))


EXPLODING = {**SMALL, "architecture": [10, 7, 5, 4, 3], "activation_fn": "relu", "optimizer": "sgd",
             "learning_rate": 0.01, "epochs": 2, "log_schedule": {"every": 1}}


@pytest.fixture(scope="module")
def steady_alone(tmp_path_factory):
    """The steady network of the test below trained alone, the same in each of its cases."""
    root = tmp_path_factory.mktemp("alone")
    run_experiment(config.plan({**EXPLODING, "name": "steady"})[0], root, progress=False)
    return root


# sgd on relu with a clipped (bounded) loss: one epoch at learning rate 100 takes the deepest hidden layer
# to ~7.5e10, 7.5e12 bins of its histogram grid, with a finite loss and no gradient left (a dead network);
# at 1e7 to ~1e23, 2^63 bins and more. The first once failed its stack-mates too (ArrowInvalid: int32
# bin_index), the second would have written INT64_MIN bins.
@pytest.mark.parametrize("learning_rate, status", [(100, "completed"), (1e7, "diverged")])
def test_relu_activations_that_explode_with_a_finite_loss_end_one_network_alone(tmp_path, steady_alone, learning_rate,
                                                                                status):
    steady, = config.plan({**EXPLODING, "name": "steady"})
    wild, = config.plan({**EXPLODING, "name": "wild", "learning_rate": learning_rate})
    statuses = run_group([(steady, [0], False), (wild, [0], False)], tmp_path / "together", progress=False)
    steady_id, wild_id = (e.run_id(0) for e in (steady, wild))
    assert {run_id: outcome.status for run_id, outcome in statuses.items()} == {
        steady_id: "completed", wild_id: status}
    record = json.loads((tmp_path / "together" / "runs" / wild_id / "run.json").read_text())
    assert record["diverged"] is (status == "diverged") and math.isfinite(record["final_train_loss"])
    if status == "completed":
        assert record["dead_network"] is True
        assert table(tmp_path / "together", wild_id, "activations").bin_index.max() > 2**31
    else:
        assert record["epochs_done"] == 1 and "activations exploded at epoch 1" in record["error"]
    assert_same_numbers(recorded(tmp_path / "together", steady_id), recorded(steady_alone, steady_id))


def test_a_signal_whose_interrupt_tensorflow_replaces_still_marks_the_runs_interrupted(tmp_path, monkeypatch):
    """A Ctrl-C or SIGTERM while TensorFlow traces runs its handler inside a pybind11 callback, which
    can turn the KeyboardInterrupt into a RuntimeError (an attacker's sweep, 2 of 11 signals during the
    workers' compile): the runs were recorded failed, and `--resume` skipped them. Here the set-up
    raises as that callback does, after the signal handler ran."""
    from trainer import interrupts

    monkeypatch.setattr(interrupts, "_requested", False)    # the process's fact, restored after the test

    def set_up_interrupted_in_a_callback(*args, **kwargs):
        try:
            interrupts.stop(signal.SIGINT, None)
        except KeyboardInterrupt:
            raise RuntimeError("pybind11::error_already_set: MISMATCH of original and normalized active "
                               "exception types: ORIGINAL InvalidArgumentError REPLACED BY KeyboardInterrupt") from None

    monkeypatch.setattr(training, "_set_up", set_up_interrupted_in_a_callback)
    experiment, = config.plan({**SMALL, "save_checkpoints": True})
    with pytest.raises(KeyboardInterrupt):
        run_group([(experiment, [0, 1], False)], tmp_path, progress=False)
    for seed in (0, 1):
        record = json.loads((tmp_path / "runs" / experiment.run_id(seed) / "run.json").read_text())
        assert record["status"] == "interrupted" and "interrupted by a signal" in record["error"]
    # an error with no signal before it is still a failure
    monkeypatch.setattr(interrupts, "_requested", False)
    monkeypatch.setattr(training, "_set_up", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        run_group([(experiment, [2], False)], tmp_path, progress=False)
    record = json.loads((tmp_path / "runs" / experiment.run_id(2) / "run.json").read_text())
    assert record["status"] == "failed" and "ZeroDivisionError" in record["error"]


@pytest.mark.slow
def test_a_sweep_worker_refuses_a_data_file_too_large_for_memory_before_building_the_stack(tmp_path):
    # An attacker's 64-row CSV with three layers of 100,000 units: a sweep's worker (which loads the
    # file itself) asked TensorFlow for 40 GB a layer; `trainer run` checks before it (test_cli)
    rows = "\n".join(f"{i % 2},{i},{i * 2}" for i in range(64))
    (tmp_path / "small.csv").write_text("label,a,b\n" + rows + "\n")
    (experiment,) = config.plan({"name": "big", "dataset": "file", "dataset_path": str(tmp_path / "small.csv"),
                                 "label_column": "label", "epochs": 1, "architecture": [100000] * 3, "n_runs": 2})
    with pytest.raises(config.ConfigError, match="GiB of memory"):
        run_group([(experiment, [0, 1], False)], tmp_path / "results", progress=False)
    for run_id in experiment.run_ids:
        record = json.loads((tmp_path / "results" / "runs" / run_id / "run.json").read_text())
        assert record["status"] == "failed" and "GiB of memory" in record["error"]
        assert "2 network(s) trained stacked" in record["error"]
