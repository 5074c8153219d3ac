"""A results root full of damaged and hostile run folders: every good run stays visible in
`trainer ls`, `trainer sql` and ResultStore, each bad folder is one reported problem, and
nothing hangs (the CLI runs in a subprocess with a time limit), follows a symlink out of
the root, or prints a fake row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.make_results import write_run
from ibstore.record import MAX_RECORD_BYTES
from ibstore.scan import scan
from tests.conftest import write_cohort

CLI_TIMEOUT_S = 60   # a hang (e.g. opening a FIFO) fails the test instead of blocking the suite
TANH = {"activation_fn": "tanh", "epochs": 6}


def edit_record(root: Path, run_id: str, **fields) -> None:
    path = root / "runs" / run_id / "run.json"
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


def test_trainer_ls_lists_every_good_run_on_its_own_line(hostile):
    result = trainer("ls", "--results", str(hostile["root"]))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["run_id", "status", "epochs", "test_acc", "flags", "name"]
    rows = lines[2:]
    assert len(rows) == len(hostile["good"])       # no fake row from the newline in a name
    listed = {row.split()[0] for row in rows}
    escaped_evil = "evil\\nfake-row-s0"
    assert listed == {r for r in hostile["good"] if r != hostile["evil"]} | {escaped_evil}
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr
    for name in hostile["bad"]:
        assert f"/runs/{name}" in result.stderr, name


def test_trainer_sql_and_result_store_see_every_good_run(hostile):
    from explorer.results import ResultStore

    result = trainer("sql", "SELECT run_id FROM runs ORDER BY run_id", "--format", "json",
                     "--results", str(hostile["root"]))
    assert result.returncode == 0, result.stderr
    assert sorted(row["run_id"] for row in json.loads(result.stdout)) == sorted(hostile["good"])
    assert sorted(ResultStore(hostile["root"]).runs()["run_id"]) == sorted(hostile["good"])
