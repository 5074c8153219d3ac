"""The Runs page's table (explorer.runs_table.runs_table): columns in reading order, rows by the
varying keys' values and the seed, flags and errors as text."""

from __future__ import annotations

import pandas as pd
import pytest

from explorer import runs_table


def runs() -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": ["b2", "b10", "bm1"], "status": ["completed", "failed", "completed"],
        "initial_bias": [2.0, 10.0, -1.0], "seed": [0, 0, 0], "name": ["n"] * 3,
        "final_test_accuracy": [0.9, None, 0.5], "final_train_accuracy": [0.95, None, 0.52],
        "epochs_done": [500, 20, 120], "epochs_total": [500, 500, 500], "duration_s": [7.0, 1.0, 7.0],
        "cohort": ["c"] * 3, "error": [None, "ValueError: boom", None]})


def test_rows_sort_by_value_and_columns_read_left_to_right():
    table = runs_table.runs_table(runs(), ["initial_bias"], {"bm1": ["dead"]})
    assert list(table["run_id"]) == ["bm1", "b2", "b10"]     # -1 < 2 < 10: numbers, not text
    assert list(table.columns) == ["flags", "status", "initial_bias", "seed", "final_test_accuracy",
                                   "final_train_accuracy", "progress", *runs_table.LAST]
    assert list(table["flags"]) == ["dead", "", ""]
    assert list(table["progress"]) == [1.0, 1.0, 0.04]    # bm1 completed at epoch 120 (stop_at_accuracy): done


def test_a_run_without_an_error_shows_an_empty_cell():
    table = runs_table.runs_table(runs(), ["initial_bias"], {})
    assert list(table["error"]) == ["", "", "ValueError: boom"]


def phases_rows() -> pd.DataFrame:
    """The `phases` rows of layer 4 of four runs: live ones whose compression over the floor is 0 and
    0.05, a dead one (0, as every dead network's) and a diverged one."""
    return pd.DataFrame({
        "run_id": ["live0", "live1", "dead", "diverged"], "layer": 4, "layer_name": "dense_4", "estimator": "binning",
        "params": '{"bin_size": 0.07}', "split": "train", "compression_bits": [0.5, 0.3, 0.0, 0.7],
        "noise_floor_bits": [0.5, 0.25, 0.0, 0.1], "dead_network": [False, False, True, False],
        "diverged": [False, False, False, True], "status": ["completed", "completed", "completed", "diverged"]})


def test_a_dead_or_diverged_run_has_no_compression_and_is_counted():
    """A dead network's compression is 0, which on the parallel coordinates looked like a live run's
    0: it is NULL, as every page leaves dead networks out, and the note says how many and why."""
    compression = runs_table.layer_compression(phases_rows(), (4, "dense_4"), "binning", '{"bin_size": 0.07}', "train")
    values = compression[runs_table.COMPRESSION]
    assert values[["live0", "live1"]].tolist() == pytest.approx([0.0, 0.05])
    assert values[["dead", "diverged"]].isna().all()
    assert compression["left_out"].fillna("kept").tolist() == ["kept", "kept", "dead", "diverged"]
    note = runs_table.left_out_note(compression["left_out"])
    assert note.startswith("2 of the 4 runs measured draw no line (1 dead, 1 diverged)")
    assert runs_table.left_out_note(compression["left_out"].iloc[:2]) is None


def test_networks_of_two_depths_are_compared_on_the_same_layer():
    """Layer 3 is dense_3 of a [10, 7, 5, 4, 3] network and the output layer of a [10, 7, 5] one: a
    layer is its number and its name, and by default each network's own last hidden layer."""
    rows = []
    for run_id, depth in (("deep", 5), ("shallow", 3)):
        for layer in range(depth + 1):
            name = "output" if layer == depth else f"dense_{layer}"
            rows.append({"run_id": run_id, "layer": layer, "layer_name": name, "estimator": "binning",
                         "params": "{}", "split": "train", "compression_bits": 1.0 + layer / 10 + (depth == 3),
                         "noise_floor_bits": 0.5, "dead_network": False, "diverged": False, "status": "completed"})
    phases = pd.DataFrame(rows)
    dense_3 = runs_table.layer_compression(phases, (3, "dense_3"), "binning", "{}", "train")
    assert dense_3.index.tolist() == ["deep"] and dense_3[runs_table.COMPRESSION].tolist() == pytest.approx([0.8])
    own = runs_table.layer_compression(phases, None, "binning", "{}", "train")
    assert own["layer"].to_dict() == {"deep": "4 · dense_4", "shallow": "2 · dense_2"}
    assert own[runs_table.COMPRESSION].to_dict() == pytest.approx({"deep": 0.9, "shallow": 1.7})
    assert runs_table.unmeasured_note(2, len(dense_3), "binning {} train MI at 3 · dense_3") == \
        "1 of the 2 runs shown recorded no binning {} train MI at 3 · dense_3: they draw no line."
    assert runs_table.unmeasured_note(2, 2, "x") is None
    # files written before layer_name existed: the layer is its number alone
    unnamed = runs_table.layer_compression(phases.assign(layer_name=None), (3, None), "binning", "{}", "train")
    assert unnamed.index.tolist() == ["deep", "shallow"] and unnamed["layer"].tolist() == ["3", "3"]
