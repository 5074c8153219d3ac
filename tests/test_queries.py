"""explorer.queries.runs: one row per run ordered by run_id, whether or not the view table
came sorted (the index keeps it sorted; the sort is then skipped)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from explorer import queries


@pytest.mark.parametrize("order", ["sorted", "shuffled", "one out of place", "with a null"])
def test_runs_are_ordered_by_run_id(order):
    rng = np.random.default_rng(3)
    ids = sorted(f"run-{i}" for i in rng.choice(10_000, 500, replace=False))
    if order == "shuffled":
        ids = list(rng.permutation(ids))
    elif order == "one out of place":
        ids[10], ids[400] = ids[400], ids[10]
    elif order == "with a null":
        ids[0] = None
    table = pa.table({"run_id": pa.array(ids, pa.string()), "accuracy": rng.random(len(ids))})
    table = pa.concat_tables([table.slice(0, 123), table.slice(123)])   # chunked, as views are
    frame = queries.runs(table)
    expected = table.sort_by("run_id").to_pandas()
    assert frame["run_id"].tolist() == expected["run_id"].tolist()
    assert np.array_equal(frame["accuracy"].to_numpy(), expected["accuracy"].to_numpy())
    assert frame["run_id"].dropna().is_monotonic_increasing
