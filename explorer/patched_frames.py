"""A frame of one row per run patched for the runs that changed (explorer.snapshot_memo's
`carried`): a live root changes a few runs per second, and at 100,000 runs building the runs
frame or the Runs page's ordered table again after every flush took seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from explorer import queries
from ibstore import index_views


def replaced_runs(frame: pd.DataFrame, table: pa.Table, changed: set[str]) -> pd.DataFrame | None:
    """The runs frame `frame` (an earlier `runs` view's rows, in its order: by run_id) with the
    rows of the runs `changed` made again from `table`, the `runs` view now (the same runs). They
    are found by binary search in `table`, so by position in `frame` (checked by their ids):
    hashing 100,000 ids to find them took a measurable part of a refresh (bench/RESULTS.md)."""
    ids = sorted(changed)
    ranges = index_views.row_ranges(table["run_id"], ids)
    positions = np.array([start for _, start, _ in ranges], dtype=np.int64)
    rows = table.take(positions).to_pandas() if all(end == start + 1 for _, start, end in ranges) else None
    if rows is None or rows["run_id"].tolist() != ids or len(frame) != table.num_rows:
        return replaced_rows(frame, queries.runs_of(table, ids))
    return replaced_rows(frame, rows, positions=positions)


def replaced_rows(frame: pd.DataFrame, rows: pd.DataFrame, unchanged: list[str] = (),
                  positions: np.ndarray | None = None) -> pd.DataFrame | None:
    """`frame` with the rows of `rows` (matched by run_id, or at `positions` if given and their
    ids match) put in place of its own, the other rows and the order kept; None (build it again)
    if the columns differ, a run of `rows` is not in `frame`, a value does not fit its column's
    type, or a column of `unchanged` (what orders the rows) changed."""
    if list(rows.columns) != list(frame.columns):
        return None
    if positions is None or frame["run_id"].iloc[positions].tolist() != rows["run_id"].tolist():
        positions = pd.Index(frame["run_id"]).get_indexer(rows["run_id"])
    if (positions < 0).any():
        return None
    for column in unchanged:
        if not frame[column].iloc[positions].reset_index(drop=True).equals(rows[column].reset_index(drop=True)):
            return None
    before = frame.iloc[positions].reset_index(drop=True)
    patched = frame.copy(deep=False)   # copied on write: only the columns set below are copied
    try:
        for index, column in enumerate(frame.columns):
            if not before[column].equals(rows[column].reset_index(drop=True)):   # a flush changes a few
                patched.iloc[positions, index] = rows[column].to_numpy()
    except (TypeError, ValueError):
        return None
    # A column keeps its type (text into a column of objects that held only nulls is fine); one
    # that had to change it, e.g. integers that got a null, is built again.
    return patched if patched.dtypes.equals(frame.dtypes) else None
