"""Every SQL query of the explorer (and of ResultStore), over the views of ibstore.views.

Plain functions: a DuckDB connection and parameters in, a pandas DataFrame out.
Run ids are bound as parameters, never pasted into the SQL.
"""

from __future__ import annotations

import json
import math
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ibstore import phases as phases_sql

AGGREGATES = {"mean": "avg", "median": "median"}


def runs(table: pa.Table) -> pd.DataFrame:
    """One row per run, ordered by run_id: the `runs` view's Arrow table (ibstore.views), what
    `SELECT * FROM runs` gives, straight into pandas (text columns stay Arrow's; through DuckDB,
    100,000 rows cost several times the CPU; bench/RESULTS.md)."""
    return _by_run(table)


def runs_of(table: pa.Table, run_ids: list[str]) -> pd.DataFrame:
    """The rows of these runs, as `runs` gives them."""
    return _by_run(table.filter(pc.is_in(table["run_id"], value_set=pa.array(run_ids, pa.string()))))


def _by_run(table: pa.Table) -> pd.DataFrame:
    # The index keeps the `runs` table in run-folder order, i.e. by run_id: the sort, a take of
    # every column (a large part of a first load at 100,000 runs), is skipped when a comparison of
    # neighbours finds it so (bench/RESULTS.md, issue 20 branch warm100k).
    ids = table["run_id"]
    ordered = len(ids) < 2 or pc.all(pc.less_equal(ids.slice(0, len(ids) - 1), ids.slice(1)), skip_nulls=False).as_py()
    return (table if ordered else table.sort_by("run_id")).to_pandas()


def runs_with_config(con: duckdb.DuckDBPyConnection, key: str, values: list[str]) -> list[str]:
    """Runs whose config has `key` set to one of `values` (JSON text); with "null" among them, the
    runs without `key` too, as the filter's values list them (explorer.root_configs.NULL)."""
    rows = con.execute("""
        SELECT run_id FROM config WHERE key = $key AND list_contains($values, value)
        UNION ALL
        SELECT run_id FROM runs
        WHERE list_contains($values, 'null') AND run_id NOT IN (SELECT run_id FROM config WHERE key = $key)
    """, {"key": key, "values": values}).fetchall()
    return [row[0] for row in rows]


def mi_choices(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> pd.DataFrame:
    """The (estimator, params, split) combinations recorded for these runs, with run counts: those
    most runs recorded first, then in the order the runs' configs list their estimators (the
    `estimators` cohort lists binning first, so its pages and report open on binning, not on
    `adaptive`), then by name, params and split. An estimator no config lists comes last."""
    choices = con.execute("""
        SELECT estimator, params, split, count(DISTINCT run_id) AS runs FROM mi
        WHERE list_contains(?, run_id) GROUP BY ALL ORDER BY runs DESC, estimator, params, split
    """, [run_ids]).df()
    listings = [_ensure_estimator_list(value) for value, in con.execute(
        "SELECT DISTINCT value FROM config WHERE key = 'estimators' AND list_contains(?, run_id)",
        [run_ids]).fetchall()]
    listed = [min((_listed_position(listing, estimator, params) for listing in listings), default=math.inf)
              for estimator, params in zip(choices["estimator"], choices["params"])]
    order = sorted(range(len(choices)), key=lambda i: (-choices["runs"].iat[i], listed[i]))   # stable: then by name
    return choices.iloc[order].reset_index(drop=True)


def _ensure_estimator_list(value: str | None) -> list[tuple[Any, str]]:
    """A config's `estimators` (the `config` view's JSON text, which the index encoded from a
    run.json read within ibstore.strict_json's limits) as (name, params as the trainer writes them
    to mi: `json.dumps(params, sort_keys=True)`, trainer/measure.py). The list only orders the
    choices, so a value that is no such list (a hand-written run.json) orders nothing."""
    entries = json.loads(value) if value else []
    if not isinstance(entries, list):
        return []
    return [(entry.get("name"), json.dumps(entry.get("params"), sort_keys=True, default=str))
            for entry in entries if isinstance(entry, dict)]


def _listed_position(listing: list[tuple[Any, str]], estimator: str, params: str) -> float:
    """Where a config lists this estimator: the entry with these very params, else the first of
    its name (params the trainer completes at run time, e.g. a range, differ from the config's),
    else nowhere (infinity)."""
    exact = [i for i, entry in enumerate(listing) if entry == (estimator, params)]
    named = [i for i, (name, _) in enumerate(listing) if name == estimator]
    return (exact or named or [math.inf])[0]


def mi(con: duckdb.DuckDBPyConnection, run_ids: list[str] | None = None, estimator: str | None = None,
       params: str | None = None, split: str | None = None) -> pd.DataFrame:
    return con.execute("""
        SELECT * FROM mi
        WHERE (?::VARCHAR[] IS NULL OR list_contains(?, run_id))
          AND (?::VARCHAR IS NULL OR estimator = ?) AND (?::VARCHAR IS NULL OR params = ?)
          AND (?::VARCHAR IS NULL OR split = ?)
        ORDER BY run_id, estimator, params, split, epoch, layer
    """, [run_ids, run_ids, estimator, estimator, params, params, split, split]).df()


def mi_over_seeds(con: duckdb.DuckDBPyConnection, run_ids: list[str], estimator: str, params: str,
                  split: str, aggregate: str = "median") -> pd.DataFrame:
    """Per seed group, epoch and layer: the mean or median of I(X;T), I(Y;T) over seeds,
    their min, max and quartiles, and the number of seeds; at the epochs every one of the group's
    seeds here has a row and a finite I(X;T) at, as the statistics' group mean (ibstore.phases): where a seed stopped
    early (stop_at_accuracy) or is still training, a mean over the seeds left would move by which
    seeds it holds, and a seed with high I(X;T) leaving reads as compression."""
    fn = AGGREGATES[aggregate]
    return con.execute(f"""
        WITH rows AS (
            SELECT r.group_id, m.*, count(DISTINCT m.run_id) OVER (PARTITION BY r.group_id) AS group_seeds
            FROM mi m JOIN runs r USING (run_id)
            WHERE list_contains(?, m.run_id) AND m.estimator = ? AND m.params = ? AND m.split = ?
        )
        SELECT group_id, epoch, layer, any_value(layer_name) AS layer_name,
               {fn}(i_xt) AS i_xt, {fn}(i_yt) AS i_yt,
               min(i_xt) AS i_xt_min, max(i_xt) AS i_xt_max,
               min(i_yt) AS i_yt_min, max(i_yt) AS i_yt_max,
               quantile_cont(i_xt, 0.25) AS i_xt_q1, quantile_cont(i_xt, 0.75) AS i_xt_q3,
               quantile_cont(i_yt, 0.25) AS i_yt_q1, quantile_cont(i_yt, 0.75) AS i_yt_q3,
               count(DISTINCT run_id) AS seeds
        FROM rows
        GROUP BY group_id, epoch, layer
        -- every seed there, and I(X;T) finite in all or none of them (none: an estimator without it, ksg)
        HAVING count(DISTINCT run_id) = any_value(group_seeds)
           AND count(*) FILTER (isfinite(i_xt)) IN (0, any_value(group_seeds))
        ORDER BY group_id, epoch, layer
    """, [run_ids, estimator, params, split]).df()


def metrics(con: duckdb.DuckDBPyConnection, run_ids: list[str] | None = None) -> pd.DataFrame:
    return con.execute("""
        SELECT * FROM metrics WHERE (?::VARCHAR[] IS NULL OR list_contains(?, run_id))
        ORDER BY run_id, split, epoch
    """, [run_ids, run_ids]).df()


def gradients(con: duckdb.DuckDBPyConnection, run_ids: list[str] | None = None) -> pd.DataFrame:
    return con.execute("""
        SELECT * FROM gradients WHERE (?::VARCHAR[] IS NULL OR list_contains(?, run_id))
        ORDER BY run_id, layer, epoch
    """, [run_ids, run_ids]).df()


def per_run_table(con: duckdb.DuckDBPyConnection, table: str, run_ids: list[str],
                  split: str | None = None, layer: int | None = None) -> pd.DataFrame:
    """`activations` or `activation_stats` of a few runs (the run ids reach the Parquet scan,
    so only these runs' files are opened)."""
    return con.execute(f"""
        SELECT * FROM {table}
        WHERE list_contains(?, run_id) AND (?::VARCHAR IS NULL OR split = ?) AND (?::INTEGER IS NULL OR layer = ?)
        ORDER BY run_id, layer, epoch
    """, [run_ids, split, split, layer, layer]).df()


def splits_recorded(con: duckdb.DuckDBPyConnection, table: str, run_ids: list[str]) -> list[str]:
    rows = con.execute(f"SELECT DISTINCT split FROM {table} WHERE list_contains(?, run_id) ORDER BY 1",
                       [run_ids]).fetchall()
    return [row[0] for row in rows if row[0] is not None]


def dead_fractions(con: duckdb.DuckDBPyConnection, run_ids: list[str], split: str) -> pd.DataFrame:
    """Per run, layer and epoch: the mean over neurons of frac_zero and frac_saturated."""
    return con.execute("""
        SELECT run_id, layer, epoch, avg(frac_zero) AS frac_zero, avg(frac_saturated) AS frac_saturated
        FROM activation_stats WHERE list_contains(?, run_id) AND split = ?
        GROUP BY ALL ORDER BY run_id, layer, epoch
    """, [run_ids, split]).df()


def phases(con: duckdb.DuckDBPyConnection, run_ids: list[str] | None = None) -> pd.DataFrame:
    """The `phases` view (ibstore.phases) of these runs (None: every run)."""
    return con.execute("""
        SELECT * FROM phases WHERE (?::VARCHAR[] IS NULL OR list_contains(?, run_id))
        ORDER BY group_id, run_id, estimator, params, split, layer
    """, [run_ids, run_ids]).df()


def phase_curves(con: duckdb.DuckDBPyConnection, run_ids: list[str] | None = None) -> pd.DataFrame:
    """The finite I(X;T) and SNR curves of these runs (None: every run) that the statistics read
    (ibstore.phases.CURVES_SQL: ibstore.stats.drop_test, ibstore.stats.drops_within)."""
    return con.execute(f"""
        SELECT * FROM ({phases_sql.CURVES_SQL}) WHERE (?::VARCHAR[] IS NULL OR list_contains(?, run_id))
    """, [run_ids, run_ids]).df()


def layer_names(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> pd.DataFrame:
    """run_id, layer, layer_name as the trainer named them (recorded in `mi`): the tables without a
    name column (gradients, activations) are shown with the same names."""
    return con.execute("""
        SELECT DISTINCT run_id, layer, layer_name FROM mi WHERE list_contains(?, run_id) ORDER BY run_id, layer
    """, [run_ids]).df()
