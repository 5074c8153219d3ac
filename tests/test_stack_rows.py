"""A stack's rows as one Arrow table, sliced per network, and a writer's queue of tables and column dicts."""

import numpy as np
import pyarrow as pa
import pytest

from ibstore.schema import TABLE_SCHEMAS
from trainer.health import LayerHealth
from trainer.network_rows import gradient_rows
from trainer.stack_rows import StackRows, labels
from trainer.store import queued_table


def metrics_columns(run_id, epochs):
    return {"run_id": [run_id] * len(epochs), "epoch": np.array(epochs), "split": ["train"] * len(epochs),
            "loss": np.array(epochs, float) / 10, "accuracy": np.full(len(epochs), 0.5)}


def test_each_network_gets_exactly_its_rows_even_with_none():
    network = np.array([0, 0, 2, 2, 2])          # network 1 has no rows (e.g. no non-empty bin)
    rows = StackRows.build("metrics", {**metrics_columns("x", [1, 2, 3, 4, 5]),
                                       "run_id": labels(["a", "b", "c"], network)}, network, 3)
    assert rows.table.schema == TABLE_SCHEMAS["metrics"]
    assert [rows.of(s)["run_id"].to_pylist() for s in range(3)] == [["a", "a"], [], ["c", "c", "c"]]
    assert rows.of(2)["epoch"].to_pylist() == [3, 4, 5]


def test_numbers_that_do_not_fit_the_schema_are_refused_not_wrapped():
    with pytest.raises(pa.ArrowInvalid):
        StackRows.build("metrics", metrics_columns("a", [2**40]), np.zeros(1, int), 1)


def test_a_label_code_past_the_names_is_null_only_where_the_name_is_none():
    assert labels(["alive", None], np.array([1, 0, 1])).to_pylist() == [None, "alive", None]


def test_gradient_rows_give_each_network_its_layers_and_health_with_null_for_the_output_layer():
    zeros = {"grad_std_norm": np.zeros(2), "weight_norm": np.zeros(2)}
    gradients = [{"grad_mean_norm": np.array([1.0, 2.0]), "snr": np.array([0.5, np.nan]), **zeros},
                 {"grad_mean_norm": np.array([3.0, 4.0]), "snr": np.array([0.25, 0.75]), **zeros}]
    states = [[LayerHealth.DEAD, LayerHealth.ALIVE]]      # one hidden layer, two networks
    rows = gradient_rows(7, ["a", "b"], gradients, states, ["dense", "out"])
    second = rows.of(1).to_pydict()
    assert second["run_id"] == ["b", "b"] and second["layer"] == [0, 1] and second["epoch"] == [7, 7]
    assert second["grad_mean_norm"] == [2.0, 4.0] and second["layer_name"] == ["dense", "out"]
    assert np.isnan(second["snr"][0]) and second["snr"][1] == 0.75
    assert rows.of(0)["health"].to_pylist() == ["dead", None] and second["health"] == ["alive", None]


def test_a_writers_queue_of_tables_and_column_dicts_keeps_its_order():
    stack = StackRows.build("metrics", metrics_columns("a", [3, 4]), np.zeros(2, int), 1)
    queued = [metrics_columns("a", [1]), metrics_columns("a", [2]), stack.of(0), metrics_columns("a", [5])]
    table = queued_table(queued, TABLE_SCHEMAS["metrics"])
    assert table.schema == TABLE_SCHEMAS["metrics"]
    assert table["epoch"].to_pylist() == [1, 2, 3, 4, 5]
    assert table["loss"].to_pylist() == [0.1, 0.2, 0.3, 0.4, 0.5]
