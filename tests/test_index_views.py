"""The index's view tables patched for changed runs (ibstore.index_views) against the same tables
built from every record."""

from __future__ import annotations

import pytest

from ibstore import index_views, views
from ibstore.index import scan
from ibstore.record import Status


@pytest.fixture
def records(small_tanh_root):
    return sorted(scan(small_tanh_root(6)).runs, key=lambda record: record.run_id)


def changed(records, which: dict[int, dict]) -> list:
    return [record.model_copy(update=which[i]) if i in which else record for i, record in enumerate(records)]


@pytest.mark.parametrize("same_runs", [True, False])
def test_a_patch_equals_the_tables_built_from_every_record(records, same_runs):
    new_config = {**records[4].config, "initial_bias": 0.25, "extra": {"depth": 3}}   # one more key
    shorter = {key: value for key, value in records[1].config.items() if key != "batch_size"}
    after = changed(records, {1: {"config": shorter, "epochs_done": 3},
                              2: {"status": Status.FAILED, "error": "out of memory"}, 4: {"config": new_config}})
    touched = [after[i] for i in (1, 2, 4)]
    runs, config = index_views.patched(views.runs_table(records), views.config_table(records),
                                       {r.run_id for r in touched}, touched, same_runs=same_runs)
    assert config.equals(views.config_table(after))
    rebuilt = views.runs_table(after)
    assert runs.select(rebuilt.column_names).cast(rebuilt.schema).equals(rebuilt)
    # the config rows spliced alone (the runs table's new column makes `patched` build both again)
    ids = [record.run_id for record in touched]
    assert index_views.spliced(views.config_table(records), views.config_table(touched), ids).equals(config)


def test_a_flush_is_spliced_into_both_tables(records, monkeypatch):
    after = changed(records, {0: {"epochs_done": 2}, 5: {"status": Status.INTERRUPTED}})
    monkeypatch.setattr(index_views, "rows_without", None)   # the sorting path is not taken
    runs, config = index_views.patched(views.runs_table(records), views.config_table(records),
                                       {after[0].run_id, after[5].run_id}, [after[0], after[5]], same_runs=True)
    assert runs.equals(views.runs_table(after)) and config.equals(views.config_table(after))


def test_a_splice_gives_up_where_it_cannot_place_the_rows(records):
    old = views.runs_table(records[:3])
    assert index_views.spliced(old, views.runs_table(records[3:4]), [records[3].run_id]) is None   # not in old
    retyped = views.runs_table(changed(records, {0: {"config": {**records[0].config, "initial_bias": "text"}}})[:1])
    assert index_views.spliced(old, retyped, [records[0].run_id]) is None                        # other types
    spliced = index_views.spliced(old, views.runs_table(changed(records, {1: {"epochs_done": 1}})[1:2]),
                                  [records[1].run_id])
    assert spliced["epochs_done"].to_pylist() == [records[0].epochs_done, 1, records[2].epochs_done]


def test_a_splice_copies_only_the_batches_of_the_changed_runs(records, monkeypatch):
    """In batches of a few rows, so that runs' rows cross batches' ends: the table equals the one
    built again, and the batches without a changed run are the old ones, not copies."""
    monkeypatch.setattr(index_views, "MIN_CHUNK_ROWS", 1)
    monkeypatch.setattr(index_views, "CHUNKS", 7)
    new_config = {**records[3].config, "initial_bias": 0.5}
    after = changed(records, {1: {"epochs_done": 4}, 3: {"config": new_config}})
    old = views.config_table(records)
    old_batches = index_views._batches(old)
    assert len(old_batches) == 7
    touched = [after[1], after[3]]
    config = index_views.spliced(old, views.config_table(touched), [record.run_id for record in touched])
    assert config.equals(views.config_table(after))

    def values_buffer(batch):   # where a batch's `value` text lies
        return batch.column(batch.schema.get_field_index("value")).buffers()[2].address

    changed_ids = {after[1].run_id, after[3].run_id}
    untouched = [values_buffer(batch) for batch in old_batches if not changed_ids & set(batch["run_id"].to_pylist())]
    assert untouched and set(untouched) <= {values_buffer(batch) for batch in config.to_batches()}
    runs = index_views.spliced(views.runs_table(records), views.runs_table(touched), sorted(changed_ids))
    assert runs.equals(views.runs_table(after))
