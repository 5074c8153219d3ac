"""A root of 100,000 runs on the Runs page: the table is sent a page at a time, a pick on one page
keeps the selection on the others, the parallel coordinates draw a fixed sample, and the sidebar
offers a bounded list (pure functions: explorer.runs_table, explorer.ui)."""

from __future__ import annotations

import pandas as pd

from explorer import runs_table, sidebar, ui
from explorer.runs_table import ROWS_PER_PAGE


def test_pages_cover_every_row_once():
    assert [runs_table.page_count(n) for n in (0, 1, ROWS_PER_PAGE, ROWS_PER_PAGE + 1)] == [1, 1, 1, 2]
    rows = 2 * ROWS_PER_PAGE + 17
    covered = [i for page in range(1, runs_table.page_count(rows) + 1)
               for i in range(rows)[runs_table.page_rows(rows, page)]]
    assert covered == list(range(rows))
    assert runs_table.page_rows(rows, 99) == runs_table.page_rows(rows, 3) == slice(2 * ROWS_PER_PAGE, rows)
    assert runs_table.page_rows(0, 1) == slice(0, 0)


def test_a_pick_on_one_page_keeps_the_selection_on_the_others():
    shown = [f"r{i}" for i in range(2 * ROWS_PER_PAGE + 5)]
    on_page = shown[runs_table.page_rows(len(shown), 2)]
    selection = [shown[ROWS_PER_PAGE + 500], shown[5], "filtered-out"]
    picked = runs_table.picked_selection(shown, on_page, [0, 10], selection)
    # page 1's run stays, page 2's unpicked run leaves, the picks join in table order, the hidden run stays
    assert picked == [shown[5], shown[ROWS_PER_PAGE], shown[ROWS_PER_PAGE + 10], "filtered-out"]
    unchanged = [i for i, r in enumerate(on_page) if r in selection]
    assert runs_table.picked_selection(shown, on_page, unchanged, selection) == [shown[5], shown[ROWS_PER_PAGE + 500],
                                                                                 "filtered-out"]


def test_the_parallel_coordinates_sample_is_fixed_bounded_and_in_table_order():
    table = pd.DataFrame({"run_id": [f"r{i}" for i in range(3 * runs_table.DRAWN_RUNS)]}).iloc[::-1]
    first, again = runs_table.drawn_sample(table), runs_table.drawn_sample(table)
    assert len(first) == runs_table.DRAWN_RUNS and first["run_id"].is_unique
    assert first.equals(again)
    assert first.index.is_monotonic_increasing and set(first["run_id"]) <= set(table["run_id"])
    small = table.iloc[:10]
    assert runs_table.drawn_sample(small) is small


def test_the_sidebar_offers_every_run_of_a_small_root_and_a_bounded_list_of_a_large_one():
    small = [f"r{i}" for i in range(ui.MAX_SIDEBAR_RUNS)]
    assert sidebar.sidebar_options(small, ["r3"]) == small
    large = [f"r{i}" for i in range(100_000)]
    offered = sidebar.sidebar_options(large, ["r99999", "r1"])
    assert offered == large[:ui.MAX_SIDEBAR_RUNS] + ["r99999"]


def test_badges_come_from_the_flags_and_a_diverged_status():
    runs = pd.DataFrame({"run_id": ["a", "b", "c", "d", "e", "f"],
                         "status": ["completed", "diverged", "completed", "completed", "diverged", "running"],
                         "dead_network": [True, False, None, float("nan"), True, False],
                         "diverged": [False, None, True, False, True, None]})
    assert ui.run_flags(runs) == {"a": ["dead"], "b": ["diverged"], "c": ["diverged"], "e": ["dead", "diverged"]}
    assert ui.run_flags(runs.drop(columns=["dead_network", "diverged"])) == {"b": ["diverged"], "e": ["diverged"]}
