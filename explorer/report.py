"""`trainer report COHORT... --output DIR`: a Markdown report of cohorts with LaTeX-ready tables
and figures (PNG and SVG through vl-convert, drawn by the explorer's own chart builders).

For every estimator (with its parameters) recorded on the chosen split:
- per layer, I(X;T) and I(Y;T) against epoch, a line per seed group with its band over seeds and
  the peak and SNR-drop epochs marked (ResultStore.phase_chart, explorer.phase_charts);
- the information plane per seed group (explorer.charts_infoplane.infoplane_grid, mean over seeds with
  the min-max spread);
- the per-group phase statistics (ibstore.stats.phase_stats): compression with its t interval
  and its test against the measured noise floor, p and q (adjusted over the layers);
- the comparison of every other group with a reference group (`--reference`, else the first),
  among those with a run kept (not dead, diverged or unfinished; ibstore.stats.compare_groups);
  the others are named, not compared;
- where the seed groups differ in one numeric config key at 3 or more values (initial_bias), the
  trend of each compared quantity along it per layer (ibstore.trend): slope per step with its
  interval from the studentized permutation test bounded by the t test, p, q over the layers,
  Spearman's rho.
An estimator that records no I(X;T) (ksg) gets its I(Y;T) figure and a sentence saying why instead.
At a glance, per estimator, whether the last hidden layer compresses in each group; per group its
health and its final test accuracy against the reference group.

Completed and diverged runs are reported (a diverged run is its setting's outcome, as a dead
network is); runs still training, failed and interrupted ones are left out and named (a report of
a cohort with nothing completed is refused). Dead networks stay in the health counts and the final
accuracies (chance accuracy is their outcome) and leave the phase statistics and the bands;
diverged runs stay in the health counts and leave everything else (they have no final accuracy),
so a setting whose every seed diverged keeps its row, with its count. The report is written to a
temporary folder beside DIR and renamed into place, and DIR may not lie inside the results root.
Reached from the trainer through one lazy import in `trainer.cli.cmd_report` (the trainer package
itself imports no explorer code). The tables and their sentences are explorer.cohort_tables', which
the Phases, Training and Compare pages show as well; this module writes them, with the figures.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from explorer import charts, charts_infoplane, cohort_tables, phase_charts
from explorer.results import ResultStore
from explorer.run_rows import in_order
from ibstore import configdiff, layout, scan, stats, views
from ibstore.git_commit import SOURCE, git_commit
from ibstore.record import Status
from ibstore.sandbox import SqlError
from ibstore.text import cut, terminal_text

REPORT_NAME = "report.md"
REPORT_FOLDER_KEPT = "report"    # the previous report's folder inside its `.old` folder while a new one swaps in
REPORT_FOLDERS = {"figures": (".png", ".svg"), "tables": (".tex",)}   # besides report.md: files of these kinds


class ReportError(ValueError):
    """Bad input to the report: one line, exit status 2."""


@dataclass(frozen=True)
class Selection:
    """The runs of the cohorts that are reported, and those left out, named."""
    run_ids: list[str]             # completed and diverged
    running: list[str]
    other: dict[str, str]          # run_id -> status (failed, interrupted): left out
    runs: pd.DataFrame             # the `runs` rows of run_ids
    where: str = ""                # the SQL condition over `runs` that chose them among the cohorts' runs
    left_by_where: int = 0         # the cohorts' runs it left out


def select(store: ResultStore, cohorts: list[str], where: str = "") -> Selection:
    """The runs of `cohorts` reported, and those left out; with `where` (a SQL condition over the
    `runs` view, as `trainer ls --where`) only those it holds for: a new user's shortened sweep and
    the full one were one cohort, which `--where "epochs = 8000"` reports apart."""
    runs = store.runs()
    if runs.empty:
        raise ReportError(f"the results root {store.root} has no runs; give the one the runs were trained into "
                          f"(--results DIR or ${layout.ROOT_ENV})")
    known = sorted(str(c) for c in runs["cohort"].dropna().unique())
    unknown = [c for c in cohorts if c not in known]
    if unknown:
        without = int(runs["cohort"].isna().sum())
        belong = "run belongs" if without == 1 else "runs belong"
        raise ReportError(f"unknown cohort {unknown[0]!r}; cohorts in {store.root}: {', '.join(known) or 'none'}"
                          + (f" ({without} {belong} to no cohort: a config's \"cohort\" key names its runs' "
                             "cohort when they are trained, as the shipped cohorts' configs do; a run keeps the cohort "
                             "it was trained in, so `--set cohort=NAME` finds runs already completed done, and "
                             "`--force` trains them again into NAME)" if without else ""))
    mine, left_by_where = runs[runs["cohort"].isin(cohorts)], 0
    if where.strip():
        configs = list(store.configs(list(runs["run_id"])).values())
        try:
            matched = set(store.run_ids_where(where))
        except SqlError as error:
            hint = views.where_error_hint(configs, where, error)
            raise ReportError(f"--where: {error}" + (f" ({hint})" if hint else "")) from None
        if not (kept := mine[mine["run_id"].isin(matched)]).empty:
            mine, left_by_where = kept, len(mine) - len(kept)
        else:
            raise ReportError(f"--where matched none of the {len(mine)} runs of cohort {', '.join(cohorts)}; "
                              "it is a SQL condition over the runs view, as `trainer ls --where` takes it"
                              + (f" ({hint})" if (hint := views.json_text_note(configs, where)) else ""))
    running = sorted(mine.loc[mine["status"] == Status.RUNNING, "run_id"])
    ended = mine[mine["status"].isin(cohort_tables.ENDED)]
    # not itertuples: its field names are config keys, which Python normalises ("ｌｒ" is "lr": SyntaxError)
    other = {run_id: status for run_id, status in zip(mine["run_id"], mine["status"])
             if status not in (Status.RUNNING, *cohort_tables.ENDED)}
    if not (ended["status"] == Status.COMPLETED).any():
        raise ReportError(f"no completed run in cohort {', '.join(cohorts)}"
                          + (f" ({len(running)} still training: {', '.join(running)})" if running else ""))
    return Selection(sorted(ended["run_id"]), running, other, ended.reset_index(drop=True), where.strip(),
                     left_by_where)


# The folder the Phases page writes reports in (default: reports/ in the folder the explorer was
# started in); a visitor names a folder inside it (`page_folder`).
REPORTS_ENV = "IB_REPORTS"
# The folder name a visitor may give: letters, digits, "_", "-", "+" and "." (not first: no "..", no
# hidden folder), at most 100 characters, one level (a report written inside another's folder made
# that one impossible to write again: an attacker's).
PAGE_FOLDER_CHARS = 100
PAGE_FOLDER_NAME = re.compile(rf"[A-Za-z0-9_+-][A-Za-z0-9_.+-]{{0,{PAGE_FOLDER_CHARS - 1}}}")


def reports_folder() -> Path:
    return Path(os.environ.get(REPORTS_ENV) or "reports")


def page_folder(name: str) -> Path:
    """The Phases page's report folder: `name`, one plain folder name (PAGE_FOLDER_NAME), inside
    `reports_folder()`. The page took any path the server's user may write, so a visitor wrote a
    report into /root/.ssh, and its refusals told what exists anywhere ("/etc holds '.java'", "~postgres"
    is a user): an attacker's.

    >>> page_folder("initial_bias/run 2")
    Traceback (most recent call last):
    ...
    explorer.report.ReportError: report folder 'initial_bias/run 2': give one folder name of at most 100 \
letters, digits and _ - + . (not starting with a dot); the report is written in reports
    """
    if not PAGE_FOLDER_NAME.fullmatch(name.strip()):
        raise ReportError(f"report folder {terminal_text(repr(cut(name, 200)))}: give one folder name of at most "
                          f"{PAGE_FOLDER_CHARS} letters, digits and _ - + . (not starting with a dot); the report is "
                          f"written in {terminal_text(str(reports_folder()))}")
    folder = reports_folder() / name.strip()
    if folder.resolve().parent != reports_folder().resolve():        # a symbolic link inside it
        raise ReportError(f"report folder {name.strip()} is a link out of {reports_folder()}, or onto it; give "
                          "another name")
    return folder


def default_folder(cohorts: list[str]) -> str:
    """The Phases page's report folder for `cohorts` (in `reports_folder()`): their names, letters,
    digits, "_" and "-" kept (a cohort's name may hold "/" or ".."). One folder for every report had
    the second visitor's report of another cohort replace the first's without a word (an attacker's).

    >>> default_folder(["initial_bias_relu"]), default_folder(["initial_bias_relu", "../x y"])
    ('initial_bias_relu', 'initial_bias_relu+x-y-bfca9750')
    """
    names = [re.sub(r"[^A-Za-z0-9_-]+", "-", cohort).strip("-") for cohort in cohorts]
    folder = "+".join(name for name in names if name)[:PAGE_FOLDER_CHARS - 9]     # room for "-" and a digest
    if folder != "+".join(cohorts):     # names that lost characters end in their digest: "x y" is not "x/y"
        folder = f"{folder or 'cohorts'}-{hashlib.sha256(json.dumps(cohorts).encode()).hexdigest()[:8]}"
    return folder


def output_folder(output: str | os.PathLike, root: Path, label: str = "--output") -> Path:
    """The report folder (a leading ~ is the home folder, as in a shell): refused inside the results
    root, if it holds anything but a report, or if its name holds a control or format character.
    `label` names it in the refusals: the option, or the Phases page's box."""
    if not str(output):   # Path("") is the working folder
        raise ReportError(f"{label} is empty; give a folder for the report")
    if any(unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp") for character in str(output)):
        raise ReportError(f"{label} {terminal_text(repr(str(output)))} holds a control or format character (a "
                          "newline, a bidirectional mark); give a folder of plain characters")
    # the page's "~/reports" made a folder named "~" in the server's folder (an attacker's), which
    # `rm -rf ~` would then take for the home folder
    try:
        output = Path(output).expanduser()
    except RuntimeError:      # ~name of no user
        raise ReportError(f"{label} {terminal_text(str(output))}: no such user's home folder; give a folder") from None
    # resolve() followed such a link and the report made its target, wherever it pointed
    if dangling := next((p for p in (Path(output), *Path(output).parents) if layout.leads_nowhere(p)), None):
        raise ReportError(f"{label} {output}: {dangling} is a symlink that leads nowhere (its target is missing, "
                          f"or it loops); give a folder")
    target = Path(output).resolve()
    root = Path(root).resolve()
    if target == root or root in target.parents:
        raise ReportError(f"{label} {output} is inside the results root {root}; write the report elsewhere")
    if target in root.parents:
        raise ReportError(f"{label} {output} holds the results root {root}; write the report elsewhere")
    if target.exists():
        if not target.is_dir():
            raise ReportError(f"{label} {output} is a file; give a folder")
        other = _not_of_a_report(target)
        if other:
            raise ReportError(f"{label} {output} holds {other}, which no report writes, and a new report replaces "
                              f"the whole folder; give an empty or new folder, or a previous report's")
    return target


def _not_of_a_report(folder: Path) -> str | None:
    """The first entry of `folder` a report does not write (as "name"), or None: a folder replaced
    by a new report holds report.md and REPORT_FOLDERS with their kinds of files, nothing else.
    (Any folder with a report.md was replaced whole, a results root or a thesis beside it included.)"""
    for entry in sorted(folder.iterdir()):
        if entry.name == REPORT_NAME and entry.is_file() and not entry.is_symlink():
            continue
        if entry.name in REPORT_FOLDERS and entry.is_dir() and not entry.is_symlink():
            kinds = REPORT_FOLDERS[entry.name]
            inner = next((f for f in sorted(entry.iterdir())
                          if f.is_symlink() or not f.is_file() or f.suffix not in kinds), None)
            if inner is None:
                continue
            return f"'{entry.name}/{inner.name}'"
        return f"'{entry.name}'"
    return None


def write_report(store: ResultStore, cohorts: list[str], output: str | os.PathLike, split: str | None = None,
                 band: str = "ci", reference: str | None = None, where: str = "",
                 label: str = "--output") -> tuple[Path, Selection]:
    """Writes the report of `cohorts` (their runs `where` holds for, `select`) into the folder
    `output` (atomically); returns its report.md and the runs reported and left out. `reference`: the
    seed group every other is compared with, by its name in the report (`activation_fn=tanh`) or its
    group_id; by default the first. `label` names `output` in the refusals (`output_folder`)."""
    started = time.monotonic()
    target = output_folder(output, store.root, label)
    selection = select(store, cohorts, where)
    labels = store.labels(selection.run_ids, by_group=True)
    reference = _ensure_group(reference, labels)
    split = _ensure_split(split, store.mi_choices(selection.run_ids), cohorts)
    try:   # a folder nobody may write (/proc, another user's, read-only) is the user's to change
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_dead_staging(target)
        staging = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(target.name)}{os.getpid()}.", suffix=".tmp",
                                        dir=target.parent))
        staging.chmod(0o755)   # mkdtemp's 0700 would hide a shared report from its readers
    except OSError as error:
        raise ReportError(f"{label} {output}: cannot write a folder beside {target.name} in {target.parent} "
                          f"({error.strerror or error}); give a folder you can write") from None
    try:
        (staging / "figures").mkdir()
        (staging / "tables").mkdir()
        body = _body(store, selection, labels, cohorts, staging, split, band, reference)
        seconds = time.monotonic() - started
        (staging / REPORT_NAME).write_text(body.replace("{SECONDS}", f"{seconds:.1f}"))
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target / REPORT_NAME, selection


def _remove_dead_staging(target: Path) -> None:
    """Remove what a report killed while it wrote left beside `target` (`_staging_prefix`: this
    host's, of a process that no longer runs): its folder being written, or the previous report it
    had swapped out and not yet removed (`_swap_in`): nothing else removed those folders. A previous
    report swapped out by a writer killed before the new one was in place goes back where it was."""
    pattern = re.compile(re.escape(_staging_prefix(target.name)) + r"(\d+)\.(?:[^.]+\.(?:tmp|old)|old)")
    for staging in target.parent.iterdir():
        match = pattern.fullmatch(staging.name)
        if match is None or staging.is_symlink() or not staging.is_dir():
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            kept = staging / REPORT_FOLDER_KEPT
            if staging.name.endswith(".old") and kept.is_dir() and not target.exists():
                kept.rename(target)
            shutil.rmtree(staging, ignore_errors=True)
        except OSError:   # alive, another user's
            pass


def _staging_prefix(name: str) -> str:
    """".NAME.HOST.": a report's folder is written beside its target as this, its pid and tempfile's
    suffix, so that a later report on this host can tell a killed writer's folder by its pid. A NAME
    beyond 100 bytes is its digest: with the rest it passed the 255 bytes a name may take (an
    attacker's valid 240-character folder was refused as "File name too long")."""
    shown = name if len(name.encode()) <= 100 else hashlib.sha256(name.encode()).hexdigest()[:16]
    return f".{shown}.{socket.gethostname()}."


_SWAPPING = threading.Lock()     # the explorer's visitors write reports from threads of one process


def _swap_in(staging: Path, target: Path) -> None:
    """Rename the finished folder into place; a previous report goes only once the new one is there.
    Two visitors writing one folder at once shared the previous report's name, and one got "Directory
    not empty" (an attacker's), and two `trainer report` processes could interleave the two renames:
    swaps into one folder take turns, a process's threads under a lock and processes under an
    advisory lock on the parent folder, and each keeps the previous report under a name of its own.
    What is in place is checked again there: a file put into the folder while the report was being
    written was removed with the previous report, and a folder above it swapped for a link sent the
    report through the link, out of the reports folder (an attacker's). `target` is a resolved path."""
    with _SWAPPING, _locked(target.parent):
        moved = {os.path.realpath(target.parent), os.path.realpath(staging.parent)} != {str(target.parent)}
        if moved:
            raise ReportError(f"{target.parent} was moved or replaced by a link while the report was written; the "
                              "report is not written: write it again")
        if not target.exists() and not target.is_symlink():
            staging.rename(target)
            return
        if target.is_symlink() or not target.is_dir():
            raise ReportError(f"{target} became a file or a link while the report was written; the report is not "
                              "written: give a folder")
        if other := _not_of_a_report(target):
            raise ReportError(f"{target} came to hold {other} while the report was written, which no report writes; "
                              "the report is not written: give an empty or new folder, or a previous report's")
        old = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(target.name)}{os.getpid()}.", suffix=".old",
                                    dir=target.parent))
        target.rename(old / REPORT_FOLDER_KEPT)
        try:
            staging.rename(target)
        except OSError as error:
            (old / REPORT_FOLDER_KEPT).rename(target)        # the previous report stays
            shutil.rmtree(old, ignore_errors=True)
            raise ReportError(f"cannot move the report into place at {target} ({error.strerror or error}); the "
                              "previous report is kept") from None
        shutil.rmtree(old)


@contextlib.contextmanager
def _locked(folder: Path):
    """An exclusive advisory lock (flock) on `folder` itself, held while the block runs."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _ensure_group(group: str | None, labels: dict[str, str]) -> str | None:
    """The group_id of `group`, given as its group_id or its name among `labels` (group_id -> name)."""
    if group is None or group in labels:
        return group
    named = [group_id for group_id, label in labels.items() if label == group]
    if len(named) == 1:
        return named[0]
    if named:
        raise ReportError(f"--reference {group!r} names {len(named)} seed groups; give one of their group ids: "
                          + ", ".join(named))
    raise ReportError(f"--reference {group!r} is no seed group of the report; its seed groups: "
                      + "; ".join(labels.values()))


def _ensure_split(split: str | None, choices: pd.DataFrame, cohorts: list[str]) -> str | None:
    """The split the report reads: the one asked for, which the runs must have MI on (else a
    report without MI, written as if nothing were wrong), or by default train, else full, else test."""
    recorded = [name for name in ("train", "full", "test") if name in set(choices["split"])]
    if split is None:
        return next(iter(recorded), None)
    if split not in recorded:
        raise ReportError(f"--split {split}: cohort {', '.join(cohorts)} has no MI on that split; "
                          f"its MI is on {', '.join(recorded) if recorded else 'no split (no MI recorded)'}")
    return split


def source_digest(top: Path) -> str:
    """The first 12 hex digits of a SHA-256 over the source of the packages under `top` that compute
    a report's numbers (ibstore: the views and statistics; explorer: the tables and figures), file by
    file in path order, each path and its bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for name in ("ibstore", "explorer") for p in (top / name).rglob("*.py")):
        digest.update(path.relative_to(top).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "(not installed)"
    libraries = ", ".join(f"{name} {installed(name)}" for name in NUMERIC_LIBRARIES)
    # the checkout's commit too (a new user could not tell which code wrote three reports from their
    # digests alone); the digest is the source as imported, the commit the nearest named one
    commit = git_commit()
    # "not a git commit ... HEAD is" read to a new user as an uncommitted checkout
    checkout = "" if commit is None else f", from the checkout at git commit {commit[:12]}"
    return (f"information-plane-lab {installed('information-plane-lab')}, source digest "
            f"{source_digest(SOURCE)} (a SHA-256 of the source files as imported{checkout}); {libraries}")


NUMERIC_LIBRARIES = ("numpy", "scipy", "pandas", "duckdb", "pyarrow")   # numpy's generators draw the resamples
# The code that writes a report, "information-plane-lab 0.1.0, source digest 1a2b3c4d5e6f (a SHA-256 of
# the source files as imported, from the checkout at git commit 0123456789ab); numpy 2.3.5, ...":
# the package's version, `source_digest` of the source as this process imported it (committed or
# not), the checkout's commit where it is one, and the libraries its numbers come from. Two reports
# of one results root that disagree then say whether their code did: a reviewer's two reports of an
# unchanged root differed in their p values, the compression test having changed between them, and
# nothing in them said so.
CODE_VERSION = _code_version()


def _body(store: ResultStore, selection: Selection, labels: dict[str, str], cohorts: list[str], folder: Path,
          split: str | None, band: str, reference: str | None) -> str:
    run_ids = selection.run_ids
    runs = selection.runs.assign(group=lambda f: f["group_id"].map(labels))
    completed = runs[runs["status"] == Status.COMPLETED]
    diverged = f" and {len(runs) - len(completed)} diverged" if len(runs) > len(completed) else ""
    header = [f"# Report: {inline_text(', '.join(dict.fromkeys(cohorts)))}", "",
              *([f"Runs where {inline_text(selection.where)} (`--where`; {selection.left_by_where} of the cohorts' "
                 "runs left out by it).", ""] if selection.where else []),
              f"Results root `{store.root}`; {len(completed)} completed{diverged} run{'s' * (len(runs) != 1)} in "
              f"{len(labels)} seed group{'s' * (len(labels) != 1)}; "
              f"written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC in {{SECONDS}} s by `trainer report` "
              f"({CODE_VERSION}). What they were trained with is at the end (\"What was trained\").", ""]
    lines = []
    if selection.running:
        lines += [f"Left out, still training: {inline_text(', '.join(selection.running))}.", ""]
    if selection.other:
        lines += ["Left out, not completed: " + inline_text(", ".join(f"{r} ({s})" for r, s in selection.other.items()))
                  + ".", ""]
    configs = store.flat_configs(run_ids)
    lines += _paragraphs([cohort_tables.same_networks_note(store, run_ids, labels),
                          cohort_tables.mixed_groups_note(store, run_ids, labels),
                          cohort_tables.data_versions_note(runs, labels, configs)])
    health = cohort_tables.health_table(runs, labels)
    lines += ["## Health per seed group", "", cohort_tables.HEALTH_CAPTION, "", *_markdown(health), "",
              *_paragraphs([cohort_tables.majority_class_note(runs, labels)])]
    _save_table(health, folder, "health")
    accuracy = cohort_tables.accuracy_comparison(completed, labels, reference, configs)
    if not accuracy.empty:
        lines += [f"### Final test accuracy compared{cohort_tables.compared_title(accuracy['b'], inline_text)}", "",
                  cohort_tables.ACCURACY_CAPTION, "", *_markdown(accuracy), ""]
        _save_table(accuracy, folder, "accuracy-comparison")
    if len(labels) > 1:
        lines += _paragraphs([cohort_tables.no_accuracy_note(runs, labels)])
    lines += _reach(store, runs, labels, reference, configs, folder)   # diverged groups too, which have no accuracy
    phases, curves = store.phases(run_ids), store.phase_curves(run_ids)
    choices = store.mi_choices(run_ids)
    unreadable = {problem.run_id for problem in scan.left_out(store.problems)}     # named apart (`_unreadable`)
    lines += _paragraphs([_other_split_note(phases, labels, split),
                          _no_mi_note(runs[~runs["run_id"].isin(unreadable)], phases, labels)])
    choices = choices[choices["split"] == split]
    if choices.empty:
        return "\n".join(header + _unreadable(store, run_ids) + lines + ["No MI recorded in these runs.", ""]
                         + _trained(store, run_ids, folder))
    glances: list[_Glance] = []
    without_i_xt = []
    along = cohort_tables.trend_key(store, run_ids)
    if along is None:
        lines += _paragraphs([cohort_tables.not_a_number_note(store, run_ids)])
    for number, (estimator, params) in enumerate(choices[["estimator", "params"]].itertuples(index=False), 1):
        name = _file_name(number, estimator)
        these = phases[(phases["estimator"] == estimator) & (phases["params"] == params) & (phases["split"] == split)]
        lines += [f"## {inline_text(f'{estimator} {params}')}, {split} split", ""]
        if cohort_tables.records_no_i_xt(these):
            without_i_xt.append(inline_text(f"{estimator} {params}"))
            lines += _figures(store, runs, labels, estimator, params, split, band, folder, name, with_i_xt=False)
            lines += [cohort_tables.no_i_xt_note(estimator), ""]
            continue
        lines += _figures(store, runs, labels, estimator, params, split, band, folder, name)
        lines += _paragraphs([cohort_tables.clipped_note(these, labels)])
        these_curves = curves[(curves["estimator"] == estimator) & (curves["params"] == params)
                              & (curves["split"] == split)]
        section, glanced = _tables(these, these_curves, curves, labels, reference, configs, along, folder, name,
                                   f"{estimator} {params}")
        lines += section
        glances.append(glanced)
    at_glance = ["## At a glance: does the last hidden layer compress?", "",
                 "Per estimator and seed group, compression of the last hidden layer beside its noise floor. "
                 f"{cohort_tables.ONE_LAYER} {cohort_tables.VERDICTS} {cohort_tables.UNDECIDED}", ""]
    if glances:
        glance = pd.concat([g.table for g in glances], ignore_index=True)
        _save_table(glance, folder, "glance")
        at_glance += [*_markdown(glance), "", *_paragraphs(g.note for g in glances)]
        if not (across := cohort_tables.across_estimators(glance)).empty:
            _save_table(across, folder, "glance-across-estimators")
            at_glance += ["### Across estimators", "", *_paragraphs([cohort_tables.across_estimators_note(glance)]),
                          *_markdown(across), ""]
    if without_i_xt:
        at_glance += [f"Not in this table, no I(X;T) recorded: {'; '.join(without_i_xt)} (see its section).", ""]
    if any(g.compared_note for g in glances):
        compared = [g.compared for g in glances if g.compared is not None]
        compared_all = pd.concat(compared, ignore_index=True) if compared else pd.DataFrame()
        if compared:
            _save_table(compared_all, folder, "glance-compared")
        # each estimator's reference is the first group it has two live runs of (cohort_tables.first_alive),
        # and a grid's pairs have several: one name only where every row has it
        references = list(dict.fromkeys(compared_all["b"])) if compared else []
        reference_group = inline_text(references[0]) if len(references) == 1 else cohort_tables.EACH_COMPARED
        at_glance += ["### " + cohort_tables.LAST_HIDDEN_QUESTION.format(reference_group),
                      "",
                      cohort_tables.LAST_HIDDEN_COMPARED, "", *(_markdown(compared_all) + [""] if compared else []),
                      *_paragraphs(g.compared_note for g in glances)]
    return "\n".join(header + _unreadable(store, run_ids) + at_glance + lines + _trained(store, run_ids, folder))


MAX_VALUE_CHARS = 300    # of one config value (an attacker's 5,000-character value was printed whole); run.json has it
TRAINED_CAPTION = ("The reported runs' config (the first run's, resolved: every default filled in and every `--set` "
                   "applied), \"varies\" where they differ: the seed groups' titles name those values. A shortened "
                   "cohort (fewer epochs, another log schedule) reads here as such. A value longer than "
                   f"{MAX_VALUE_CHARS} characters is cut; each run's run.json holds it whole.")
VARIES = "varies"


def _trained(store: ResultStore, run_ids: list[str], folder: Path) -> list[str]:
    """The report's last section: the config every reported run shares, VARIES where they differ
    (a new user's: a cohort shortened with `--set epochs=3000` read exactly like the shipped one)."""
    configs = list(store.configs(run_ids).values())
    common = configdiff.common_config_with_var(configs)
    varying = configdiff.differing_keys(configs)     # not the values "<var>": a label_column "<var>" read "varies"
    table = pd.DataFrame({"config key": list(common), "value": [
        VARIES if key in varying else cut(configdiff.format_value(value), MAX_VALUE_CHARS)
        for key, value in common.items()]})
    _save_table(table, folder, "config")
    return ["## What was trained", "", TRAINED_CAPTION, "", *_markdown(table), ""]


@dataclass(frozen=True)
class _Glance:
    """What one estimator adds to the report's "At a glance": its rows and sentence of each table."""
    table: pd.DataFrame
    note: str | None
    compared: pd.DataFrame | None
    compared_note: str | None


def _tables(these: pd.DataFrame, these_curves: pd.DataFrame, curves: pd.DataFrame, labels: dict[str, str],
            reference: str | None, configs: dict[str, dict], along: cohort_tables.Along | None, folder: Path,
            name: str, estimator: str) -> tuple[list[str], _Glance]:
    """One estimator's tables (phases rows `these` and I(X;T) curves of one estimator, params and split;
    the comparisons and trends get every estimator's `curves`, whose rows also carry a layer's SNR, a
    run's whatever the estimator): per seed group and layer, compared in pairs around the reference
    (`configs`: run_id -> flattened config, cohort_tables.compared_pairs), the trend along a key; and
    its glance."""
    group_stats = in_order(stats.phase_stats(these, these_curves), "group_id", labels)   # the labels' order
    group_stats["group"] = group_stats["group_id"].map(labels)
    table = cohort_tables.group_table(group_stats)
    _save_table(table, folder, f"{name}-groups")
    notes = [cohort_tables.ceiling_note(these, labels), cohort_tables.from_start_note(these, group_stats, labels),
             cohort_tables.units_died_note(these, labels), cohort_tables.left_out_note(group_stats)]
    lines = ["### Phases per seed group", "",
             f"Mean [95 % t interval] over seeds; {stats.COMPRESSION_TEST}. {cohort_tables.EXCESS_BOUND} "
             f"{cohort_tables.ADJUSTED} {cohort_tables.VERDICTS} {cohort_tables.UNDECIDED}", "",
             *_paragraphs(notes), *_markdown(table), ""]
    compared = cohort_tables.reference_comparisons(these, labels, reference, curves, configs)
    comparison = cohort_tables.comparison_table(these, labels, compared=compared)
    if not comparison.empty:
        _save_table(comparison, folder, f"{name}-comparison")
        notes = [cohort_tables.reference_note(these, labels, reference), cohort_tables.not_compared(these, labels),
                 cohort_tables.schedule_note(these_curves, these, labels),
                 cohort_tables.differences_note(compared, labels), cohort_tables.horizon_note(compared),
                 cohort_tables.two_depths_note(compared, these, labels)]
        lines += [f"### Seed groups compared{cohort_tables.compared_title(comparison['b'], inline_text)}", "",
                  f"{cohort_tables.COMPARED_CAPTION} {cohort_tables.ADJUSTED}", "", *_paragraphs(notes),
                  *_markdown(comparison), ""]
    if along is not None:
        trends = along.trends(these, curves)
        table = cohort_tables.trend_table(trends)
        _save_table(table, folder, f"{name}-trend")
        key = inline_text(along.key)
        shown = _markdown(table) if trends["p_value"].notna().any() else []    # else its note says why, once
        lines += [f"### Trend along {key}", "", cohort_tables.TREND_CAPTION.format(key=key), "",
                  *_paragraphs([cohort_tables.trend_note(trends, key), cohort_tables.horizon_note(trends)]), *shown, ""]
    last = cohort_tables.last_hidden_comparisons(compared, these)
    last_table = None if last.empty else cohort_tables.last_hidden_comparison_table(last, labels)
    last_notes = [None if last.empty else
                  cohort_tables.differences_note(last, labels, "groups", "at the last hidden layer"),
                  cohort_tables.other_depth_note(compared, last, labels)]
    return lines, _Glance(
        cohort_tables.glance_table(group_stats, estimator),
        _labelled(estimator, " ".join(filter(None, [
            cohort_tables.glance_note(group_stats),
            cohort_tables.last_hidden_from_start_note(these, group_stats, labels)])) or None),
        None if last_table is None else last_table.assign(estimator=estimator).pipe(_estimator_first),
        _labelled(estimator, " ".join(note for note in last_notes if note)))


def _other_split_note(phases: pd.DataFrame, labels: dict[str, str], split: str) -> str | None:
    """The sentence naming the seed groups with MI on other splits only, which every MI section of a
    report on `split` leaves out (a new user's: two cohorts reported together, one measured on the
    full inputs alone, lost its groups without a word); None if there are none."""
    on_split = set(phases.loc[phases["split"] == split, "group_id"])
    others = phases[~phases["group_id"].isin(on_split)].groupby("group_id", sort=False)["split"].unique()
    if others.empty:
        return None
    ordered = [group_id for group_id in labels if group_id in others.index]     # the report's order of groups
    named = "; ".join(f"{labels[group_id]} ({', '.join(sorted(others[group_id]))})" for group_id in ordered)
    flag = " or ".join(f"--split {name}" for name in sorted(set().union(*others)))
    return (f"Not in the MI sections below, no MI on the {split} split (the splits they have): {named}. "
            f"{flag} reports them.")


def _no_mi_note(runs: pd.DataFrame, phases: pd.DataFrame, labels: dict[str, str]) -> str | None:
    """The sentence naming, by seed group, the ended runs of `runs` with no MI at all (a run that
    diverged at epoch 0 logged none): no MI section counts them, where a sceptic's group of 3 seeds
    read n = 0 and "left out: 2 dead"; None if there are none."""
    missing = runs[~runs["run_id"].isin(set(phases["run_id"]))]
    if missing.empty:
        return None
    seeds = runs.groupby("group_id")["run_id"].size()
    named = "; ".join(
        f"{labels[group_id]}: {len(rows)} of {seeds[group_id]} seeds ("
        + ", ".join(f"{row.run_id} {row.status} at epoch {row.epochs_done}" for row in
                    rows[["run_id", "status", "epochs_done"]].itertuples()) + ")"
        for group_id, rows in in_order(missing, "group_id", labels).groupby("group_id", sort=False))
    return f"No MI was recorded for {named}: the MI sections below neither count nor name them."


def _paragraphs(notes) -> list[str]:
    """Each note that is there as a paragraph of the Markdown (a line, then an empty one), as text:
    the notes name seed groups by their config values (`inline_text`)."""
    return [line for note in notes if note for line in (inline_text(note), "")]


def _labelled(estimator: str, note: str | None) -> str | None:
    return f"{estimator}: {note}" if note else None


def _estimator_first(table: pd.DataFrame) -> pd.DataFrame:
    return table[["estimator", *table.columns.drop("estimator")]]


def _unreadable(store: ResultStore, run_ids: list[str]) -> list[str]:
    """The line naming the selected runs' files that could not be read (their rows are missing from
    every table and figure). Called once the tables were read: reading them finds such files."""
    unreadable = [problem for problem in scan.left_out(store.problems) if problem.run_id in set(run_ids)]
    if not unreadable:
        return []
    return ["Files that could not be read, left out of everything below: "
            + inline_text("; ".join(f"{problem.run_id}/{Path(problem.path).name} ({problem.problem})"
                                    for problem in unreadable)) + ".", ""]


def _figures(store, runs, labels, estimator, params, split, band, folder, name, with_i_xt: bool = True
             ) -> list[str]:
    """The I-vs-epoch figure and, for an estimator with I(X;T), the information plane per group."""
    lines_chart = store.phase_chart(runs["run_id"].tolist(), estimator, params, split, band,
                                    title=f"{estimator} {params}, {split}: mean over seeds, band {band}")
    live = runs.loc[pd.isna(phase_charts.left_out(runs)), "run_id"].tolist()
    drawn = "I(X;T) and I(Y;T)" if with_i_xt else "I(Y;T)"
    lines = [*_save_chart(lines_chart, folder, f"{name}-epochs",
                          f"{drawn} against epoch per layer; {phase_charts.MARKS_SAID}")]
    over_seeds = store.mi_over_seeds(live, estimator, params, split, "mean") if live and with_i_xt else None
    if over_seeds is not None and over_seeds.empty:
        # `trainer estimate` of dead runs alone: their plane had no epoch to colour, and the report failed
        lines += ["No information plane: no run of these groups that the statistics keep (dead and diverged "
                  "runs are left out) records this estimator.", ""]
    elif over_seeds is not None:
        over_seeds = in_order(over_seeds, "group_id", labels)     # panels in the tables' order
        over_seeds = over_seeds.assign(panel=over_seeds["group_id"].map(labels))
        title = f"{estimator} {params}, {split}: mean over seeds (dead and diverged left out), min-max spread"
        plane = charts_infoplane.infoplane_grid(over_seeds, columns=2, spread="min-max", title=title)
        lines += _save_chart(plane, folder, f"{name}-plane", "Information plane per seed group")
    return lines


def _file_name(number: int, estimator: str) -> str:
    """The stem of an estimator's figures and tables: its number and its name's letters, digits, "_"
    and "-". The name went into the files' names and so into the links' targets, unescaped: an
    estimator named `kde) <img src=x onerror=alert(1)> (` in a hand-made mi.parquet ran script in
    a viewer of report.md, and one holding "/" failed the report (an attacker's).

    >>> _file_name(2, "kde_upper"), _file_name(3, "kde) <img src=x onerror=alert(1)> ("), _file_name(4, "../..")
    ('2-kde_upper', '3-kde-img-src-x-onerror-alert-1', '4-estimator')
    """
    return f"{number}-{re.sub(r'[^A-Za-z0-9_-]+', '-', estimator).strip('-')[:60] or 'estimator'}"


def _save_chart(chart, folder: Path, name: str, caption: str) -> list[str]:
    import vl_convert as vlc

    svg = charts.svg(chart)     # an emoji or a control character drawn as U+FFFD; the tables keep it
    (folder / "figures" / f"{name}.svg").write_text(svg)
    # Rasterized from the SVG, not drawn again from the spec: one Vega layout for both files.
    (folder / "figures" / f"{name}.png").write_bytes(vlc.svg_to_png(svg, scale=2))
    return [f"![{caption}](figures/{name}.png)", "", f"{caption} ([SVG](figures/{name}.svg)).", ""]


def inline_text(text: str) -> str:
    """`text` (a config value, a cohort or key name: anyone's) as text on one Markdown line: no line
    break (a heading or a table row of its own), no HTML (`<img onerror=...>` ran in a viewer that
    renders it), no link or image whose text hides its target (`](` is broken), a backtick escaped
    (a bare URL stays a URL, shown as itself). Idempotent: text escaped here passes through it again
    unchanged.

    A character not printable (a bidi control that showed the rest of a sentence reversed, a
    zero-width one) is written as its escape, as the explorer and the CLI write it.

    >>> inline_text("a<b>\\n![t](http://x)`c` p < 0.05"), inline_text("x\\u202eyz")
    ('a&lt;b> ![t]\\\\(http://x)\\\\`c\\\\` p < 0.05', 'x\\\\u202eyz')
    """
    # what opens a tag, comment or autolink is escaped; "< 0.05" stays
    text = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", _one_line(text))
    return re.sub(r"(?<!\\)(`|(?<=\])\()", r"\\\1", text)


def _one_line(text) -> str:
    """`text` on one line, every character not printable (a bidi control, a zero-width one) written as
    its escape: what a Markdown cell and a LaTeX cell both need."""
    return terminal_text(re.sub(r"[\r\n]+", " ", str(text)))


def _markdown(table: pd.DataFrame) -> list[str]:
    def cell(value) -> str:
        return inline_text(value).replace("|", "\\|")
    header = "| " + " | ".join(cell(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    return [header, rule, *("| " + " | ".join(cell(v) for v in row) + " |"
                            for row in table.itertuples(index=False, name=None))]


def _reach(store: ResultStore, runs: pd.DataFrame, labels: dict[str, str], reference: str | None,
           configs: dict[str, dict], folder: Path) -> list[str]:
    """The epochs-to-accuracy comparison of the ended `runs` at `cohort_tables.reach_threshold` (saying
    why where it is not REACH_ACCURACY), its table and its per-seed table saved in `tables/`."""
    threshold = cohort_tables.reach_threshold(runs)
    metrics = store.metrics(list(runs["run_id"]))
    reach = cohort_tables.epochs_to_accuracy(metrics, runs, labels, threshold, reference, configs)
    if reach.empty:
        return []
    _save_table(reach, folder, "epochs-to-accuracy")
    per_seed = cohort_tables.reach_per_seed(cohort_tables.reach_epochs(metrics, runs, threshold), labels)
    _save_table(per_seed, folder, "epochs-to-accuracy-per-seed")
    why = (f"Asked at {threshold:g}, not {cohort_tables.REACH_ACCURACY:g}: a network that predicts one class scores "
           f"{cohort_tables.one_class_score(runs):.3g} on the test split. "
           if threshold != cohort_tables.REACH_ACCURACY else "")
    return [f"### Epochs to a test accuracy of {threshold:g}", "", why + cohort_tables.REACH_CAPTION
            + " Each seed's epoch: `tables/epochs-to-accuracy-per-seed.tex`.", "", *_markdown(reach), ""]


def _save_table(table: pd.DataFrame, folder: Path, name: str) -> None:
    """The table as LaTeX (booktabs) for a paper, beside the Markdown: each cell on one line (a blank
    line in a cell ended the tabular's row in TeX), bidi controls written as escapes."""
    one_line = table.rename(columns=_one_line).apply(   # numbers stay numbers, right-aligned
        lambda column: column if pd.api.types.is_numeric_dtype(column) else column.map(_one_line))
    (folder / "tables" / f"{name}.tex").write_text(one_line.to_latex(index=False, escape=True))
