"""`trainer estimate`: add MI rows of another estimator to finished runs, from their
saved activations, without retraining.

Rows of the same estimator and params are replaced, never duplicated. The run's
lock is held meanwhile (no trainer or other re-estimation writes the run), and
the mi table is replaced by one new base file holding its parts' rows minus the
replaced ones (then the parts are deleted; see tables.rewrite_table), so a reader
sees it before or after, whole.
"""

from __future__ import annotations

import resource
import zipfile
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ibstore import layout
from ibstore.lifecycle import read_record
from ibstore.lock import RunLock, RunLocked
from ibstore.record import Status
from ibstore.index import scan
from ibstore.schema import TABLE_SCHEMAS
from trainer import datasets, estimators, saved
from trainer.measure import MiRows, params_text, split_rows
from trainer.tables import list_tables, read_file, rewrite_table


OPEN_FILES_BESIDE_LOCKS = 64     # what an estimate opens while every run's lock is held


UNFINISHED = (Status.INTERRUPTED, Status.FAILED)
# what makes such a run finished (a resume continues from a checkpoint only where the run kept one)
AGAIN = ("train it again first (`trainer sweep CONFIG --resume` for an interrupted one, `--retry-failed` for a "
         "failed one)")


class EstimateError(ValueError):
    """A run that cannot be re-estimated; the message says why and what to do."""


def select_runs(root: Path, targets: list[str]) -> tuple[list[str], list[str]]:
    """Run ids matching each target (a run id, a group id: all its seeds, or a cohort name), and
    those left out: interrupted and failed runs a group or cohort holds (UNFINISHED). Such a run is
    not finished: its rows would stop at its last epoch, and a resumed run writes only its config's
    estimators (a new user's cohort of a sweep it stopped got rows on every interrupted run; an
    attacker's failed run, with no activations, refused the whole cohort). Named by its own id, it is
    refused."""
    runs = scan(root).runs
    status = {r.run_id: r.status for r in runs}   # as shown: a dead writer's run is interrupted
    selected, unfinished = [], []
    for target in targets:
        matched = [r.run_id for r in runs if target in (r.run_id, r.group_id, r.cohort)]
        if not matched:
            raise EstimateError(f"no run, group or cohort named {target!r} under {str(root)!r} "
                                f"(see `trainer ls`)")
        if matched == [target] and status[target] in UNFINISHED:
            raise EstimateError(f"run {target!r} is {status[target].value}, not finished; {AGAIN}, then estimate it")
        for run_id in matched:
            chosen = unfinished if status[run_id] in UNFINISHED else selected
            if run_id not in selected + unfinished:
                chosen.append(run_id)
    if not selected:
        raise EstimateError(f"every run of {', '.join(map(repr, targets))} is interrupted or failed, not finished; "
                            f"{AGAIN}, then estimate them")
    for run_id in selected:
        # training first: a run trained again (--force) has no saved activations yet, whatever its config says
        if status[run_id] is Status.RUNNING:
            raise EstimateError(f"run {run_id!r} is still training; estimate it when it has finished")
        if not saved.has_activations(root, run_id):
            raise EstimateError(f"run {run_id!r} has no saved activations, so it cannot be re-estimated; train its "
                                "networks again with save_activations: true into a cohort of their own (e.g. "
                                "--set save_activations=true --set cohort=NAME), then estimate that cohort: in its "
                                "own cohort the copy would be counted as more seeds of the same networks")
    return selected, unfinished


def reestimate(root: Path, run_ids: list[str], name: str, params: dict, on_epoch=None,
               on_written=None) -> dict[str, int]:
    """Estimate MI with `name`/`params` on every saved epoch of each run; returns the rows written
    per run, each also told to `on_written(run_id, rows)` once written.

    Every run is locked and estimated, and its table files read, before any is written, so a run
    that cannot be estimated (a damaged file, its data changed, another process holding it) leaves
    every run's rows as they were. EstimateError if another process holds a run (it is training or
    being re-estimated); one that fails to be written names the runs written before it."""
    _ensure_open_files(len(run_ids))
    with ExitStack() as locks:
        for run_id in run_ids:
            try:
                locks.enter_context(RunLock.acquire(layout.run_dir(root, run_id)))
            except RunLocked as locked:
                raise EstimateError(f"{locked}; estimate it when that process has finished; no run's "
                                    f"mi rows have changed") from None
        estimated = {run_id: _estimate(root, run_id, name, params, on_epoch) for run_id in run_ids}
        written: dict[str, int] = {}
        for run_id, (recorded, rows) in estimated.items():
            try:
                _replace_rows(root, run_id, name, recorded, rows)
            except (OSError, pa.ArrowException) as error:
                raise EstimateError(f"run {run_id!r}: its mi rows could not be written ({error}); it and the runs "
                                    f"after it are unchanged, the {len(written)} before it re-estimated") from None
            written[run_id] = rows.num_rows
            if on_written:
                on_written(run_id, rows.num_rows)
    return written


def _ensure_open_files(runs: int) -> None:
    """Room for a lock per run beside the files an estimate opens: the soft limit raised towards
    the hard one if need be (a common soft limit is 1,024 open files), else EstimateError."""
    needed = runs + OPEN_FILES_BESIDE_LOCKS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise EstimateError(f"{runs} runs are locked at once while they are estimated, and this process may "
                                f"open at most {hard} files; estimate at most {hard - OPEN_FILES_BESIDE_LOCKS} "
                                f"runs at a time")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _estimate(root: Path, run_id: str, name: str, params: dict, on_epoch=None) -> tuple[list[str], pa.Table]:
    """The params texts the new rows replace, and the new rows."""
    meta = read_record(root, run_id)
    if meta is None:
        raise EstimateError(f"run {run_id!r} has no readable run.json under {str(root)!r}")
    _ensure_tables_read(root, run_id)
    labels, n_train, layer_names = _read_saved(run_id, "index.npz", lambda: saved.load_index(root, run_id))
    rows = split_rows(n_train, len(labels))
    splits = meta.config["mi_splits"]
    activation_fn = meta.config["activation_fn"]
    inputs = None
    if estimators.canonical(name, params)[0] in estimators.NEEDS_INPUTS:
        digest = _read_saved(run_id, "index.npz", lambda: saved.saved_inputs_digest(root, run_id))
        inputs = _inputs(run_id, meta.config, labels, digest)
    mi = MiRows(run_id, [{"name": name, "params": params}], activation_fn, labels, rows, splits, layer_names,
                inputs)
    columns = {column: [] for column in TABLE_SCHEMAS["mi"].names}
    for epoch in saved.saved_epochs(root, run_id):
        layers = _read_saved(run_id, layout.epoch_file(Path(), epoch).name, lambda: saved.load_epoch(root, run_id, epoch))
        for column, values in (mi.at_epoch(epoch, layers) or {}).items():
            columns[column] += values
        if on_epoch:
            on_epoch()
    for column, values in (mi.at_end() or {}).items():
        columns[column] += values
    # the rows record the params as configured; rows written before that recorded them filled in
    # (adaptive's low), and are the same estimate, so they are replaced too
    recorded = {params_text(estimators.canonical(name, params)[1]),
                params_text(estimators.for_network(name, params, activation_fn))}
    return sorted(recorded), pa.Table.from_pydict(columns, TABLE_SCHEMAS["mi"])


def _ensure_tables_read(root: Path, run_id: str) -> None:
    """EstimateError naming the file if a table file the rewrite of `mi` reads cannot be read (the
    footers of every base, each file of mi): found after another run was written, it half-wrote
    the set, with a traceback."""
    try:
        listing = list_tables(layout.run_dir(root, run_id))
        for path in listing.files.get("mi", []):
            try:
                read_file(path, TABLE_SCHEMAS["mi"])
            except (OSError, pa.ArrowException) as error:
                raise pa.ArrowInvalid(f"{path}: {error}") from None
    except (OSError, pa.ArrowException) as error:
        raise EstimateError(f"run {run_id!r}: a table file cannot be read ({error}); no run's mi rows have "
                            f"changed") from None


def _read_saved(run_id: str, name: str, read):
    """`read()` of one of the run's saved activation files; a file that is damaged (truncated, not an
    .npz, arrays missing or of another shape) is an EstimateError naming run and file. The run's rows
    are written only once every epoch is read, so nothing of it has changed then."""
    try:
        return read()
    except (OSError, ValueError, KeyError, IndexError, EOFError, zipfile.BadZipFile) as error:
        raise EstimateError(f"run {run_id!r}: its saved activations/{name} cannot be read ({type(error).__name__}: "
                            f"{error}); no run's mi rows have changed") from None


def _inputs(run_id: str, config: dict, labels: np.ndarray, digest: str | None) -> np.ndarray:
    """The inputs the run trained on, in the rows of its saved activations (train, then test), loaded
    again from its config: an estimator that hashes them (EDGE) needs them, and they are not saved.
    They must have the SHA-256 saved with the activations (`digest`; None in index files written
    before it was, then only the labels are compared)."""
    try:
        data = datasets.load_data(SimpleNamespace(**config))
    except datasets.DatasetError as error:
        raise EstimateError(f"run {run_id!r}: this estimator needs the run's inputs, and its data cannot be "
                            f"loaded: {error}") from None
    if not np.array_equal(data.full.y, labels):
        raise EstimateError(f"run {run_id!r}: this estimator needs the run's inputs, and its data has changed "
                            "since it trained (the labels differ from those saved with its activations)")
    if digest is not None and saved.inputs_digest(data.full.x) != digest:
        raise EstimateError(f"run {run_id!r}: this estimator needs the run's inputs, and its data has changed "
                            "since it trained (the inputs differ from those it trained on; the labels are "
                            "the same)")
    return data.full.x


def _replace_rows(root: Path, run_id: str, name: str, params: list[str], new: pa.Table) -> None:
    def replaced(old: pa.Table) -> pa.Table:
        same = pc.and_(pc.equal(old["estimator"], name), pc.is_in(old["params"], value_set=pa.array(params)))
        return pa.concat_tables([old.filter(pc.invert(same)), new])
    rewrite_table(layout.run_dir(root, run_id), "mi", replaced)
