"""What the explorer works out once, not at every interaction, at 100,000 runs (issue 20): a SQL
condition is asked once per snapshot."""

from __future__ import annotations

import json

import pandas as pd
from conftest import EPOCHS

from bench.make_results import write_run
from explorer.results import ResultStore
from ibstore import layout


def rewrite_record(root, run_id: str, change) -> None:
    path = layout.run_json_path(root, run_id)
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def test_a_condition_is_asked_once_per_snapshot(tmp_path, monkeypatch):
    tanh = {"activation_fn": "tanh", "epochs": EPOCHS}
    ids = [write_run(tmp_path, "scale", tanh, seed=seed, logged=4) for seed in (0, 1)]
    store = ResultStore(tmp_path)
    asked = []

    def sql(query, limits):          # the sandbox (a process) stands in: the condition matches ids[1]
        asked.append(query)
        return pd.DataFrame({"run_id": [ids[1]]})

    monkeypatch.setattr(store, "sql", sql)
    assert list(store.runs("seed = 1")["run_id"]) == [ids[1]]
    assert list(store.runs("seed = 1")["run_id"]) == [ids[1]] and len(asked) == 1
    assert list(store.runs("seed >= 1")["run_id"]) == [ids[1]] and len(asked) == 2   # another condition
    rewrite_record(tmp_path, ids[0], lambda record: record.update(epochs_done=record["epochs_done"] - 1))
    assert store.refresh()
    store.runs("seed = 1")
    assert len(asked) == 3                                      # a new snapshot asks again
