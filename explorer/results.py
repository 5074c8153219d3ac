"""`ResultStore`: the results root for notebooks and for the app (deep-bottleneck's ExperimentLoader,
replaced).

    store = ResultStore("data/results")
    runs = store.runs()                                  # one row per run
    ids = runs.query("cohort == 'initial_bias'").run_id.tolist()
    store.varying_keys(ids)                              # ['initial_bias']
    store.infoplane_chart(ids, split="train")            # Altair grid, panels titled by the varying keys
    store.sql("SELECT run_id, max(i_xt) FROM mi GROUP BY ALL")

The small tables (runs, config, metrics, mi, gradients) are read into an in-memory DuckDB once
per state of the root and re-read when a file changes; `activations` and `activation_stats`
are read per run from their files. Runs and files that cannot be read are skipped and listed
in `.problems`.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import duckdb
import pandas as pd

from explorer import configdiff, queries
from ibstore import layout, sandbox
from ibstore.scan import Problem, Scan, scan

SMALL_TABLES = ("metrics", "mi", "gradients")
DEAD_GRADIENT = 1e-6   # a run whose gradient-mean norm never exceeds this after epoch 0 is dead


class ResultStore:
    def __init__(self, root: str | os.PathLike | None = None, *, materialize: tuple[str, ...] = SMALL_TABLES,
                 max_age_s: float = 2.0):
        self.root = layout.results_root(root)
        self.materialize = materialize
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._scan: Scan | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._scanned_at = 0.0
        self._memo: dict[tuple, pd.DataFrame] = {}

    def refresh(self) -> bool:
        """Rescan the root; rebuild the database if anything changed. True if it did."""
        with self._lock:
            fresh = scan(self.root)
            self._scanned_at = time.monotonic()
            if self._scan is not None and fresh.fingerprint == self._scan.fingerprint:
                return False
            self._con = sandbox.connect(self.root, scan=fresh, materialize=self.materialize)
            self._scan = fresh
            return True

    def _state(self) -> tuple[Scan, duckdb.DuckDBPyConnection]:
        if self._scan is None or time.monotonic() - self._scanned_at > self.max_age_s:
            self.refresh()
        return self._scan, self._con

    def connection(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the current database (one per caller: cursors are not shared across threads)."""
        return self._state()[1].cursor()

    @property
    def problems(self) -> list[Problem]:
        return self._state()[0].problems

    # runs and configs

    def runs(self, where: str | None = None) -> pd.DataFrame:
        """One row per run with status and final accuracies; `where` is a SQL condition on them."""
        if not where:
            current, con = self._state()
            key = ("runs", current.fingerprint)
            if key not in self._memo:
                self._memo = {key: queries.runs(con.cursor())}
            return self._memo[key].copy()
        sandbox.check_read_only(queries.runs_condition_sql(where))
        try:
            return queries.runs(self.connection(), where)
        except duckdb.Error as error:
            raise sandbox.SqlError(str(error)) from None

    def runs_with_config(self, key: str, values: list[str]) -> list[str]:
        """Runs whose flattened config has `key` equal to one of `values` (JSON text)."""
        return queries.runs_with_config(self.connection(), key, values)

    def sql(self, query: str) -> pd.DataFrame:
        """Ad hoc read-only SQL over the views (runs, config, metrics, mi, gradients, activations, ...)."""
        return sandbox.run_query(self._state()[1], query)

    def configs(self, run_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        records = {r["run_id"]: r.get("config") or {} for r in self._state()[0].runs}
        return records if run_ids is None else {r: records[r] for r in run_ids if r in records}

    def varying_keys(self, run_ids: list[str] | None = None) -> list[str]:
        return configdiff.varying_keys(list(self.configs(run_ids).values()))

    def groups(self, run_ids: list[str]) -> dict[str, list[str]]:
        """group_id -> its runs among `run_ids` (runs that differ only in seed share a group)."""
        by_id = {r["run_id"]: r.get("group_id") or r["run_id"] for r in self._state()[0].runs}
        grouped: dict[str, list[str]] = {}
        for run_id in run_ids:
            if run_id in by_id:
                grouped.setdefault(by_id[run_id], []).append(run_id)
        return grouped

    def labels(self, run_ids: list[str], by_group: bool = False) -> dict[str, str]:
        """Panel titles from the varying keys, per run id (or per group id with `by_group`)."""
        configs = self.configs(run_ids)
        if by_group:
            configs = {group: configs[members[0]] for group, members in self.groups(run_ids).items()}
        return configdiff.labels(configs, with_seed=not by_group)

    def with_panels(self, frame: pd.DataFrame, run_ids: list[str], by_group: bool = False) -> pd.DataFrame:
        """`frame` (with run_id, or group_id if `by_group`) with a `panel` column holding the labels
        ("... (3 seeds)" for groups), its rows in the labels' order."""
        labels = self.labels(run_ids, by_group)
        key = "group_id" if by_group else "run_id"
        if by_group:
            seeds = frame.groupby(key)["seeds"].max()
            labels = {g: f"{label} ({seeds.get(g, 0)} seeds)" for g, label in labels.items()}
        order = {k: i for i, k in enumerate(labels)}
        frame = frame.assign(panel=frame[key].map(labels))
        return frame.sort_values(key, key=lambda column: column.map(order), kind="stable").reset_index(drop=True)

    def recorded(self, table: str, run_ids: list[str]) -> list[str]:
        """The runs among `run_ids` that have a readable `table`."""
        files = self._state()[0].files.get(table, {})
        return [r for r in run_ids if r in files]

    # tables

    def mi(self, run_ids: list[str] | None = None, estimator: str | None = None, split: str | None = None,
           params: str | None = None) -> pd.DataFrame:
        return queries.mi(self.connection(), run_ids, estimator, params, split)

    def mi_choices(self, run_ids: list[str]) -> pd.DataFrame:
        return queries.mi_choices(self.connection(), run_ids)

    def mi_over_seeds(self, run_ids: list[str], estimator: str, params: str, split: str,
                      aggregate: str = "median") -> pd.DataFrame:
        return queries.mi_over_seeds(self.connection(), run_ids, estimator, params, split, aggregate)

    def metrics(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        return queries.metrics(self.connection(), run_ids)

    def metrics_over_seeds(self, run_ids: list[str], aggregate: str = "median") -> pd.DataFrame:
        return queries.metrics_over_seeds(self.connection(), run_ids, aggregate)

    def gradients(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        return queries.gradients(self.connection(), run_ids)

    def activations(self, run_ids: list[str], split: str | None = None, layer: int | None = None) -> pd.DataFrame:
        return self._per_run("activations", run_ids, split, layer)

    def activation_stats(self, run_ids: list[str], split: str | None = None,
                         layer: int | None = None) -> pd.DataFrame:
        return self._per_run("activation_stats", run_ids, split, layer)

    def _per_run(self, table: str, run_ids: list[str], split: str | None, layer: int | None) -> pd.DataFrame:
        current, con = self._state()
        files = current.table_files(table, run_ids)
        try:
            return queries.per_run_table(con.cursor(), table, files, split, layer)
        except duckdb.IOException:  # replaced or removed since the scan: rescan once
            self.refresh()
            current, con = self._state()
            return queries.per_run_table(con.cursor(), table, current.table_files(table, run_ids), split, layer)

    def activation_splits(self, run_ids: list[str]) -> list[str]:
        current, con = self._state()
        return queries.splits_recorded(con.cursor(), "activation_stats",
                                       current.table_files("activation_stats", run_ids))

    def dead_fractions(self, run_ids: list[str], split: str) -> pd.DataFrame:
        current, con = self._state()
        return queries.dead_fractions(con.cursor(), current.table_files("activation_stats", run_ids), split)

    def dead_runs(self, run_ids: list[str]) -> list[str]:
        """Runs whose gradients stay (near) zero through training: the network never learns."""
        frame = queries.max_gradient(self.connection(), run_ids)
        return frame.loc[frame["max_grad_mean_norm"].fillna(0).abs() <= DEAD_GRADIENT, "run_id"].tolist()

    # charts

    def infoplane_chart(self, run_ids: list[str], estimator: str | None = None, split: str = "train",
                        by_group: bool = False, aggregate: str = "median", columns: int = 2):
        """The seed notebook's grid of information planes, one panel per run (or per seed group)."""
        from explorer import charts

        choices = self.mi_choices(run_ids)
        choices = choices[(choices["split"] == split) &
                          (choices["estimator"] == estimator if estimator else True)]
        if choices.empty:
            raise ValueError(f"no MI recorded for split {split!r}" + (f" and estimator {estimator!r}" if estimator else ""))
        estimator, params = choices.iloc[0][["estimator", "params"]]
        if by_group:
            frame = self.mi_over_seeds(run_ids, estimator, params, split, aggregate)
        else:
            frame = self.mi(run_ids, estimator, split, params)
        frame = self.with_panels(frame, run_ids, by_group)
        return charts.infoplane_grid(frame, columns=columns, title=f"{estimator} {params}, {split} split")
