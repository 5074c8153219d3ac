"""What the explorer works out once, not at every interaction, at 100,000 runs (issue 20): what
depends on the configs alone (the varying keys) is recomputed only when a config changes, not
after a flush; a SQL condition is asked once per snapshot."""

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


def test_what_depends_on_configs_is_recomputed_only_when_a_config_changes(tmp_path):
    tanh = {"activation_fn": "tanh", "epochs": EPOCHS, "initial_bias": 0.0}
    ids = [write_run(tmp_path, "scale", tanh, seed=seed, logged=4) for seed in (0, 1, 2)]
    store = ResultStore(tmp_path)
    computed = []

    def varying(flats):
        computed.append(len(flats))
        return sorted({key for flat in flats for key in flat if flat[key] != flats[0].get(key)} - {"seed"})

    assert store.of_configs("test", varying) == [] and store.varying_keys() == []
    flat_before = store.flat_configs()[ids[0]]
    rewrite_record(tmp_path, ids[0], lambda record: record.update(epochs_done=record["epochs_done"] - 1))
    assert store.refresh()                                      # a new snapshot: the record changed
    assert store.runs().set_index("run_id").loc[ids[0], "epochs_done"] == EPOCHS - 1
    assert store.of_configs("test", varying) == [] and computed == [3]      # not recomputed
    assert store.flat_configs()[ids[0]] is flat_before
    rewrite_record(tmp_path, ids[1], lambda record: record["config"].update(initial_bias=2.0))
    assert store.refresh()
    assert store.of_configs("test", varying) == ["initial_bias"] and computed == [3, 3]
    assert store.varying_keys() == ["initial_bias"]


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
