"""The index's `runs` and `config` view tables (ibstore.views), patched for the runs a scan found
changed instead of built again from every record (ibstore.index).

Both tables are sorted by run_id (`config` then by key), so a run's rows lie together. When no
run came or went (a flush, a status change: what a live root does every second), each changed
run's new rows take the place of its old ones, found by binary search, and only the record
batches holding them are copied: at 100,000 runs, sorting the 2.5 million-row `config` table
after every flush took seconds, and copying it (or searching every row for the changed runs) a
large part of a refresh (bench/RESULTS.md, issue 20 branches explorer100k and refresh2).
"""

from __future__ import annotations

import bisect
import itertools

import pyarrow as pa
import pyarrow.compute as pc

from ibstore import views
from ibstore.index_stat import is_text
from ibstore.record import RunRecord

CHUNKS = 32             # a view table is kept in about this many record batches (`_batches`)
MIN_CHUNK_ROWS = 4096


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


def patched_files(files: pa.Table, dropped: set[str], fresh: list[pa.Table]) -> pa.Table:
    """The index's file table (sorted by run_id, as the views are, each run's files in the order
    read) without the rows of the runs `dropped` (the changed and the gone) and with the rows
    `fresh` of those read again: spliced in place when every dropped run had rows, else filtered
    and sorted again (a run came or went)."""
    rows = pa.concat_tables(fresh).sort_by("run_id")   # stable: a run's files keep their order
    table = spliced(files, rows, sorted(name for name in dropped if is_text(name)))
    if table is None:
        table = pa.concat_tables([rows_without(files, dropped), rows]).sort_by("run_id")
    return table


def spliced(old: pa.Table, fresh: pa.Table, run_ids: list[str]) -> pa.Table | None:
    """`old` with the rows of `run_ids` (sorted, as `old` is by run_id) replaced by theirs in
    `fresh` (in the same order); None if the columns differ or a run has no rows in `old` (where
    its rows go is then unknown). Only the record batches that hold the changed runs' rows are
    copied (`_batches`): the others are kept as they are."""
    if not old.schema.equals(fresh.schema):
        return None
    batches = _batches(old)
    starts = list(itertools.accumulate((batch.num_rows for batch in batches), initial=0))
    fresh_ids = fresh["run_id"].to_pylist()
    fresh_blocks = _blocks(fresh_ids, range(len(fresh_ids)))
    # the batches to copy, as [first, last, the runs' row ranges in them]: a run's rows may cross a batch's end
    spans: list[list] = []
    for run_id, start, end in row_ranges(old["run_id"], run_ids):
        if start == end:
            return None
        first, last = bisect.bisect_right(starts, start) - 1, bisect.bisect_right(starts, end - 1) - 1
        if spans and first <= spans[-1][1]:
            spans[-1][1] = last
            spans[-1][2].append((run_id, start, end))
        else:
            spans.append([first, last, [(run_id, start, end)]])
    kept, after = [], 0
    for first, last, ranges in spans:
        block, offset, cursor = pa.Table.from_batches(batches[first:last + 1], old.schema), starts[first], 0
        pieces = []
        for run_id, start, end in ranges:
            fresh_first, fresh_after = fresh_blocks.get(run_id, (0, 0))
            pieces += [block.slice(cursor, start - offset - cursor), fresh.slice(fresh_first, fresh_after - fresh_first)]
            cursor = end - offset
        kept += [*batches[after:first], *pa.concat_tables([*pieces, block.slice(cursor)]).combine_chunks().to_batches()]
        after = last + 1
    return pa.Table.from_batches([*kept, *batches[after:]], old.schema)


def _batches(table: pa.Table) -> list[pa.RecordBatch]:
    """The table as record batches of at most about 1 / CHUNKS of its rows (sliced, not copied, when
    it is not so already): a flush then copies a batch, not the table (at 100,000 runs, copying the
    2.5 million-row `config` table was a large part of a refresh; bench/RESULTS.md), and compute
    kernels see few chunks (they slow down over thousands)."""
    size = max(MIN_CHUNK_ROWS, -(-table.num_rows // CHUNKS))
    batches = table.to_batches()
    if len(batches) > 2 * CHUNKS or any(batch.num_rows > 2 * size for batch in batches):
        batches = table.to_batches(max_chunksize=size)
    return batches


def row_ranges(ids: pa.ChunkedArray, run_ids: list[str]) -> list[tuple[str, int, int]]:
    """(run_id, first row, row after its last) of each of `run_ids` (sorted) in `ids` (sorted), by
    binary search: an empty range for a run without rows."""
    ranges, cursor = [], 0
    for run_id in run_ids:
        start = bisect.bisect_left(ids, run_id, cursor, key=_text)
        cursor = bisect.bisect_right(ids, run_id, start, key=_text)
        ranges.append((run_id, start, cursor))
    return ranges


def _text(scalar: pa.Scalar) -> str:
    return scalar.as_py()


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
