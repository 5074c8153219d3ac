"""run.json's final_* and best_test_accuracy fields, from the metrics rows as they come.

The last epoch's loss and accuracy per split (train, test) and the best finite test
accuracy. The run writer keeps them current at each flush; the synthetic generator
(bench/make_results.py) uses the same rule.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SPLITS = ("train", "test")


class FinalMetrics:
    def __init__(self) -> None:
        self.last: dict[str, tuple[int, float, float]] = {}   # split -> (epoch, loss, accuracy)
        self.best_test: float | None = None

    def copy(self) -> FinalMetrics:
        twin = FinalMetrics()
        twin.last, twin.best_test = dict(self.last), self.best_test
        return twin

    def observe(self, metrics: pa.Table | None) -> None:
        """Take in metrics rows (run_id, epoch, split, loss, accuracy); of rows with equal epoch
        and split the later one counts."""
        if metrics is None or metrics.num_rows == 0:
            return
        epoch = metrics["epoch"].to_numpy(zero_copy_only=False)
        loss = metrics["loss"].to_numpy(zero_copy_only=False)
        accuracy = metrics["accuracy"].to_numpy(zero_copy_only=False)
        for split in SPLITS:
            rows = np.flatnonzero(pc.equal(metrics["split"], split).to_numpy(zero_copy_only=False))
            if not len(rows):
                continue
            last = rows[len(rows) - 1 - np.argmax(epoch[rows][::-1])]   # the latest row of the newest epoch
            if epoch[last] >= self.last.get(split, (-1,))[0]:
                self.last[split] = (int(epoch[last]), float(loss[last]), float(accuracy[last]))
            if split == "test":
                finite = accuracy[rows][np.isfinite(accuracy[rows])]
                if len(finite) and (self.best_test is None or finite.max() > self.best_test):
                    self.best_test = float(finite.max())

    def fields(self) -> dict[str, float | None]:
        """The RunRecord fields (non-finite losses become null in RunRecord)."""
        fields: dict[str, float | None] = {"best_test_accuracy": self.best_test}
        for split in SPLITS:
            _, loss, accuracy = self.last.get(split, (None, None, None))
            fields[f"final_{split}_loss"], fields[f"final_{split}_accuracy"] = loss, accuracy
        return fields
