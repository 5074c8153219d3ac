"""What a page reads of the selection (explorer.ui.page_runs) and the seed-group badges that say so,
without Streamlit's runtime."""

import pandas as pd
import pytest

from conftest import BIASES, write_cohort
from explorer import ui
from explorer.results import ResultStore


def two_groups(seeds: int) -> tuple[pd.DataFrame, list[str]]:
    """A tanh and a relu group of `seeds` seeds each (the runs frame's run_id and group_id), and
    their run ids in the Runs page's order."""
    run_ids = [f"{act}-s{seed}" for act in ("tanh", "relu") for seed in range(seeds)]
    return pd.DataFrame({"run_id": run_ids, "group_id": [r.split("-")[0] for r in run_ids]}), run_ids


def test_a_page_of_seed_groups_reads_every_selected_seed():
    """saxe2018_fig1: 50 tanh and 50 relu seeds selected. Per seed group a page reads them all; its
    first 60 runs had been 50 of one group and 10 of the other, whose statistics were over those 10."""
    runs, selected = two_groups(50)
    assert ui.runs_limit(by_group=True) == ui.MAX_GROUP_RUNS and ui.runs_limit(by_group=False) == ui.MAX_PAGE_RUNS
    assert ui.page_runs(selected, runs, ui.runs_limit(by_group=True)) == (selected, None)


def test_a_page_of_runs_cuts_whole_seed_groups_and_says_what_it_draws():
    runs, selected = two_groups(50)
    drawn, warning = ui.page_runs(selected, runs, ui.MAX_PAGE_RUNS)
    assert drawn == selected[:50]                 # tanh whole, no relu seed: not 50 + 10
    assert warning.startswith("100 runs in 2 seed groups are selected; this page reads at most 60 runs, in whole "
                              "seed groups: the first seed group (50 runs).")
    drawn, warning = ui.page_runs(selected + ["unknown"], runs, 100)   # a run the root lacks is a group of its own
    assert drawn == selected
    assert "101 runs in 3 seed groups" in warning and "the first 2 seed groups (100 runs)" in warning


def test_a_group_larger_than_the_cap_alone_is_cut_and_said_so():
    runs, selected = two_groups(100)
    drawn, warning = ui.page_runs(selected, runs, ui.MAX_PAGE_RUNS)
    assert drawn == selected[:60]
    assert ("200 runs in 2 seed groups are selected; this page reads at most 60 runs, and the first seed group alone "
            "has 100 selected seeds: the page draws 60 of them") in warning
    drawn, warning = ui.page_runs(selected[:100], runs, ui.MAX_PAGE_RUNS)
    assert drawn == selected[:60] and "100 runs in 1 seed group are selected" in warning
    assert "its one seed group has 100 selected seeds" in warning


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ResultStore:
    root = tmp_path_factory.mktemp("cohort")
    write_cohort(root, seeds=3)
    return ResultStore(root)


def test_a_group_the_cap_cut_says_how_many_of_its_selected_seeds_are_drawn(monkeypatch, store):
    """A group's badge tells the seeds drawn from the seeds selected: a group of which the page draws 2
    of its 3 selected seeds read "2 of 3 seeds selected", though all 3 were."""
    runs = store.runs().sort_values(["initial_bias", "seed"])
    by_bias = {bias: list(runs.loc[runs["initial_bias"] == bias, "run_id"]) for bias in BIASES}
    selected = by_bias[0.2] + by_bias[2.0][:2]
    monkeypatch.setattr(ui, "selection", lambda: selected)     # the session's selection
    drawn, warning = ui.page_runs(selected, runs, 2)
    assert drawn == by_bias[0.2][:2] and "the first seed group alone has 3 selected seeds" in warning
    (title,) = ui.group_titles(store, runs, drawn).values()
    assert title.endswith(" [2 of 3 selected seeds drawn]")
    # drawn whole: only what the selection leaves out of the root is said
    drawn, _ = ui.page_runs(selected, runs, 4)
    assert drawn == by_bias[0.2]
    assert list(ui.group_titles(store, runs, selected).values()) == ["initial_bias=0.2",
                                                                     "initial_bias=2 [2 of 3 seeds selected]"]
