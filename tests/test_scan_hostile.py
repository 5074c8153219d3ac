"""A results root full of damaged and hostile run folders: every good run stays visible in
`trainer ls`, `trainer sql` and ResultStore, each bad folder is one reported problem, and
nothing hangs (the CLI runs in a subprocess with a time limit), follows a symlink out of
the root, or prints a fake row."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.make_results import write_run
from ibstore.record import MAX_RECORD_BYTES
from ibstore.index import scan
from tests.conftest import write_cohort
from trainer import listing

CLI_TIMEOUT_S = 60   # a hang (e.g. opening a FIFO) fails the test instead of blocking the suite
TANH = {"activation_fn": "tanh", "epochs": 6}


def edit_record(root: Path, folder: str, **fields) -> None:
    path = root / "runs" / folder / "run.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def write_raw(root: Path, run_id: str, data: bytes) -> None:
    (root / "runs" / run_id / "run.json").write_bytes(data)


def hostile_root(base: Path) -> dict:
    """Good runs, runs that must stay visible despite odd content, and bad folders.

    Returns {"root", "good": run ids that must be listed, "bad": folder name -> the words its
    problem must contain}."""
    root = base / "results"
    outside = base / "outside"          # a valid run outside the root, reachable only by symlinks
    outside_id = write_run(outside, "secret", TANH, logged=3)
    good = write_cohort(root, seeds=1)
    bad: dict[str, list[str]] = {}

    def damaged(name: str, words: list[str]) -> str:
        run_id = write_run(root, name, TANH, logged=3)
        bad[run_id] = words
        return run_id

    # run.json that must not be read, or whose content is refused
    os.mkfifo(_swap_for(root, damaged("fifo", ["named pipe"])))
    (root / "runs" / damaged("json-dir", ["is a folder"]) / "run.json").unlink()
    (root / "runs" / [*bad][-1] / "run.json").mkdir()
    linked = damaged("json-link", ["symlink"])
    (root / "runs" / linked / "run.json").unlink()
    (root / "runs" / linked / "run.json").symlink_to(outside / "runs" / outside_id / "run.json")
    write_raw(root, damaged("deep", ["deep"]), b'{"config": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    edit_record(root, damaged("huge-int", ["64-bit"]), epochs_done=10**30)
    write_raw(root, damaged("nan", ["NaN"]),
              (root / "runs" / [*bad][-1] / "run.json").read_bytes().replace(b'"error": null', b'"error": NaN'))
    edit_record(root, damaged("status-list", ["status"]), status=["completed"])
    edit_record(root, damaged("status-null", ["status"]), status=None)
    edit_record(root, damaged("config-list", ["config"]), config=[1, 2])
    with open(root / "runs" / damaged("too-big", ["bytes"]) / "run.json", "r+b") as handle:
        handle.truncate(MAX_RECORD_BYTES + 1)     # sparse: costs no disk
    write_raw(root, damaged("binary", ["UTF-8"]), b"\xff\xfe\x00garbage")
    edit_record(root, damaged("lone-surrogate", ["UTF-16"]), name="\ud800")   # json writes it as \\ud800
    # folders that are not run folders
    (root / "runs" / "a-file-s0").write_text("{}")
    bad["a-file-s0"] = ["not a run folder"]
    (root / "runs" / "link-out-s0").symlink_to(outside / "runs" / outside_id, target_is_directory=True)
    bad["link-out-s0"] = ["symlink", "not followed"]
    (root / "runs" / "link-in-s0").symlink_to(root / "runs" / good[0], target_is_directory=True)
    bad["link-in-s0"] = ["symlink", "not followed"]
    os.mkdir(os.fsencode(root / "runs") + b"/latin1-\xe9-s0")
    bad["latin1-\\xe9-s0"] = ["not UTF-8"]
    (root / "runs" / "empty-s0").mkdir()
    bad["empty-s0"] = ["no run.json"]
    shutil.copytree(root / "runs" / good[0], root / "runs" / f"{good[0]}.bak")   # its group's seed twice
    bad[f"{good[0]}.bak"] = ["names the run", "copied or renamed run folder"]
    # visible runs with hostile details: each is listed, some with a problem about one file
    mixed_tz = write_run(root, "mixed-tz", TANH, logged=3)
    edit_record(root, mixed_tz, started_at="2026-11-27T08:00:00+02:00", finished_at="2026-11-27T06:30:00")
    fifo_table = write_run(root, "fifo-table", TANH, logged=3)
    metrics = root / "runs" / fifo_table / "metrics.parquet"
    metrics.unlink()
    os.mkfifo(metrics)
    link_table = write_run(root, "link-table", TANH, logged=3)
    mi = root / "runs" / link_table / "mi.parquet"
    mi.unlink()
    mi.symlink_to(outside / "runs" / outside_id / "mi.parquet")
    evil = write_run(root, "evil", TANH, logged=3)
    evil_name = "evil\nfake-row-s0  completed  \x1b[31mred"
    (root / "runs" / evil).rename(root / "runs" / evil_name)
    edit_record(root, evil_name, run_id=evil_name)   # its id, as a run folder's record names it
    visible = [mixed_tz, fifo_table, link_table, evil_name]
    return {"root": root, "good": good + visible, "bad": bad, "outside_id": outside_id,
            "mixed_tz": mixed_tz, "fifo_table": fifo_table, "link_table": link_table, "evil": evil_name}


def _swap_for(root: Path, run_id: str) -> Path:
    path = root / "runs" / run_id / "run.json"
    path.unlink()
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict:
    return hostile_root(tmp_path_factory.mktemp("hostile"))


def trainer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainer", *args], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S, cwd="/")


def test_the_corpus_is_big_enough(hostile):
    assert len(hostile["bad"]) >= 12 and len(hostile["good"]) >= 8


def test_scan_lists_every_good_run_and_one_problem_per_bad_folder(hostile):
    found = scan(hostile["root"])
    assert sorted(r.run_id for r in found.runs) == sorted(hostile["good"])
    for name, words in hostile["bad"].items():
        mine = [p.problem for p in found.problems if p.path.split("/runs/")[1].split("/")[0] == name]
        assert len(mine) == 1, (name, mine)
        for word in words:
            assert word in mine[0], (name, mine[0])
    assert hostile["outside_id"] not in {r.run_id for r in found.runs}


def test_hostile_files_inside_a_good_run_cost_only_that_file(hostile):
    found = scan(hostile["root"])
    by_path = {p.path: p.problem for p in found.problems}
    fifo = str(hostile["root"] / "runs" / hostile["fifo_table"] / "metrics.parquet")
    link = str(hostile["root"] / "runs" / hostile["link_table"] / "mi.parquet")
    assert "named pipe" in by_path[fifo] and "symlink" in by_path[link]
    assert hostile["fifo_table"] not in found.files["metrics"] and hostile["fifo_table"] in found.files["mi"]
    assert hostile["link_table"] not in found.files["mi"] and hostile["link_table"] in found.files["metrics"]
    assert not any("outside" in f.path for files in found.files.values() for run in files.values() for f in run)


def test_a_naive_finish_time_counts_as_utc(hostile):
    (record,) = [r for r in scan(hostile["root"]).runs if r.run_id == hostile["mixed_tz"]]
    assert (record.finished_at - record.started_at).total_seconds() == 30 * 60


@pytest.mark.slow
def test_trainer_ls_lists_every_good_run_on_its_own_line(hostile):
    result = trainer("ls", "--results", str(hostile["root"]))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["run_id", "status", "epochs", "test_acc", "flags", "name"]
    rows = lines[2:lines.index(listing.LEGEND)]     # then the flags legend and the cohorts
    assert len(rows) == len(hostile["good"])       # no fake row from the newline in a name
    listed = {row.split()[0] for row in rows}
    escaped_evil = "evil\\nfake-row-s0"
    assert listed == {r for r in hostile["good"] if r != hostile["evil"]} | {escaped_evil}
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr
    for name in hostile["bad"]:
        assert f"/runs/{name}" in result.stderr, name


@pytest.mark.slow
def test_trainer_sql_and_result_store_see_every_good_run(hostile):
    from explorer.results import ResultStore

    result = trainer("sql", "SELECT run_id FROM runs ORDER BY run_id", "--format", "json",
                     "--results", str(hostile["root"]))
    assert result.returncode == 0, result.stderr
    assert sorted(row["run_id"] for row in json.loads(result.stdout)) == sorted(hostile["good"])
    assert sorted(ResultStore(hostile["root"]).runs()["run_id"]) == sorted(hostile["good"])


def test_unreadable_run_json_is_a_problem_not_an_error(tmp_path, monkeypatch):
    """Permission denied on open (simulated: the tests may run as root, who reads anything)."""
    import ibstore.scan as scan_module

    good, locked = (write_run(tmp_path, name, TANH, logged=3) for name in ("good", "locked"))
    real_open = os.open

    def refusing_open(path, flags, mode=0o777, *, dir_fd=None):
        if dir_fd is not None and os.readlink(f"/proc/self/fd/{dir_fd}").endswith(locked) and path == "run.json":
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, mode, dir_fd=dir_fd)
    monkeypatch.setattr(scan_module.os, "open", refusing_open)
    found = scan(tmp_path)
    assert [r.run_id for r in found.runs] == [good]
    (problem,) = found.problems
    assert problem.run_id == locked and "Permission denied" in problem.problem


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_run_json_and_run_folder_are_problems(tmp_path):
    good, locked, closed = (write_run(tmp_path, name, TANH, logged=3) for name in ("good", "locked", "closed"))
    (tmp_path / "runs" / locked / "run.json").chmod(0)
    (tmp_path / "runs" / closed).chmod(0)
    try:
        found = scan(tmp_path)
    finally:
        (tmp_path / "runs" / closed).chmod(0o755)
    assert [r.run_id for r in found.runs] == [good]
    assert {p.run_id for p in found.problems} == {locked, closed}


def test_a_running_run_on_this_host_is_interrupted_once_its_lock_is_free(tmp_path):
    """Liveness: the lock decides on this host at once; other hosts (and runs without a lock
    file) go by the heartbeat's age."""
    import socket

    from ibstore.lock import RunLock
    from ibstore.schema import HEARTBEAT_STALE_SECONDS

    here, elsewhere, unlocked, stale = (
        write_run(tmp_path, name, TANH, logged=3, status="running", epochs_done=2, heartbeat_age_s=age)
        for name, age in (("here", 0), ("elsewhere", 0), ("unlocked", 0), ("stale", HEARTBEAT_STALE_SECONDS + 5)))
    for run_id in (here, unlocked, stale):
        edit_record(tmp_path, run_id, host=socket.gethostname())
    edit_record(tmp_path, elsewhere, host="another-host")
    RunLock.acquire(tmp_path / "runs" / elsewhere).release()   # a free lock file says nothing about other hosts

    def statuses() -> dict[str, str]:
        return {r.run_id: r.status.value for r in scan(tmp_path).runs}

    lock = RunLock.acquire(tmp_path / "runs" / here)
    assert statuses() == {here: "running", elsewhere: "running", unlocked: "running", stale: "interrupted"}
    lock.release()   # what kill -9 does to the writer's lock
    assert statuses()[here] == "interrupted"


def test_a_heartbeat_dated_far_ahead_does_not_keep_a_run_running_for_ever(tmp_path):
    # a record of another host dated 2099 was "running" for ever: a sweep waited on it, --force refused
    from ibstore.schema import HEARTBEAT_STALE_SECONDS
    ahead, skewed = (write_run(tmp_path, name, TANH, logged=3, status="running", epochs_done=2, heartbeat_age_s=age)
                     for name, age in (("ahead", -(HEARTBEAT_STALE_SECONDS + 5)), ("skewed", -5)))
    for run_id in (ahead, skewed):
        edit_record(tmp_path, run_id, host="another-host")
    assert {r.run_id: r.status.value for r in scan(tmp_path).runs} == {ahead: "interrupted", skewed: "running"}


def test_a_table_is_its_base_and_the_parts_the_base_does_not_hold(tmp_path):
    import pyarrow.parquet as pq

    from ibstore import layout

    run_id = write_run(tmp_path, "parts", TANH, logged=3)
    base = layout.table_path(tmp_path, run_id, "metrics")
    rows = pq.read_table(base)
    pq.write_table(rows.replace_schema_metadata({layout.COMPACTED_THROUGH_KEY: b"2"}), base)
    for n in (1, 2, 3, 4):
        pq.write_table(rows.slice(0, n), layout.table_part_path(tmp_path, run_id, "metrics", n))
    layout.table_part_path(tmp_path, run_id, "metrics", 4).write_bytes(b"PAR1 truncated")
    (base.parent / ".metrics.part-000005.parquet.tmp").write_bytes(b"half written")
    found = scan(tmp_path)
    found.check(["metrics"])   # the parts' footers and pages are read when the table is first read
    files = found.files["metrics"][run_id]
    assert [(Path(f.path).name, f.part, pq.read_metadata(f.path).num_rows) for f in files] == [
        ("metrics.parquet", None, rows.num_rows), ("metrics.part-000003.parquet", 3, 3)]
    (problem,) = found.problems
    assert problem.path.endswith("metrics.part-000004.parquet") and "unreadable Parquet" in problem.problem


def test_the_root_may_be_a_symlink_but_its_runs_folder_may_not(tmp_path):
    real = tmp_path / "real"
    run_id = write_run(real, "r", TANH, logged=3)
    (tmp_path / "linked-root").symlink_to(real, target_is_directory=True)
    assert [r.run_id for r in scan(tmp_path / "linked-root").runs] == [run_id]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "runs").symlink_to(real / "runs", target_is_directory=True)
    found = scan(tmp_path / "other")
    assert found.runs == [] and ["symlink" in p.problem for p in found.problems] == [True]
