"""What the explorer works out once, not at every interaction, at 100,000 runs (issue 20): the
runs table's order is sorted once per change of the configs and reused after a flush; what
depends on the configs alone (the varying keys) is recomputed only when a config changes; a SQL
condition and a config filter are asked once per snapshot."""

from __future__ import annotations

import json

import pandas as pd

from bench.make_results import write_run
from conftest import EPOCHS
from explorer import runs_table
from explorer.results import ResultStore
from ibstore import layout


def runs_frame(n: int) -> pd.DataFrame:
    """A `runs` view of n runs over two biases and seeds, rows in an order unlike the reading order."""
    ids = [f"run{i:03d}" for i in range(n)]
    return pd.DataFrame({
        "run_id": ids[::-1], "name": "x", "status": "completed", "seed": [i % 3 for i in range(n)],
        "initial_bias": [float(i % 2) for i in range(n)], "final_test_accuracy": [i / n for i in range(n)],
        "final_train_accuracy": 0.5, "epochs_done": 10, "epochs_total": 10, "duration_s": 1.0, "cohort": None,
        "error": None,
    })


def test_a_known_order_gives_the_sorted_table_with_the_new_values():
    runs = runs_frame(30)
    sorted_table = runs_table.runs_table(runs, ["initial_bias"], {})
    # a flush: values change, configs (and so the order) do not; the rows come in another order
    flushed = runs.assign(status="running", final_test_accuracy=runs["final_test_accuracy"] + 1).sample(frac=1,
                                                                                                   random_state=1)
    reused = runs_table.runs_table(flushed, ["initial_bias"], {"run007": ["dead"]}, sorted_table["run_id"])
    fresh = runs_table.runs_table(flushed, ["initial_bias"], {"run007": ["dead"]})
    pd.testing.assert_frame_equal(reused, fresh)
    assert list(reused["run_id"]) == list(sorted_table["run_id"]) and set(reused["status"]) == {"running"}
    assert reused.set_index("run_id").loc["run007", "flags"] == "dead"


def test_an_order_that_does_not_hold_exactly_the_runs_is_not_used():
    runs = runs_frame(30)
    expected = runs_table.runs_table(runs, ["initial_bias"], {})
    stale = expected["run_id"].replace("run003", "gone")            # a run removed, another added
    pd.testing.assert_frame_equal(runs_table.runs_table(runs, ["initial_bias"], {}, stale), expected)
    shorter = expected["run_id"][:-1]
    pd.testing.assert_frame_equal(runs_table.runs_table(runs, ["initial_bias"], {}, shorter), expected)


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
