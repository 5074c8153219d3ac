"""Synthetic results roots in the trainer's exact format (run.json + the five Parquet tables).

The numbers (bench/synthetic_tables.py) are shaped like real harmonics runs (tanh/relu, Adam
4e-4). Used by the benchmarks and by the test fixtures.

Only the numbers are made up here; everything else is the product's own: the config is
resolved and the run id made by trainer.config, the logged epochs come from
trainer.schedule (`log_schedule_for`: about LOGGED logged epochs), the record's fields from
trainer.store.run_fields and RunRecord, the final_* fields from trainer.final_metrics,
the dead_network / diverged flags from trainer.health, and every Parquet file's bytes from
trainer.atomic.parquet_bytes and run.json's from RunRecord.to_json_bytes, as the trainer
writes them. A finished run's tables are compacted base files (`ib.compacted_through` in the
footer), a running run's part files. A run's files go into a hidden folder renamed into place
whole (bench/staged_run.py: one rename a run, no fsync, since a lost synthetic root is written
again), and `make_root` writes with several processes (its running time is printed; README
lists measured figures, bench/bench_make_results.py measures them).

    python bench/make_results.py OUT --runs 10000 --epochs 2000 --logged 300
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import multiprocessing
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ibstore import collector, layout
from ibstore.record import SCHEMA_VERSION, RunRecord, SplitFacts, Status
from ibstore.schema import TABLE_SCHEMAS
from trainer import config as config_module, schedule
from trainer.atomic import parquet_bytes
from trainer.final_metrics import FinalMetrics
from trainer.health import LayerHealth, NetworkHealth
from trainer.store import run_fields

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # bench.* when run as a script
from bench.staged_run import StagedRun, remove_stale
from bench.synthetic_tables import CLASS_COUNTS, H_Y, ROWS, synthetic_tables

START = datetime(2026, 11, 27, 6, 0, tzinfo=timezone.utc)
# run.json's data_sha256 of a synthetic run (trainer.datasets.Dataset.sha256 of no real data): the
# field filled as the trainer fills it
DATA_SHA256 = hashlib.sha256(b"bench.make_results: synthetic rows").hexdigest()
# Dictionary-encoded columns: the repeated text, as in the trainer's files. Arrow's default tries
# every column, but numeric columns gain nothing after zstd: the files come out no smaller and are
# written slower.
FEW_VALUES = {"run_id", "split", "layer_name", "estimator", "params"}
RUN_JSON = layout.run_json_path(Path(), "run").name
FLUSHES = 40   # the parts a finished run's writer flushed before compaction (ib.compacted_through)


@functools.lru_cache(maxsize=64)
def experiment(name: str, overrides_json: str, cohort: str | None) -> config_module.Experiment:
    """The experiment as the trainer plans it (defaults filled, validated), cached per config:
    its seeds differ only in run id."""
    (planned,) = config_module.plan({**json.loads(overrides_json), "name": name, "cohort": cohort})
    return planned


def planned_experiment(name: str, overrides: dict[str, Any], cohort: str | None, logged: int) -> config_module.Experiment:
    """The experiment of a synthetic run logging about `logged` epochs (`log_schedule_for`)."""
    epochs = overrides.get("epochs", config_module.DEFAULTS["epochs"])
    return experiment(name, json.dumps({**overrides, "log_schedule": log_schedule_for(epochs, logged)}, sort_keys=True),
                      cohort)


@functools.lru_cache(maxsize=64)
def log_schedule_for(epochs: int, count: int) -> dict[str, int]:
    """The smallest `log_spaced` schedule (trainer.schedule) that logs at least `count` distinct
    epochs of `epochs` (every epoch if there are no more)."""
    if count >= epochs + 1:
        return {"every": 1}
    n = max(count, schedule.PARAMETRISED_SCHEDULES["log_spaced"][0])   # (smallest, largest)
    while len(schedule.logged_epochs({"log_spaced": n}, epochs)) < count:
        n += count - len(schedule.logged_epochs({"log_spaced": n}, epochs))
    return {"log_spaced": n}


@functools.lru_cache(maxsize=64)
def logged_epochs(schedule_json: str, epochs: int) -> np.ndarray:
    """trainer.schedule's logged epochs of a schedule, read-only: a config's seeds share them
    (worked out per run they were a tenth of a run's table building)."""
    logged = np.array(schedule.logged_epochs(json.loads(schedule_json), epochs))
    logged.flags.writeable = False
    return logged


def write_run(root: Path, name: str, overrides: dict[str, Any] | None = None, *, seed: int = 0,
              cohort: str | None = None, status: Status = Status.COMPLETED, epochs_done: int | None = None,
              logged: int = 40, tables: tuple[str, ...] = tuple(TABLE_SCHEMAS),
              heartbeat_age_s: float = 0.0) -> str:
    """Write one synthetic run (all seeds share the group); returns its run_id. `logged`: about
    how many epochs are logged (`log_schedule_for`). A `running` run's tables are one part file
    each (a writer's first flush), any other's a compacted base."""
    planned = planned_experiment(name, overrides or {}, cohort, logged)
    fields = run_fields(planned, seed)
    run_id, config = fields["run_id"], fields["config"]
    epochs = config["epochs"]
    done = epochs if epochs_done is None else epochs_done
    rng = np.random.default_rng(int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16))
    logged_all = logged_epochs(json.dumps(config["log_schedule"]), epochs)
    data = synthetic_tables(run_id, config, logged_all[logged_all <= done], done, rng)
    if status == Status.DIVERGED:   # what makes a run diverged: its last loss is not finite (and so its accuracy)
        metrics = data["metrics"]
        last = pc.equal(metrics["epoch"], done)
        for column in ("loss", "accuracy"):
            metrics = metrics.set_column(metrics.schema.get_field_index(column), column,
                                         pc.if_else(last, math.nan, metrics[column]))
        data["metrics"] = metrics
    running = status == Status.RUNNING
    finals = FinalMetrics()
    finals.observe(data["metrics"])
    finished = START + timedelta(seconds=2.0 * done)
    heartbeat = datetime.now(timezone.utc) - timedelta(seconds=heartbeat_age_s) if running else finished
    record = RunRecord(
        **fields, status=status, error="loss is NaN" if status == Status.DIVERGED else None,
        started_at=START, finished_at=None if running else finished, heartbeat_at=heartbeat, epochs_done=done,
        versions={"python": "3.11.7", "tensorflow": "2.21.0", "package": "0.1.0", "git_commit": "abc123"},
        host="bench", pid=4242, schema_version=SCHEMA_VERSION, **finals.fields(),
        **(dict.fromkeys(("dead_network", "saturated_network", "diverged", "dead_layers")) if running
           else health_flags(data)),
        splits={split: SplitFacts(inputs=rows, h_y_bits=H_Y, h_x_bits=math.log2(rows), class_counts=CLASS_COUNTS[split])
                for split, rows in ROWS.items()},
        data_sha256=DATA_SHA256)
    with StagedRun(root, run_id) as run:
        for table in tables:
            rows = data[table]
            few_values = [name for name in rows.column_names if name in FEW_VALUES]
            run.write(table_file_name(table, running),
                      parquet_bytes(rows, None if running else FLUSHES, use_dictionary=few_values))
        run.write(RUN_JSON, record.to_json_bytes())   # through the typed record, as trainer.store.write_record
    return run_id


@functools.cache
def table_file_name(table: str, running: bool) -> str:
    """A running run's tables are its writer's first part files, any other's compacted bases."""
    path = layout.table_part_path(Path(), "run", table, 1) if running else layout.table_path(Path(), "run", table)
    return path.name


def health_flags(data: dict[str, pa.Table]) -> dict[str, Any]:
    """The dead_network, saturated_network, dead_layers and diverged flags as the trainer records
    them: trainer.health observing the epochs' losses and accuracy and every logged epoch's layer
    states.

    Of the epochs' metrics only two are observed: the first whose train or test loss is not
    finite (if any) and the last. `NetworkHealth.observe_metrics` keeps the last train accuracy
    and whether any loss was not finite, so these two leave it as all 2,001 would (a third of a
    run's generation was observing them one by one; tests/test_make_results.py compares)."""
    health = NetworkHealth()
    metrics = data["metrics"].sort_by([("epoch", "ascending")])
    epoch, loss, accuracy = (metrics[c].to_numpy() for c in ("epoch", "loss", "accuracy"))
    train, test = (pc.equal(metrics["split"], split).to_numpy(zero_copy_only=False)
                   for split in ("train", "test"))   # both in epoch order
    epoch, train_loss, test_loss, train_accuracy = epoch[train], loss[train], loss[test], accuracy[train]
    not_finite = np.flatnonzero(~(np.isfinite(train_loss) & np.isfinite(test_loss)))
    for at in sorted({*not_finite[:1].tolist(), len(epoch) - 1} if len(epoch) else ()):
        health.observe_metrics(float(train_loss[at]), float(test_loss[at]), float(train_accuracy[at]))
    gradients = data["gradients"].sort_by([("epoch", "ascending"), ("layer", "ascending")])
    g_epoch, states = gradients["epoch"].to_numpy(), gradients["health"].to_pylist()
    epochs, starts = np.unique(g_epoch, return_index=True)     # each epoch's rows are contiguous
    for e, at_epoch in zip(epochs.tolist(), np.split(np.array(states, dtype=object), starts[1:])):
        health.observe_layers(e, [LayerHealth(state) for state in at_epoch
                                  if state is not None])   # the output layer has no state
    return health.flags()


def grid(runs: int, epochs: int, seeds: int) -> list[tuple[str, dict[str, Any], int]]:
    """A cohort grid (activation x initial bias x learning rate, then wider first layers) with
    `seeds` seeds per config: (name, overrides, seed) per run."""
    biases = [-1.0, -0.5, 0.0, 0.2, 0.5, 1.0, 2.0]
    rates = [0.0004, 0.001, 0.004, 0.01]
    plan = []
    i = 0
    while len(plan) < runs:
        act = ("tanh", "relu")[i % 2]
        overrides = {"activation_fn": act, "initial_bias": biases[(i // 2) % len(biases)],
                     "learning_rate": rates[(i // (2 * len(biases))) % len(rates)],
                     "architecture": [10 + i // (2 * len(biases) * len(rates)), 7, 5, 4, 3], "epochs": epochs}
        plan += [(f"{act}-bias", overrides, seed) for seed in range(min(seeds, runs - len(plan)))]
        i += 1
    return plan


def planned_run_ids(runs: int, epochs: int = 2000, logged: int = 300, seeds: int = 5) -> list[str]:
    """The run ids `make_root` writes for these arguments, in its order, without writing."""
    return [run_fields(planned_experiment(name, overrides, "initial_bias", logged), seed)["run_id"]
            for name, overrides, seed in grid(runs, epochs, seeds)]


def _write_planned(args: tuple[Path, int, bool, list[tuple[str, dict[str, Any], int]]]) -> list[str]:
    with collector.paused():   # a run's tables make no reference cycles
        return _write_chunk(*args)


def _write_chunk(root: Path, logged: int, resume: bool, plan: list[tuple[str, dict[str, Any], int]]) -> list[str]:
    written = []
    for name, overrides, seed in plan:
        if resume:   # run.json is written last: a run that has it is whole
            run_id = run_fields(planned_experiment(name, overrides, "initial_bias", logged), seed)["run_id"]
            if layout.run_json_path(root, run_id).is_file():
                written.append(run_id)
                continue
        written.append(write_run(root, name, overrides, seed=seed, cohort="initial_bias", logged=logged))
    return written


def make_root(root: Path, runs: int, epochs: int = 2000, logged: int = 300, seeds: int = 5,
              processes: int = 2, resume: bool = False) -> list[str]:
    """`runs` finished runs of the grid, written by `processes` worker processes; their run ids.
    `resume`: runs already whole (a run.json) are not written again (a stopped generation).
    The hidden folders of runs a stopped generation left unfinished are removed first."""
    remove_stale(root)
    plan = grid(runs, epochs, seeds)
    chunks = [(root, logged, resume, plan[i:i + 50]) for i in range(0, len(plan), 50)]
    if processes <= 1:
        return [run_id for chunk in chunks for run_id in _write_planned(chunk)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return [run_id for written in pool.imap(_write_planned, chunks) for run_id in written]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--logged", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--resume", action="store_true", help="skip the runs OUT already holds whole")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    ids = make_root(args.out, args.runs, args.epochs, args.logged, args.seeds, args.processes, args.resume)
    print(f"wrote {len(ids)} runs to {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
