"""A run folder deleted while the explorer has it open (issue 17): the store's reads and SQL
statements answer with the remaining runs, and the explorer's next page runs show them and say
in one line which selected run is gone, never a stack trace."""

from __future__ import annotations

import shutil
import time

import pytest
from test_app import PAGES, open_app, texts, url_runs

from bench.make_results import write_run
from explorer import ui
from explorer.results import ResultStore
from ibstore import index

pytestmark = pytest.mark.slow   # sandbox workers, the app under AppTest


@pytest.fixture
def three_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index.forget()
    root = tmp_path / "results"
    ids = [write_run(root, "tanh", {"activation_fn": "tanh", "epochs": 20}, seed=seed, logged=5) for seed in range(3)]
    yield root, ids
    index.forget()


def test_the_store_answers_with_the_remaining_runs(three_runs):
    root, ids = three_runs
    for first_read in ("mi", "sql"):
        store = ResultStore(root, max_age_s=3600)   # its snapshot holds the run until a read loses it
        assert sorted(store.runs()["run_id"]) == sorted(ids)
        gone = root / "runs" / ids[0]
        shutil.rmtree(gone)
        if first_read == "mi":
            assert sorted(store.mi(ids)["run_id"].unique()) == ids[1:]
        listed = store.sql("SELECT DISTINCT run_id FROM mi ORDER BY run_id")
        assert listed["run_id"].tolist() == ids[1:]
        table, total = store.sql_head("SELECT run_id, count(*) AS n FROM metrics GROUP BY 1 ORDER BY 1", 10)
        assert table["run_id"].to_pylist() == ids[1:] and total == 2
        assert sorted(store.runs()["run_id"]) == ids[1:] and store.problems == []
        assert sorted(store.phases(ids)["run_id"].unique()) == ids[1:]
        # the run back for the second round: the same files under the same id
        assert write_run(root, "tanh", {"activation_fn": "tanh", "epochs": 20}, seed=0, logged=5) == ids[0]


@pytest.mark.parametrize("page", PAGES)
def test_the_explorer_shows_the_remaining_runs_and_names_the_removed_one(three_runs, monkeypatch, page):
    root, ids = three_runs   # a root per page: the app keeps one store per root for every session
    at = open_app(monkeypatch, root, page, runs=ids)
    assert url_runs(at) == ids and not at.warning
    shutil.rmtree(root / "runs" / ids[0])
    deadline = time.monotonic() + 30
    while True:   # the page runs that follow; the first may still draw from the old snapshot
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        if at.warning or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    (warning,) = at.warning
    assert warning.value.startswith("1 selected run(s) are no longer in this results root")
    assert ui.plain(ids[0]) in warning.value
    assert url_runs(at) == ids[1:] and at.multiselect(key=ui.SELECTION).value == ids[1:]
    assert not at.error, [e.value for e in at.error]
    if page == "sql":
        assert sorted(at.dataframe[0].value["run_id"].unique()) == ids[1:]
    assert ids[0] not in texts(at).replace(warning.value, "")
