"""Which rows of a per-run frame belong to a set of runs, through Arrow: pandas' `isin` on Arrow
text makes a pyarrow scalar of every id asked for, so a SQL condition that matches 100,000 runs
cost the Runs page most of its CPU per call; Arrow's `is_in` takes the ids as one array. The rows are
then taken by position: a boolean mask over a frame of Arrow columns cost far more at 100,000 runs
(pandas takes each column through the mask; bench/RESULTS.md, issue 20 branch warm100k)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def among(run_ids: pd.Series, wanted: pd.Series | Iterable[str]) -> np.ndarray:
    """For each of `run_ids`, whether it is one of `wanted` (a boolean array, False for a null)."""
    values = pa.array(run_ids, pa.large_string())    # Arrow text stays as it is: no copy
    value_set = pa.array(wanted if isinstance(wanted, pd.Series) else list(wanted), pa.large_string())
    return pc.is_in(values, value_set=value_set).fill_null(False).to_numpy(zero_copy_only=False)


def rows_among(frame: pd.DataFrame, wanted: pd.Series | Iterable[str]) -> pd.DataFrame:
    """The rows of `frame` whose run_id is one of `wanted`, in `frame`'s order."""
    return rows_where(frame, among(frame["run_id"], wanted))


def rows_where(frame: pd.DataFrame, keep: np.ndarray | pd.Series) -> pd.DataFrame:
    """The rows of `frame` where `keep` (booleans, one per row) is true, taken by position."""
    return frame.iloc[np.flatnonzero(np.asarray(keep, dtype=bool))]


def in_order(frame: pd.DataFrame, column: str, keys) -> pd.DataFrame:
    """`frame`'s rows sorted by `column` in the order of `keys` (a list, or a dict's keys: labels
    in the varying keys' order, titles in colour order), stably; values not among them last.

    >>> in_order(pd.DataFrame({"g": ["b", "a", "b", "c"]}), "g", ["b", "a"])["g"].tolist()
    ['b', 'b', 'a', 'c']
    """
    place = {key: i for i, key in enumerate(keys)}
    return frame.sort_values(column, key=lambda values: values.map(place), kind="stable")

