"""explorer.run_rows: the rows of a per-run frame among some runs, against a plain set lookup."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from explorer.run_rows import among, rows_among, rows_where


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


def test_rows_among_and_rows_where_are_the_masked_rows_in_order():
    rng = np.random.default_rng(3)
    frame = pa.table({"run_id": [f"run-{i}" for i in rng.permutation(200)],
                      "epochs_done": rng.integers(0, 100, 200),
                      "final_test_accuracy": rng.random(200)}).to_pandas(types_mapper=pd.ArrowDtype)
    frame.index = rng.permutation(200) + 1000           # a non-default index is kept, not reset
    wanted = [f"run-{i}" for i in rng.choice(300, 40, replace=False)]
    expected = frame[frame["run_id"].isin(wanted)]
    assert 0 < len(expected) < 40
    pd.testing.assert_frame_equal(rows_among(frame, wanted), expected)
    keep = (frame["epochs_done"] > 50).to_numpy()
    pd.testing.assert_frame_equal(rows_where(frame, keep), frame[keep])
    assert rows_among(frame, []).empty and list(rows_among(frame, []).columns) == list(frame.columns)
