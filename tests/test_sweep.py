"""`trainer sweep`: validation first, skipping by run_id, worker processes, retry and
resume, Ctrl-C with readers querying meanwhile, two sweeps of one cohort at once, and a
local Ray instance."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ibstore.lock import is_live
from ibstore.progress import read_progress
from ibstore.record import SCHEMA_VERSION, RunRecord
from ibstore.sandbox import connect, run_query
from ibstore.schema import TABLE_SCHEMAS
from trainer import cli, config
from trainer import sweep as sweep_module
from trainer.plan import Task, plan_sweep, stack_groups, workers_that_fit
from ibstore.lifecycle import Redo, read_record
from ibstore.record import utc_now
from trainer.store import write_record
from trainer.tables import read_table, table_files

REPO = Path(__file__).resolve().parents[1]
TINY = {"epochs": 6, "architecture": [10, 7, 5], "batch_size": 1024, "log_schedule": {"every": 2}}  # 4 minibatches: quick to trace


def write_config(folder: Path, name: str, raw: dict) -> Path:
    path = folder / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(raw))
    return path


def run_json(root: Path, run_id: str) -> dict:
    return json.loads((root / "runs" / run_id / "run.json").read_text())


def metrics(root: Path, run_id: str):
    """The run's metrics from its base file and parts."""
    files = table_files(root / "runs" / run_id).get("metrics", [])
    return read_table(files, "metrics").to_pandas().sort_values(["epoch", "split"])


def sweep_process(path: Path, root: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    """`python -m trainer sweep` in its own session, as a terminal would start it."""
    return subprocess.Popen([sys.executable, "-m", "trainer", "sweep", str(path), "--results", str(root), *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)


def session_processes(session: int) -> list[int]:
    """Live processes of a session (a sweep started with start_new_session has session = its pid)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session:
            found.append(int(stat.parent.name))
    return found


def wait_for(condition, timeout: float = 180, what: str = "condition") -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def run_writers(pids: list[int]) -> list[int]:
    """Those of the processes that hold a run's lock (`<run>/.lock` open): a writer of theirs has
    taken a run, so TensorFlow is imported and the run compiles or trains."""
    def holds_a_lock(pid: int) -> bool:
        try:
            return any(os.readlink(fd).endswith("/.lock") for fd in Path(f"/proc/{pid}/fd").iterdir())
        except OSError:   # the process or one of its files gone meanwhile
            return False
    return [pid for pid in pids if holds_a_lock(pid)]


def wait_slowed(condition, processes, timeout: float = 240, what: str = "condition") -> None:
    """wait_for, with the processes `processes()` names (pids; none: a plain wait) stopped 90% of the
    time meanwhile (SIGSTOP, SIGCONT). Their clock runs on: the first flush and checkpoint, due 5 s
    into training (RunWriter's flush interval), come after a tenth of the epochs of 5 s, so a test
    that kills a run after its first checkpoint needs far fewer epochs to kill it mid-run, on a fast
    machine too."""
    def send(pids: list[int], sig: signal.Signals) -> None:
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    deadline = time.time() + timeout
    pids: list[int] = []
    while True:
        try:   # every one found is let run again, whatever fails
            send(pids, signal.SIGSTOP)      # those found before, stopped while the scan for new ones runs
            pids = sorted(set(pids) | set(processes()))
            send(pids, signal.SIGSTOP)
            stopped_until = time.monotonic() + 0.18
            if condition():   # checked while they are stopped: their share stays a tenth
                return
            assert time.time() < deadline, f"timed out waiting for {what}"
            time.sleep(max(0.0, stopped_until - time.monotonic()))
        finally:
            send(pids, signal.SIGCONT)
        time.sleep(0.02)


# ---------------------------------------------------------------- validation and planning, no training

def test_a_bad_config_anywhere_stops_the_sweep_before_anything_is_written(tmp_path, capsys):
    folder = tmp_path / "cohort"
    write_config(folder, "good", TINY)
    write_config(folder / "nested", "bad", {**TINY, "activation_fn": "rleu"})
    root = tmp_path / "results"
    assert cli.main(["sweep", str(folder), "--results", str(root)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "activation_fn" in err and "'rleu'" in err and "'relu'" in err
    assert "Traceback" not in err
    assert not root.exists()

    write_config(folder / "nested", "bad", {**TINY, "grid": {"initial_bais": [0, 1]}})
    assert cli.main(["sweep", str(folder), "--results", str(root)]) == 2
    assert "grid key 'initial_bais' is not a config key" in capsys.readouterr().err

    (tmp_path / "empty").mkdir()
    assert cli.main(["sweep", str(tmp_path / "empty"), "--results", str(root)]) == 2
    assert "no config files (*.json)" in capsys.readouterr().err
    assert cli.main(["sweep", str(tmp_path / "missing"), "--results", str(root)]) == 2
    assert "neither a config file nor a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sweep", str(folder), "--workers", "0"])
    assert exit_info.value.code == 2
    assert "'0' is not allowed" in capsys.readouterr().err
    assert not root.exists()


def test_a_config_files_name_is_escaped_in_the_note_on_its_ignored_keys(tmp_path, capsys):
    # a config file planted in a shared cohort folder names itself: its note printed that name raw
    from trainer.plan import load_experiments

    write_config(tmp_path, "evil\x1b]2;pwned\x07\rnote", {**TINY, "plotters": []})
    assert len(load_experiments(tmp_path)) == 1
    assert capsys.readouterr().err == (f"note: {tmp_path}/evil\\x1b]2;pwned\\x07\\rnote.json: ignoring keys with "
                                       f"no meaning here: plotters\n")


def mark(root: Path, run_id: str, status: str, checkpoint_epoch: int | None = None) -> None:
    """A run.json with this status (heartbeat now, no lock: as if on another host), and
    optionally a checkpoint file."""
    (root / "runs" / run_id).mkdir(parents=True)
    write_record(root / "runs" / run_id / "run.json", RunRecord(run_id=run_id, status=status, heartbeat_at=utc_now(),
                                                                schema_version=SCHEMA_VERSION))
    if checkpoint_epoch is not None:
        (root / "runs" / run_id / "checkpoints").mkdir()
        (root / "runs" / run_id / "checkpoints" / f"epoch_{checkpoint_epoch:06d}.npz").write_bytes(b"")


def test_a_sweep_says_which_skipped_runs_are_recorded_in_another_cohort(tmp_path, capsys):
    # An attacker renamed a config's cohort: the sweep said "done: 6 completed of 6 planned" and
    # `trainer report` then knew no such cohort. A cohort is not part of a run's id.
    (experiment,) = config.plan({"name": "qs", "cohort": "qsb", **TINY, "n_runs": 3})
    ids = [experiment.run_id(seed) for seed in range(3)]
    for run_id, cohort in zip(ids, ("qs", "qs", "qsb")):
        mark(tmp_path, run_id, "completed")
        path = tmp_path / "runs" / run_id / "run.json"
        write_record(path, RunRecord.from_json_bytes(path.read_bytes()).model_copy(update={"cohort": cohort}))
    plan = plan_sweep([experiment], tmp_path)
    assert plan.to_do == 0 and plan.elsewhere == {ids[0]: "qs", ids[1]: "qs"}
    sweep_module.print_plan("qs.json", tmp_path, plan)
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  2 skipped run(s) recorded in cohort 'qs', not in their config's (a cohort is not part of a run's id: the "
        "runs are the same, and keep the cohort they were trained in)"]
    # the overrides are part of the runs' ids: the plan's line names them
    sweep_module.print_plan("qs.json", tmp_path, plan, ["epochs=5", 'log_schedule={"every": 1}'])
    assert capsys.readouterr().out.splitlines()[0].startswith(
        'sweep qs.json with --set epochs=5 --set log_schedule={"every": 1}: 3 runs planned, 3 already complete')


def test_a_planned_run_whose_run_json_cannot_be_used_is_refused_not_cleared(tmp_path, capsys):
    # An attacker cut the end off a completed run's run.json: the sweep read it as never started,
    # trained it again and cleared its folder, the estimates added to it since with it
    (experiment,) = config.plan({"name": "qs", **TINY, "n_runs": 2})
    ids = [experiment.run_id(seed) for seed in range(2)]
    for run_id in ids:
        mark(tmp_path, run_id, "completed")
    run_json = tmp_path / "runs" / ids[1] / "run.json"
    run_json.write_bytes(run_json.read_bytes()[:-40])
    (tmp_path / "runs" / ids[1] / "mi.parquet").write_bytes(b"the estimates")
    with pytest.raises(sweep_module.SweepError) as refused:
        plan_sweep([experiment], tmp_path)
    assert str(refused.value).startswith(f"refused: 1 planned run folder(s) hold a run.json that cannot be used, or "
                                         f"none beside their results, and training would clear what they hold: "
                                         f"{run_json}: ")
    assert str(refused.value).endswith("Repair the run.json, or move the folder out of the root's runs/ to train the "
                                       "run again.")
    # the command says it and exits 2, with nothing trained or cleared
    path = write_config(tmp_path, "qs", {"name": "qs", **TINY, "n_runs": 2})
    assert cli.main(["sweep", str(path), "--results", str(tmp_path)]) == 2
    assert "hold a run.json that cannot be used" in capsys.readouterr().err
    assert (tmp_path / "runs" / ids[1] / "mi.parquet").read_bytes() == b"the estimates"
    # nor a run.json deleted (the attacker's next try), while a writer killed before its first
    # run.json (a .lock and a temporary file) is trained
    run_json.unlink()
    with pytest.raises(sweep_module.SweepError, match=f"{run_json.parent}: no run.json, beside mi.parquet"):
        plan_sweep([experiment], tmp_path)
    (tmp_path / "runs" / ids[1] / "mi.parquet").unlink()
    (tmp_path / "runs" / ids[1] / ".lock").write_text("")
    (tmp_path / "runs" / ids[1] / ".run.json.1234.tmp").write_text("{")
    assert plan_sweep([experiment], tmp_path).to_do == 1


def test_a_run_another_sweep_starts_after_the_plans_scan_is_not_refused(tmp_path, monkeypatch):
    # A reviewer's: the folder then holds run.json (and the other writer's lock), unknown to the scan
    from ibstore.lock import RunLock
    from trainer import plan as plan_module
    (experiment,) = config.plan({"name": "qs", **TINY, "n_runs": 2})
    started = experiment.run_id(0)
    scan, locks = plan_module.scan, []

    def scanned_then_started(*args, **kwargs):
        found = scan(*args, **kwargs)
        locks.append(RunLock.acquire(tmp_path / "runs" / started))
        write_record(tmp_path / "runs" / started / "run.json", RunRecord(
            run_id=started, status="running", heartbeat_at=utc_now(), schema_version=SCHEMA_VERSION))
        return found
    monkeypatch.setattr(plan_module, "scan", scanned_then_started)
    assert plan_sweep([experiment], tmp_path).to_do == 2     # its writer finds the lock held, as before
    locks[0].release()


def test_a_resume_of_runs_whose_data_file_changed_is_refused(tmp_path):
    # A reviewer's and an attacker's: `--resume` after the file changed continued the checkpoint's
    # weights on other data, and the run then recorded the new file's digest alone
    from trainer import datasets
    from trainer.plan import check_data_unchanged

    data = tmp_path / "data.csv"
    data.write_text("y,a,b\n" + "\n".join(f"{i % 2},{i},{i * 3 % 7}" for i in range(40)) + "\n")
    (experiment,) = config.plan({"name": "d", **TINY, "save_checkpoints": True, "dataset": "file",
                                 "dataset_path": str(data), "label_column": "y"})
    run_id = experiment.run_id(0)
    mark(tmp_path, run_id, "interrupted", checkpoint_epoch=4)
    path = tmp_path / "runs" / run_id / "run.json"
    write_record(path, RunRecord.from_json_bytes(path.read_bytes()).model_copy(
        update={"data_sha256": datasets.load_data(experiment.config).sha256}))
    resumed = plan_sweep([experiment], tmp_path, Redo(interrupted=True), resume=True)
    assert resumed.tasks[0].resume and set(resumed.trained_on_files) == {run_id}
    check_data_unchanged(resumed)                                  # the same file: it continues
    data.write_text(data.read_text().replace("\n1,1,3\n", "\n1,1,4\n"))
    changed = rf"changed since 1 run\(s\) of this plan's seed groups trained on it \({run_id}\).* an interrupted one"
    with pytest.raises(datasets.DatasetError, match=changed):
        check_data_unchanged(resumed)
    # from the start (no --resume) it trains on the file as it is: nothing to compare
    assert not plan_sweep([experiment], tmp_path, Redo(interrupted=True)).trained_on_files


DATA_CSV = "y,a,b\n" + "\n".join(f"{i % 2},{i},{i * 3 % 7}" for i in range(40)) + "\n"   # 40 rows, 2 features


def edited(text: str) -> str:
    """`text` (DATA_CSV) with one value changed: another version of the file."""
    return text.replace("\n1,1,3\n", "\n1,1,4\n")


def on_file(data: Path, **settings):
    """TINY's experiment on the CSV file `data` (label column y), with `settings`."""
    (experiment,) = config.plan({"name": "d", **TINY, "dataset": "file", "dataset_path": str(data),
                                 "label_column": "y", **settings})
    return experiment


def recorded_on(root: Path, run_id: str, status: str, sha256: str, group_id: str | None = None) -> None:
    """`mark` a run with this status, having trained on data of this SHA-256 (and in this group)."""
    mark(root, run_id, status)
    path = root / "runs" / run_id / "run.json"
    write_record(path, RunRecord.from_json_bytes(path.read_bytes()).model_copy(
        update={"data_sha256": sha256, "group_id": group_id}))


def test_runs_another_process_trains_and_seeds_left_out_of_the_plan_are_held_to_the_file_as_it_is(tmp_path):
    # An attacker's two ways into one seed group on two datasets: a sweep waited for seeds 0-1 that
    # another process trained on the former file while it trained seeds 2-3 on the new one; and
    # `trainer run --force` of seeds 0-1 of four retrained them on a new file beside seeds 2-3
    from trainer import datasets
    from trainer.plan import check_data_unchanged, load_plan_data

    data = tmp_path / "data.csv"
    data.write_text(DATA_CSV)
    four, two = on_file(data, n_runs=4), on_file(data, n_runs=2)
    group = config.group_id(four.name, four.config.model_dump())
    assert group == config.group_id(two.name, two.config.model_dump())           # n_runs is no part of it
    trained_on = datasets.load_data(four.config).sha256
    root = tmp_path / "held"
    for seed in (0, 1):
        recorded_on(root, four.run_id(seed), "running", trained_on, group)       # another host trains them
    plan = plan_sweep([four], root)
    assert set(plan.held) == set(plan.trained_on_files) == {four.run_id(0), four.run_id(1)}
    check_data_unchanged(plan, load_plan_data(plan.tasks, strict=True))      # the same file: train 2-3
    data.write_text(edited(DATA_CSV))
    with pytest.raises(datasets.DatasetError, match=rf"changed since 2 run\(s\) of this plan's seed groups trained "
                                                    rf"on it \({four.run_id(0)}, \.\.\.\).*; 2 of them another "
                                                    r"process trains now .*: wait for it to end, or stop it, first"):
        check_data_unchanged(plan, load_plan_data(plan.tasks, strict=True))
    # seeds 2-3 completed on the former file, outside a forced plan of seeds 0-1: compared too
    data.write_text(DATA_CSV)
    root = tmp_path / "forced"
    for seed in range(4):       # seed 3 diverged: it stays in the group's health table all the same
        recorded_on(root, four.run_id(seed), "completed" if seed < 3 else "diverged", trained_on, group)
    forced = plan_sweep([two], root, Redo(interrupted=True, failed=True, completed=True))
    assert forced.to_do == 2 and set(forced.trained_on_files) == {four.run_id(2), four.run_id(3)}
    data.write_text(edited(DATA_CSV))
    with pytest.raises(datasets.DatasetError, match=r"--force, with n_runs covering their seeds"):
        check_data_unchanged(forced, load_plan_data(forced.tasks, strict=True))
    # another group's runs (another learning rate) are no part of it
    assert not plan_sweep([on_file(data, learning_rate=0.5, n_runs=2)], root).trained_on_files


def test_seeds_another_sweep_still_trains_and_the_digest_from_the_moment_data_loads_are_compared(tmp_path):
    # A second attacker's: a sweep of seeds 2-3 ran beside another still training seeds 0-1 of the same
    # group (the seed is no part of the group id) on the former file, exit 0 for both; and the digest
    # reached run.json only at the first flush, seconds after the data loaded
    from trainer import datasets
    from trainer.plan import check_data_unchanged, load_plan_data
    from trainer.store import RunWriter

    data = tmp_path / "data.csv"
    data.write_text(DATA_CSV)
    first, second = on_file(data, n_runs=2, seed=0), on_file(data, n_runs=2, seed=2)
    group = config.group_id(first.name, first.config.model_dump())
    assert group == config.group_id(second.name, second.config.model_dump())
    root = tmp_path / "results"
    trained_on = datasets.load_data(first.config).sha256
    writer = RunWriter(root, {"run_id": first.run_id(0), "group_id": group, "epochs_total": 3}, flush_seconds=60)
    writer.describe_data({}, trained_on)                   # the data loaded: on disk before any flush
    assert read_record(root, first.run_id(0)).data_sha256 == trained_on
    recorded_on(root, first.run_id(1), "running", trained_on, group)        # on another host
    data.write_text(edited(DATA_CSV))
    plan = plan_sweep([second], root)
    assert plan.to_do == 2 and set(plan.trained_on_files) == {first.run_id(0), first.run_id(1)}
    with pytest.raises(datasets.DatasetError, match=r"changed since 2 run\(s\) of this plan's seed groups"):
        check_data_unchanged(plan, load_plan_data(plan.tasks, strict=True))
    with pytest.raises(datasets.DatasetError, match=r"this sweep trained runs on the file as it is before it waited"):
        check_data_unchanged(plan, load_plan_data(plan.tasks, strict=True), trained_beside=True)
    writer.finish("interrupted", 0)


def test_an_mnist_file_given_by_path_is_digested_for_its_groups_as_a_data_file_is(tmp_path):
    # A second attacker's: mnist with a dataset_path got no group digest, so a file swapped after the
    # plan trained the group's later seeds on other data, exit 0
    from trainer import datasets
    from trainer.plan import load_plan_data

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "m.npz", x_train=rng.uniform(size=(20, 4)), y_train=np.arange(20) % 2,
             x_test=rng.uniform(size=(10, 4)), y_test=np.arange(10) % 2)
    (experiment,) = config.plan({"name": "m", **TINY, "dataset": "mnist", "dataset_path": str(tmp_path / "m.npz")})
    (plain,) = config.plan({"name": "h", **TINY})
    for strict in (False, True):
        loaded = load_plan_data([Task(experiment, experiment.seeds), Task(plain, plain.seeds)], strict=strict)
        assert loaded.sha256 == {config.data_key(experiment.config): datasets.load_data(experiment.config).sha256}
    (group,) = stack_groups([Task(experiment, experiment.seeds)], workers=1, shapes=loaded.shapes,
                            sha256=loaded.sha256)
    assert group.data_sha256 == datasets.load_data(experiment.config).sha256


def test_a_later_round_keeps_the_digests_read_and_reads_the_files_not_read_yet(tmp_path):
    # A reviewer's: a sweep's later rounds kept the first round's data, so a file whose runs were all
    # held then trained with no digest and no shape
    from trainer.plan import load_plan_data

    files = []
    for name in ("one", "two"):
        files.append(tmp_path / f"{name}.csv")
        files[-1].write_text("y,a,b\n" + "\n".join(f"{i % 2},{i},{i * 3 % 7}" for i in range(40)) + "\n")
    one, two = (config.plan({"name": path.stem, **TINY, "dataset": "file", "dataset_path": str(path),
                             "label_column": "y"})[0] for path in files)
    first = load_plan_data([Task(one, one.seeds)])
    files[0].write_text(files[0].read_text().replace("\n1,1,3\n", "\n1,1,4\n"))     # changed since: kept as read
    later = load_plan_data([Task(one, one.seeds), Task(two, two.seeds)], known=first)
    assert later.sha256[config.data_key(one.config)] == first.sha256[config.data_key(one.config)]
    assert later.sha256[config.data_key(two.config)] == load_plan_data([Task(two, two.seeds)]).sha256[
        config.data_key(two.config)] and later.shapes[config.data_key(two.config)] == (40, 2, 2)


def test_the_check_compares_the_digest_the_groups_train_on_read_once(tmp_path):
    # An attacker renamed another file over the data between the check's read and the groups' read:
    # seed 0 completed on one file and seed 1 trained on another, exit 0. One read serves both.
    from trainer import datasets
    from trainer.plan import check_data_unchanged, load_plan_data

    data = tmp_path / "data.csv"
    data.write_text(DATA_CSV)
    experiment = on_file(data, n_runs=2)
    recorded_on(tmp_path, experiment.run_id(0), "completed", datasets.load_data(experiment.config).sha256)
    plan = plan_sweep([experiment], tmp_path)
    data.write_text(edited(DATA_CSV))
    loaded = load_plan_data(plan.tasks, strict=True)                      # the new file, as the groups get it
    data.write_text(DATA_CSV)                                              # and the former back before the check
    with pytest.raises(datasets.DatasetError, match="changed since 1 run"):
        check_data_unchanged(plan, loaded)
    check_data_unchanged(plan)                                           # read again, it would have passed


def test_a_ray_sweeps_groups_hold_their_data_to_the_file_the_coordinator_read(tmp_path, monkeypatch):
    # An attacker's: a file replaced while a Ray sweep ran split its cohort over two datasets, exit 0:
    # Ray's groups carried no digest, so no worker had anything to compare. What the coordinator can
    # read it digests, as local sweeps do (a file only the nodes see is left to them).
    from trainer import datasets

    data = tmp_path / "data.csv"
    data.write_text("y,a,b\n" + "\n".join(f"{i % 2},{i},{i * 3 % 7}" for i in range(40)) + "\n")
    path = tmp_path / "ray.json"
    path.write_text(json.dumps({"name": "r", **TINY, "dataset": "file", "dataset_path": str(data), "label_column": "y",
                                "grid": {"learning_rate": [0.1, 0.2]}}))
    shipped = []
    monkeypatch.setattr(sweep_module, "run_ray", lambda groups, *args, **kwargs: shipped.extend(groups))
    sweep_module.sweep(path, tmp_path / "results", ray_address="local")
    (experiment, _) = config.plan(json.loads(path.read_text()))
    assert shipped and {group.data_sha256 for group in shipped} == {datasets.load_data(experiment.config).sha256}


def test_a_lost_workers_run_another_process_took_since_is_held_not_this_sweeps(tmp_path):
    # An attacker's: a sweep whose worker was killed reported a run that a second, overlapping sweep had
    # taken since as its own "running ... worker process died", and ended without waiting for it
    from ibstore.lock import RunLock
    from trainer.plan import Group
    from trainer.task import lost_group

    (experiment,) = config.plan({"name": "lost", **TINY, "n_runs": 3})
    for seed in (0, 1):      # the dead worker's: running on this host, its lock free
        recorded_on(tmp_path, experiment.run_id(seed), "running", "a" * 64)
        path = tmp_path / "runs" / experiment.run_id(seed) / "run.json"
        here = {"host": socket.gethostname()}
        write_record(path, RunRecord.from_json_bytes(path.read_bytes()).model_copy(update=here))
        RunLock.acquire(path.parent).release()
    with RunLock.acquire(tmp_path / "runs" / experiment.run_id(1)):           # taken by another process since
        result = lost_group(Group([Task(experiment, (0, 1, 2))]), tmp_path, "worker process died (exit code -9)")
    statuses = {run.run_id: (run.status, run.error) for run in result.runs}
    assert statuses[experiment.run_id(0)] == ("interrupted", "worker process died (exit code -9)")
    status, holder = statuses[experiment.run_id(1)]
    assert status == "held" and f"held by pid {os.getpid()}" in holder
    assert statuses[experiment.run_id(2)][0] == "not started"


@pytest.mark.slow   # records a run: its code version asks git
def test_a_run_whose_folder_was_lost_while_training_reads_lost_not_not_started(tmp_path, monkeypatch, capsys):
    # A run folder removed while it trained left no record, and the sweep's line and tally said "not started"
    import shutil

    from trainer import training
    from trainer.plan import Group
    from trainer.store import FolderLost
    from trainer.task import train_group

    (experiment,) = config.plan({"name": "gone", **TINY, "n_runs": 2})
    lost = experiment.run_id(0)

    def trains_until_the_folder_is_lost(*args, **kwargs):   # as the writer's check finds it mid-training
        assert (tmp_path / "runs" / lost).is_dir()                # made when the run was taken
        shutil.rmtree(tmp_path / "runs" / lost)
        raise FolderLost(f"run folder {lost!r} was removed, moved or replaced", lost)

    monkeypatch.setattr(training, "run_group", trains_until_the_folder_is_lost)
    result = train_group(Group([Task(experiment, (0, 1))]), tmp_path)
    statuses = {run.run_id: run.status for run in result.runs}
    assert statuses == {lost: "lost", experiment.run_id(1): "not started"}
    line = sweep_module.run_line(next(run for run in result.runs if run.run_id == lost))
    assert line.startswith("lost ") and "(by another process)" not in line and "was removed" in line, line
    # the final tally keeps it: its progress state, not a record, says what became of it
    assert sweep_module.final_statuses(tmp_path, statuses) == statuses
    import pickle     # whole from a worker process
    assert pickle.loads(pickle.dumps(FolderLost("gone", lost))).run_id == lost


def test_the_plan_notes_experiments_too_few_seeded_for_the_compression_test():
    # A new user's 3 seeds a group: every `compresses` NULL, the reason only in each row's note
    few = config.plan({"name": "few", **TINY, "n_runs": 3, "grid": {"initial_bias": [0, 1]}})
    enough = config.plan({"name": "enough", **TINY, "n_runs": 5})
    assert sweep_module.few_seeds_note(enough) is None
    assert sweep_module.few_seeds_note(few + enough + config.plan({"name": "one", **TINY})) == (
        "  note: 3 experiment(s) have fewer than 5 seeds (2 with 3, 1 with 1): the test of whether a layer "
        "compresses needs 5 seeds a group to measure their noise, so their layers get no test (--set n_runs=5 "
        "later trains only the seeds added)")


def completed_as(root: Path, experiment, seed: int, run_id: str | None = None) -> str:
    """A completed run.json of `experiment`'s seed, as its writer records it, under its own id or `run_id`."""
    from trainer.store import run_fields

    fields = run_fields(experiment, seed)
    fields["run_id"] = run_id = run_id or fields["run_id"]
    (root / "runs" / run_id).mkdir(parents=True)
    write_record(root / "runs" / run_id / "run.json", RunRecord(**fields, status="completed", heartbeat_at=utc_now(),
                                                                schema_version=SCHEMA_VERSION))
    return run_id


def test_a_grid_written_in_another_order_or_number_form_finds_its_runs_done(tmp_path, capsys):
    # An attacker's: the same grid with its keys in another order (or 0.0 for 0) named its runs anew,
    # the sweep trained the same networks again, and the report compared an experiment with itself
    written = config.plan({"name": "g3", **TINY, "n_runs": 2,
                           "grid": {"activation_fn": ["tanh"], "initial_bias": [0, 0.5]}})
    done = [completed_as(tmp_path, experiment, seed) for experiment in written for seed in experiment.seeds]
    for grid in ({"initial_bias": [0, 0.5], "activation_fn": ["tanh"]},
                 {"activation_fn": ["tanh"], "initial_bias": [0.0, 0.5]}):
        again = config.plan({"name": "g3", **TINY, "n_runs": 2, "grid": grid})
        renamed = {run_id for experiment in again for run_id in experiment.run_ids} - set(done)
        assert renamed                  # "initial-bias-0-activation-fn-tanh", "initial-bias-0-0"
        plan = plan_sweep(again, tmp_path)
        assert plan.to_do == 0 and sorted(plan.run_ids) == sorted(done) and set(plan.same_as) == renamed
        assert plan.skipped == {"completed": plan.run_ids}
        sweep_module.print_plan("g3.json", tmp_path, plan)
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith(f"sweep g3.json: {len(done)} runs planned, {len(done)} already complete")
        assert out[1].startswith(f"  {len(renamed)} run(s) already complete under another name")
        # and --force, which trains completed runs again, said "not trained again" and trained the config's own
        forced = plan_sweep(again, tmp_path, Redo(interrupted=True, failed=True, completed=True))
        assert not forced.same_as and forced.to_do == len(done)
    # `trainer run` names the run it found for the config's own (it said "X: already completed" of another id)
    reordered = tmp_path / "g3.json"
    reordered.write_text(json.dumps({"name": "g3", **TINY, "n_runs": 2,
                                     "grid": {"initial_bias": [0, 0.5], "activation_fn": ["tanh"]}}))
    assert cli.main(["run", str(reordered), "--results", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert f"{done[0]}: already completed, the same networks as g3-initial-bias-0-activation-fn-tanh-" in said
    # a reviewer's: two such configs at once (named apart from each other too) planned each run twice
    both = [experiment for grid in ({"initial_bias": [0, 0.5], "activation_fn": ["tanh"]},
                                    {"initial_bias": [0.0, 0.5], "activation_fn": ["tanh"]})
            for experiment in config.plan({"name": "g3", **TINY, "n_runs": 2, "grid": grid})]
    assert len({run_id for experiment in both for run_id in experiment.run_ids}) == 2 * len(done) - 2
    assert sorted(plan_sweep(both, tmp_path).run_ids) == sorted(done)
    # another seed is other networks: trained
    other = config.plan({"name": "g3", **TINY, "n_runs": 1, "seed": 7, "grid": {"initial_bias": [0]}})
    assert plan_sweep(other, tmp_path).to_do == 1
    # another cohort's run of the same networks stays its own (an attacker's cohort lost its baseline to one)
    (mine,) = config.plan({"name": "mine", "cohort": "c1", **TINY, "learning_rate": 0.3})
    (theirs,) = config.plan({"name": "theirs", "cohort": "c2", **TINY, "learning_rate": 0.3})
    completed_as(tmp_path, theirs, 0)
    assert plan_sweep([mine], tmp_path).to_do == 1
    # a run whose id carries the same hash but whose config is another (the hash is 32 bits: a reviewer
    # found two learning rates sharing one) is not taken for it
    (lone,) = config.plan({"name": "lone", **TINY, "learning_rate": 0.5})
    (impostor,) = config.plan({"name": "impostor", **TINY, "learning_rate": 0.25})
    completed_as(tmp_path, impostor, 0, run_id=f"impostor-{lone.run_id(0).rsplit('-', 2)[-2]}-s0")
    assert plan_sweep([lone], tmp_path).to_do == 1


def test_plan_skips_complete_runs_and_groups_the_rest_by_what_they_need(tmp_path):
    (experiment,) = config.plan({"name": "plan", **TINY, "n_runs": 6, "save_checkpoints": True})
    ids = [experiment.run_id(seed) for seed in range(6)]
    mark(tmp_path, ids[0], "completed")
    mark(tmp_path, ids[1], "failed")
    mark(tmp_path, ids[2], "diverged")
    mark(tmp_path, ids[3], "running", checkpoint_epoch=4)
    mark(tmp_path, ids[4], "interrupted")  # killed before its first checkpoint; seed 5 never started
    later = time.time() + 3600  # seed 3's heartbeat is then stale: it was killed

    plan = plan_sweep([experiment], tmp_path)
    assert plan.planned == 6 and plan.to_do == 1
    assert plan.tasks == [Task(experiment, (5,))]
    assert plan.skipped == {"completed": [ids[0]], "failed": [ids[1]], "diverged": [ids[2]],
                            "interrupted": [ids[4]]}
    assert list(plan.held) == [ids[3]] and "running as pid None on host None" in plan.held[ids[3]]

    retry = Redo(failed=True)                                       # --retry-failed
    plan = plan_sweep([experiment], tmp_path, retry, now=later)
    assert plan.tasks == [Task(experiment, (1, 2, 5), redo=retry)]
    assert plan.skipped == {"completed": [ids[0]], "interrupted": [ids[3], ids[4]]} and plan.held == {}

    resume = Redo(interrupted=True)                                 # --resume
    plan = plan_sweep([experiment], tmp_path, resume, resume=True, now=later)
    assert plan.tasks == [Task(experiment, (4, 5), redo=resume), Task(experiment, (3,), resume=True, redo=resume)]

    force = Redo(interrupted=True, failed=True, completed=True)     # --force
    plan = plan_sweep([experiment], tmp_path, force, now=later)
    assert plan.tasks == [Task(experiment, (0, 1, 2, 3, 4, 5), redo=force)]
    assert plan_sweep([experiment], tmp_path, only={ids[5], ids[0]}).run_ids == [ids[0], ids[5]]

    (plain,) = config.plan({"name": "plain", **TINY})  # interrupted without checkpoints: restarted
    mark(tmp_path, plain.run_id(0), "interrupted")
    assert plan_sweep([plain], tmp_path, resume, resume=True).tasks == [Task(plain, (0,), redo=resume)]


def test_tasks_of_one_shape_are_stacked_and_split_across_workers():
    shape = config.plan({"name": "bias", **TINY, "n_runs": 2, "grid": {"initial_bias": [0, 0.5, 1, 2]}})
    (other,) = config.plan({"name": "wide", **TINY, "architecture": [12, 7, 5]})    # another shape
    tasks = [Task(e, e.seeds) for e in shape] + [Task(other, (0,)), Task(shape[0], (7,), resume=True)]
    groups = stack_groups(tasks, workers=2, memory=10**12)
    ids = [e.run_id(s) for e in shape for s in (0, 1)] + [shape[0].run_id(7)]
    assert [g.run_ids for g in groups] == [ids[:5], ids[5:], [other.run_id(0)]]  # 9 networks: 5 + 4
    assert groups[0].tasks[-1] == Task(shape[2], (0,)) and groups[1].tasks[0] == Task(shape[2], (1,))
    assert groups[1].tasks[-1] == Task(shape[0], (7,), resume=True)
    # Memory for 2 networks per worker: the 9 networks of the shape in 5 groups.
    one, two = (config.memory_estimate(shape[0].config.model_copy(update={"n_runs": n})) for n in (1, 2))
    groups = stack_groups(tasks, workers=2, memory=2 * (one + (two - one)))   # each worker: fixed part + 2
    assert [len(g.run_ids) for g in groups] == [2, 2, 2, 2, 1, 1]
    # The fixed part (TensorFlow) is paid once per worker: the 45 networks of the seed notebook's
    # cohort fit two groups in 16 GiB.
    cohort = config.plan({"name": "nb", **TINY, "n_runs": 5, "grid": {"initial_bias": list(range(9))}})
    groups = stack_groups([Task(e, e.seeds) for e in cohort], workers=2, memory=16 * 2**30)
    assert [len(g.run_ids) for g in groups] == [23, 22]
    assert workers_that_fit(groups, 2, memory=16 * 2**30) == 2
    # An attacker's: two groups of one network each, each needing more than half of memory, were
    # trained at once (each fits alone; a network cannot be split): one worker at a time
    wide = config.plan({"name": "wide", **TINY, "architecture": [70000], "grid": {"initial_bias": [0, 1]}})
    need = config.memory_estimate(wide[0].config)
    groups = stack_groups([Task(e, e.seeds) for e in wide], workers=2, memory=int(1.5 * need))
    assert [len(g.run_ids) for g in groups] == [1, 1]
    assert workers_that_fit(groups, 2, memory=int(1.5 * need)) == 1
    assert workers_that_fit(groups, 2, memory=2 * need) == 2


def test_a_file_datasets_networks_are_stacked_by_the_loaded_size():
    # An attacker's: a file dataset's size is unknown when planned, so `trainer run --workers 1` stacked
    # every config of its grid into one group, which the worker then refused once loaded: every run
    # recorded failed. With the loaded shape (run_command.check_datasets) the groups fit.
    grid = config.plan({"name": "f", **TINY, "dataset": "file", "dataset_path": "/data/x.csv", "label_column": "y",
                        "n_runs": 2, "grid": {"initial_bias": [0, 1, 2]}})
    tasks = [Task(e, e.seeds) for e in grid]
    shapes = {config.data_key(grid[0].config): (4096, 12, 2)}
    assert config.memory_estimate(grid[0].config) is None              # unknown before loading
    one, two = (config.memory_estimate(grid[0].config.model_copy(update={"n_runs": n}), (4096, 12, 2))
                for n in (1, 2))
    memory = one + 2 * (two - one)            # one worker: its fixed part and 3 networks
    assert [len(g.run_ids) for g in stack_groups(tasks, workers=1, memory=memory)] == [6]
    sized = stack_groups(tasks, workers=1, memory=memory, shapes=shapes)
    assert [len(g.run_ids) for g in sized] == [3, 3]
    assert workers_that_fit(sized, 2, memory=memory, shapes=shapes) == 1 and workers_that_fit(sized, 2, memory) == 2


def test_networks_of_different_activations_are_planned_by_activation_and_stacked_together(tmp_path):
    first = config.plan({"name": "a", **TINY, "grid": {"activation_fn": ["tanh", "relu", "sigmoid"]}})
    second = config.plan({"name": "b", **TINY, "initial_bias": 0.5, "grid": {"activation_fn": ["relu", "tanh"]}})
    plan = plan_sweep(first + second, tmp_path)
    planned = [(task.experiment.name, task.experiment.config.activation_fn) for task in plan.tasks]
    assert [fn for _, fn in planned] == ["relu", "relu", "sigmoid", "tanh", "tanh"]
    assert sorted(planned) == sorted((e.name, e.config.activation_fn) for e in first + second)
    (group,) = stack_groups(plan.tasks, workers=1, memory=10**12)
    assert group.run_ids == [task.experiment.run_id(0) for task in plan.tasks]
    another_shape = config.plan({"name": "c", **TINY, "batch_size": 512, "activation_fn": "relu"})
    assert len(stack_groups(plan_sweep(first + another_shape, tmp_path).tasks, workers=1, memory=10**12)) == 2


# ---------------------------------------------------------------- sweeps that train

@pytest.mark.slow
def test_two_workers_train_a_cohort_and_a_rerun_skips_it(tmp_path, capsys):
    folder = tmp_path / "cohort"
    write_config(folder, "bias", {**TINY, "n_runs": 2, "grid": {"initial_bias": [0, 0.5]}})
    write_config(folder / "unstable", "huge_lr", {**TINY, "epochs": 20, "optimizer": "sgd", "learning_rate": 1e30,
                                                   "activation_fn": "relu"})
    root = tmp_path / "results"
    assert cli.main(["sweep", str(folder), "--workers", "2", "--results", str(root)]) == 1  # one run diverges
    out = capsys.readouterr().out
    assert "5 runs planned, 0 already complete (skipped), 5 to do" in out and "on 2 local worker(s)" in out
    experiments = [e for e in config.plan(config.load_file(folder / "bias.json"))]
    for experiment in experiments:
        for seed in (0, 1):
            run_id = experiment.run_id(seed)
            assert run_json(root, run_id)["status"] == "completed"
            table = metrics(root, run_id)
            assert sorted(table.epoch.unique()) == list(range(7))
            accuracy = table[(table.epoch == 6) & (table.split == "test")].accuracy.iloc[0]
            assert f"completed   {experiment.name} seed {seed}  test acc {accuracy:.3f}" in out
    (diverged,) = [line for line in out.splitlines() if line.startswith("diverged")]
    assert "huge_lr seed 0" in diverged and "loss became" in diverged
    assert "done: 4 completed, 1 diverged" in out
    files = lambda: {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("*") if p.is_file()}
    mtimes = files()

    assert cli.main(["sweep", str(folder), "--results", str(root)]) == 1
    out = capsys.readouterr().out
    assert "5 runs planned, 4 already complete (skipped), 0 to do" in out
    assert "1 diverged (skipped; --retry-failed reruns them)" in out
    assert "done: 4 completed, 1 diverged of 5 planned (0 trained by this sweep)" in out
    assert files() == mtimes

    assert cli.main(["sweep", str(folder), "--retry-failed", "--workers", "1", "--results", str(root)]) == 1
    out = capsys.readouterr().out
    assert "4 already complete (skipped), 1 to do" in out
    assert "done: 4 completed, 1 diverged of 5 planned (1 trained by this sweep)" in out
    changed = {p for p, t in files().items() if mtimes.get(p) != t}
    assert changed and all("huge-lr" in str(p) for p in changed)


@pytest.mark.slow
def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, capsys):
    """Kill a sweep (worker included) once it has a checkpoint; --resume continues from it and
    ends with the same numbers as a sweep that was never interrupted."""
    # The first checkpoint comes after 5 s of training; 6000 epochs train for about 13 s on this
    # project's 2-core machine (1200 took 4 s, so the victim could finish before its first one).
    # Slowed to a tenth until then (wait_slowed), the victim trains about 300 epochs by its first.
    epochs = 2000
    path = write_config(tmp_path, "resume", {**TINY, "epochs": epochs, "log_schedule": {"every": 10},
                                             "n_runs": 2, "save_checkpoints": True})
    (experiment,) = config.plan(config.load_file(path))
    run_ids = [experiment.run_id(seed) for seed in (0, 1)]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    uninterrupted = sweep_process(path, reference, "--workers", "1")
    victim = sweep_process(path, killed, "--workers", "1")
    checkpoint_files = lambda: [p for r in run_ids for p in (killed / "runs" / r).glob("checkpoints/*.npz")]
    wait_slowed(lambda: len({p.parent for p in checkpoint_files()}) == 2 or victim.poll() is not None,
                lambda: run_writers(session_processes(victim.pid)), what="a checkpoint of both runs")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the sweep ended before both runs had a checkpoint"
    wait_for(lambda: not any(is_live(killed / "runs" / r) for r in run_ids), timeout=60,
             what="the killed worker's locks to be freed (its exit can end after its sweep was reaped)")
    assert uninterrupted.wait(timeout=300) == 0
    stopped_at = max(int(p.stem.split("_")[1]) for p in checkpoint_files())
    assert 0 < stopped_at < epochs and run_json(killed, run_ids[0])["status"] == "running"

    # Mark a kept row: if the run resumes, the rows up to its checkpoint are kept, not recomputed.
    (table_path,) = [p for p in table_files(killed / "runs" / run_ids[0])["metrics"] if p.name.endswith("1.parquet")]
    kept = pq.read_table(table_path).to_pandas()
    kept.loc[(kept.epoch == 0) & (kept.split == "train"), "loss"] = 123.0
    pq.write_table(pa.Table.from_pandas(kept, schema=TABLE_SCHEMAS["metrics"], preserve_index=False), table_path)

    # No waiting for a heartbeat to go stale: the killed workers' locks are free.
    assert cli.main(["sweep", str(path), "--resume", "--workers", "1", "--results", str(killed)]) == 0
    out = capsys.readouterr().out
    assert "2 to do" in out and "2 interrupted run(s) continue from their last checkpoint" in out
    for run_id in run_ids:
        resumed, whole = metrics(killed, run_id), metrics(reference, run_id)
        assert list(resumed.epoch) == list(whole.epoch) and resumed.epoch.max() == epochs
        if run_id == run_ids[0]:
            assert resumed.loss.iloc[1] == 123.0 and resumed.split.iloc[1] == "train"
            resumed, whole = resumed.iloc[2:], whole.iloc[2:]
        np.testing.assert_allclose(resumed.loss, whole.loss, rtol=1e-6)
        np.testing.assert_allclose(resumed.accuracy, whole.accuracy, atol=1e-12)
        mi = [pq.read_table(root / "runs" / run_id / "mi.parquet").to_pandas()  # compacted: one file
              .sort_values(["epoch", "layer", "split"]) for root in (killed, reference)]
        assert list(mi[0].epoch) == list(mi[1].epoch)
        np.testing.assert_allclose(mi[0].i_xt, mi[1].i_xt, atol=1e-9)
        assert run_json(killed, run_id)["status"] == "completed"


@pytest.mark.slow
@pytest.mark.xdist_group("timed")   # Ctrl-C while training: not beside the other timed tests
def test_ctrl_c_marks_runs_interrupted_leaves_no_process_and_readers_never_fail(tmp_path):
    """Two workers train; SQL readers query the root all the while; then Ctrl-C (SIGINT to the
    whole process group, as a terminal sends it)."""
    path = write_config(tmp_path, "long", {**TINY, "epochs": 100000, "log_schedule": {"every": 3},
                                           "grid": {"initial_bias": [0, 0.5]}})
    root = tmp_path / "results"
    sweep = sweep_process(path, root, "--workers", "2")
    flushed = lambda: len(list(root.glob("runs/*/metrics.part-000001.parquet"))) == 2
    queries = 0
    deadline = time.time() + 180
    while not flushed():
        assert sweep.poll() is None and time.time() < deadline, "the sweep ended or never flushed"
        con = connect(root)
        for sql in ("SELECT count(*) AS n FROM runs", "SELECT max(epoch) FROM metrics",
                    "SELECT layer, avg(i_xt) FROM mi GROUP BY layer", "SELECT count(*) FROM activation_stats"):
            run_query(con, sql)
        queries += 1
    for _ in range(10):  # and while they keep flushing
        run_query(connect(root), "SELECT m.run_id, max(m.epoch) FROM metrics m JOIN runs USING (run_id) GROUP BY 1")
    assert queries >= 5

    os.killpg(sweep.pid, signal.SIGINT)
    _, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    # multiprocessing's resource tracker exits on its own once the sweep's pipe closes
    wait_for(lambda: session_processes(sweep.pid) == [], timeout=10, what="every process of the sweep to exit")
    for run_dir in (root / "runs").iterdir():
        meta = json.loads((run_dir / "run.json").read_text())
        assert meta["status"] == "interrupted" and meta["epochs_done"] > 0
        assert meta["error"].startswith("interrupted by a signal (Ctrl-C or SIGTERM")
        epochs = sorted(read_table(table_files(run_dir)["metrics"], "metrics").to_pandas().epoch.unique())
        assert epochs == list(range(meta["epochs_done"] + 1))
    # the progress file says how the runs ended (it kept them "queued")
    (progress_file,) = (root / ".sweeps").iterdir()
    progress = json.loads(progress_file.read_text())
    assert progress["state"] == "interrupted" and progress["exit_code"] == 130
    assert set(progress["runs"].values()) == {"interrupted"}


COUNT_WRITERS = """
# Loaded by every Python process of the test (PYTHONPATH): logs each RunWriter that took a run
# to train it (lock acquired, replace check passed), as a witness independent of the sweeps.
import os, sys
sys.path.insert(0, {repo!r})
import trainer.store as store

_original = store.RunWriter.__init__

def counted(self, root, record_fields, *args, **kwargs):
    _original(self, root, record_fields, *args, **kwargs)
    with open({log!r}, "a") as log:
        log.write(record_fields["run_id"] + " " + str(os.getpid()) + "\\n")

store.RunWriter.__init__ = counted
"""


@pytest.mark.slow
def test_two_sweeps_of_one_cohort_train_every_run_once_and_both_succeed(tmp_path):
    """The second sweep starts a second later with the same plan: runs the first holds are
    reported held and waited for, runs it completed are not redone; both exit 0."""
    path = write_config(tmp_path, "shared", {**TINY, "epochs": 20, "architecture": [4],
                                             "grid": {"initial_bias": [0, 0.25, 0.5, 0.75]}})
    run_ids = [e.run_id(0) for e in config.plan(config.load_file(path))]
    root, log, hooks = tmp_path / "results", tmp_path / "writers.log", tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(COUNT_WRITERS.format(repo=str(REPO), log=str(log)))
    env = {**os.environ, "PYTHONPATH": str(hooks)}
    first = sweep_process(path, root, "--workers", "1", "--sweep-id", "first", env=env)
    time.sleep(1)
    second = sweep_process(path, root, "--workers", "1", "--sweep-id", "second", env=env)
    outputs = [process.communicate(timeout=300) for process in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), outputs
    trained = sorted(line.split()[0] for line in log.read_text().splitlines())
    assert trained == sorted(run_ids)  # each run trained exactly once between the two sweeps
    by_sweep = [int(out.split("(")[-1].split()[0]) for out, _ in outputs]  # "(N trained by this sweep)"
    assert sum(by_sweep) == 4, outputs
    for sweep_id in ("first", "second"):
        progress = read_progress(root, sweep_id)
        assert progress.state == "finished" and progress.exit_code == 0
        assert progress.runs == {run_id: "completed" for run_id in run_ids}
    for run_id in run_ids:
        assert run_json(root, run_id)["status"] == "completed"
        table = metrics(root, run_id)
        assert list(table.epoch) == [e for e in range(21) for _ in ("test", "train")]


HOLD = """
import sys, time
from pathlib import Path
from ibstore.lock import RunLock
lock = RunLock.acquire(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_ctrl_c_while_waiting_for_a_held_run_leaves_other_processes_runs_alone(tmp_path):
    """Another process holds one run and completed the other: the sweep trains nothing, waits,
    and a Ctrl-C then ends it (130) with both runs exactly as the other process left them."""
    path = write_config(tmp_path, "pair", {**TINY, "n_runs": 2})
    (experiment,) = config.plan(config.load_file(path))
    held, done = experiment.run_ids
    root = tmp_path / "results"
    for run_id, status in ((held, "running"), (done, "completed")):
        (root / "runs" / run_id).mkdir(parents=True)
        write_record(root / "runs" / run_id / "run.json",
                     RunRecord(run_id=run_id, status=status, host=socket.gethostname(), heartbeat_at=utc_now(),
                               schema_version=SCHEMA_VERSION))
    before = {p: p.read_bytes() for p in (root / "runs").rglob("run.json")}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(root / "runs" / held)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        sweep = sweep_process(path, root, "--sweep-id", "waiting")
        wait_for(lambda: (read_progress(root, "waiting") or SimpleNamespace(state=None)).state == "waiting",
                 timeout=60, what="the sweep to wait for the held run")
        os.killpg(sweep.pid, signal.SIGINT)
        out, err = sweep.communicate(timeout=60)
        assert sweep.returncode == 130, err
        assert "1 held by other live processes" in out and f"held by pid {holder.pid}" in out
        assert {p: p.read_bytes() for p in (root / "runs").rglob("run.json")} == before
        assert holder.poll() is None  # still holding its run
        progress = read_progress(root, "waiting")
        assert progress.state == "interrupted" and progress.runs == {held: "held", done: "completed"}
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_force_waits_for_a_process_holding_a_completed_run_it_does_not_train_then_trains_it(tmp_path, capsys):
    """A process that holds a run without training it (`trainer estimate`, here a bare lock holder)
    leaves its status completed. --force waited for runs whose status said running, so it stopped
    waiting at once, took the completed run for one the other process had trained, and ended
    "0 trained by this sweep" with exit 0 while the run was still held."""
    path = write_config(tmp_path, "forced", TINY)
    (experiment,) = config.plan(config.load_file(path))
    (run_id,) = experiment.run_ids
    root = tmp_path / "results"
    (root / "runs" / run_id).mkdir(parents=True)
    before = RunRecord(run_id=run_id, status="completed", started_at=utc_now(), schema_version=SCHEMA_VERSION)
    write_record(root / "runs" / run_id / "run.json", before)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(root / "runs" / run_id)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)

    waited = []

    def release_once_waiting() -> None:     # the holder lets go only once the sweep waits for it
        try:
            wait_for(lambda: (read_progress(root, "forced") or SimpleNamespace(state=None)).state == "waiting",
                     timeout=120, what="the sweep to wait for the held run")
            waited.append(True)
        finally:
            holder.kill()
    try:
        assert holder.stdout.readline().strip() == "locked"
        releaser = threading.Thread(target=release_once_waiting)
        releaser.start()
        assert cli.main(["sweep", str(path), "--force", "--workers", "1", "--sweep-id", "forced",
                         "--results", str(root)]) == 0
        releaser.join()
        assert waited
    finally:
        holder.kill()
        holder.wait()
    out = capsys.readouterr().out
    assert "waiting for 1 run(s) held by other processes" in out
    assert "done: 1 completed of 1 planned (1 trained by this sweep)" in out
    after = read_record(root, run_id)
    assert after.status.value == "completed" and after.started_at > before.started_at
    assert sorted(metrics(root, run_id).epoch.unique()) == list(range(7))


@pytest.mark.slow   # the writer records its versions (git)
def test_a_run_another_writer_took_since_planning_counts_as_trained_by_it_resumed_or_not(tmp_path):
    """--force keeps a run another process trained while the sweep waited for it. A resumed writer
    keeps the run's started_at, so that alone took a run another sweep resumed and completed for one
    it had only held, and trained it again; the writer's stamp (heartbeat, host, pid) tells."""
    from trainer.plan import Plan, writer_stamp
    from trainer.store import RunWriter

    (tmp_path / "runs" / "r").mkdir(parents=True)
    write_record(tmp_path / "runs" / "r" / "run.json",
                 RunRecord(run_id="r", status="interrupted", started_at=utc_now(), heartbeat_at=utc_now(),
                           host="elsewhere", pid=1, schema_version=SCHEMA_VERSION))
    planned = read_record(tmp_path, "r")
    before = Plan([], stamps={"r": writer_stamp(planned)})
    assert not sweep_module.trained_since(tmp_path, "r", before)     # held only: its record unchanged
    writer = RunWriter(tmp_path, {"run_id": "r", "epochs_total": 6}, flush_seconds=0, resume_epoch=4)
    assert writer.finish("completed", 4) == "completed"
    after = read_record(tmp_path, "r")
    assert after.started_at == planned.started_at and after.status.value == "completed"
    assert sweep_module.trained_since(tmp_path, "r", before)
    assert sweep_module.trained_since(tmp_path, "r", Plan([], stamps={}))   # no record when planned


TRAIN_ELSEWHERE = """
import sys, time
from pathlib import Path
from ibstore.lock import RunLock
from ibstore.record import RunRecord, SCHEMA_VERSION, utc_now
from trainer.store import write_record
run_dir = Path(sys.argv[1])
lock = RunLock.acquire(run_dir)
print("locked", flush=True)
time.sleep(4)
write_record(run_dir / "run.json", RunRecord(run_id=run_dir.name, status="completed", started_at=utc_now(),
                                             schema_version=SCHEMA_VERSION))
"""


@pytest.mark.slow
def test_force_keeps_a_run_another_process_was_training_when_planned_and_completed(tmp_path, capsys):
    """Two forced sweeps of one config: the second finds the run running, waits, and keeps what the
    first completed instead of training it twice."""
    path = write_config(tmp_path, "forced", TINY)
    (experiment,) = config.plan(config.load_file(path))
    (run_id,) = experiment.run_ids
    root = tmp_path / "results"
    (root / "runs" / run_id).mkdir(parents=True)
    write_record(root / "runs" / run_id / "run.json",
                 RunRecord(run_id=run_id, status="running", host=socket.gethostname(), heartbeat_at=utc_now(),
                           started_at=utc_now(), schema_version=SCHEMA_VERSION))
    other = subprocess.Popen([sys.executable, "-c", TRAIN_ELSEWHERE, str(root / "runs" / run_id)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "locked"
        assert cli.main(["sweep", str(path), "--force", "--workers", "1", "--results", str(root)]) == 0
    finally:
        other.kill()
        other.wait()
    assert "done: 1 completed of 1 planned (0 trained by this sweep)" in capsys.readouterr().out
    assert read_record(root, run_id).status.value == "completed"
    assert not table_files(root / "runs" / run_id).get("metrics")       # the other process's record, untrained here


@pytest.mark.slow
def test_a_ray_address_where_nothing_answers_is_one_line_and_the_sweep_recorded_failed(tmp_path, capsys):
    # ray.init retried 127.0.0.1:1 for ever with only Ray's own warnings, and a refused connection left
    # the sweep's progress file "running" with its runs "queued"
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
    with socket.socket() as closed:          # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    path = write_config(tmp_path, "unreachable", TINY)
    root = tmp_path / "results"
    started = time.monotonic()
    assert cli.main(["sweep", str(path), "--ray", f"127.0.0.1:{port}", "--results", str(root)]) == 2
    assert time.monotonic() - started < 60
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: cannot connect to the Ray cluster at '127.0.0.1:{port}': nothing answers at 127.0.0.1:{port} "
        f"(Connection refused); is its head node started (`ray start --head`) and is the port right?")
    progress = read_progress(root, next((root / ".sweeps").glob("*.json")).stem)
    assert progress.state == "failed" and progress.exit_code == 2
    assert set(progress.runs.values()) == {"not started"}
    assert not list((root / "runs").iterdir())


def test_a_local_sweep_sizes_a_file_datasets_groups_by_its_loaded_shape(tmp_path):
    # A reviewer's: `trainer run` sized them by the loaded shape, a local sweep did not
    from trainer.plan import load_plan_data

    rows = "\n".join(f"{i % 2},{i},{i * 2}" for i in range(64))
    (tmp_path / "small.csv").write_text("label,a,b\n" + rows + "\n")
    grid = config.plan({"name": "f", **TINY, "dataset": "file", "dataset_path": str(tmp_path / "small.csv"),
                        "label_column": "label", "grid": {"initial_bias": [0, 1]}})
    missing = config.plan({"name": "m", **TINY, "dataset": "file", "dataset_path": str(tmp_path / "none.csv"),
                           "label_column": "label"})
    data = load_plan_data([Task(e, e.seeds) for e in [*grid, *missing]])
    assert data.shapes == {config.data_key(grid[0].config): (64, 2, 2)}     # the missing file: left to its worker
    assert set(data.sha256) == set(data.shapes)


def test_a_sweep_whose_reader_left_records_it_failed(tmp_path, capsys, monkeypatch):
    # A new user's: `trainer sweep ... | head` exited when the pipe closed and left its progress file "running"
    path = write_config(tmp_path, "piped", {**TINY, "epochs": 2})
    root = tmp_path / "results"

    def reader_left(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")
    monkeypatch.setattr(sweep_module, "train", reader_left)
    monkeypatch.setattr(cli, "_reader_left", lambda verb: 1)    # it would point this test's stdout at /dev/null
    assert cli.main(["sweep", str(path), "--results", str(root)]) == 1
    progress = read_progress(root, next((root / ".sweeps").glob("*.json")).stem)
    assert progress.state == "failed" and progress.exit_code == 1
    assert set(progress.runs.values()) == {"not started"}


@pytest.mark.slow
@pytest.mark.xdist_group("ray")   # see test_ray_shipping: one Ray at a time under pytest-xdist
def test_a_sweep_runs_through_a_local_ray_instance(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
    path = write_config(tmp_path, "ray", {**TINY, "epochs": 4, "grid": {"activation_fn": ["tanh", "relu"]}})
    root = tmp_path / "results"
    reported = []
    original = sweep_module.Progress.trained
    monkeypatch.setattr(sweep_module.Progress, "trained",
                        lambda self, report: (reported.append(report), original(self, report)))
    assert cli.main(["sweep", str(path), "--ray", "local", "--workers", "2", "--results", str(root)]) == 0
    out = capsys.readouterr().out
    assert "on Ray (local)" in out and "done: 2 completed" in out
    assert "see the results root: they write it" in out
    # the tasks reported their progress while they trained: every epoch of both networks
    assert sum(report.network_epochs for report in reported) == 2 * 4
    for experiment in config.plan(config.load_file(path)):
        run_id = experiment.run_id(0)
        assert run_json(root, run_id)["status"] == "completed"
        assert sorted(metrics(root, run_id).epoch.unique()) == [0, 1, 2, 3, 4]
    assert cli.main(["sweep", str(path), "--ray", "local", "--results", str(root)]) == 0
    assert "2 already complete (skipped), 0 to do" in capsys.readouterr().out


def test_a_sweep_id_a_live_sweep_holds_is_refused_and_a_gone_ones_is_not(tmp_path, capsys):
    # Two live sweeps under one --sweep-id took turns writing one progress file; now the second is
    # refused before it plans or writes anything. A file whose sweep is gone (killed) holds nothing.
    from ibstore.progress import SweepProgress, progress_path

    path = write_config(tmp_path, "held", {**TINY, "epochs": 2})
    root = tmp_path / "results"
    progress_file = progress_path(root, "same")
    progress_file.parent.mkdir(parents=True)
    live = SweepProgress(sweep_id="same", path="other.json", pid=os.getpid(), host=socket.gethostname(),
                         started_at="2026-12-07T01:00:00+00:00", updated_at="2026-12-07T01:00:01+00:00",
                         state="running", runs={"r": "running"})
    progress_file.write_bytes(live.to_json_bytes())
    assert cli.main(["sweep", str(path), "--results", str(root), "--sweep-id", "same"]) == 2
    assert capsys.readouterr().err == (
        "error: sweep id 'same' is in use: a sweep of other.json (process %d on %s) has been running since "
        "2026-12-07T01:00:00+00:00; give another --sweep-id, or none for a new one\n" % (os.getpid(), socket.gethostname()))
    assert sorted(p.name for p in root.iterdir()) == [".sweeps"] and progress_file.read_bytes() == live.to_json_bytes()
    # on another host its process cannot be seen: the message says how to free the id
    progress_file.write_bytes(SweepProgress(**{**live.__dict__, "host": "elsewhere"}).to_json_bytes())
    with pytest.raises(sweep_module.SweepError, match=f"stopped on elsewhere without ending, remove {progress_file}"):
        sweep_module.check_options(root, None, None, "same")
    never_a_pid = int(Path("/proc/sys/kernel/pid_max").read_text())      # pids run below it
    progress_file.write_bytes(SweepProgress(**{**live.__dict__, "pid": never_a_pid}).to_json_bytes())
    assert sweep_module.check_options(root, None, None, "same") == "same"
