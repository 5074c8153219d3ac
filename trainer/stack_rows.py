"""One table's rows of a logged epoch for every network of a stack, as one Arrow table.

The rows are built for all N networks at once from numpy arrays over the network axis (one
`pa.Table.from_arrays` per table and logged epoch, no per-network dicts or Python floats); network
s's rows are a zero-copy slice of it, which its run's writer queues (`trainer.store.RunWriter.add`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ibstore.schema import TABLE_SCHEMAS


@dataclass(frozen=True)
class StackRows:
    """Rows of one table, network by network: network s's are table[bounds[s]:bounds[s + 1]]."""

    table: pa.Table
    bounds: np.ndarray      # [N + 1], non-decreasing

    @classmethod
    def build(cls, name: str, columns: dict[str, np.ndarray | pa.Array], network: np.ndarray,
              n_networks: int) -> StackRows:
        """Table `name` (ibstore.schema) from its columns, every one of len(network) rows; `network`:
        each row's network, sorted. Numbers are converted to the schema's types with Arrow's
        overflow checks (as `pa.Table.from_pydict` does)."""
        schema = TABLE_SCHEMAS[name]
        table = pa.Table.from_arrays([pa.array(columns[field.name], type=field.type) for field in schema],
                                     schema=schema)
        return cls(table, np.searchsorted(network, np.arange(n_networks + 1)))

    def of(self, position: int) -> pa.Table:
        start, end = self.bounds[position], self.bounds[position + 1]
        return self.table.slice(start, end - start)


def labels(names: Sequence[str | None], codes: np.ndarray) -> pa.Array:
    """A string column: names[codes[i]] per row (None: NULL), without a Python string per row."""
    return pa.array(names, type=pa.string()).take(pa.array(codes))
