"""The DuckDB views over a scanned results root (the same in `trainer sql`, the explorer
and notebooks): runs, config, metrics, mi, gradients, activations, activation_stats,
and problems (what the scan could not read); the derived `phases` (a SQL view over mi, gradients,
activation_stats and runs, ibstore.phases) and `phase_stats` (an Arrow table computed in Python
from `phases` by ibstore.stats, only on a connection that names it).

`register(con, scan)` gives a connection every view from Arrow objects only: no file
path appears in SQL, so the connection can run with every file access off. A Parquet
table is a pyarrow dataset over the files the scan validated (a run's base file and its
parts), with every column of ibstore.schema (NULL where a file lacks it, e.g. an older
schema) and, per file, the partition expression `run_id == <its run>`: a filter on
run_id with constant values (`run_id = ?`, `IN (...)`, `list_contains(?, run_id)`)
reaches the Arrow scan and files of other runs are never opened.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Iterable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyarrow import fs

from ibstore import phases
from ibstore.flatten import flatten
from ibstore.record import INT64_MAX, INT64_MIN, RunRecord, SplitFacts
from ibstore.scan import Problem, Scan
from ibstore.schema import TABLE_SCHEMAS
from ibstore.statement_check import SqlError, parse_tree, walk

SPLITS = ("train", "test", "full")
RUNS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("group_id", pa.string()), ("name", pa.string()),
    ("cohort", pa.string()), ("seed", pa.int64()), ("status", pa.string()),
    ("error", pa.string()), ("started_at", pa.timestamp("s", tz="UTC")),
    ("finished_at", pa.timestamp("s", tz="UTC")), ("heartbeat_at", pa.timestamp("s", tz="UTC")),
    ("epochs_done", pa.int64()), ("epochs_total", pa.int64()), ("duration_s", pa.float64()),
    ("host", pa.string()), ("schema_version", pa.int64()), ("split_seed", pa.int64()),
    ("final_train_accuracy", pa.float64()), ("final_test_accuracy", pa.float64()),
    ("final_train_loss", pa.float64()), ("final_test_loss", pa.float64()),
    ("best_test_accuracy", pa.float64()), ("dead_network", pa.bool_()), ("diverged", pa.bool_()),
    ("dead_layers", pa.list_(pa.int64())),
    ("versions_json", pa.string()), ("config_json", pa.string()),
    # RunRecord.splits: `splits.train.inputs`, `splits.test.h_y_bits`, `splits['full'].inputs` in SQL
    ("splits", pa.struct([(split, pa.struct([("inputs", pa.int64()), ("h_y_bits", pa.float64()),
                                             ("h_x_bits", pa.float64()), ("class_counts", pa.list_(pa.int64()))]))
                          for split in SPLITS])),
    ("saturated_network", pa.bool_()),      # the record columns only grow at the end
    ("data_sha256", pa.string()),
])
CONFIG_SCHEMA = pa.schema([("run_id", pa.string()), ("key", pa.string()), ("value", pa.string())])
PROBLEMS_SCHEMA = pa.schema([("run_id", pa.string()), ("path", pa.string()), ("problem", pa.string()),
                             ("left_out", pa.bool_())])      # false: a warning (scan.Problem)

VIEWS = ("runs", "config", *TABLE_SCHEMAS, "problems", "phases", "phase_stats")
# Views made from other views on the connection, and what each reads.
DERIVED: dict[str, tuple[str, ...]] = {"phases": ("runs", "config", "mi", "gradients", "activation_stats"),
                                     "phase_stats": ("phases", "mi")}
# Every view but `phase_stats` (t intervals and permutation tests over the whole root): what a
# connection gets unless it names that view.
EVERYDAY_VIEWS = tuple(view for view in VIEWS if view != "phase_stats")
# A real config has a few dozen keys; a hostile one could have 80,000 in 1 MiB, and a table
# that wide would stall every query of `runs`.
MAX_CONFIG_COLUMNS = 1000


def register(con: duckdb.DuckDBPyConnection, scan: Scan, names: Iterable[str] = EVERYDAY_VIEWS) -> None:
    """The views `names` (default: every view of VIEWS but phase_stats) on `con`, from Arrow tables and datasets
    built once per scan. A caller that knows which views a statement reads (e.g. from
    `duckdb.get_table_names`) can name only those: the others' datasets are then never built.
    A derived view brings the views it reads."""
    wanted = with_dependencies(names)
    for name, data in view_data(scan, wanted).items():
        con.register(name, data)
    register_derived(con, wanted, scan)


def with_dependencies(names: Iterable[str]) -> tuple[str, ...]:
    """`names` and every view a derived one among them reads, in VIEWS order."""
    wanted, stack = set(), list(names)
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack.extend(DERIVED.get(name, ()))
    return tuple(view for view in VIEWS if view in wanted)


def register_derived(con: duckdb.DuckDBPyConnection, names: Iterable[str], scan: Scan | None = None) -> None:
    """The derived views among `names` on `con`, whose base views are registered already.
    `phase_stats` is kept on `scan` (a scan never changes); without one it is computed afresh
    (a connection over some runs only)."""
    names = set(names)
    if "phases" in names:
        con.execute(f"CREATE OR REPLACE TEMP VIEW phases AS {phases.PHASES_SQL}")
    if "phase_stats" in names:
        table = scan.views.get("phase_stats") if scan is not None else None
        if table is None:
            from ibstore import stats   # scipy: imported only by a connection that asks for statistics
            curves = con.execute(phases.CURVES_SQL).df()
            table = stats.phase_stats_table(con.execute("SELECT * FROM phases").df(), curves)
            if scan is not None:
                scan.views["phase_stats"] = table
        con.register("phase_stats", table)


CATALOG_WORDS = ("information_schema", "duckdb_", "pg_", "sqlite_master")   # catalogs list every view


def read_by(sql: str) -> tuple[str, ...]:
    """The views a statement reads, by DuckDB's parser (with what the derived ones among them
    read); none when no FROM of it reads anything (SELECT 1); every view when it names anything
    else or nothing otherwise (SHOW TABLES, a table function), looks at a catalog,
    or cannot be parsed so (PIVOT) -- but `phase_stats`, whose statistics take seconds, only when
    the text names it. Registering only these spares building the other tables' datasets (a cost
    that grows with the runs; bench/RESULTS.md)."""
    every = VIEWS if "phase_stats" in sql.lower() else EVERYDAY_VIEWS
    if any(word in sql.lower() for word in CATALOG_WORDS):
        return every
    try:
        named = {name.lower().rsplit(".", 1)[-1] for name in duckdb.get_table_names(sql)}
    except duckdb.Error:
        return every
    if not named and _reads_no_table(sql):
        return ()
    if not named or not named <= set(VIEWS):
        return every
    return with_dependencies(named)


def _reads_no_table(sql: str) -> bool:
    """Every FROM of the statement is empty (SELECT 1, SELECT now()). Given every view, such a
    statement had every table file of the root checked: many minutes at 100,000 runs (bench/RESULTS.md).
    SHOW TABLES and DESCRIBE parse to a SHOW_REF, a table function to a TABLE_FUNCTION."""
    try:
        tree = parse_tree(sql)
    except SqlError:
        return False
    froms = [node["from_table"] for node in walk(tree) if isinstance(node.get("from_table"), dict)]
    return not tree.get("error") and bool(froms) and all(source.get("type") == "EMPTY" for source in froms)


def describes_only(sql: str) -> bool:
    """DESCRIBE, SHOW and SHOW TABLES (not SUMMARIZE): DuckDB binds what they name and reads no
    row, so the views' columns are all they need (sandbox.view_sources, `schema_only`). Checking
    every table file first took minutes at 100,000 runs."""
    try:
        tree = parse_tree(sql)
    except SqlError:
        return False
    statements = [] if tree.get("error") else tree.get("statements") or []
    source = statements[0].get("node", {}).get("from_table") if len(statements) == 1 else None
    return isinstance(source, dict) and source.get("type") == "SHOW_REF" and source.get("show_type") != "SUMMARY"


def view_data(scan: Scan, names: Iterable[str] = VIEWS) -> dict[str, pa.Table | ds.Dataset]:
    """View name -> its Arrow data, for the views `names`, kept on the scan (a scan never changes):
    `runs` and `config` usually come with it (ibstore.index keeps them), the rest is built on
    first use, the pages of the tables' files checked first (`Scan.check`); `problems` lists
    what the scan and the checks so far found (`checked_by` says what a statement checks)."""
    wanted = [name for name in VIEWS if name in set(names) and name not in DERIVED]
    scan.check(wanted)
    build = {"runs": lambda: runs_table(scan.runs), "config": lambda: config_table(scan.runs),
             "problems": lambda: problems_table(scan.problems),
             **{table: (lambda table=table: table_dataset(table, *scan.table_paths(table)))
                for table in TABLE_SCHEMAS}}
    for name in wanted:
        if name not in scan.views:
            scan.views[name] = build[name]()
    return {name: scan.views[name] for name in wanted}


def checked_by(names: Iterable[str]) -> tuple[str, ...]:
    """The tables whose files' pages a statement reading the views `names` checks first: those
    it reads, and every table if it reads `problems` (which should then name all damage)."""
    names = set(with_dependencies(names))
    return tuple(table for table in TABLE_SCHEMAS if table in names or "problems" in names)


def table_dataset(table: str, paths: list[str], run_ids: list[str]) -> ds.Dataset:
    """The files `paths` (of the runs `run_ids`, one each) of `table` as one dataset with the
    table's full schema.

    Columns a file lacks read as NULL and narrower types are cast (int64 -> int32), both by
    the dataset's schema. Each file's partition expression states its run, so pyarrow drops
    files whose run a pushed-down filter excludes before opening them."""
    return ds.FileSystemDataset.from_paths(
        paths, schema=TABLE_SCHEMAS[table], format=ds.ParquetFileFormat(),
        filesystem=fs.LocalFileSystem(), partitions=[_run_expression(run_id) for run_id in run_ids])


_RUN_EXPRESSIONS: dict[str, pc.Expression] = {}


def _run_expression(run_id: str) -> pc.Expression:
    """`run_id == <run_id>`, made once per run and process (every table and scan shares it)."""
    expression = _RUN_EXPRESSIONS.get(run_id)
    if expression is None:
        expression = _RUN_EXPRESSIONS[run_id] = pc.field("run_id") == run_id
    return expression


def runs_table(records: list[RunRecord]) -> pa.Table:
    """`runs`: the record columns of RUNS_SCHEMA, then one typed column per flattened config key
    (sorted; see `config_columns`), at most MAX_CONFIG_COLUMNS of them."""
    table = pa.Table.from_pylist([run_row(record) for record in records], schema=RUNS_SCHEMA)
    flat_configs = [flatten(record.config) for record in records]
    counts = Counter(key for flat in flat_configs for key in flat)
    taken = {name.lower() for name in RUNS_SCHEMA.names}
    keys = []
    # DuckDB names are case-insensitive: a record column wins, then of config keys alike but for case
    # the one most runs have (a hand-edited "Initial_Bias" in one run took every run's initial_bias
    # column), the first in sort order on a tie; the others are in `config` alone. So is an empty key:
    # DuckDB names such a column "v<position>", and renamed a key of that name to "v29_1" (an attacker's).
    for key in sorted(counts, key=lambda k: (-counts[k], k)):
        if key and key.lower() not in taken:
            taken.add(key.lower())
            keys.append(key)
    # the keys most runs have, at most MAX_CONFIG_COLUMNS; the rest are in `config`
    keys = sorted(keys[:MAX_CONFIG_COLUMNS])
    columns = config_columns(flat_configs, keys)
    return pa.Table.from_arrays([*table.columns, *columns.values()], names=[*table.column_names, *columns])


def run_row(record: RunRecord) -> dict[str, Any]:
    """The record columns of one `runs` row (RUNS_SCHEMA)."""
    end = record.finished_at or record.heartbeat_at
    return {
        "run_id": record.run_id,
        "group_id": record.group_id or record.run_id,
        "name": record.name,
        "cohort": record.cohort,
        "seed": record.seed if record.seed is not None else _int(record.config.get("seed")),
        "status": record.status.value,
        "error": record.error,
        "started_at": record.started_at, "finished_at": record.finished_at, "heartbeat_at": record.heartbeat_at,
        "epochs_done": record.epochs_done,
        "epochs_total": record.epochs_total if record.epochs_total is not None else _int(record.config.get("epochs")),
        "duration_s": (end - record.started_at).total_seconds() if record.started_at and end else None,
        "host": record.host,
        "schema_version": record.schema_version,
        "split_seed": record.split_seed,
        "final_train_accuracy": record.final_train_accuracy,
        "final_test_accuracy": record.final_test_accuracy,
        "final_train_loss": record.final_train_loss,
        "final_test_loss": record.final_test_loss,
        "best_test_accuracy": record.best_test_accuracy,
        "dead_network": record.dead_network,
        "diverged": record.diverged,
        "dead_layers": record.dead_layers,
        "versions_json": _ENCODE(record.versions),
        "config_json": _ENCODE(record.config),
        "splits": None if record.splits is None else {split: _split_facts(record.splits.get(split)) for split in SPLITS},
        "saturated_network": record.saturated_network,
        "data_sha256": record.data_sha256,
    }


def _split_facts(facts: SplitFacts | None) -> dict[str, Any] | None:
    return None if facts is None else {"inputs": facts.inputs, "h_y_bits": facts.h_y_bits, "h_x_bits": facts.h_x_bits,
                                       "class_counts": facts.class_counts}


def config_columns(flat_configs: list[dict[str, Any]], keys: list[str]) -> dict[str, pa.Array]:
    """One typed column per key of `keys`, a row per flattened config (NULL where a config
    lacks the key or holds null). The type holds every value of the key across configs:
    booleans BOOLEAN; integers BIGINT; numbers of which any is a float DOUBLE; strings VARCHAR;
    lists and objects, or values of incompatible kinds, JSON text (VARCHAR)."""
    columns = {}
    for key in keys:
        values = [flat.get(key) for flat in flat_configs]
        kind = _common_kind(value for value in values if value is not None)
        if kind == "json":
            values = [None if v is None else _ENCODE(v) for v in values]
        columns[key] = pa.array(values, type=_ARROW_KINDS[kind])
    return columns


_ARROW_KINDS = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string(),
                "json": pa.string()}


def json_text_note(configs: Iterable[dict[str, Any]], where: str) -> str | None:
    """The sentence naming the config keys a `where` condition names whose `runs` column is JSON text
    (`config_columns`: values of several kinds, such as 32 and "full", or lists), with some of their
    values as the column holds them, or None. A new user's grid over batch_size [32, "full"] made the
    key text for every run of the root: `batch_size = 32` failed to convert '"full"', and
    `batch_size = 'full'` matched nothing, unexplained.

    >>> print(json_text_note([{"batch_size": 32}, {"batch_size": "full"}], "batch_size = 'full'").split(": ")[1])
    compare it with its values as text, such as '"full"' or '32'
    """
    flats = [flatten(config) for config in configs]
    keys = sorted({key for flat in flats for key in flat if key.lower() in where.lower()})
    named = []
    for key in keys:
        values = [flat[key] for flat in flats if flat.get(key) is not None]
        if _common_kind(values) == "json":
            texts = sorted({_ENCODE(value) for value in values})[:3]
            named.append(f"{key} is JSON text in this root's runs view (its values are of several kinds, or lists): "
                         f"compare it with its values as text, such as {' or '.join(repr(text) for text in texts)}")
    return "; ".join(named) or None


# Said after a condition DuckDB cannot parse: a new user's `--where "epochs = 40 ORDER BY run_id"`
# read only DuckDB's "syntax error at or near ORDER".
WHERE_IS_A_CONDITION = ("a condition is one expression over the runs view, as after WHERE: no ORDER BY, LIMIT, "
                        "UNION or second statement")


def where_error_hint(configs: Iterable[dict[str, Any]], where: str, error: Exception) -> str | None:
    """What to add to the error of a condition over the runs view (`trainer ls --where`, `trainer
    report --where`, the Runs page's box): WHERE_IS_A_CONDITION where DuckDB could not parse it, and
    `json_text_note`."""
    parts = [WHERE_IS_A_CONDITION if "Parser Error" in str(error) else None, json_text_note(configs, where)]
    return "; ".join(part for part in parts if part) or None


def _common_kind(values) -> str:
    kinds = set()
    for value in values:
        if isinstance(value, bool):
            kinds.add("bool")
        elif isinstance(value, int):
            kinds.add("int" if INT64_MIN <= value <= INT64_MAX else "json")
        elif isinstance(value, float):
            kinds.add("float")
        elif isinstance(value, str):
            kinds.add("str")
        else:
            kinds.add("json")
    if kinds == {"int", "float"}:
        return "float"
    return kinds.pop() if len(kinds) == 1 else ("str" if not kinds else "json")


def config_table(records: list[RunRecord]) -> pa.Table:
    """`config`: (run_id, key, value) per flattened config key, the value as JSON text."""
    run_ids, keys, values = [], [], []
    texts: dict[tuple[type, Any], str] = {}   # most runs of a root share most values: each encoded once
    for record in records:
        for key, value in sorted(flatten(record.config).items()):
            if isinstance(value, (list, dict, float)):   # a float: 0.0 == -0.0, but not as text
                text = _ENCODE(value)
            else:
                text = texts.get((type(value), value))
                if text is None:
                    text = texts[type(value), value] = _ENCODE(value)
            run_ids.append(record.run_id)
            keys.append(key)
            values.append(text)
    return pa.Table.from_arrays([pa.array(run_ids, pa.string()), pa.array(keys, pa.string()),
                                 pa.array(values, pa.string())], schema=CONFIG_SCHEMA)


# json.dumps(value, sort_keys=True), with one encoder: json.dumps makes one per call when given options.
_ENCODE = json.JSONEncoder(sort_keys=True).encode


def problems_table(problems: list[Problem]) -> pa.Table:
    return pa.Table.from_pylist([vars(p) for p in problems], schema=PROBLEMS_SCHEMA)


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
