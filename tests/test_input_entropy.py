"""H(X), the plug-in entropy of a split's input rows, the ceiling of every estimator's I(X;T):
trainer.split_facts.distinct_row_ids against numpy's own sort of the rows, and the ceiling the
`phases` view takes from it (ibstore.phases)."""

import numpy as np
import pytest

from trainer import split_facts
from trainer.estimators.discrete import entropy_bits


def entropy_of_distinct_rows(rows: np.ndarray) -> float:
    """H(X) in bits written out: -sum p log2 p over the distinct rows, p their share of the n rows."""
    _, counts = np.unique(rows + 0.0, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


@pytest.mark.parametrize("distinct", [3, 40, 443, 3000])
def test_the_row_ids_give_the_entropy_of_the_distinct_rows(distinct):
    # a new user's 3000 rows of 4 rounded features were 443 distinct ones: 7.4 bits, not log2 3000
    rng = np.random.default_rng(distinct)
    table = rng.normal(size=(distinct, 4)).astype(np.float32)
    rows = table[rng.integers(0, distinct, 3000)]
    ids = split_facts.distinct_row_ids(rows)
    assert entropy_bits(np.bincount(ids)) == pytest.approx(entropy_of_distinct_rows(rows), abs=1e-12)
    assert len(np.unique(ids)) == len(np.unique(rows, axis=0))
    for row_id in np.unique(ids)[:20]:                               # one id: one row value
        assert (rows[ids == row_id] == rows[ids == row_id][0]).all()


def test_distinct_rows_give_log2_n_and_minus_zero_is_zero():
    rows = np.random.default_rng(0).random((4096, 12))
    assert entropy_bits(np.bincount(split_facts.distinct_row_ids(rows))) == pytest.approx(12.0, abs=1e-12)
    ids = split_facts.distinct_row_ids(np.array([[0.0, 1.0], [-0.0, 1.0], [0.0, -1.0]]))
    assert ids[0] == ids[1] != ids[2]


def test_distinct_rows_whose_projections_tie_are_told_apart(monkeypatch):
    # the projection's weights all 0: every row ties, and the whole rows are sorted instead
    class Zeros:
        def standard_normal(self, size):
            return np.zeros(size)

    monkeypatch.setattr(split_facts.np.random, "default_rng", lambda seed: Zeros())
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [-0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    ids = split_facts.distinct_row_ids(rows)
    assert ids[0] == ids[3] and ids[1] == ids[2] and len(set(ids.tolist())) == 3
    assert entropy_bits(np.bincount(ids)) == pytest.approx(entropy_of_distinct_rows(rows), abs=1e-12)


def test_split_facts_hold_each_splits_input_entropy():
    rows = np.repeat(np.arange(6.0)[:, None], 2, axis=0)        # 12 rows, each value twice
    labels = np.array([0, 1] * 6)
    facts = split_facts.split_facts({"train": slice(0, 8), "test": slice(8, 12), "full": slice(0, 12)}, labels, 2, rows)
    assert facts["train"].h_x_bits == pytest.approx(2.0) and facts["test"].h_x_bits == pytest.approx(1.0)
    assert facts["full"].h_x_bits == pytest.approx(np.log2(6)) and facts["full"].inputs == 12


def test_the_phases_view_takes_the_ceiling_from_the_recorded_input_entropy(tmp_path):
    import json

    from bench.make_results import write_run
    from explorer.results import ResultStore
    from ibstore import layout

    run_id = write_run(tmp_path, "dups", {"epochs": 20}, logged=5)
    path = layout.run_dir(tmp_path, run_id) / "run.json"
    record = json.loads(path.read_text())
    record["splits"]["train"]["h_x_bits"] = 7.395
    path.write_text(json.dumps(record))
    phases = ResultStore(tmp_path).phases()
    ceiling = phases.groupby("split")["i_xt_ceiling_bits"].unique()
    assert ceiling["train"].tolist() == [7.395]
    assert ceiling["test"].tolist() == [pytest.approx(np.log2(record["splits"]["test"]["inputs"]))]   # none recorded


@pytest.mark.parametrize("width", [33, 100, 784])
def test_a_row_gets_one_id_wherever_it_sits_among_many(width):
    # An attacker's: 20,011 draws of 97 rows got 99 ids, a matrix product rounding one row differently at
    # different places in its chunk
    rng = np.random.default_rng(width)
    table = rng.normal(size=(97, width)).astype(np.float32)
    rows = table[rng.integers(0, 97, 20_011)]
    ids = split_facts.distinct_row_ids(rows)
    assert len(np.unique(ids)) == 97
    assert entropy_bits(np.bincount(ids)) == pytest.approx(entropy_of_distinct_rows(rows), abs=1e-12)
