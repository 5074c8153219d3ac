"""trainer.final_metrics: run.json's final_* fields, checked against a row-by-row reading of the rule."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from ibstore.schema import TABLE_SCHEMAS
from trainer.final_metrics import FinalMetrics


def by_rows(chunks: list[pa.Table]) -> dict[str, float | None]:
    """The rule as DESIGN.md states it, one row at a time: the last epoch's loss and accuracy per
    split (a later row of the same epoch wins), the best finite test accuracy."""
    last: dict[str, tuple] = {}
    best = None
    for chunk in chunks:
        for row in chunk.to_pylist():
            if row["split"] in ("train", "test") and row["epoch"] >= last.get(row["split"], (-1,))[0]:
                last[row["split"]] = (row["epoch"], row["loss"], row["accuracy"])
            if row["split"] == "test" and math.isfinite(row["accuracy"]) and (best is None or row["accuracy"] > best):
                best = row["accuracy"]
    fields = {"best_test_accuracy": best}
    for split in ("train", "test"):
        _, loss, accuracy = last.get(split, (None, None, None))
        fields[f"final_{split}_loss"], fields[f"final_{split}_accuracy"] = loss, accuracy
    return fields


def metrics(rng: np.random.Generator, epochs: np.ndarray) -> pa.Table:
    n = len(epochs)
    accuracy = rng.random(n)
    accuracy[rng.random(n) < 0.1] = np.nan
    return pa.table({"run_id": ["r"] * n, "epoch": epochs.astype(np.int32), "split": rng.choice(["train", "test"], n),
                     "loss": rng.random(n), "accuracy": accuracy}, schema=TABLE_SCHEMAS["metrics"])


def test_chunks_in_any_cut_give_the_row_by_row_fields():
    rng = np.random.default_rng(7)
    for _ in range(50):
        chunks = [metrics(rng, np.sort(rng.integers(0, 30, rng.integers(0, 12)))) for _ in range(rng.integers(1, 5))]
        finals = FinalMetrics()
        for chunk in chunks:
            finals.observe(chunk)
        expected = by_rows(chunks)
        got = finals.fields()
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            assert (got[key] is None and value is None) or got[key] == value or \
                (math.isnan(got[key]) and math.isnan(value)), (key, got, expected)


def test_nothing_observed_is_all_null():
    assert set(FinalMetrics().fields().values()) == {None}
