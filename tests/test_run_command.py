"""`trainer run` of several seeds: one stacked group per core on the sweep's local workers, every
number the same as the runs trained in one process; its lines, exit status and Ctrl-C."""

import json
import os
import signal
import subprocess
import sys

import pytest

from ibstore.lifecycle import read_record
from test_sweep import REPO, TINY, session_processes, wait_for
from trainer import cli, config
from trainer.tables import read_table, table_files


@pytest.mark.slow
def test_seeds_train_on_one_worker_per_group_with_the_numbers_of_one_process(tmp_path, monkeypatch, capsys):
    path = tmp_path / "seeds.json"
    path.write_text(json.dumps({**TINY, "name": "seeds", "n_runs": 3}))
    (experiment,) = config.plan(config.load_file(path))
    run_ids = [experiment.run_id(seed) for seed in range(3)]
    alone, pooled = tmp_path / "alone", tmp_path / "pooled"

    monkeypatch.setattr(os, "cpu_count", lambda: 1)   # one core: one group, in this process
    assert cli.main(["run", str(path), "--quiet", "--results", str(alone)]) == 0
    assert cli.main(["run", str(path), "--quiet", "--workers", "2", "--results", str(pooled)]) == 0
    out = capsys.readouterr().out.splitlines()
    for run_id in run_ids:
        assert f"{run_id}: completed  ({pooled / 'runs' / run_id})" in out
    assert {read_record(alone, run_id).pid for run_id in run_ids} == {os.getpid()}
    pids = {read_record(pooled, run_id).pid for run_id in run_ids}
    assert len(pids) == 2 and os.getpid() not in pids   # two groups (2 + 1 seeds), two worker processes

    for run_id in run_ids:
        files = {root: table_files(root / "runs" / run_id) for root in (alone, pooled)}
        assert files[alone].keys() == files[pooled].keys() and "mi" in files[alone]
        for table in files[alone]:
            expected = read_table(files[alone][table], table)
            assert read_table(files[pooled][table], table).equals(expected), f"{run_id} {table}"

    assert cli.main(["run", str(path), "--quiet", "--results", str(pooled)]) == 0
    out = capsys.readouterr().out
    assert all(f"{run_id}: already completed, not trained again" in out for run_id in run_ids)


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_marks_their_runs_interrupted(tmp_path):
    path = tmp_path / "long.json"
    path.write_text(json.dumps({**TINY, "name": "long", "epochs": 100000, "log_schedule": {"every": 3},
                                "n_runs": 2}))
    root = tmp_path / "results"
    run = subprocess.Popen([sys.executable, "-m", "trainer", "run", str(path), "--workers", "2", "--results", str(root)],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    wait_for(lambda: len(list(root.glob("runs/*/metrics.part-000001.parquet"))) == 2 or run.poll() is not None,
             what="both runs to flush")
    assert run.poll() is None, run.communicate()
    pids = {json.loads(p.read_text())["pid"] for p in root.glob("runs/*/run.json")}
    assert len(pids) == 2 and run.pid not in pids   # each seed on its own worker

    os.killpg(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "interrupted: any run this run was still training is marked 'interrupted'" in err and "Traceback" not in err
    wait_for(lambda: session_processes(run.pid) == [], timeout=10, what="every process of the run to exit")
    for run_dir in (root / "runs").iterdir():
        record = json.loads((run_dir / "run.json").read_text())
        assert record["status"] == "interrupted" and record["epochs_done"] > 0


@pytest.mark.slow
def test_a_local_sweep_refuses_a_missing_data_file_and_a_worker_records_one_gone_since(tmp_path):
    # A new user's relative path was missing: the sweep recorded 18 runs failed, and since the path is
    # part of their ids, they stayed in the root for good. Local workers read this machine's files, so
    # the sweep loads them first, as `trainer run` does: exit 2, nothing written.
    data = tmp_path / "data.csv"
    path = tmp_path / "data.json"
    path.write_text(json.dumps({**TINY, "name": "data", "n_runs": 2, "dataset": "file",
                                "dataset_path": str(data), "label_column": "y"}))
    root = tmp_path / "results"
    command = [sys.executable, "-m", "trainer", "sweep", str(path), "--workers", "2", "--results", str(root)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip().startswith(f"error: data file {str(data)!r} does not exist; give a ")
    assert not list(root.glob("runs/*")) and not list(root.glob(".sweeps/*"))
    # A file gone after planning (on a Ray cluster: one its workers do not see) is the workers' to
    # find: each run is recorded failed with the loader's message, and no worker prints a traceback.
    data.write_text("y,a,b\n" + "\n".join(f"{i % 2},{i},{i * 3 % 7}" for i in range(40)) + "\n")
    sweep = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in sweep.stdout:          # printed as the workers start, seconds before they load data
        if line.startswith("progress file:"):
            data.unlink()
            break
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 1 and "Traceback" not in out + err, err
    message = f"data file {str(data)!r} does not exist"
    records = [json.loads(p.read_text()) for p in root.glob("runs/*/run.json")]
    assert len(records) == 2 and all(r["status"] == "failed" and message in r["error"] for r in records)


@pytest.mark.slow
def test_a_trainer_process_ends_with_its_status_and_every_line_written(tmp_path):
    # A process that imported TensorFlow skips the interpreter's teardown (trainer.cli.command):
    # its lines, buffered in a pipe, must still come out, and its status be main's.
    path = tmp_path / "one.json"
    path.write_text(json.dumps({**TINY, "name": "one", "epochs": 2}))
    (experiment,) = config.plan(config.load_file(path))
    root = tmp_path / "results"
    command = [sys.executable, "-m", "trainer", "run", str(path), "--quiet", "--results", str(root)]
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=buffered)
    assert done.returncode == 0, done.stderr
    run_id = experiment.run_id(0)
    assert done.stdout.splitlines() == [f"{run_id}: completed  ({root / 'runs' / run_id})"]
    assert read_record(root, run_id).status == "completed" and read_record(root, run_id).epochs_done == 2


def test_the_command_exits_with_mains_status_after_flushing_when_tensorflow_was_imported(monkeypatch, capsys):
    ended = []

    def fake_exit(status):   # os._exit never returns: neither does this
        ended.append((status, capsys.readouterr().out))
        raise SystemExit("os._exit")

    monkeypatch.setattr(cli, "main", lambda: print("a line still buffered") or 3)
    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow", object()))
    with pytest.raises(SystemExit, match="os._exit"):
        cli.command()
    assert ended == [(3, "a line still buffered\n")]
    monkeypatch.delitem(sys.modules, "tensorflow")
    with pytest.raises(SystemExit) as without:   # no TensorFlow: the interpreter's own exit
        cli.command()
    assert without.value.code == 3 and len(ended) == 1


@pytest.mark.slow
def test_a_data_file_changed_since_its_runs_completed_is_refused_until_restored_or_forced(tmp_path, capsys):
    # A new user replaced data/xor.npz with other data under the same path: the sweep skipped its
    # runs as "already complete", results of the former file. Each run records its data's SHA-256.
    from trainer import datasets

    data = tmp_path / "data.csv"
    original = "y,a,b\n" + "\n".join(f"{i % 2},{i},{i * 3 % 7}" for i in range(40)) + "\n"
    data.write_text(original)
    path = tmp_path / "data.json"
    path.write_text(json.dumps({**TINY, "name": "data", "dataset": "file", "dataset_path": str(data),
                                "label_column": "y"}))
    root = tmp_path / "results"
    (experiment,) = config.plan(config.load_file(path))
    assert cli.main(["run", str(path), "--quiet", "--results", str(root)]) == 0
    record = root / "runs" / experiment.run_id(0) / "run.json"
    trained_on = json.loads(record.read_text())["data_sha256"]
    assert trained_on == datasets.load_data(experiment.config).sha256 and len(trained_on) == 64
    before = record.read_bytes()
    data.write_text(original.replace("\n1,1,3\n", "\n1,1,4\n"))         # one value edited
    assert datasets.load_data(experiment.config).sha256 != trained_on
    capsys.readouterr()
    for verb in ("run", "sweep"):
        assert cli.main([verb, str(path), "--results", str(root)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: data file {str(data)!r} changed since 1 run(s) of this plan's seed groups "
                              "trained on it "
                              f"({experiment.run_id(0)}): a completed run's results are of the former data"), err
        assert record.read_bytes() == before and not list(root.glob(".sweeps/*"))
    data.write_text(original)                                            # restored: complete again
    assert cli.main(["run", str(path), "--results", str(root)]) == 0
    assert "already completed" in capsys.readouterr().out and record.read_bytes() == before
    data.write_text(original.replace("\n1,1,3\n", "\n1,1,4\n"))
    assert cli.main(["run", str(path), "--force", "--quiet", "--results", str(root)]) == 0   # trained on it now
    assert json.loads(record.read_text())["data_sha256"] == datasets.load_data(experiment.config).sha256
    assert cli.main(["sweep", str(path), "--results", str(root)]) == 0


@pytest.mark.slow
def test_a_group_whose_data_file_changed_since_the_plan_is_not_trained(tmp_path):
    # An attacker's: a file replaced while a sweep ran split the cohort over two datasets (the second
    # group trained on the new file), exit 0. A group's worker checks the digest the plan loaded.
    from trainer.plan import Group, Task, load_plan_data, stack_groups
    from trainer.task import train_group

    data = tmp_path / "data.csv"
    data.write_text("y,a,b\n" + "\n".join(f"{i % 2},{i},{i * 3 % 7}" for i in range(40)) + "\n")
    (experiment,) = config.plan({"name": "d", **TINY, "dataset": "file", "dataset_path": str(data),
                                 "label_column": "y"})
    tasks = [Task(experiment, experiment.seeds)]
    planned = load_plan_data(tasks, strict=True)
    (group,) = stack_groups(tasks, workers=1, shapes=planned.shapes, sha256=planned.sha256)
    assert group.data_sha256 == planned.sha256[config.data_key(experiment.config)]
    data.write_text(data.read_text().replace("\n1,1,3\n", "\n1,1,4\n"))      # replaced before the worker loads it
    root = tmp_path / "results"
    (run,) = train_group(Group(group.tasks, group.data_sha256), root).runs
    record = read_record(root, experiment.run_id(0))
    assert run.status == "failed" and record.status == "failed"
    assert f"data file {str(data)!r} changed since this sweep was planned" in record.error
    assert not table_files(root / "runs" / experiment.run_id(0)).get("metrics")     # nothing trained
