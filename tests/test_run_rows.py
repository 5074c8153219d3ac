"""explorer.run_rows: the rows of a per-run frame among some runs, against a plain set lookup."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from explorer.run_rows import among


@pytest.mark.parametrize("dtype", ["str", object])
@pytest.mark.parametrize("wanted_as", [list, set, tuple, pd.Series])
def test_among_is_membership_of_each_run_id(dtype, wanted_as):
    rng = np.random.default_rng(7)
    run_ids = pd.Series([f"run-{i}" for i in rng.permutation(500)] + [None], dtype=dtype)
    wanted = [f"run-{i}" for i in rng.choice(800, 300, replace=False)]   # some the frame lacks
    expected = np.array([value in set(wanted) for value in run_ids])
    mask = among(run_ids, wanted_as(wanted))
    assert mask.dtype == bool and mask.shape == (len(run_ids),)
    assert (mask == expected).all() and 0 < mask.sum() < len(run_ids)


def test_among_nothing_wanted_and_arrow_frames():
    frame = pa.table({"run_id": ["b", "a", "c"]}).to_pandas()   # Arrow-backed text, as the runs frame
    assert not among(frame["run_id"], []).any()
    assert frame[among(frame["run_id"], frame["run_id"].iloc[1:])]["run_id"].tolist() == ["a", "c"]
