"""A table file damaged in place after a scan has checked it (an attacker's `truncate -s 3000`):
its run folder's signature does not change, so every later scan kept the file's "checked" verdict
and every query of its table failed, scan after scan, in the explorer and `trainer report` with a
traceback. A read that finds it has the run read again, and the new scan leaves the file out."""

from __future__ import annotations

import os

import pytest

from bench.make_results import write_run
from explorer.results import ResultStore
from ibstore import index, layout
from trainer import cli


def test_a_file_damaged_in_place_is_left_out_by_the_next_read_and_named(tmp_path):
    ids = [write_run(tmp_path, "d", {"epochs": 20}, seed=seed, logged=5) for seed in range(3)]
    store = ResultStore(tmp_path)
    before = store.metrics(ids)
    assert sorted(before["run_id"].unique()) == sorted(ids)
    damaged = layout.run_dir(tmp_path, ids[1]) / "metrics.parquet"
    folder = os.stat(damaged.parent)
    with open(damaged, "r+b") as file:   # in place: the folder's mtime and ctime stay
        file.truncate(damaged.stat().st_size // 2)
    assert os.stat(damaged.parent).st_mtime_ns == folder.st_mtime_ns
    after = store.metrics(ids)
    assert sorted(after["run_id"].unique()) == sorted([ids[0], ids[2]])
    assert after.equals(before[before["run_id"] != ids[1]].reset_index(drop=True))
    assert any(problem.run_id == ids[1] and problem.path.endswith("metrics.parquet")
               for problem in store.snapshot().problems)
    # a new process's scan (the index saved) leaves it out too, without a failing read first
    index.save_index(tmp_path)
    index.forget(tmp_path)
    assert any(problem.path == str(damaged) for problem in index.scan(tmp_path).problems)


@pytest.mark.slow   # trainer sql's statements run in worker processes
def test_trainer_sql_reads_again_and_the_next_command_leaves_the_file_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index.forget()
    root = tmp_path / "results"
    ids = [write_run(root, "d", {"epochs": 20}, seed=seed, logged=5) for seed in range(3)]
    query = "SELECT count(DISTINCT run_id) AS runs FROM metrics"
    assert cli.main(["sql", query, "--results", str(root)]) == 0   # every file checked, the verdicts saved
    capsys.readouterr()
    damaged = layout.run_dir(root, ids[1]) / "metrics.parquet"
    with open(damaged, "r+b") as file:
        file.truncate(damaged.stat().st_size // 2)
    # streamed to stdout, a statement cannot be run again: it fails, naming the file, once
    index.forget()
    assert cli.main(["sql", query, "--results", str(root), "--format", "csv"]) == 2
    assert f"metrics of run {ids[1]} cannot be read: {damaged} " in capsys.readouterr().err
    index.forget()
    assert cli.main(["sql", query, "--results", str(root), "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["runs", "2"]
    # a table is run again at once, on a scan that leaves the file out
    with open(layout.run_dir(root, ids[2]) / "metrics.parquet", "r+b") as file:
        file.truncate(100)
    index.forget()
    assert cli.main(["sql", query, "--results", str(root)]) == 0
    out = capsys.readouterr()
    assert out.out.split()[-3:-2] == ["1"] and "2 file(s) of the root could not be read" in out.err


def test_another_runs_file_copied_in_is_left_out_and_named(tmp_path):
    # Two attackers': a seed's metrics.parquet copied over another's showed its accuracy as the
    # other seed's, named nowhere; another table's file copied in as mi.parquet gave rows of no MI
    ids = [write_run(tmp_path, "d", {"epochs": 20}, seed=seed, logged=5) for seed in range(3)]
    copied = layout.run_dir(tmp_path, ids[0]) / "metrics.parquet"
    copied.write_bytes((layout.run_dir(tmp_path, ids[1]) / "metrics.parquet").read_bytes())
    store = ResultStore(tmp_path)
    assert sorted(store.metrics(ids)["run_id"].unique()) == sorted(ids[1:])
    (problem,) = [p for p in store.snapshot().problems if p.path == str(copied)]
    assert problem.problem.startswith(f"holds rows of run '{ids[1]}', not of its folder's (another run's file "
                                      "copied in)")
