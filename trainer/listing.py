"""`trainer ls`: the runs of a results root as an aligned text table.

The name column is the config's name, followed by the keys in which runs of that name differ
(`basic (activation_fn=relu, initial_bias=0.2)`): `trainer run basic.json --set ...` gives every
run the name "basic", and the explorer picks the differing keys out the same way
(ibstore.configdiff, the seed left out). The cohorts `trainer report` takes follow the table.

Text from a results root is data, not terminal control: every string is shown with
control characters escaped (`ibstore.text.terminal_text`), so a newline in a folder name
cannot print a fake row and an escape sequence cannot recolour the terminal.
"""

from __future__ import annotations

import re
import shlex
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

from ibstore.configdiff import format_config, format_value, short_value, varying_keys
from ibstore.record import RunRecord, run_flags
from ibstore.text import terminal_text

COLUMNS = ("run_id", "status", "epochs", "test_acc", "flags", "name")
# A name longer than this is cut (run.json allows a 1 MiB name, or 20,000 differing keys: one
# root's `ls` printed megabytes); `trainer sql "SELECT run_id, name, config_json FROM runs"` has it all.
MAX_NAME_CHARS = 200
MAX_COHORTS_LISTED = 20
RIGHT_ALIGNED = {"epochs", "test_acc"}
# Printed under a non-empty table: which rule each flag applies (DESIGN.md, "Results root").
LEGEND = ("flags: dead = from some logged epoch to the end a hidden layer got exactly zero kernel gradient or "
          "gave the same activations on every input; saturated = not dead, but from some logged epoch to the end "
          "a hidden layer had 99 % of its values at a bound of its activation (or was dead); diverged = a train "
          "or test loss was NaN or infinite, or the activations grew past what a histogram bin can index")

# A number inside a run id is a whole dash-separated token. Slugs write a minus sign as "m"
# and a decimal point as "-" (trainer.config.slug: bias=-0.5 -> "m0-5"), so
# "m1" < "0" < "0-2" < "2" < "10"; JSON's exponent form of a small number, 1e-05 or 2.5e-05, keeps
# its "e-" ("1e-05" < "0-0001": a sceptic's learning rates were sorted as text); a token of
# letters then digits ("s10") ends in a number. Tokens mixing digits and letters otherwise
# (config hashes) stay text.
_SLUG_NUMBER = re.compile(r"(?<![a-z0-9])(?:(m?)(\d+)(?:-(\d+))?(?:e-(\d+))?|[a-z]+(\d+))(?![a-z0-9])")


def natural_key(run_id: str) -> tuple:
    """Sort key that orders the numbers in a run id by value, not as text."""
    key: list[tuple] = []
    position = 0
    for match in _SLUG_NUMBER.finditer(run_id):
        minus, whole, fraction, exponent, trailing = match.groups()
        if trailing is not None:
            start, value = match.start(5), float(trailing)
        else:
            start = match.start()
            value = float(f"{whole}.{fraction or 0}e-{exponent or 0}") * (-1 if minus else 1)
        key.append((run_id[position:start], value))
        position = match.end()
    key.append((run_id[position:],))
    return (tuple(key), run_id)


def row(record: RunRecord, differing: Sequence[str] = (), value_text: Callable[[Any], str] = short_value
        ) -> dict[str, str]:
    """One run's cells; `differing` are the config keys its name shares with runs that differ in them,
    each value written by `value_text`."""
    done = "?" if record.epochs_done is None else str(record.epochs_done)
    total = "?" if record.epochs_total is None else str(record.epochs_total)
    accuracy = "-" if record.final_test_accuracy is None else f"{record.final_test_accuracy:.3f}"
    return {"run_id": terminal_text(record.run_id), "status": record.status.value, "epochs": f"{done}/{total}",
            "test_acc": accuracy, "flags": ",".join(run_flags(record)) or "-",
            "name": _shown(_name(record, differing, value_text))}


def _shown(name: str) -> str:
    """The name escaped, cut to MAX_NAME_CHARS characters with how many more it has."""
    shown = terminal_text(name)
    return shown if len(shown) <= MAX_NAME_CHARS else f"{shown[:MAX_NAME_CHARS]}... ({len(shown) - MAX_NAME_CHARS:,} more)"


def _name(record: RunRecord, differing: Sequence[str], value_text: Callable[[Any], str]) -> str:
    if not differing:
        return record.name or ""
    return f"{record.name or ''} ({format_config(record.config, list(differing), value_text)})"


def differing_by_name(records: Sequence[RunRecord]) -> dict[str, tuple[list[str], Callable[[Any], str]]]:
    """Per name, the config keys (dotted, sorted) whose values differ among the runs of that name, and
    how to write their values: `short_value` (a list of estimators by their names) where that tells
    the runs apart as well as the JSON does, else `format_value` (a sceptic's two "estpar2" runs, bin
    sizes 0.07 and 0.1, both read "estimators=binning"), as configdiff.labels titles them."""
    configs: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        configs[record.name or ""].append(record.config)
    differing = {}
    for name, group in configs.items():
        if len(group) > 1:
            keys = varying_keys(group)
            short, whole = ({format_config(c, keys, text) for c in group} for text in (short_value, format_value))
            differing[name] = keys, short_value if len(short) == len(whole) else format_value
    return differing


def table(records: Sequence[RunRecord]) -> str:
    """Header and one line per run in natural run-id order, columns aligned, then the flags' LEGEND
    (header alone if none)."""
    differing = differing_by_name(records)
    rows = [row(record, *differing.get(record.name or "", ((), short_value)))
            for record in sorted(records, key=lambda r: natural_key(r.run_id))]
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in COLUMNS}

    def line(cells: dict[str, str]) -> str:
        return "  ".join(cells[c].rjust(widths[c]) if c in RIGHT_ALIGNED else cells[c].ljust(widths[c])
                         for c in COLUMNS).rstrip()
    return "\n".join([line({c: c for c in COLUMNS}), *(line(r) for r in rows), *([LEGEND] if rows else [])])


def cohorts_line(listed: Sequence[RunRecord], every: Sequence[RunRecord]) -> str | None:
    """The line "cohorts (trainer report COHORT): initial_bias_relu (20 runs), quickstart (25 runs)":
    the cohorts of the `listed` runs by name, each with its runs among `every` run of the root (what
    `trainer report` reads of it, whatever `--where` listed), the first MAX_COHORTS_LISTED and how
    many more; each name as a shell takes it (`'quick start, v2'`), escaped and cut as run names
    are, and `--output DIR --` before COHORT where a name starts with '-' (options go before `--`).
    None if no listed run belongs to a cohort. The table shows none of these names (a run's name is
    its config's, not its cohort's)."""
    listed_cohorts = {record.cohort for record in listed if record.cohort is not None}
    counts = Counter(record.cohort for record in every if record.cohort in listed_cohorts)
    if not counts:
        return None
    shown = sorted(counts.items())[:MAX_COHORTS_LISTED]
    named = [f"{_shown(shlex.quote(cohort))} ({count} run{'' if count == 1 else 's'})" for cohort, count in shown]
    more = f" and {len(counts) - MAX_COHORTS_LISTED:,} more" if len(counts) > MAX_COHORTS_LISTED else ""
    # A name like an option (`--output=x`) reaches `trainer report` as a name only after `--`
    dashed = any(cohort.startswith("-") for cohort, _ in shown)
    command = "trainer report --output DIR -- COHORT" if dashed else "trainer report COHORT"
    return f"cohorts ({command}): {', '.join(named)}{more}"


def first_run_hint() -> str:
    """A command that works from any folder: the packaged example config by absolute path if
    this installation has it (a source checkout), else a placeholder."""
    example = Path(__file__).resolve().parents[1] / "data" / "configs" / "basic.json"
    config = str(example) if example.is_file() else "CONFIG.json"
    return f"no runs yet: try `trainer run {config} --set epochs=300`"
