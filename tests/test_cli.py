"""`trainer estimate` and `trainer sql` end to end on a small trained run."""

import io
import json
import re
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from trainer import cli, config, estimators
from trainer.training import run_experiment

# the module's fixture trains two runs; one test process runs the module (pytest-xdist group), so it
# trains them once, not once in each process
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cli")]

SMALL = {"name": "saved", "epochs": 3, "architecture": [10, 7, 5], "log_schedule": {"every": 1},
         "save_activations": True}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    (experiment,) = config.plan(SMALL)
    (saved_run,) = run_experiment(experiment, root, progress=False)
    (plain,) = config.plan({**SMALL, "name": "plain", "save_activations": False})
    (plain_run,) = run_experiment(plain, root, progress=False)
    return root, saved_run, plain_run


def mi(root, run_id):
    return pq.read_table(root / "runs" / run_id / "mi.parquet").to_pandas()


def test_reestimating_with_the_training_estimator_reproduces_its_rows(trained, capsys):
    root, run_id, _ = trained
    before = mi(root, run_id)
    assert cli.main(["estimate", run_id, "--estimator", "mi_estimator.binning", "--param", "bin_size=0.07",
                     "--results", str(root)]) == 0
    after = mi(root, run_id)
    assert len(after) == len(before) == 4 * 4 * 2          # epochs 0..3, 4 layers, train + test
    key = ["epoch", "layer", "split"]
    pd.testing.assert_frame_equal(before.sort_values(key).reset_index(drop=True),
                                  after.sort_values(key).reset_index(drop=True))


def test_estimate_without_a_terminal_prints_plain_progress_lines_as_the_sweep_does(trained, capsys):
    # its tqdm bar wrote carriage returns and redraws into a log file or a pipe
    root, run_id, _ = trained
    assert cli.main(["estimate", run_id, "--estimator", "binning", "--results", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in err and "\x1b" not in err
    # in saved epochs, not network-epochs: a new user read "270/270 network-epochs" as the epochs trained
    assert err.splitlines()[-1].startswith("binning on 1 run(s): 4/4 saved epochs (100%) [")
    assert err.splitlines()[-1].endswith(", 1/1 runs ended]")
    assert out.startswith(f"{run_id}: 32 MI rows written (binning ") and len(out.splitlines()) == 1


def test_a_new_estimator_adds_rows_once_and_replaces_them_on_rerun(trained):
    root, run_id, _ = trained
    args = ["estimate", run_id, "--estimator", "kde_upper", "--param", "noise_variance=0.1",
            "--results", str(root)]
    assert cli.main(args) == 0
    first = mi(root, run_id)
    assert cli.main(args) == 0
    second = mi(root, run_id)
    assert len(first) == len(second) == 2 * 32
    kde = second[second.estimator == "kde_upper"]
    assert len(kde) == 32 and set(kde.params) == {json.dumps({"noise_variance": 0.1})}
    assert np.isfinite(kde.i_xt).all() and (kde.i_xt >= kde.i_yt - 1e-9).all()


def test_estimate_without_saved_activations_says_how_to_get_them(trained, capsys):
    root, _, plain_run = trained
    assert cli.main(["estimate", plain_run, "--estimator", "binning", "--results", str(root)]) == 2
    err = capsys.readouterr().err
    assert "no saved activations" in err and "save_activations" in err and "Traceback" not in err


def test_estimate_of_a_run_in_training_says_so_before_its_missing_activations(tmp_path, capsys):
    # An attacker's: a run trained again with --force has no saved activations until its first flush,
    # and `trainer estimate` said "train it with save_activations: true" of a run doing just that
    from bench.make_results import write_run
    from ibstore.record import Status

    run_id = write_run(tmp_path, "live", {"epochs": 20, "save_activations": True}, status=Status.RUNNING,
                       epochs_done=2, logged=4)
    assert cli.main(["estimate", run_id, "--estimator", "binning", "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: run {run_id!r} is still training; estimate it when it has "
                                               "finished")


def test_estimate_leaves_out_interrupted_runs_and_says_so(trained, tmp_path, capsys):
    # A new user's: `trainer estimate COHORT` wrote rows on every interrupted run of a sweep it had
    # stopped; a resumed run would then write only its config's estimators after them
    import shutil

    from bench.make_results import write_run
    from ibstore.record import Status

    root = tmp_path / "root"
    shutil.copytree(trained[0], root)
    run_id = trained[1]
    stopped = write_run(root, "stopped", {"epochs": 20, "save_activations": True}, cohort="stopped",
                        status=Status.INTERRUPTED, epochs_done=2, logged=4)
    assert cli.main(["estimate", run_id, "stopped", "--estimator", "kde_upper", "--results", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"left out, interrupted or failed (not finished: train it again first (`trainer sweep CONFIG "
                      f"--resume` for an interrupted one, `--retry-failed` for a failed one), then estimate them): "
                      f"{stopped}")
    assert out[1].startswith(f"{run_id}: 32 MI rows written") and len(out) == 2
    before = pq.read_table(root / "runs" / stopped / "mi.parquet")
    assert "kde_upper" not in before.column("estimator").to_pylist()
    for target, said in (("stopped", "every run of 'stopped' is interrupted or failed, not finished"),
                         (stopped, f"run {stopped!r} is interrupted, not finished")):    # or named by its own id
        assert cli.main(["estimate", target, "--estimator", "kde_upper", "--results", str(root)]) == 2
        assert said in capsys.readouterr().err
    # a failed run, here one with no activations (an attacker's: it refused the whole cohort), likewise
    broken = write_run(root, "broken", {"epochs": 20, "save_activations": True}, cohort="stopped",
                       status=Status.FAILED, epochs_done=0, logged=4)
    assert cli.main(["estimate", run_id, "stopped", "--estimator", "binning", "--results", str(root)]) == 0
    left_out = capsys.readouterr().out.splitlines()[0].split("then estimate them): ")[1]
    assert sorted(left_out.split(", ")) == sorted([stopped, broken])
    assert pq.read_table(root / "runs" / stopped / "mi.parquet").equals(before)


def test_estimate_names_unknown_runs_and_estimators(trained, capsys):
    root, run_id, _ = trained
    assert cli.main(["estimate", "nope", "--estimator", "binning", "--results", str(root)]) == 2
    assert cli.main(["estimate", run_id, "--estimator", "magic", "--results", str(root)]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "magic" in err and "binning" in err


def test_estimate_help_names_every_estimator_it_accepts(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["estimate", "--help"])
    assert exited.value.code == 0
    words = set(re.findall(r"[\w.]+", capsys.readouterr().out))   # "mi_estimator.edge" is one word
    for name in [*estimators.ESTIMATORS, *estimators.ALIASES]:
        assert name in words and estimators.canonical(name)[0] in estimators.ESTIMATORS, name


@pytest.mark.parametrize("argv", [["ls", "--bogus"], ["compact", "--bogus"], ["sql", "SELECT 1", "--bogus"],
                                  ["sweep", "cohort.json", "--bogus"], ["estimate", "r", "--estimator", "edge", "--bogus"]])
def test_an_unknown_option_is_said_with_its_verbs_usage(argv, capsys):
    """argparse said it with the top level's usage (`usage: trainer [-h] {run,sweep,...}`), which
    lists none of the verb's options."""
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and f"usage: trainer {argv[0]} " in err, err
    assert err.rstrip().endswith(f"trainer {argv[0]}: error: unrecognized arguments: --bogus"), err


def test_a_sweep_either_resumes_or_forces(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["sweep", "cohort.json", "--resume", "--force"])
    assert exited.value.code == 2 and "argument --force: not allowed with argument --resume" in capsys.readouterr().err


def test_sql_prints_table_csv_and_json(trained, capsys):
    root, run_id, _ = trained
    query = f"SELECT epoch, accuracy FROM metrics WHERE run_id = '{run_id}' AND split = 'train' ORDER BY epoch"
    assert cli.main(["sql", query, "--format", "json", "--results", str(root)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["epoch"] for row in rows] == [0, 1, 2, 3]
    assert all(0 <= row["accuracy"] <= 1 for row in rows)
    assert cli.main(["sql", "SELECT count(*) AS n FROM runs", "--format", "csv", "--results", str(root)]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "2"]
    assert cli.main(["sql", "SELECT status FROM runs", "--results", str(root)]) == 0
    assert capsys.readouterr().out.split() == ["status", "---------", "completed", "completed", "(2", "rows)"]


def test_sql_refuses_writes_and_reports_bad_queries(trained, capsys):
    root, run_id, _ = trained
    target = root / "runs" / run_id / "metrics.parquet"
    assert cli.main(["sql", f"COPY (SELECT 1) TO '{target}'", "--results", str(root)]) == 2
    assert cli.main(["sql", "SELECT nonsense FROM metrics", "--results", str(root)]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "nonsense" in err and "Traceback" not in err
    assert pq.read_table(target).num_rows == 8


def test_adaptive_rows_of_an_older_run_with_the_filled_in_low_are_replaced_not_doubled(trained):
    # Rows written before the mi rows recorded adaptive's low as configured ("auto") hold the
    # activation's value (-1.000001 for this tanh run): the same estimate, so re-estimating replaces them.
    import pyarrow as pa

    root, run_id, _ = trained
    args = ["estimate", run_id, "--estimator", "adaptive", "--results", str(root)]
    assert cli.main(args) == 0
    path = root / "runs" / run_id / "mi.parquet"
    table = pq.read_table(path)
    old = table.to_pandas()
    legacy = old["params"].where(old["estimator"] != "adaptive", json.dumps({"low": -1.000001, "n_bins": 30}))
    pq.write_table(table.set_column(table.schema.get_field_index("params"), "params",
                                    pa.array(legacy, pa.string())), path)
    for _ in range(2):      # over the older rows, then over its own
        assert cli.main(args) == 0
        after = mi(root, run_id)
        adaptive = after[after.estimator == "adaptive"]
        assert set(adaptive.params) == {json.dumps({"low": "auto", "n_bins": 30})} and len(adaptive) == 32
        assert len(after) == len(old)


def test_damaged_saved_activations_are_one_line_naming_run_and_file_and_change_nothing(trained, capsys, tmp_path):
    # a truncated epoch file was a BadZipFile traceback (exit 1)
    import shutil
    root, run_id, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    epoch_file = copy / "runs" / run_id / "activations" / "epoch_000002.npz"
    epoch_file.write_bytes(epoch_file.read_bytes()[:300])
    before = mi(copy, run_id)
    assert cli.main(["estimate", run_id, "--estimator", "idnns", "--results", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: run '{run_id}': its saved activations/epoch_000002.npz cannot be read (BadZipFile")
    assert err.endswith("no run's mi rows have changed")
    pd.testing.assert_frame_equal(mi(copy, run_id), before)


def test_edge_is_reestimated_against_the_inputs_loaded_again_in_the_saved_rows_order(trained, tmp_path):
    # EDGE hashes the inputs, which are not saved: trainer estimate loads them again from the run's config
    import shutil

    from trainer import datasets, estimators, saved
    root, run_id, _ = trained
    copy = tmp_path / "edge"
    shutil.copytree(root, copy)
    assert cli.main(["estimate", run_id, "--estimator", "edge", "--results", str(copy)]) == 0
    edge = mi(copy, run_id)
    edge = edge[edge.estimator == "edge"].set_index(["epoch", "layer", "split"])
    assert len(edge) == 32 and np.isfinite(edge.i_xt).all()
    labels, n_train, _ = saved.load_index(copy, run_id)
    data = datasets.load_data(config.plan(SMALL)[0].config)
    layer = saved.load_epoch(copy, run_id, 3)[2]
    expected = estimators.estimate("edge", layer[:n_train], labels[:n_train], inputs=data.full.x[:n_train])
    assert (edge.loc[(3, 2, "train"), "i_xt"], edge.loc[(3, 2, "train"), "i_yt"]) == expected


def test_edge_refuses_inputs_that_changed_since_training_even_with_the_same_labels(tmp_path, capsys):
    # Only the labels were compared: a data file rewritten with other inputs gave other EDGE rows, unsaid.
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(200, 4)), rng.integers(0, 2, 200)
    data_file = tmp_path / "data.csv"

    def write_data(x, y):
        pd.DataFrame({**{f"x{i}": x[:, i] for i in range(4)}, "label": y}).to_csv(data_file, index=False)

    write_data(features, labels)
    root = tmp_path / "results"
    (experiment,) = config.plan({"name": "csv", "dataset": "file", "dataset_path": str(data_file), "epochs": 2,
                                 "architecture": [4, 3], "log_schedule": {"every": 1}, "save_activations": True})
    (run_id,) = run_experiment(experiment, root, progress=False)
    estimate = ["estimate", run_id, "--estimator", "edge", "--results", str(root)]
    assert cli.main(estimate) == 0
    edge_rows = mi(root, run_id)

    write_data(features + 0.5, labels)
    assert cli.main(estimate) == 2
    assert capsys.readouterr().err.strip().endswith(
        "its data has changed since it trained (the inputs differ from those it trained on; the labels are the same)")
    pd.testing.assert_frame_equal(mi(root, run_id), edge_rows)

    write_data(features, 1 - labels)
    assert cli.main(estimate) == 2
    assert "the labels differ from those saved with its activations" in capsys.readouterr().err

    # an index written before the digest was saved: the labels are all that can be compared
    index_file = root / "runs" / run_id / "activations" / "index.npz"
    with np.load(index_file) as index:
        assert set(index.files) == {"labels", "n_train", "layer_names", "inputs_digest"}
        np.savez(index_file.with_suffix(".tmp.npz"), **{k: index[k] for k in ("labels", "n_train", "layer_names")})
    index_file.with_suffix(".tmp.npz").replace(index_file)
    write_data(features + 0.5, labels)
    assert cli.main(estimate) == 0


def test_a_run_that_cannot_be_estimated_leaves_the_runs_before_it_unchanged(tmp_path, capsys):
    # Runs were written one by one: a damaged second run left the first re-estimated, the second not.
    root = tmp_path / "results"
    first, second = run_experiment(config.plan({**SMALL, "name": "two", "n_runs": 2})[0], root, progress=False)
    before = {run_id: mi(root, run_id) for run_id in (first, second)}
    epoch_file = root / "runs" / second / "activations" / "epoch_000002.npz"
    epoch_file.write_bytes(epoch_file.read_bytes()[:300])
    assert cli.main(["estimate", first, second, "--estimator", "idnns", "--results", str(root)]) == 2
    assert f"run '{second}': its saved activations/epoch_000002.npz cannot be read" in capsys.readouterr().err
    for run_id in (first, second):
        pd.testing.assert_frame_equal(mi(root, run_id), before[run_id])
        assert _unlocked(root / "runs" / run_id)      # the error released every lock

    epoch_file.unlink()     # without that epoch, both are estimated, and each says so
    assert cli.main(["estimate", first, second, "--estimator", "idnns", "--results", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"{first}: 32 MI rows written (idnns " in out and f"{second}: 24 MI rows written (idnns " in out
    assert (mi(root, first).estimator == "idnns").sum() == 32

    # an empty table file of the second run: named, before any run's rows are written (was a traceback)
    after = {run_id: mi(root, run_id) for run_id in (first, second)}
    (root / "runs" / second / "gradients.parquet").write_bytes(b"")
    assert cli.main(["estimate", first, second, "--estimator", "binning", "--results", str(root)]) == 2
    err = capsys.readouterr().err
    assert f"run '{second}': a table file cannot be read (" in err and "gradients.parquet" in err
    for run_id in (first, second):
        pd.testing.assert_frame_equal(mi(root, run_id), after[run_id])

    # an empty mi part of the second run: read (and named) before the first is written; was a traceback
    # (exit 1) after the first run's rows were replaced
    (root / "runs" / second / "gradients.parquet").unlink()
    (root / "runs" / second / "mi.part-000099.parquet").write_bytes(b"")
    assert cli.main(["estimate", first, second, "--estimator", "binning", "--results", str(root)]) == 2
    err = capsys.readouterr().err
    assert f"run '{second}': a table file cannot be read (" in err and "mi.part-000099.parquet" in err
    pd.testing.assert_frame_equal(mi(root, first), after[first])

    # a failed write names the runs written before it
    from trainer import reestimate
    (root / "runs" / second / "mi.part-000099.parquet").unlink()
    calls = []

    def failing_second(root_, run_id, *args):
        calls.append(run_id)
        if run_id == second:
            raise OSError(28, "No space left on device")
        return replace_rows(root_, run_id, *args)

    replace_rows = reestimate._replace_rows
    reestimate._replace_rows = failing_second
    try:
        assert cli.main(["estimate", first, second, "--estimator", "binning", "--results", str(root)]) == 2
    finally:
        reestimate._replace_rows = replace_rows
    out, err = capsys.readouterr()
    assert f"{first}: 32 MI rows written (binning" in out and second not in out
    assert err.strip().endswith(f"run '{second}': its mi rows could not be written ([Errno 28] No space left on "
                                f"device); it and the runs after it are unchanged, the 1 before it re-estimated")


def test_the_open_files_limit_is_raised_for_the_locks_of_many_runs(monkeypatch):
    # every run's lock stays open while all are estimated: near the limit, healthy files read as damaged
    import resource

    from trainer import reestimate
    limits = {"now": (100, 4096)}
    monkeypatch.setattr(resource, "getrlimit", lambda _: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda _, value: limits.update(now=value))
    reestimate._ensure_open_files(500)
    assert limits["now"] == (500 + reestimate.OPEN_FILES_BESIDE_LOCKS, 4096)
    with pytest.raises(reestimate.EstimateError, match="may open at most 4096 files; estimate at most 4032 runs"):
        reestimate._ensure_open_files(4500)


def _unlocked(run_dir):
    from ibstore.lock import RunLock
    with RunLock.acquire(run_dir, wait_s=0):
        return True


def test_run_and_sweep_say_which_features_lie_far_beyond_unit_scale(tmp_path, capsys):
    # A new user's unscaled CSV (a column up to 3775) killed 6 of 10 relu seeds without a word
    rows = "\n".join(f"{i % 2},{i * 0.01:.2f},{185 + i * 50}" for i in range(64))
    (tmp_path / "raw.csv").write_text("label,small,large\n" + rows + "\n")
    cfg = tmp_path / "raw.json"
    cfg.write_text(json.dumps({"name": "raw", "dataset": "file", "dataset_path": str(tmp_path / "raw.csv"),
                               "label_column": "label", "epochs": 1, "architecture": [3]}))
    for verb in ("run", "sweep"):
        assert cli.main([verb, str(cfg), "--results", str(tmp_path / verb)]) == 0
        err = capsys.readouterr().err
        assert (f"note: data file {str(tmp_path / 'raw.csv')!r}: 1 of 2 features reach beyond ±10 ('large' (|x| up "
                "to 3335)).") in err, err


def test_a_data_file_too_large_for_memory_is_refused_once_loaded(tmp_path, capsys):
    # An attacker's: a 64-row CSV and three layers of 100,000 units passed planning (a file's size is
    # unknown until it is read) and then asked for 40 GB a layer: a traceback and a failed run
    rows = "\n".join(f"{i % 2},{i},{i * 2}" for i in range(64))
    (tmp_path / "small.csv").write_text("label,a,b\n" + rows + "\n")
    cfg = tmp_path / "big.json"
    cfg.write_text(json.dumps({"name": "big", "dataset": "file", "dataset_path": str(tmp_path / "small.csv"),
                               "label_column": "label", "epochs": 1, "architecture": [100000] * 3}))
    root = tmp_path / "results"
    assert cli.main(["run", str(cfg), "--results", str(root)]) == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "GiB of memory" in err and "on file" in err and "Traceback" not in err
    assert not list(root.glob("runs/*/run.json"))                  # nothing written
    from trainer.config import memory, validate
    needed = memory.memory_estimate(validate(json.loads(cfg.read_text()))[0], (64, 2, 2))
    assert needed > memory.MEMORY_SHARE * memory.physical_memory() and f"{needed / 2**30:.1f} GiB" in err


class _Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("fmt, shown", [("csv", 'v,w\n"a\\x1b]0;T\\x07\\x1b[2J\\rFAKE\\u202e","café"\n'),
                                        ("json", '[\n{"v": "a\\u001b]0;T\\u0007\\u001b[2J\\rFAKE\\u202e", '
                                                 '"w": "caf\\u00e9"}\n]\n')])
def test_sql_rows_to_a_terminal_are_escaped_and_to_a_pipe_byte_for_byte(tmp_path, monkeypatch, capsys, fmt, shown):
    # An attacker's value retitled and cleared the terminal and printed a fake line under --format csv
    (tmp_path / "runs").mkdir()
    query = "SELECT 'a' || chr(27) || ']0;T' || chr(7) || chr(27) || '[2J' || chr(13) || 'FAKE' || chr(8238) AS v, " \
            "'café' AS w"
    terminal = _Terminal(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", terminal)
    assert cli.main(["sql", query, "--format", fmt, "--results", str(tmp_path)]) == 0
    assert terminal.buffer.getvalue().decode().replace("\r\n", "\n") == shown
    monkeypatch.undo()
    assert cli.main(["sql", query, "--format", fmt, "--results", str(tmp_path)]) == 0
    piped = capsys.readouterr().out
    assert "\x1b]0;T\x07\x1b[2J\rFAKE\u202e" in (json.loads(piped)[0]["v"] if fmt == "json" else piped)
    # an ENUM's text and a BLOB's bytes too (a reviewer's)
    query = "SELECT CAST('x\x1b[2Jy' AS ENUM('x\x1b[2Jy')) AS e, '\\x1B[2J'::BLOB AS b"
    terminal = _Terminal(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", terminal)
    assert cli.main(["sql", query, "--format", fmt, "--results", str(tmp_path)]) == 0
    assert "\x1b" not in terminal.buffer.getvalue().decode()
