"""`trainer estimate`: add MI rows of another estimator to finished runs, from their
saved activations, without retraining.

Rows of the same estimator and params are replaced, never duplicated; the
mi table is rewritten atomically, so a reader sees it before or after, whole.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ibstore import layout
from ibstore.scan import scan
from ibstore.schema import TABLE_SCHEMAS
from trainer import estimators, saved
from trainer.measure import mi_rows, params_text, split_rows
from trainer.store import read_run_json, write_table


class EstimateError(ValueError):
    """A run that cannot be re-estimated; the message says why and what to do."""


def select_runs(root: Path, targets: list[str]) -> list[str]:
    """Run ids matching each target: a run id, a group id (all its seeds) or a cohort name."""
    runs = scan(root).runs
    selected = []
    for target in targets:
        matched = [r["run_id"] for r in runs if target in (r["run_id"], r.get("group_id"), r.get("cohort"))]
        if not matched:
            raise EstimateError(f"no run, group or cohort named {target!r} under {str(root)!r} "
                                f"(see `trainer ls`)")
        selected += [m for m in matched if m not in selected]
    status = {r["run_id"]: r["status"] for r in runs}
    for run_id in selected:
        if not saved.has_activations(root, run_id):
            raise EstimateError(f"run {run_id!r} has no saved activations, so it cannot be re-estimated; "
                                f"train it with save_activations: true (e.g. --set save_activations=true)")
        if status[run_id] == "running":
            raise EstimateError(f"run {run_id!r} is still training; estimate it when it has finished")
    return selected


def reestimate(root: Path, run_id: str, name: str, params: dict, on_epoch=None) -> int:
    """Estimate MI with `name`/`params` on every saved epoch of a run; returns the rows written."""
    meta = read_run_json(root, run_id)
    labels, n_train, layer_names = saved.load_index(root, run_id)
    rows = split_rows(n_train, len(labels))
    splits = meta["config"]["mi_splits"]
    spec = [{"name": name, "params": params}]
    epochs = saved.saved_epochs(root, run_id)
    ranges = None
    if estimators.needs_run_range(name, params):
        per_epoch = [[(float(v.min()), float(v.max())) for v in saved.load_epoch(root, run_id, e)] for e in epochs]
        ranges = [(min(r[i][0] for r in per_epoch), max(r[i][1] for r in per_epoch))
                  for i in range(len(layer_names))]
    columns = {column: [] for column in TABLE_SCHEMAS["mi"].names}
    for epoch in epochs:
        new = mi_rows(run_id, epoch, saved.load_epoch(root, run_id, epoch), labels, rows, splits,
                      layer_names, spec, ranges)
        for column, values in new.items():
            columns[column] += values
        if on_epoch:
            on_epoch()
    _replace_rows(root, run_id, name, params_text(params), pa.Table.from_pydict(columns, TABLE_SCHEMAS["mi"]))
    return len(columns["epoch"])


def _replace_rows(root: Path, run_id: str, name: str, params: str, new: pa.Table) -> None:
    path = layout.table_path(root, run_id, "mi")
    if path.exists():
        old = pq.read_table(path, schema=TABLE_SCHEMAS["mi"])
        same = pc.and_(pc.equal(old["estimator"], name), pc.equal(old["params"], params))
        new = pa.concat_tables([old.filter(pc.invert(same)), new])
    write_table(path, new)
