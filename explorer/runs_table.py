"""The Runs page's table and its grouping: pure functions of the `runs` view (no Streamlit).

The columns a reader scans come first and fit a 1280 px window: flags, status, the varying keys
(typed, so numbers sort as numbers), the seed, the final accuracies and the progress; the name,
ids and bookkeeping follow. Rows are ordered by the varying keys' values and the seed.
"""

from __future__ import annotations

import math

import pandas as pd

from explorer import phase_charts, seed_bands
from explorer.charts import layer_label
from explorer.cohort_tables import last_hidden_layer
from ibstore import configdiff, record, stats
from ibstore.record import Status

FIRST = ["flags", "status"]
OUTCOMES = {"final_test_accuracy": "test acc", "final_train_accuracy": "train acc"}
AFTER_KEYS = ["seed", *OUTCOMES, "progress"]
LAST = ["name", "epochs_done", "epochs_total", "duration_s", "cohort", "run_id", "error"]
FLAGS = tuple(record.FLAGS.values())   # the badges a group's runs are counted by (explorer.ui.BADGES)
COMPRESSION = "compression"          # the parallel coordinates' outcome: a layer's compression over its floor
EACH_LAST_HIDDEN = "last hidden (each network's own)"   # its layer, the default: as the Phases page asks
# A root of 100,000 runs: the table sends one page of rows to the browser at each interaction
# (every row would be serialised each time), the parallel coordinates draw a sample of lines.
ROWS_PER_PAGE = 1_000
DRAWN_RUNS = 2_000


def runs_table(runs: pd.DataFrame, varying: list[str], flags: dict[str, list[str]]) -> pd.DataFrame:
    """The rows of `runs` in reading order with the columns in reading order: a varying key's
    column is the view's typed column (a key missing from the view, e.g. named like a record
    column, is left out)."""
    keys = [k for k in varying if k in runs and k not in FIRST + AFTER_KEYS + LAST]
    wanted = FIRST + keys + AFTER_KEYS + LAST
    # only the columns shown are copied and sorted (the view has a column per config key: copying
    # them all was most of the table's cost at 100,000 runs; bench/RESULTS.md)
    flag_text = runs["run_id"].map({r: ", ".join(marks) for r, marks in flags.items()}).astype(object).fillna("")
    # a completed run is done, also one that stopped at its stop_at_accuracy before its last epoch
    done = runs["status"].astype(str) == Status.COMPLETED.value
    progress = (runs["epochs_done"] / runs["epochs_total"]).clip(upper=1.0).where(~done, 1.0)
    # a run without an error shows an empty cell, not the grid's "None"
    table = runs[[c for c in wanted if c not in ("flags", "progress")]].assign(
        flags=flag_text, progress=progress, error=runs["error"].astype(object).fillna(""))
    table = table.sort_values([*keys, "seed", "run_id"], key=_sortable, na_position="last", kind="stable")
    return table[wanted].reset_index(drop=True)


def _sortable(column: pd.Series) -> pd.Series:
    """Numbers and booleans by value, anything else (JSON text, strings) as text."""
    return column if _is_number(column) else column.astype(str)


def group_summary(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """W&B's Group: per value of `key`, the number of runs of `table` (rows of `runs_table`), how
    many carry each flag (dead, saturated, diverged), how many completed, and the mean final test
    accuracy over the completed ones with its 95 % t-interval, cut to [0, 1] (none for
    one run): an interrupted run's accuracy is where it stopped, not where training ends (as the
    Training page and the report count them). `configs` counts the settings of the other varying
    keys (the table's key columns) among a row's runs: where its completed runs have more than one,
    the mean has no interval, since the seed is the unit and those runs are not seeds of one
    setting. A network trained twice (the same setting and seed under another name, or with other
    measurement or launch settings: configdiff.same_networks' rule) is one seed: `seeds` counts the
    networks the mean is over, each once, and settings that differ only in what they measure are
    one setting for its interval. Values in order."""
    outcome = "final_test_accuracy"
    flags = table["flags"].str.split(", ")
    marked = {flag: flags.map(lambda marks: flag in marks) for flag in FLAGS}   # mapped at once: no late binding
    others = [column for column in table.columns if column not in (*FIRST, *AFTER_KEYS, *LAST, key)]
    # each value as text, every missing one (None, NaN, NA) as one (astype(str) keeps NaN, which join refuses)
    texts = table[others].astype(object).where(table[others].notna(), None).map(str)

    def joined(columns: list[str]) -> pd.Series:
        return texts[columns].agg("\x1f".join, axis=1) if columns else pd.Series("", index=table.index)
    trained = [column for column in others if column.split(".")[0] not in configdiff.MEASUREMENT_SETTINGS]
    frame = table.assign(**marked, _key=table[key] if _is_number(table[key]) else table[key].astype(str),
                         completed=table["status"].astype(str) == Status.COMPLETED.value, _setting=joined(others),
                         _network=joined(trained))
    counts = frame.groupby("_key", dropna=False).agg(runs=("run_id", "size"), configs=("_setting", "nunique"),
                                                     **{flag: (flag, "sum") for flag in FLAGS},
                                                     completed=("completed", "sum")).reset_index()
    # a sceptic's 6 runs of bias 2 were 3 networks trained twice: their interval was half as wide
    ended = frame[frame["completed"]].dropna(subset=[outcome]).drop_duplicates(["_key", "_network", "seed"])
    means = seed_bands.over_seeds(ended, ["_key"], outcome, bounds=(0.0, 1.0))
    pooled = means["_key"].map(ended.groupby("_key", dropna=False)["_network"].nunique()) > 1
    means.loc[pooled, [f"{outcome}_lo", f"{outcome}_hi"]] = math.nan
    out = counts.merge(means, on="_key", how="left").rename(columns={"_key": key})
    out["seeds"] = out["seeds"].fillna(0).astype(int)
    out = out.sort_values(key, key=_sortable, na_position="last").reset_index(drop=True)
    return out.rename(columns={outcome: f"mean {OUTCOMES.get(outcome, outcome)}",
                               f"{outcome}_lo": "95% CI low", f"{outcome}_hi": "95% CI high"})


def _is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def layer_compression(phases: pd.DataFrame, layer: tuple[int, str] | None, estimator: str, params: str,
                      split: str) -> pd.DataFrame:
    """Per run (index run_id) of `layer` (its number and name; None: each run's own last hidden
    layer) under one estimator, params and split: COMPRESSION, its compression over its noise floor
    (compression_bits - noise_floor_bits, the `phases` view's: ibstore.stats.EXCESS), an outcome per
    run beside the final accuracies: I(X;T)'s fall from its group's peak epoch to the run's end. Not
    peak - final alone, which noise makes positive in every run (its own peak is picked where its
    noise is high). NULL where `left_out` says why the statistics leave the run out
    (phase_charts.left_out: dead, diverged, unfinished), as every page leaves them out: a dead
    network's I(X;T) stands still, and its zero is no answer. Also the layer's label (`layer`).
    A run without that layer has no row:
    of networks of different depths one number names another layer in each (the output layer of
    the shallower, a hidden one of the deeper), so a layer is its number and its name."""
    rows = phases[(phases["estimator"] == estimator) & (phases["params"] == params) & (phases["split"] == split)]
    if layer is None:
        rows = rows[rows["layer"] == rows.groupby("run_id")["layer"].transform(last_hidden_layer)]
    else:
        named = rows["layer_name"].isna() if pd.isna(layer[1]) else rows["layer_name"] == layer[1]  # NULL: older files
        rows = rows[(rows["layer"] == layer[0]) & named]
    why = phase_charts.left_out(rows)
    excess = stats.with_excess(rows)[stats.EXCESS].astype(float).where(pd.isna(why))
    labels = [layer_label(int(number), name) for number, name in zip(rows["layer"], rows["layer_name"])]
    return pd.DataFrame({COMPRESSION: excess.to_numpy(), "left_out": why, "layer": labels},
                        index=pd.Index(rows["run_id"]))


def unmeasured_note(shown: int, measured: int, what: str) -> str | None:
    """The sentence counting the runs shown with no row of `what` (no such layer, or no such
    estimator or split recorded), which draw no line; None if every run has one."""
    if measured >= shown:
        return None
    return f"{shown - measured} of the {shown} runs shown recorded no {what}: they draw no line."


def left_out_note(left_out: pd.Series) -> str | None:
    """The sentence counting the runs with no value of the outcome because the statistics leave them
    out (`left_out`: a reason per run, None where it has a value), as the Phases page's legend counts
    them; None if there are none."""
    counts = phase_charts.left_out_counts(left_out)
    if not counts:
        return None
    return (f"{int(left_out.notna().sum())} of the {len(left_out)} runs measured draw no line ({', '.join(counts)}): the "
            "statistics leave them out, as every page does (a dead network's I(X;T) stands still: its zero is "
            "no answer to \"does it compress?\").")


def page_count(rows: int) -> int:
    """Pages of ROWS_PER_PAGE rows for `rows` rows (one page for none)."""
    return max(1, -(-rows // ROWS_PER_PAGE))


def page_rows(rows: int, page: int) -> slice:
    """The rows of page `page` (1-based; a page past the end is the last one) of `rows` rows."""
    start = (min(max(page, 1), page_count(rows)) - 1) * ROWS_PER_PAGE
    return slice(start, min(start + ROWS_PER_PAGE, rows))


def picked_selection(shown: list[str], on_page: list[str], rows: list[int], selection: list[str]) -> list[str]:
    """The selection after the reader picked `rows` (positions in `on_page`) on one page of the
    runs `shown`: that page's picks, the selected runs on other pages, in table order, then the
    selected runs the filters hide (they stay selected)."""
    page, picked, selected = set(on_page), {on_page[i] for i in rows}, set(selection)
    visible = set(shown)
    return ([r for r in shown if r in picked or (r in selected and r not in page)]
            + [r for r in selection if r not in visible])


def drawn_sample(table: pd.DataFrame) -> pd.DataFrame:
    """At most DRAWN_RUNS rows of `table`, a sample fixed by its seed (the same lines at every
    rerun), in table order."""
    return table if len(table) <= DRAWN_RUNS else table.sample(n=DRAWN_RUNS, random_state=0).sort_index()
