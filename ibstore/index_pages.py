"""Checking a scan's table files when a table is first read, and keeping the verdicts in the index.

A scan reads run.json and the footers of every changed run folder but decodes no page
(ibstore.scan_pages); `Scan.check(tables, run_ids)` calls `check` here before anything reads
those tables: the unchecked files among them are checked on several threads, a damaged one is
dropped from the scan's files and becomes its run's problem, and both the verdicts and the
problems go into the index entry of the run (if the index still holds the entry the scan was
made from, i.e. the folder has not changed since), which is saved at once when checking them
again would cost more than the save (`worth_saving`): the next process checks none of these files
again.
"""

from __future__ import annotations

import os
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from ibstore import layout
from ibstore.index_file import Entry
from ibstore.scan import Problem, Scan
from ibstore.scan_pages import page_verdicts


# Checking a file costs about as much CPU as saving the index costs for this many run folders
# (bench/RESULTS.md, issue 20 branch warm100k: at 100,000 runs the first `... FROM mi WHERE run_id
# IN (12 ids)` spent most of its time saving 12 verdicts).
RUNS_PER_FILE_WORTH_A_SAVE = 16


def worth_saving(files_checked: int, damaged: bool, run_folders: int) -> bool:
    """Whether verdicts are saved at once: if checking the files again would cost more than the
    save, or if they found damage (which `trainer ls` then names); else with the next save."""
    return damaged or files_checked * RUNS_PER_FILE_WORTH_A_SAVE >= run_folders


def check(scan: Scan, tables: tuple[str, ...], run_ids: list[str] | None, entries: dict[str, Entry],
          apply_to_index: Callable[[Callable[[dict[str, Entry], pa.Table], pa.Table], bool], None]) -> None:
    """Check the unchecked files of `tables` (of `run_ids`, or every run) that `scan` lists.
    `entries` are the index entries `scan` was made from; `apply_to_index(change, save)` runs
    `change(the index's entries, its file table)` under the index's lock, and saves what it returns
    if `save` (`worth_saving`)."""
    files = scan.file_table
    wanted = pc.and_(pc.is_in(files["table"], value_set=pa.array(tables, pa.string())), pc.invert(files["checked"]))
    if run_ids is not None:
        wanted = pc.and_(wanted, pc.is_in(files["run_id"], value_set=pa.array(run_ids, pa.string())))
    rows = files.filter(wanted)
    if rows.num_rows == 0:
        return
    runs_dir = layout.runs_dir(scan.root)
    run_column, names, table_names = (rows[c].to_pylist() for c in ("run_id", "name", "table"))
    verdicts = page_verdicts([(os.path.join(runs_dir, run_id, name), table)
                              for run_id, name, table in zip(run_column, names, table_names)])
    scan.pages_checked += len(verdicts)
    keys = [_key(run_id, name) for run_id, name in zip(run_column, names)]
    damaged = {key: Problem(run_id, os.path.join(runs_dir, run_id, name), verdict)
               for key, run_id, name, verdict in zip(keys, run_column, names, verdicts) if verdict is not None}
    scan.file_table = _marked(files, keys, damaged)
    if damaged:
        scan.problems = [*scan.problems, *(p for p in damaged.values() if p not in scan.problems)]
        scan.views.pop("problems", None)
    scan.__dict__.pop("files", None)   # the cached per-run listing, made again from file_table

    def change(index_entries: dict[str, Entry], index_files: pa.Table) -> pa.Table:
        # Only entries the scan was made from: a folder changed since is read again anyway.
        same = {run_id for run_id in set(run_column) if index_entries.get(run_id) is entries.get(run_id)}
        for problem in damaged.values():
            if problem.run_id in same and problem not in entries[problem.run_id].problems:
                entry = entries[problem.run_id]
                entry.problems = (*entry.problems, problem)
        return _marked(index_files, [key for key, run_id in zip(keys, run_column) if run_id in same], damaged)

    apply_to_index(change, worth_saving(len(verdicts), bool(damaged), len(entries)))


def _key(run_id: str, name: str) -> str:
    return f"{run_id}{os.sep}{name}"


def _marked(files: pa.Table, checked: list[str], damaged: dict[str, Problem]) -> pa.Table:
    """`files` with the rows `checked` (keys run_id/name) marked checked, the `damaged` ones left out."""
    keys = pc.binary_join_element_wise(files["run_id"], files["name"], os.sep)
    now_checked = pc.or_(files["checked"], pc.is_in(keys, value_set=pa.array(checked, pa.string())))
    files = files.set_column(files.schema.get_field_index("checked"), "checked", now_checked)
    if damaged:
        files = files.filter(pc.invert(pc.is_in(keys, value_set=pa.array(list(damaged), pa.string()))))
    return files
