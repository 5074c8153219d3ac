"""The Runs page's table (explorer.runs_table.runs_table): columns in reading order, rows by the
varying keys' values and the seed, flags and errors as text."""

from __future__ import annotations

import pandas as pd

from explorer import runs_table


def runs() -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": ["b2", "b10", "bm1"], "status": ["completed", "failed", "completed"],
        "initial_bias": [2.0, 10.0, -1.0], "seed": [0, 0, 0], "name": ["n"] * 3,
        "final_test_accuracy": [0.9, None, 0.5], "final_train_accuracy": [0.95, None, 0.52],
        "epochs_done": [500, 20, 500], "epochs_total": [500, 500, 500], "duration_s": [7.0, 1.0, 7.0],
        "cohort": ["c"] * 3, "error": [None, "ValueError: boom", None]})


def test_rows_sort_by_value_and_columns_read_left_to_right():
    table = runs_table.runs_table(runs(), ["initial_bias"], {"bm1": ["dead"]})
    assert list(table["run_id"]) == ["bm1", "b2", "b10"]     # -1 < 2 < 10: numbers, not text
    assert list(table.columns) == ["flags", "status", "initial_bias", "seed", "final_test_accuracy",
                                   "final_train_accuracy", "progress", *runs_table.LAST]
    assert list(table["flags"]) == ["dead", "", ""]
    assert list(table["progress"]) == [1.0, 1.0, 0.04]


def test_a_run_without_an_error_shows_an_empty_cell():
    table = runs_table.runs_table(runs(), ["initial_bias"], {})
    assert list(table["error"]) == ["", "", "ValueError: boom"]
