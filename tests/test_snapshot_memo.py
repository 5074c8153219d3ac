"""What a snapshot gave, carried to the next and patched for the changed runs (explorer.snapshot_memo,
explorer.patched_frames), against the same worked out afresh by a new store."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import EPOCHS

from bench.make_results import write_run
from explorer import queries, ui
from explorer.results import ResultStore
from ibstore import layout


@pytest.fixture
def root(tmp_path, private_index):
    for bias in (0.0, 0.5):
        for seed in range(3):
            write_run(tmp_path, "memo", {"activation_fn": "tanh", "epochs": EPOCHS, "initial_bias": bias},
                      seed=seed, logged=3)
    return tmp_path


def rewrite(root, run_id: str, change) -> None:
    path = layout.run_json_path(root, run_id)
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def values(frame: pd.DataFrame) -> list[list]:
    """The cells, a missing one as None: a column that held only nulls keeps its type (objects,
    None) where a new build infers text from the new value (NaN for the others)."""
    cells = frame.astype(object).where(frame.notna(), None).values.tolist()
    return [list(frame.columns)] + [[plain(v) for v in row] for row in cells]


def plain(value):
    """A cell as Python values: arrays as lists, at any depth (the splits' class_counts in a dict)."""
    if isinstance(value, dict):
        return {key: plain(inner) for key, inner in value.items()}
    return getattr(value, "tolist", lambda: value)()


def afresh(root) -> tuple[pd.DataFrame, pd.DataFrame]:
    store = ResultStore(root)
    return store.runs(), ui.ordered_runs(store)


def test_a_flush_patches_the_runs_frame_and_the_ordered_table(root, monkeypatch):
    store = ResultStore(root)
    before, table = store.runs(), ui.ordered_runs(store)
    built = []
    monkeypatch.setattr(queries, "runs", lambda *args, real=queries.runs: built.append(1) or real(*args))
    run_id = table["run_id"].iloc[4]
    rewrite(root, run_id, lambda record: record.update(epochs_done=1, status="failed", error="out of memory"))
    assert store.refresh()
    runs, ordered = store.runs(), ui.ordered_runs(store)
    assert built == []                                        # patched, not built again
    expected_runs, expected_table = afresh(root)
    assert values(runs) == values(expected_runs) and values(ordered) == values(expected_table)
    assert ordered.set_index("run_id").loc[run_id, "status"] == "failed" and list(ordered["run_id"]) == list(
        table["run_id"])
    assert before.set_index("run_id").loc[run_id, "status"] == "completed"   # the earlier frame is untouched


def test_a_change_of_order_or_of_the_runs_is_worked_out_again(root):
    store = ResultStore(root)
    table = ui.ordered_runs(store)
    first = table["run_id"].iloc[0]
    rewrite(root, first, lambda record: record["config"].update(initial_bias=2.0))   # it now sorts last
    assert store.refresh()
    assert ui.ordered_runs(store)["run_id"].iloc[-1] == first
    pd.testing.assert_frame_equal(ui.ordered_runs(store), afresh(root)[1])
    added = write_run(root, "memo", {"activation_fn": "relu", "epochs": EPOCHS}, logged=3)
    assert store.refresh()
    assert added in set(store.runs()["run_id"])
    pd.testing.assert_frame_equal(store.runs(), afresh(root)[0])
    pd.testing.assert_frame_equal(ui.ordered_runs(store), afresh(root)[1])


def test_flat_configs_are_kept_until_their_run_changes(root):
    store = ResultStore(root)
    ids = sorted(store.runs()["run_id"])
    first = store.flat_configs(ids)
    rewrite(root, ids[0], lambda record: record["config"].update(initial_bias=3.0))
    assert store.refresh()
    again = store.flat_configs(ids)
    assert again[ids[0]]["initial_bias"] == 3.0 and again[ids[1]] is first[ids[1]]
    assert again == ResultStore(root).flat_configs(ids)


@pytest.mark.parametrize("aligned", [True, False])
def test_the_runs_frame_is_patched_at_the_changed_runs_positions(root, monkeypatch, aligned):
    """Found by binary search in the `runs` view, not by hashing every id of the frame; a frame
    not in the view's order (none of the app's) is matched by id instead, with the same result."""
    store = ResultStore(root)
    before = store.runs()
    run_ids = list(before["run_id"])
    if not aligned:   # the frame carried over, in another order
        store._memo._carried["runs"] = (store.snapshot(), before.iloc[::-1].reset_index(drop=True))
    hashed = []
    monkeypatch.setattr(pd.Index, "get_indexer", lambda self, *args, real=pd.Index.get_indexer, **kw: (
        hashed.append(1), real(self, *args, **kw))[1])
    for run_id in (run_ids[1], run_ids[-1]):
        rewrite(root, run_id, lambda record: record.update(epochs_done=2))
    assert store.refresh()
    runs = store.runs()
    assert bool(hashed) is not aligned
    expected = afresh(root)[0]
    if not aligned:
        expected = expected.iloc[::-1].reset_index(drop=True)
    assert values(runs) == values(expected)



def test_values_of_one_snapshot_are_bounded_and_the_most_recent_kept():
    # Each distinct `where` of a link kept its run ids for as long as the root did not change (1,500
    # links: 170 MB on 3,000 runs).
    from explorer.snapshot_memo import MAX_VALUES, SnapshotMemo
    memo, snapshot, computed = SnapshotMemo(), object(), []

    def value(name):
        return memo.of(snapshot, name, lambda _: computed.append(name) or [name])

    everyone = value(("where", "true"))
    for i in range(MAX_VALUES + 20):
        assert value(("where", f"bias = {i}")) == [("where", f"bias = {i}")]
        assert value(("where", "true")) is everyone               # asked again and again: kept
    assert len(memo._once) == MAX_VALUES and computed.count(("where", "true")) == 1
    assert ("where", "bias = 0") not in memo._once and ("where", f"bias = {MAX_VALUES + 19}") in memo._once
    value(("where", "bias = 0"))                                   # dropped: worked out again
    assert computed.count(("where", "bias = 0")) == 2
    assert memo.of(object(), "other", lambda _: 1) == 1 and list(memo._once) == ["other"]   # a new snapshot
