"""How soon seed groups reach a test accuracy (`cohort_tables.epochs_to_accuracy`), against a truth
written here: each run's test accuracy sits at 0.5 until the epoch it reaches 0.95, and the p of
the exact Mann-Whitney U test comes from scipy. A sceptic's cases: runs stopped on reaching it
(`stop_at_accuracy`), a diverged seed, and a test split where predicting one class scores 0.908."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from explorer import cohort_tables

LABELS = {"fast": "learning_rate=0.004", "slow": "learning_rate=0.0004"}


def cohort(runs: dict[str, tuple[str, float, int, str]], class_counts: list[int] | None = None):
    """`runs`: run_id -> (group, the epoch it reaches 0.95 (NaN: never), its last epoch, status):
    the `runs` rows and the per-epoch test metrics."""
    metrics = pd.concat([pd.DataFrame({"run_id": run_id, "split": "test", "epoch": np.arange(last + 1),
                                       "accuracy": np.where(np.arange(last + 1) >= reach, 0.95, 0.5)})
                         for run_id, (_, reach, last, _) in runs.items()])
    splits = {"test": {"class_counts": class_counts}} if class_counts else None
    rows = pd.DataFrame({"run_id": list(runs), "group_id": [group for group, *_ in runs.values()],
                         "seed": range(len(runs)), "status": [status for *_, status in runs.values()],
                         "dead_network": False, "diverged": [status == "diverged" for *_, status in runs.values()],
                         "splits": [splits] * len(runs)})
    return metrics, rows


def exact_p(a, b) -> float:
    return scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue


def test_runs_stopped_on_reaching_the_threshold_are_not_censored():
    # stop_at_accuracy: every run's last epoch is the one it reached the threshold at. The pair's
    # shortest run (11 epochs) had censored 9 of 10 seeds there: "> 11 (1 of 5)", p 1.
    fast, slow = [17, 17, 19, 11, 16], [164, 112, 130, 75, 125]
    runs = {f"f{i}": ("fast", e, e, "completed") for i, e in enumerate(fast)}
    runs |= {f"s{i}": ("slow", e, e, "completed") for i, e in enumerate(slow)}
    metrics, rows = cohort(runs)
    (row,) = cohort_tables.epochs_to_accuracy(metrics, rows, LABELS, 0.9, reference="slow").to_dict("records")
    assert (row["a"], row["to epoch"]) == (LABELS["fast"], 164)
    assert row["median epoch a (reach)"] == "17 (5 of 5)" and row["median epoch b (reach)"] == "125 (5 of 5)"
    assert float(row["p"]) == pytest.approx(exact_p(fast, slow), rel=1e-3)       # 2 / 252
    # above what stopped them, the stopped runs are censored at their ends: the shortest, 11
    (row,) = cohort_tables.epochs_to_accuracy(metrics, rows, LABELS, 0.96, reference="slow").to_dict("records")
    assert row["to epoch"] == 11 and row["median epoch a (reach)"] == "> 11 (0 of 5)"


def test_a_completed_run_that_never_reaches_it_censors_its_pair_at_its_end():
    runs = {"f0": ("fast", 10, 300, "completed"), "f1": ("fast", 250, 300, "completed"),
            "s0": ("slow", math.nan, 120, "completed"), "s1": ("slow", 40, 300, "completed")}
    metrics, rows = cohort(runs)
    (row,) = cohort_tables.epochs_to_accuracy(metrics, rows, LABELS, 0.9, reference="slow").to_dict("records")
    # f1's 250 is beyond what s0 could tell (120): both are censored there
    assert row["to epoch"] == 120
    assert row["median epoch a (reach)"] == "> 65 (1 of 2)" and row["median epoch b (reach)"] == "> 80 (1 of 2)"


def test_a_diverged_seed_that_never_reached_it_counts_as_never_not_as_censoring():
    # It had left the table ("2 of 2"), and its end (epoch 5) would have censored every run at 5
    runs = {"f0": ("fast", 10, 100, "completed"), "f1": ("fast", 12, 100, "completed"),
            "f2": ("fast", 14, 100, "completed"), "s0": ("slow", 50, 100, "completed"),
            "s1": ("slow", 60, 100, "completed"), "s2": ("slow", math.nan, 5, "diverged")}
    metrics, rows = cohort(runs)
    (row,) = cohort_tables.epochs_to_accuracy(metrics, rows, LABELS, 0.9, reference="slow").to_dict("records")
    assert row["to epoch"] == 100 and row["median epoch b (reach)"] == "60 (2 of 3)"
    assert float(row["p"].split()[0]) == pytest.approx(exact_p([10, 12, 14], [50, 60, math.inf]), rel=1e-3)
    per_seed = cohort_tables.reach_per_seed(cohort_tables.reach_epochs(metrics, rows, 0.9), LABELS)
    assert per_seed["first epoch at the threshold"].tolist() == ["10", "12", "14", "50", "60", "never (diverged at 5)"]
    assert per_seed["seed group"].tolist() == [LABELS["fast"]] * 3 + [LABELS["slow"]] * 3
    # where most seeds diverged without reaching it, the median is "never", not a bound ("> 100")
    runs |= {"s1": ("slow", math.nan, 3, "diverged")}
    metrics, rows = cohort(runs)
    (row,) = cohort_tables.epochs_to_accuracy(metrics, rows, LABELS, 0.9, reference="slow").to_dict("records")
    assert row["median epoch b (reach)"] == "never (1 of 3)" and row["median epoch a (reach)"] == "12 (3 of 3)"


def test_a_threshold_that_predicting_one_class_meets_is_not_compared():
    # A 90/10 test split: a group that never learned sat at 0.908 from epoch 0 and "reached" 0.9
    # sooner than the group that learned, p 0.048
    runs = {f"d{i}": ("slow", 0, 300, "completed") for i in range(5)}
    runs |= {f"l{i}": ("fast", 2, 300, "completed") for i in range(5)}
    metrics, rows = cohort(runs, class_counts=[454, 46])
    assert cohort_tables.one_class_score(rows) == pytest.approx(454 / 500)
    assert cohort_tables.epochs_to_accuracy(metrics, rows, LABELS, 0.9).empty
    assert cohort_tables.reach_note(rows, 0.9).startswith("Not compared at 0.9: a network that predicts one class "
                                                          "scores 0.908 on the test split")
    assert cohort_tables.reach_note(rows, 0.95) is None and not cohort_tables.epochs_to_accuracy(
        metrics, rows, LABELS, 0.95).empty
    # the report's threshold: halfway from 0.908 to 1, up to the slider's step
    assert cohort_tables.reach_threshold(rows) == 0.96
    assert cohort_tables.reach_threshold(cohort(runs, class_counts=[50, 50])[1]) == cohort_tables.REACH_ACCURACY
