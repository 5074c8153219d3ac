"""Ray sweeps whose workers cannot see the results root (trainer.shipping, ray_pool "ship" mode).

The shipping protocol is tested in-process first (the worker generator driven by the
driver side, no Ray). The cluster tests start a real Ray head (`ray start --head`) in its
own mount namespace with a tmpfs mounted over the folder that holds the driver's results
root, so its workers genuinely cannot see the root, while this process (the driver)
connects to it over the network and writes the root.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pytest

from ibstore import index, layout
from ibstore.lifecycle import Redo, current_status, read_record
from ibstore.lock import is_live
from ibstore.record import Status
from test_sweep import run_writers, wait_slowed
from trainer import cli
from trainer.plan import load_experiments, plan_sweep, stack_groups
from trainer.progress import Trained
from trainer.shipping import (
    FileChange,
    RunChanges,
    ScratchWatcher,
    ShipError,
    ShippedRuns,
    apply_changes,
    train_shipped,
)
from trainer.tables import read_table, table_files
from trainer.task import train_group
from trainer.training import run_group

REPO = Path(__file__).resolve().parents[1]
# Under pytest-xdist one worker runs every Ray test (group "ray"): a local `ray.init()` looks for a
# head started on this machine (/tmp/ray/ray_current_cluster), and the module's head starts once.
pytestmark = pytest.mark.xdist_group("ray")
TINY = {"epochs": 4, "architecture": [10, 7, 5], "batch_size": 1024, "log_schedule": {"every": 2},
        "save_checkpoints": True}
# Fields of run.json that say where and when a run was trained, not what it computed.
CIRCUMSTANCES = {"started_at", "finished_at", "heartbeat_at", "host", "pid", "versions"}


def write_config(folder: Path, raw: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cohort.json"
    path.write_text(json.dumps(raw))
    return path


def run_ids(root: Path) -> list[str]:
    return sorted(p.name for p in layout.runs_dir(root).iterdir() if p.is_dir())


def tables(root: Path, run_id: str) -> dict[str, pa.Table]:
    """Every table of the run (base and parts), rows in a canonical order."""
    found = {}
    for table, files in table_files(layout.run_dir(root, run_id)).items():
        rows = read_table(files, table)
        found[table] = rows.sort_by([(name, "ascending") for name in rows.column_names
                                     if pa.types.is_integer(rows.schema.field(name).type)
                                     or pa.types.is_string(rows.schema.field(name).type)])
    return found


def record_without_circumstances(root: Path, run_id: str) -> dict:
    return {key: value for key, value in read_record(root, run_id).model_dump().items() if key not in CIRCUMSTANCES}


def assert_same_runs(shipped_root: Path, local_root: Path) -> None:
    """The same runs, the same run.json (but where and when) and the same rows in every table."""
    assert run_ids(shipped_root) == run_ids(local_root) != []
    for run_id in run_ids(local_root):
        assert record_without_circumstances(shipped_root, run_id) == record_without_circumstances(local_root, run_id)
        shipped, local = tables(shipped_root, run_id), tables(local_root, run_id)
        assert sorted(shipped) == sorted(local) and "metrics" in local
        for table in local:
            assert shipped[table].equals(local[table]), f"{run_id}: table {table} differs"


def only_group(path: Path, root: Path, resume: bool = False):
    (group,) = stack_groups(plan_sweep(load_experiments(path), root, Redo(interrupted=resume), resume=resume).tasks, 1)
    return group


def ship(root: Path, group) -> list:
    """Drive the worker generator in this process as the Ray driver would; the items it yielded."""
    runs = ShippedRuns.claim(root, group)
    items = []
    try:
        for item in train_shipped(runs.to_train, runs.seeds):
            items.append(item)
            if isinstance(item, RunChanges):
                assert all(is_live(layout.run_dir(root, run_id)) for run_id in runs.locks)  # the driver holds them
                runs.write(item)
    finally:
        runs.release()
    return items


# ---------------------------------------------------------------- the protocol, in-process

@pytest.mark.slow
def test_shipped_files_make_the_same_root_as_training_into_it(tmp_path, monkeypatch):
    path = write_config(tmp_path / "cohort", {**TINY, "n_runs": 2})
    shipped_root, local_root = tmp_path / "shipped", tmp_path / "local"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index.forget()
    items = ship(shipped_root, only_group(path, shipped_root))
    train_group(only_group(path, local_root), local_root)
    # the driver handed its runs to its user's index: a reader after it reads no run folder
    found = index.scan(shipped_root)
    assert found.folders_read == 0 and len(found.runs) == 2
    index.forget()

    assert [run.status for run in items[-1].runs] == ["completed", "completed"]
    assert_same_runs(shipped_root, local_root)
    # The group's progress travels with its files: every epoch of both networks, reported by group.
    trained = [item for item in items if isinstance(item, Trained)]
    assert trained and {item.run_ids for item in trained} == {tuple(items[-1].runs[i].run_id for i in (0, 1))}
    assert sum(item.network_epochs for item in trained) == 2 * TINY["epochs"]
    # Compaction removed the parts in the scratch run; the root holds none either.
    assert not list(layout.runs_dir(shipped_root).glob("*/*.part-*.parquet"))
    for item in [item for item in items[:-1] if isinstance(item, RunChanges)]:  # run.json after the files it counts
        names = [change.path for change in item.changes if change.data is not None]
        assert "run.json" not in names or names[-1] == "run.json"


def test_the_watcher_ships_new_changed_and_removed_files_once_and_in_order(tmp_path):
    watcher = ScratchWatcher(tmp_path, ["r"])
    run_dir = layout.run_dir(tmp_path, "r")
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / ".lock").write_bytes(b"{}")
    (run_dir / ".metrics.part-000001.parquet.x.tmp").write_bytes(b"half")
    (run_dir / "run.json").write_bytes(b"record 1")
    (run_dir / "metrics.part-000001.parquet").write_bytes(b"rows 1")
    (run_dir / "checkpoints" / "epoch_000002.npz").write_bytes(b"weights 2")
    (changes,) = watcher.poll()
    assert [(c.path, c.data) for c in changes.changes] == [
        ("checkpoints/epoch_000002.npz", b"weights 2"), ("metrics.part-000001.parquet", b"rows 1"),
        ("run.json", b"record 1")]  # no lock, no temporary file; run.json after the files it counts
    assert watcher.poll() == []  # nothing new: nothing shipped twice

    (run_dir / "metrics.parquet").write_bytes(b"rows 1")  # as compaction does: base, then parts go
    (run_dir / "metrics.part-000001.parquet").unlink()
    (run_dir / "checkpoints" / "epoch_000004.npz").write_bytes(b"weights 4")
    (run_dir / "checkpoints" / "epoch_000002.npz").unlink()
    (run_dir / "run.json").write_bytes(b"record 2")  # same size, perhaps the same mtime tick: by content
    (changes,) = watcher.poll()
    assert [(c.path, c.data) for c in changes.changes] == [
        ("checkpoints/epoch_000004.npz", b"weights 4"), ("metrics.parquet", b"rows 1"),
        ("run.json", b"record 2"),
        ("checkpoints/epoch_000002.npz", None), ("metrics.part-000001.parquet", None)]  # removals last


@pytest.mark.slow
def test_a_resumed_run_starts_from_the_files_the_driver_sends(tmp_path):
    path = write_config(tmp_path / "cohort", {**TINY, "epochs": 6, "n_runs": 1})
    shipped_root, local_root = tmp_path / "shipped", tmp_path / "local"
    train_group(only_group(path, local_root), local_root)
    # A run whose worker died just after its newest checkpoint, at epoch E: run.json says running
    # at E. (flush_seconds=0: a checkpoint at every logged epoch, the newest kept; E is the last
    # logged epoch, so this tests what travels; the cluster test below resumes mid-run.)
    (task,) = only_group(path, shipped_root).tasks
    run_group([(task.experiment, list(task.seeds), False)], shipped_root, progress=False, flush_seconds=0)
    (run_id,) = run_ids(shipped_root)
    (checkpoint,) = layout.checkpoints_dir(shipped_root, run_id).glob("epoch_*.npz")
    epoch = int(checkpoint.stem.removeprefix("epoch_"))
    record = read_record(shipped_root, run_id)
    layout.run_json_path(shipped_root, run_id).write_bytes(
        record.model_copy(update={"status": Status.RUNNING, "epochs_done": epoch}).to_json_bytes())
    assert current_status(shipped_root, run_id, time.time()) is Status.INTERRUPTED

    group = only_group(path, shipped_root, resume=True)
    runs = ShippedRuns.claim(shipped_root, group)
    runs.release()
    sent = {change.path for change in runs.seeds[run_id]}
    assert sent == {"run.json", *(f"{table}.parquet" for table in tables(shipped_root, run_id)),
                    f"checkpoints/{checkpoint.name}"}
    items = ship(shipped_root, group)
    assert items[-1].runs[0].status == "completed"
    assert_same_runs(shipped_root, local_root)


def test_the_driver_refuses_files_outside_the_run_folder(tmp_path):
    run_dir = tmp_path / "runs" / "r"
    for bad in ("../other/run.json", "/etc/passwd", ".lock", "checkpoints/../../x", "a/./b", ""):
        with pytest.raises(ShipError, match="only plain paths inside its run folder"):
            apply_changes(run_dir, (FileChange(bad, b"x"),))
    assert not run_dir.exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoints").symlink_to(elsewhere)
    with pytest.raises(ShipError, match="only plain paths inside its run folder"):
        apply_changes(run_dir, (FileChange("checkpoints/epoch_000002.npz", b"x"),))
    assert not list(elsewhere.iterdir())


def test_a_write_that_fails_takes_back_the_files_of_its_batch(tmp_path):
    run_dir = tmp_path / "runs" / "r"
    (run_dir / "run.json").mkdir(parents=True)  # run.json cannot be written: a directory is in the way
    with pytest.raises(OSError):
        apply_changes(run_dir, (FileChange("metrics.part-000001.parquet", b"rows"), FileChange("run.json", b"{}")))
    assert not (run_dir / "metrics.part-000001.parquet").exists()


def test_ray_mode_without_ray_is_refused_before_anything_is_written(tmp_path, capsys):
    path = write_config(tmp_path / "cohort", TINY)
    root = tmp_path / "results"
    assert cli.main(["sweep", str(path), "--ray-mode", "ship", "--results", str(root)]) == 2
    err = capsys.readouterr().err
    assert "--ray-mode applies to Ray sweeps; add --ray ADDRESS" in err and "Traceback" not in err
    assert not root.exists()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sweep", str(path), "--ray", "local", "--ray-mode", "nfs", "--results", str(root)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'nfs'" in capsys.readouterr().err


# ---------------------------------------------------------------- a Ray cluster whose workers cannot see the root

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_head(hidden: Path, temp_dir: str, env: dict) -> tuple[subprocess.Popen, str]:
    """(the head's process, its GCS address): `ray start --head` in its own mount namespace with a
    tmpfs over `hidden`, once it says "Ray runtime started." (its GCS and raylet are up). A head
    that exits first (a port chosen here taken by another process meanwhile) is started again on
    fresh ports, twice at most. Not a `ray.init` retried until it connects: in one CI run the head
    had exited before its GCS started and `ray.init` waited without end (Ray 2.60's GcsClient, in
    SyncGetClusterId), and a port that accepts connections may be another process's."""
    log = Path(temp_dir) / "head.log"
    for _ in range(3):
        port = free_port()
        ports = " ".join(f"--{name} {free_port()}" for name in (
            "ray-client-server-port", "dashboard-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
            "metrics-export-port", "runtime-env-agent-port", "node-manager-port", "object-manager-port"))
        script = (f"mount -t tmpfs tmpfs {hidden} && exec ray start --head --block --port {port} {ports} "
                  f"--num-cpus 2 --temp-dir {temp_dir} --include-dashboard false --disable-usage-stats")
        with log.open("wb") as output:
            head = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                                    env={**env, "PYTHONUNBUFFERED": "1"}, stdout=output, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        deadline = time.time() + 120
        while head.poll() is None and time.time() < deadline:
            if b"Ray runtime started." in log.read_bytes():
                return head, f"127.0.0.1:{port}"
            time.sleep(0.5)
        still_running = head.poll() is None   # after 120 s, not started
        try:
            os.killpg(head.pid, signal.SIGKILL)     # what the head started: its ports free again
        except ProcessLookupError:
            pass
        head.wait()
        if still_running:
            pytest.fail(f"the Ray head did not start within 120 s:\n{log.read_text()[-3000:]}")
    pytest.fail(f"the Ray head exited three times before it started; the last output:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def hidden_cluster(tmp_path_factory):
    """(address, hidden folder, the head's session id): a Ray head whose processes (in that
    session) see an empty tmpfs at `hidden`."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], check=False).returncode != 0:
        pytest.skip("needs a private mount namespace (unshare -m, as root)")
    hidden = tmp_path_factory.mktemp("driver-only")
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    auth_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # this process connects as a driver: no token either
    head = None
    try:
        head, address = start_head(hidden, temp_dir, env)
        ray.init(address=address, log_to_driver=False)
        ray.shutdown()
        yield address, hidden, head.pid
    finally:
        if head is not None:
            os.killpg(head.pid, signal.SIGKILL)  # the head's session: raylet, GCS, its workers
            head.wait()
        if auth_mode is None:
            os.environ.pop("RAY_AUTH_MODE")
        else:
            os.environ["RAY_AUTH_MODE"] = auth_mode
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_auto_mode_sees_whether_the_workers_see_the_root(hidden_cluster, tmp_path):
    import ray

    from trainer.ray_pool import workers_see_root

    address, hidden, _ = hidden_cluster
    ray.init(address=address, log_to_driver=False)
    try:
        assert workers_see_root(ray, hidden) is False
        assert workers_see_root(ray, tmp_path) is True
        assert not list(hidden.iterdir()) and not list(tmp_path.iterdir())  # the nonce files are gone
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_a_ray_sweep_whose_workers_cannot_see_the_root_writes_it_as_a_local_sweep(hidden_cluster, tmp_path, capsys):
    address, hidden, _ = hidden_cluster
    path = write_config(tmp_path / "cohort", {**TINY, "n_runs": 2, "grid": {"activation_fn": ["tanh", "relu"]}})
    shipped_root, local_root = hidden / "results", tmp_path / "local"
    assert cli.main(["sweep", str(path), "--ray", address, "--results", str(shipped_root)]) == 0
    out = capsys.readouterr().out
    assert "Ray workers cannot see the results root" in out and "done: 4 completed" in out
    assert cli.main(["sweep", str(path), "--workers", "1", "--results", str(local_root)]) == 0
    assert_same_runs(shipped_root, local_root)
    # Shipped runs are skipped like any others when the cohort is swept again.
    assert cli.main(["sweep", str(path), "--ray", address, "--ray-mode", "ship", "--results", str(shipped_root)]) == 0
    assert "4 already complete" in capsys.readouterr().out


def start_sweep(path: Path, address: str, root: Path) -> subprocess.Popen:
    """`trainer sweep PATH --ray ADDRESS` as its own process, as a terminal would start it."""
    return subprocess.Popen([sys.executable, "-m", "trainer", "sweep", str(path), "--ray", address,
                             "--results", str(root)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, "RAY_AUTH_MODE": "disabled"})


def wait_for_first_flushes(sweep: subprocess.Popen, root: Path, slow_session: int | None = None) -> list:
    """The two runs' records once each has shipped a flush and a checkpoint to the root. With
    `slow_session`, the shipping workers of that Ray session are slowed meanwhile (wait_slowed), each
    from when it has taken its run: one that started first then trains only a tenth of the epochs it
    would while the other is still importing TensorFlow."""
    def flushed() -> list:
        assert sweep.poll() is None, "the sweep ended before both runs reached the driver"
        ids = run_ids(root) if layout.runs_dir(root).is_dir() else []
        records = [read_record(root, run_id) for run_id in ids]
        return records if len(records) == 2 and all(
            r and r.epochs_done > 0 and list(layout.checkpoints_dir(root, r.run_id).glob("epoch_*.npz"))
            for r in records) else []
    workers = (lambda: run_writers(shipping_workers(slow_session))) if slow_session is not None else list
    wait_slowed(flushed, workers, what="a flush of both runs to reach the driver")
    return flushed()


def shipping_workers(session: int) -> list[int]:
    """The Ray worker processes of the cluster's session that run a shipped group now (Ray
    titles a worker process by the task it runs)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            title = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session and title.startswith(b"ray::_shipped_task"):
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_killing_a_shipping_worker_leaves_its_runs_interrupted_and_resumable(hidden_cluster, tmp_path):
    address, hidden, session = hidden_cluster
    # Long enough that the kill lands mid-run: the first flush ships after 5 s (RunWriter's flush
    # interval), and with 12000 epochs an idle machine had finished one run by then; unslowed, 40000
    # were enough. Slowed (wait_for_first_flushes), a run trains about a tenth of that meanwhile.
    epochs = 10_000
    path = write_config(tmp_path / "cohort", {**TINY, "epochs": epochs, "n_runs": 2,
                                              "log_schedule": {"every": 100}})
    root = hidden / "killed"
    sweep = start_sweep(path, address, root)
    try:
        records = wait_for_first_flushes(sweep, root, slow_session=session)
        # The driver holds the runs: `trainer ls` and the explorer on its machine show them running.
        assert all(is_live(layout.run_dir(root, r.run_id)) for r in records), \
            [(r.status, r.epochs_done) for r in records]
        assert all(current_status(root, r.run_id) is Status.RUNNING for r in records)
        assert {r.pid for r in records} == {sweep.pid}  # run.json names the driver, the lock holder
        workers = shipping_workers(session)
        assert len(workers) == 2  # one group per run (two CPUs)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        _, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode == 1, err
    now = time.time()
    started_at = {}
    for run_id in run_ids(root):
        record = read_record(root, run_id)
        started_at[run_id] = record.started_at
        assert current_status(root, run_id, now) is Status.INTERRUPTED and 0 < record.epochs_done < epochs
        rows = read_table(table_files(layout.run_dir(root, run_id))["metrics"], "metrics")["epoch"].to_pylist()
        assert set(range(record.epochs_done + 1)) <= set(rows)  # every epoch it counts is on disk
        assert any(p.name.startswith("epoch_") for p in layout.checkpoints_dir(root, run_id).iterdir())

    assert cli.main(["sweep", str(path), "--ray", address, "--resume", "--results", str(root)]) == 0
    for run_id in run_ids(root):
        record = read_record(root, run_id)
        assert record.status is Status.COMPLETED and record.epochs_done == epochs
        assert record.started_at == started_at[run_id]  # continued from its checkpoint, not restarted
        rows = read_table(table_files(layout.run_dir(root, run_id))["metrics"], "metrics")["epoch"].to_pylist()
        assert sorted(set(rows)) == list(range(epochs + 1))


@pytest.mark.slow
def test_ctrl_c_on_the_driver_stops_the_workers_and_leaves_the_runs_interrupted(hidden_cluster, tmp_path):
    address, hidden, session = hidden_cluster
    # Far more than trains before the Ctrl-C: with 12000, one group once finished before the other's
    # worker had imported TensorFlow, and one worker was left to count.
    epochs = 200_000
    path = write_config(tmp_path / "cohort", {**TINY, "epochs": epochs, "n_runs": 2,
                                              "log_schedule": {"every": 100}})
    root = hidden / "stopped"
    sweep = start_sweep(path, address, root)
    try:
        wait_for_first_flushes(sweep, root)
        assert len(shipping_workers(session)) == 2
        sweep.send_signal(signal.SIGINT)
        _, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode == 130, err
    assert "Traceback" not in err
    deadline = time.time() + 30
    while shipping_workers(session):  # cancelled by force: nothing trains on for a sweep that is gone
        assert time.time() < deadline, "a worker still runs its shipped group"
        time.sleep(0.5)
    for run_id in run_ids(root):
        record = read_record(root, run_id)
        assert current_status(root, run_id) is Status.INTERRUPTED and 0 < record.epochs_done < epochs
