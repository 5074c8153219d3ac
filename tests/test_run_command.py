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
@pytest.mark.parametrize("verb", [["sweep", "--workers", "2"]])
def test_a_missing_data_file_fails_the_runs_with_its_message_and_no_traceback(tmp_path, verb):
    # A sweep finds the file missing only in the workers, which load the data (on a Ray cluster
    # they may see files this machine does not): a user's mistake, so each run is recorded failed
    # with the message and no worker prints a traceback. (`trainer run` loads it first: exit 2 with
    # nothing written, tests/test_config.py.)
    missing = tmp_path / "absent.csv"
    path = tmp_path / "data.json"
    path.write_text(json.dumps({**TINY, "name": "data", "n_runs": 2, "dataset": "file",
                                "dataset_path": str(missing), "label_column": "y"}))
    root = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "trainer", verb[0], str(path), *verb[1:], "--results", str(root)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    message = f"data file {str(missing)!r} does not exist"
    assert message in done.stdout + done.stderr
    records = [json.loads(p.read_text()) for p in root.glob("runs/*/run.json")]
    assert len(records) == 2
    assert all(r["status"] == "failed" and message in r["error"] for r in records)


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
