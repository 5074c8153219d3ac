"""Which runs the Runs page's filters show: a config key with some of its values, and a SQL
condition over the `runs` view. The page's widgets hold a filter; a link's URL names one
(`?fkey=initial_bias&fval=0.2&where=...`, values as the page displays them), so that a link
saying "every run this filter shows" (`?select=shown`) reopens that selection without listing
100,000 run ids."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from ibstore import configdiff
from ibstore.sandbox import NoPlace, QueryStopped, SqlError
from ibstore.text import cut
from explorer.results import ResultStore
from explorer.run_rows import among, rows_where

KEY, VALUES, WHERE = "fkey", "fval", "where"      # the Runs page's widget keys and URL parameters
MAX_NAMED = 10    # what a warning names one by one (a link of 900 unknown runs made one of 58,604 characters)


def first_named(items: list[str]) -> str:
    """The first MAX_NAMED of `items`, each cut to ibstore.text.MAX_SHOWN_CHARS, and how many more.

    >>> first_named([str(i) for i in range(12)])
    '0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 2 more'
    """
    more = f" and {len(items) - MAX_NAMED:,} more" if len(items) > MAX_NAMED else ""
    return ", ".join(cut(item) for item in items[:MAX_NAMED]) + more


def shown_value(value_json: str) -> str:
    """A config value (JSON text) as the Values filter displays it and the URL carries it."""
    return configdiff.format_value(json.loads(value_json))


@dataclass(frozen=True)
class RunFilter:
    """A filter of the Runs page; in a URL as the page's widgets put it there."""
    key: str | None = None
    values: tuple[str, ...] = ()     # JSON text of the key's values (ResultStore.config_values)
    where: str = ""                  # a SQL condition over the `runs` view

    def shown(self, results: ResultStore, ordered: pd.DataFrame) -> pd.DataFrame:
        """The rows of `ordered` (every run, in the Runs page's order) this filter shows, in that
        order; SqlError if the condition does not run."""
        keep = pd.Series(True, index=ordered.index)
        if self.key and self.values:
            keep &= among(ordered["run_id"], results.runs_with_config(self.key, list(self.values)))
        if self.where:
            keep &= among(ordered["run_id"], results.run_ids_where(self.where))
        return ordered if keep.all() else rows_where(ordered, keep)   # a copy of 100,000 rows is a second


def busy(error: SqlError) -> bool:
    """Whether a condition failed for other statements holding the sandbox's places (it never
    started, or spent at least half its time waiting for one), not for anything in it: a link that
    names it is kept (an attacker's statements kept a shared link's filter waiting, and the pages
    replaced the link by the first runs, the very ones its filter left out). A condition that ran
    most of its time and was stopped is its own, and dropped."""
    return isinstance(error, NoPlace) or (isinstance(error, QueryStopped) and error.waited_s >= error.seconds / 2)


def write_url(shown_by: RunFilter) -> None:
    """`shown_by` into the URL (`?fkey=...&fval=...&where=...`; what it leaves unset is removed)."""
    params = st.query_params
    for name in (KEY, VALUES, WHERE):
        params.pop(name, None)
    if shown_by.key:
        params[KEY] = shown_by.key
        if shown_by.values:
            params[VALUES] = [shown_value(v) for v in shown_by.values]
    if shown_by.where:
        params[WHERE] = shown_by.where


def given_twice(params, names: tuple[str, ...] = (KEY, WHERE)) -> list[str]:
    """One sentence per parameter of `names` a link gives more than once (`params`: st.query_params):
    the last is read, and an attacker's `where=initial_bias>5&where=1=1` selected every run unsaid."""
    return [f"the link gives {name} {len(given)} times; its last value, {cut(given[-1])}, is the one read"
            for name in names if len(given := params.get_all(name)) > 1]


def from_url(results: ResultStore, key: str | None, shown_values: list[str], where: str) -> tuple[RunFilter, list[str]]:
    """The filter a URL names and what in it was not understood (one sentence each): a key no
    run has, values the key never takes are left out of the filter."""
    problems = []
    if key is not None and key not in results.config_keys():
        problems.append(f"fkey={key} is no config key of this root: the link's key filter is left out")
        key, shown_values = None, []
    values = []
    if key:
        offered = {shown_value(v): v for v in results.config_values(key)}
        values = [offered[v] for v in dict.fromkeys(shown_values) if v in offered]
        unknown = [v for v in shown_values if v not in offered]
        if unknown:
            problems.append(f"{key} never takes the value(s) {first_named(unknown)}: left out of the link's filter")
    return RunFilter(key, tuple(values), where), problems
