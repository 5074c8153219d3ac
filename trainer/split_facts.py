"""What a run records of each split of its data (ibstore.record.SplitFacts): its number of inputs,
its inputs of each class (the majority class's share is a one-class network's accuracy), and the
plug-in entropies of its labels and input rows, H(Y) and H(X), the ceilings of the MI estimates'
I(Y;T) and I(X;T) on that split (ibstore.phases)."""

from __future__ import annotations

import numpy as np

from ibstore.record import SplitFacts
from trainer.estimators.discrete import counts_entropy_bits, entropy_bits


def split_facts(rows: dict[str, slice], labels: np.ndarray, n_classes: int,
                inputs: np.ndarray) -> dict[str, SplitFacts]:
    """Each split's number of inputs, its inputs of each class, and the plug-in entropies of its
    labels and input rows, H(Y) and H(X) in bits, computed as the MI estimators compute them (the
    ceilings of their I(Y;T) and I(X;T): ibstore.phases)."""
    row_ids = distinct_row_ids(inputs)
    facts = {}
    for split, part in rows.items():
        counts = np.bincount(labels[part], minlength=n_classes).tolist()
        facts[split] = SplitFacts(inputs=len(labels[part]), h_y_bits=counts_entropy_bits(tuple(counts)),
                                  h_x_bits=entropy_bits(np.bincount(row_ids[part])), class_counts=counts)
    return facts


def distinct_row_ids(inputs: np.ndarray) -> np.ndarray:
    """Each row of `inputs` [n, ...] numbered by its value: rows alike share a number. Their plug-in
    entropy H(X) is log2 n where no two rows are alike, less where some repeat (tabular data of a
    few discrete features: a new user's 3000 rows were 443 distinct ones, 7.4 bits, and their first
    layer read "not shown" below a ceiling of log2 n). Rows alike give alike activations, so H(X)
    bounds every estimator's I(X;T). A random projection orders the rows in one pass (sorting
    70,000 MNIST rows as bytes took 0.9 s); rows whose projections tie are then compared whole, and
    only distinct rows tied by rounding fall back to that sort.

    >>> distinct_row_ids(np.array([[0.0, 1.0], [1.0, 1.0], [-0.0, 1.0], [0.0, 1.0]])).tolist()   # -0.0 is 0.0
    [0, 1, 0, 0]
    """
    rows = inputs.reshape(len(inputs), -1)
    weights = np.random.default_rng(0).standard_normal(rows.shape[1])
    # a sum along each row, the same order for every row: a matrix product's blocking gave one row
    # different roundings at different places in the chunk (an attacker's: 99 ids for 97 rows)
    projection = np.concatenate([(rows[start:start + 8192].astype(np.float64) * weights).sum(axis=1)
                                 for start in range(0, len(rows), 8192)] or [np.empty(0)])
    order = np.argsort(projection, kind="stable")
    starts = np.r_[True, np.diff(projection[order]) != 0]
    first = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]    # each tie's first row
    tied = ~starts
    if (rows[order[tied]] == rows[first[tied]]).all():
        ids = np.empty(len(rows), dtype=np.int64)
        ids[order] = np.cumsum(starts) - 1
        return ids
    as_bytes = np.ascontiguousarray(rows + 0).view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))
    return np.unique(as_bytes, return_inverse=True)[1].ravel()
