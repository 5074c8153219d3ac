"""`ResultStore`: the results root for notebooks and the app (deep-bottleneck's ExperimentLoader).

    store = ResultStore("data/results")
    runs = store.runs()                                  # one row per run
    ids = runs.query("cohort == 'initial_bias'").run_id.tolist()
    store.varying_keys(ids)                              # ['initial_bias']
    store.infoplane_chart(ids, split="train")            # Altair grid, panels titled by the varying keys
    store.sql("SELECT run_id, max(i_xt) FROM mi GROUP BY ALL")

Every query reads the Parquet files where they lie, through the views of ibstore.views (a run
filter reaches the scan, so a 12-run query opens 12 runs' files); the per-run facts (status,
config, final accuracies) come from the scan, which keeps them in the root's index. The store
answers from a snapshot (one scan and its views); a refresh builds the next snapshot and swaps
it in, so a query never waits for a refresh and always sees one state of the root. Runs and
files that cannot be read are skipped and listed in `.problems`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from explorer import patched_frames, queries, root_configs, run_rows
from explorer.results_charts import ResultCharts
from explorer.root_configs import RootConfigs
from explorer.snapshot_memo import SnapshotMemo
from ibstore import configdiff, layout, read_retry, sandbox, statement_check, views
from ibstore.index import reread, save_index, scan
from ibstore.scan import Problem, Scan
from ibstore.schema import TABLE_SCHEMAS

T = TypeVar("T")
SCAN_SHARE = 4.0    # background rescans take at most 1 / (1 + SCAN_SHARE) of the time
# The store saves the root's index in a background thread once the run folders read since its
# last save are SAVE_AFTER_READS or every run of the root (a cold open: the next one is then
# warm), else at most every SAVE_EVERY_S: at 100,000 runs a save writes hundreds of MB and takes seconds
# of CPU, and a stale index costs the next process only the re-reading of the folders changed since.
SAVE_AFTER_READS = 1_000
SAVE_EVERY_S = 300.0
MI = ("mi",)                                                              # the tables a query reads
PHASE_TABLES = tuple(name for name in views.DERIVED["phases"] if name in TABLE_SCHEMAS)


class ResultStore(ResultCharts):
    """The results root at `root`, rescanned in the background once the current snapshot is older
    than `max_age_s`, or than SCAN_SHARE times the last scan took (a scan of 100,000 run folders
    takes seconds: rescanning every 2 s would hold the interpreter, and every interaction wait)."""

    def __init__(self, root: str | os.PathLike | None = None, *, max_age_s: float = 2.0):
        self.root = layout.results_root(root)
        self.max_age_s = max_age_s
        self._scan: Scan | None = None          # the snapshot: replaced whole, never changed
        self._checked_at = 0.0                  # when the root was last compared with the snapshot
        self.scan_s = 0.0                       # how long that took (seconds)
        self._refreshing = threading.Lock()     # one refresh at a time
        self._background: threading.Thread | None = None
        self._saving: threading.Thread | None = None
        self._saved_at = time.monotonic()       # the index on disk is as new as the store
        self._reads_unsaved = 0                 # run folders read since then
        # Queries run on cursors of one database that reads no file by path (the views are
        # Arrow objects); each cursor gets the views of the snapshot it was made for.
        self._database = duckdb.connect(":memory:")
        for setting in ("SET enable_progress_bar = false", "SET enable_external_access = false",
                        "SET lock_configuration = true"):
            self._database.execute(setting)
        self._memo = SnapshotMemo()                 # what snapshots gave (of_snapshot, carried)

    def refresh(self, wait: bool = True, unless_within_s: float = 0.0) -> bool:
        """Rescan the root (only changed run folders are read) and swap in the new snapshot if
        anything changed; True if it did. `wait=False`: in a background thread, returning False at
        once (unless there is no snapshot yet). Not if the root was compared with the snapshot less
        than `unless_within_s` ago (a live panel's first run comes right after the first scan)."""
        if self._scan is not None and time.monotonic() - self._checked_at < unless_within_s:
            return False
        if not wait and self._scan is not None:
            self._refresh_in_background()
            return False
        with self._refreshing:
            started = time.monotonic()
            fresh = scan(self.root, save=False)
            self._checked_at = time.monotonic()
            self.scan_s = self._checked_at - started
            self._reads_unsaved += fresh.folders_read
            self._save_when_due(len(fresh.fingerprint))
            if self._scan is not None and fresh.fingerprint == self._scan.fingerprint:
                return False
            self._scan = fresh          # the datasets of its views are built when first queried
            return True

    def _save_when_due(self, runs: int) -> None:
        """Save the index in a background thread when SAVE_AFTER_READS (or all `runs` read) or
        SAVE_EVERY_S say so (what this store's snapshots' page checks found is saved with it). Not
        a daemon thread: the interpreter waits for it at exit, so a save once started ends."""
        if self._saving is not None and self._saving.is_alive():
            return
        cold = self._reads_unsaved >= min(SAVE_AFTER_READS, max(runs, 1))
        if not cold and time.monotonic() - self._saved_at < SAVE_EVERY_S:
            return
        self._saved_at, self._reads_unsaved = time.monotonic(), 0
        self._saving = threading.Thread(target=save_index, args=(self.root,), name="ResultStore.save")
        self._saving.start()

    def _refresh_in_background(self) -> None:
        if self._background is None or not self._background.is_alive():
            self._background = threading.Thread(target=self.refresh, name="ResultStore.refresh", daemon=True)
            self._background.start()

    def snapshot(self) -> Scan:
        """The current scan; a stale one starts a background refresh and is still returned."""
        current = self._scan
        if current is None:
            self.refresh()
            return self._scan
        if time.monotonic() - self._checked_at > max(self.max_age_s, SCAN_SHARE * self.scan_s):
            self._refresh_in_background()
        return current

    def connection(self, snapshot: Scan | None = None, runs: list[str] | None = None,
                   phases: bool = False, tables: tuple[str, ...] = tuple(TABLE_SCHEMAS)) -> duckdb.DuckDBPyConnection:
        """A new cursor with the views of `snapshot` (default: the current one); one per caller,
        since cursors are not shared across threads. With `runs`, the Parquet tables hold only
        those runs' files: a query of 12 runs then looks at 12 runs' files, not at every file's
        partition expression (a cost per table that grows with the runs). The `phases` view only if asked
        (creating it costs each cursor a few milliseconds). Only the Parquet tables `tables`:
        the first read of a table checks its files' pages (ibstore.scan_pages), which a query
        of `runs` alone need not wait for."""
        cursor = self._database.cursor()
        current = snapshot or self.snapshot()
        current.check(tables, runs)   # before `problems` is built: it then names what the check found
        base = [name for name in views.EVERYDAY_VIEWS if name not in views.DERIVED]
        if runs is None:
            views.register(cursor, current, [name for name in base if name not in TABLE_SCHEMAS or name in tables])
        else:
            views.register(cursor, current, [name for name in base if name not in TABLE_SCHEMAS])
            for table in tables:
                cursor.register(table, views.table_dataset(table, *current.table_paths(table, runs)))
        if phases:
            views.register_derived(cursor, ["phases"])   # over the tables just registered
        return cursor

    def _read(self, query: Callable[..., T], *args: Any, runs: list[str] | None, tables: tuple[str, ...],
              phases: bool = False) -> T:
        """`query(cursor, *args)` on the current snapshot, over the runs `runs` (None: every run) and
        the Parquet tables `tables` it reads (only their files' pages are checked first), retried on
        a new snapshot when a file it was to read is gone (`_retried`)."""
        def read(snapshot: Scan) -> T:
            try:
                return query(self.connection(snapshot, runs=runs, phases=phases, tables=tables), *args)
            except duckdb.InvalidInputException as error:   # the file behind it named, as a worker names it
                raise sandbox.named_failure(error, {table: (table, *snapshot.table_paths(table, runs))
                                                    for table in tables}) from None
        return self._retried(read)

    def _retried(self, read: Callable[[Scan], T]) -> T:
        """`read(snapshot)` on the current snapshot. A file the snapshot lists can vanish before it
        is read (a compaction replaces parts by the base, a fresh start removes a run's files, a
        run folder is deleted); then wait a moment, rescan and retry, up to READ_ATTEMPTS times
        (ibstore.read_retry): the new scan lists the compacted file, or no longer the run. A file
        damaged in place (sandbox.FileDamaged) has its run read again by that scan, which leaves
        the file out and names it (ibstore.index.reread)."""
        attempt = 1
        while True:
            try:
                return read(self.snapshot())
            except (duckdb.InvalidInputException, FileNotFoundError, sandbox.FileVanished,
                    sandbox.FileDamaged) as error:
                # In this process a lost file is named by `_read` (a FileNotFoundError), else it
                # surfaces as DuckDB's failure to read an Arrow stream; in a sandbox worker the worker
                # names it (sandbox.FileVanished).
                lost_file = (isinstance(error, (FileNotFoundError, sandbox.FileVanished, sandbox.FileDamaged))
                             or "reading the stream registered as" in str(error))
                if not lost_file or attempt == read_retry.READ_ATTEMPTS:
                    raise
                if isinstance(error, sandbox.FileDamaged):
                    reread(self.root, [error.run_id])
            attempt += 1
            read_retry.wait_before(attempt)   # a writer compacting again at once may take this file too
            self.refresh()

    def _statement(self, run: Callable[[Scan, sandbox.Limits], T], limits: sandbox.Limits) -> T:
        """A sandbox statement `run(snapshot, limits)`, retried as `_retried` does; every attempt
        shares the one time limit, so a retried statement still ends within it."""
        if limits.timeout_s is None:
            return self._retried(lambda snapshot: run(snapshot, limits))
        deadline = time.monotonic() + limits.timeout_s

        def attempt(snapshot: Scan) -> T:
            left = deadline - time.monotonic()
            if left <= 0:
                raise sandbox.QueryStopped(limits.timeout_s)
            return run(snapshot, dataclasses.replace(limits, timeout_s=left))

        try:
            return self._retried(attempt)
        except sandbox.QueryStopped as stopped:   # on a retry: the time limit is the caller's, not what was left
            raise type(stopped)(limits.timeout_s, stopped.waited_s) from None

    def version(self) -> int:
        """A number that changes when anything read from the root changes: a cache key (hashed
        once per snapshot: the fingerprint has an entry per run)."""
        return self.of_snapshot("version", lambda current: hash(current.fingerprint))

    def of_snapshot(self, name: Any, compute: Callable[[Scan], T]) -> T:
        """`compute(snapshot)` of the current snapshot, worked out once per snapshot under `name`:
        at 100,000 runs every page's rerun would otherwise redo it (read-only: callers copy)."""
        return self._memo.of(self.snapshot(), name, compute)

    def carried(self, name: Any, compute: Callable[[Scan], T], patch: Callable[[T, Scan, set[str], bool], T | None]) -> T:
        """`of_snapshot`, but what the last snapshot gave is patched for the runs changed since:
        `patch(value, snapshot, changed run ids, no run came or went)`, None if it cannot be."""
        return self._memo.carried(self.snapshot(), name, compute, patch)

    @property
    def problems(self) -> list[Problem]:
        return self.snapshot().problems

    # runs and configs

    def runs(self, where: str | None = None) -> pd.DataFrame:
        """One row per run with status and final accuracies; `where` is a SQL condition on them."""
        if where:
            runs = self.runs()
            return run_rows.rows_among(runs, self.run_ids_where(where)).reset_index(drop=True)
        runs = self.carried("runs", lambda now: queries.runs(views.view_data(now, ["runs"])["runs"]),
                            self._patched_runs)
        # pandas copies on write: a caller's change copies what it changes (a deep copy was a noticeable
        # part of a page's rerun)
        return runs.copy(deep=False)

    def run_ids_where(self, where: str) -> pd.Series:
        """The ids of the runs SQL condition `where` on `runs` holds for, once per snapshot and condition
        (a page reruns while it filters); run as the SQL page's, in the sandbox with the app's time limit."""
        return self.of_snapshot(("where", where), lambda _: self.sql(
            statement_check.runs_where(where), sandbox.Limits(timeout_s=sandbox.APP_TIMEOUT_S))["run_id"])

    def _patched_runs(self, frame: pd.DataFrame, now: Scan, changed: set[str], same: bool) -> pd.DataFrame | None:
        """The runs frame with the rows of the changed runs read again (a flush changes one run's)."""
        return patched_frames.replaced_runs(frame, views.view_data(now, ["runs"])["runs"], changed) if same else None

    def runs_with_config(self, key: str, values: list[str]) -> list[str]:
        """Runs whose flattened config has `key` equal to one of `values` (JSON text, as
        `config_values` lists them: 0 stands for 0.0 too), once per snapshot."""
        texts = self.root_configs().texts_of(key, values)
        return list(self.of_snapshot(("with_config", key, tuple(texts)), lambda now: queries.runs_with_config(
            self.connection(now, tables=()), key, texts)))

    def sql(self, query: str, limits: sandbox.Limits = sandbox.Limits()) -> pd.DataFrame:
        """Ad hoc read-only SQL over the views (runs, config, metrics, mi, gradients, activations, ...),
        on its own sandbox connection, discarded afterwards (ibstore.sandbox); SqlError if refused,
        failing or over `limits.timeout_s`. A statement that loses a file to a compaction runs
        again on a new scan (`_statement`)."""
        return self._statement(lambda snapshot, left: sandbox.run_query(snapshot, query, left), limits)

    def sql_head(self, query: str, max_rows: int, limits: sandbox.Limits = sandbox.Limits()) -> tuple[pa.Table, int]:
        """The first `max_rows` rows of `query` and its total row count (the SQL page), as `sql`."""
        return self._statement(lambda snapshot, left: sandbox.head(snapshot, query, max_rows, left), limits)

    def configs(self, run_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """run_id -> resolved config, of every run or of `run_ids` (only those records are read)."""
        current = self.snapshot()
        if run_ids is None:
            return {r.run_id: r.config for r in current.runs}
        records = (current.run(run_id) for run_id in run_ids)
        return {r.run_id: r.config for r in records if r is not None}

    def root_configs(self) -> RootConfigs:
        """What every run's config gives (keys, values, the varying keys), once per snapshot, from the
        `config` view (explorer.root_configs: no record is parsed)."""
        return self.of_snapshot("root_configs", lambda now: root_configs.root_configs(
            views.view_data(now, ["config"])["config"], len(now.fingerprint)))

    def flat_configs(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """run_id -> flattened config (dotted keys) of those of `run_ids` the `config` view holds; each
        run's is kept until its folder changes (the sidebar names a thousand runs at every rerun)."""
        kept = self.carried("flat_configs", lambda _: {},
                            lambda flats, now, changed, same: {r: f for r, f in list(flats.items()) if r not in changed})
        missing = [run_id for run_id in run_ids if run_id not in kept]
        if missing:   # filled in place, by any session's thread (so copied with list() above), one per run
            kept.update(root_configs.flat_configs(views.view_data(self.snapshot(), ["config"])["config"], missing))
        return {run_id: kept[run_id] for run_id in run_ids if run_id in kept}

    def varying_keys(self, run_ids: list[str] | None = None) -> list[str]:
        """The config keys whose values differ among `run_ids` (default: every run)."""
        if run_ids is not None:
            return configdiff.varying_keys(list(self.configs(run_ids).values()))
        return list(self.root_configs().varying)

    def config_keys(self) -> list[str]:
        """Every flattened config key of any run, sorted."""
        return list(self.root_configs().keys)

    def config_values(self, key: str) -> list[str]:
        """The values of flattened config `key` over every run as sorted JSON text, one per value as
        configdiff compares them (1 for 1 and 1.0; "null" for a run without it)."""
        return self.root_configs().values_of(key)

    def groups(self, run_ids: list[str]) -> dict[str, list[str]]:
        """group_id -> its runs among `run_ids` (runs that differ only in seed share a group)."""
        current = self.snapshot()
        grouped: dict[str, list[str]] = {}
        for run_id in run_ids:
            record = current.run(run_id)
            if record is not None:
                grouped.setdefault(record.group_id or run_id, []).append(run_id)
        return grouped

    def labels(self, run_ids: list[str], by_group: bool = False) -> dict[str, str]:
        """Panel titles from the varying keys, per run id (or per group id with `by_group`), each
        title one id's (`configdiff.told_apart`)."""
        configs = self.configs(run_ids)
        first = {run_id: run_id for run_id in configs}
        if by_group:
            first = {group: members[0] for group, members in self.groups(run_ids).items()}
            configs = {group: configs[run_id] for group, run_id in first.items()}
        current = self.snapshot()
        cohorts = {key: getattr(current.run(run_id), "cohort", None) for key, run_id in first.items()}
        titles = configdiff.labels(configs, with_seed=not by_group)
        if len(set(cohorts.values())) > 1 and not configdiff.varying_keys(list(configs.values())):
            # one setting under several names (a null comparison): only the names tell the groups
            # apart, where they were titled by their ids and their runs by seeds alone (a sceptic's)
            titles = {key: (cohorts[key] or "(no cohort)") + ("" if title == key else f": {title}")
                      for key, title in titles.items()}
        return configdiff.told_apart(titles, cohorts)

    def with_panels(self, frame: pd.DataFrame, run_ids: list[str], by_group: bool = False) -> pd.DataFrame:
        """`frame` (with run_id, or group_id if `by_group`) with a `panel` column holding the labels
        ("... (3 seeds)" for groups: the most seeds a point of the group is over, its `seeds` or
        `{value}_seeds` columns), its rows in the labels' order."""
        labels = self.labels(run_ids, by_group)
        key = "group_id" if by_group else "run_id"
        if by_group:
            seeds = frame.filter(regex=r"(^|_)seeds$").max(axis=1).groupby(frame[key]).max().astype(int)
            labels = {g: f"{label} ({seeds.get(g, 0)} seed{'' if seeds.get(g, 0) == 1 else 's'})"
                      for g, label in labels.items()}
        return run_rows.in_order(frame.assign(panel=frame[key].map(labels)), key, labels).reset_index(drop=True)

    def recorded(self, table: str, run_ids: list[str]) -> list[str]:
        """The runs among `run_ids` that have a readable `table`."""
        having = set(self.snapshot().table_paths(table, run_ids)[1])   # pages checked first
        return [r for r in run_ids if r in having]

    # tables

    def mi(self, run_ids: list[str] | None = None, estimator: str | None = None, split: str | None = None,
           params: str | None = None) -> pd.DataFrame:
        return self._read(queries.mi, run_ids, estimator, params, split, runs=run_ids, tables=MI)

    def mi_choices(self, run_ids: list[str]) -> pd.DataFrame:
        return self._read(queries.mi_choices, run_ids, runs=run_ids, tables=MI)

    def mi_over_seeds(self, run_ids: list[str], estimator: str, params: str, split: str,
                      aggregate: str = "median") -> pd.DataFrame:
        return self._read(queries.mi_over_seeds, run_ids, estimator, params, split, aggregate, runs=run_ids,
                          tables=MI)

    def metrics(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        return self._read(queries.metrics, run_ids, runs=run_ids, tables=("metrics",))

    def gradients(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        return self._read(queries.gradients, run_ids, runs=run_ids, tables=("gradients",))

    def activations(self, run_ids: list[str], split: str | None = None) -> pd.DataFrame:
        return self._per_run("activations", run_ids, split, None)

    def activation_stats(self, run_ids: list[str], split: str | None = None,
                         layer: int | None = None) -> pd.DataFrame:
        return self._per_run("activation_stats", run_ids, split, layer)

    def _per_run(self, table: str, run_ids: list[str], split: str | None, layer: int | None) -> pd.DataFrame:
        return self._read(queries.per_run_table, table, run_ids, split, layer, runs=run_ids, tables=(table,))

    def activation_splits(self, run_ids: list[str]) -> list[str]:
        return self._read(queries.splits_recorded, "activation_stats", run_ids, runs=run_ids,
                          tables=("activation_stats",))

    def dead_fractions(self, run_ids: list[str], split: str) -> pd.DataFrame:
        return self._read(queries.dead_fractions, run_ids, split, runs=run_ids, tables=("activation_stats",))

    def layer_names(self, run_ids: list[str]) -> pd.DataFrame:
        """run_id, layer, layer_name of these runs (from their MI rows)."""
        return self._read(queries.layer_names, run_ids, runs=run_ids, tables=MI)

    def dead_runs(self, run_ids: list[str]) -> list[str]:
        """Runs the trainer flagged dead_network (from some logged epoch to the end a hidden layer is
        dead: zero kernel gradient or the same activations on every input); see trainer/health.py."""
        runs = self.runs()
        dead = set(runs.loc[runs["dead_network"].eq(True), "run_id"])
        return [r for r in run_ids if r in dead]

    # phases and statistics over seeds

    def phases(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        """The `phases` view: per run, layer, estimator, params and split the peak and final
        I(X;T), compression and its noise floor, peak I(Y;T), SNR-drop epoch and the run's health."""
        return self._read(queries.phases, run_ids, runs=run_ids, tables=PHASE_TABLES, phases=True)

    def phase_curves(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        """The finite I(X;T) and SNR curves of these runs that the statistics read
        (ibstore.phases.CURVES_SQL): run_id, layer, estimator, params, split, epochs, i_xt, snr_epochs, snr."""
        return self._read(queries.phase_curves, run_ids, runs=run_ids, tables=("mi", "gradients"))

    def phase_stats(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        """The `phase_stats` view over these runs' seed groups (ibstore.stats.phase_stats)."""
        from ibstore import stats

        return stats.phase_stats(self.phases(run_ids), self.phase_curves(run_ids))

    def compare_groups(self, group_a: str, group_b: str) -> pd.DataFrame:
        """Seed group a against seed group b on every phase quantity (ibstore.stats.compare_groups);
        ValueError naming a group the root lacks."""
        from ibstore import stats

        runs = self.runs()
        for group in (group_a, group_b):
            if not runs["group_id"].eq(group).any():
                raise ValueError(f"no seed group {group!r} in {self.root}")
        run_ids = runs.loc[runs["group_id"].isin([group_a, group_b]), "run_id"].tolist()
        return stats.compare_groups(self.phases(run_ids), group_a, group_b, curves=self.phase_curves(run_ids))
