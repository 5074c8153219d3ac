"""The index's `runs` and `config` view tables (ibstore.views), patched for the runs a scan found
changed instead of built again from every record (ibstore.index).

Both tables are sorted by run_id (`config` then by key), so a run's rows lie together. When no
run came or went (a flush, a status change: what a live root does every second), each changed
run's new rows take the place of its old ones, by slicing: at 100,000 runs, sorting the 2.5
million-row `config` table after every flush took seconds.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ibstore import views
from ibstore.index_stat import is_text
from ibstore.record import RunRecord

MAX_CHUNKS = 64


def patched(runs_view: pa.Table, config_view: pa.Table, dropped: set[str], fresh: list[RunRecord],
            same_runs: bool) -> tuple[pa.Table, pa.Table] | None:
    """`runs` and `config` of the old rows but those of the runs `dropped` (the changed and the
    gone), and of the records `fresh` (sorted by run id; rows built for them). With `same_runs`
    (the runs are those of the old tables) the fresh rows are spliced in where the old ones lay.
    None when the fresh rows' types do not fit the old columns (a config key that held numbers now
    holds text): then build both from every record."""
    fresh_runs, fresh_config = views.runs_table(fresh), views.config_table(fresh)
    run_ids = [record.run_id for record in fresh]
    if same_runs:
        runs, config = spliced(runs_view, fresh_runs, run_ids), spliced(config_view, fresh_config, run_ids)
        if runs is not None and config is not None:
            return runs, config
    try:
        runs = pa.concat_tables([rows_without(runs_view, dropped), fresh_runs], promote_options="permissive")
        if len({name.lower() for name in runs.column_names}) != runs.num_columns:
            return None
        config = pa.concat_tables([rows_without(config_view, dropped), fresh_config])
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return (runs.sort_by("run_id").combine_chunks(),
            config.sort_by([("run_id", "ascending"), ("key", "ascending")]).combine_chunks())


def spliced(old: pa.Table, fresh: pa.Table, run_ids: list[str]) -> pa.Table | None:
    """`old` with the rows of `run_ids` (sorted, as `old` is by run_id) replaced by theirs in
    `fresh` (in the same order); None if the columns differ or a run has no rows in `old` (where
    its rows go is then unknown)."""
    if not old.schema.equals(fresh.schema):
        return None
    rows = pc.indices_nonzero(pc.is_in(old["run_id"], value_set=pa.array(run_ids, pa.string())))
    old_blocks = _blocks(old["run_id"].take(rows).to_pylist(), rows.to_pylist())
    if old_blocks.keys() != set(run_ids):
        return None
    fresh_ids = fresh["run_id"].to_pylist()
    fresh_blocks = _blocks(fresh_ids, range(len(fresh_ids)))
    pieces, cursor = [], 0
    for run_id in run_ids:
        start, end = old_blocks[run_id]
        if start < cursor:        # not in the old table's order
            return None
        first, after = fresh_blocks.get(run_id, (0, 0))
        pieces += [old.slice(cursor, start - cursor), fresh.slice(first, after - first)]
        cursor = end
    table = pa.concat_tables([*pieces, old.slice(cursor)])
    # Copied into one chunk only now and then: compute kernels slow down over thousands of chunks,
    # and copying 2.5 million rows at every flush of a 100,000-run root took a second.
    return table.combine_chunks() if table.column(0).num_chunks > MAX_CHUNKS else table


def _blocks(owners: list[str], rows) -> dict[str, tuple[int, int]]:
    """run_id -> (first row, row after its last) of rows listed in order with their runs."""
    blocks: dict[str, tuple[int, int]] = {}
    for owner, row in zip(owners, rows):
        blocks[owner] = (blocks.get(owner, (row, row))[0], row + 1)
    return blocks


def rows_of(table: pa.Table, run_ids: pa.Array) -> pa.Table:
    return table.filter(pc.is_in(table["run_id"], value_set=run_ids))


def rows_without(table: pa.Table, run_ids: set[str]) -> pa.Table:
    """The rows of runs other than `run_ids`: what a scan keeps of a table when a few runs changed
    (a set of the few, not of the 100,000 others: hashing those cost more than the filter). A name
    that is not UTF-8 text is no run id and has no rows."""
    ids = pa.array(sorted(name for name in run_ids if is_text(name)), pa.string())
    return table.filter(pc.invert(pc.is_in(table["run_id"], value_set=ids)))
