"""Synthetic results roots in the trainer's exact format (run.json + the five Parquet tables).

Values are shaped like real harmonics runs (tanh/relu, Adam 4e-4): I(X;T) starts
near log2(rows) and falls with depth, I(Y;T) rises towards H(Y) ~ 0.999 bits,
accuracy rises from 0.5 to ~0.95; a relu net with negative initial bias is dead
(zero gradients, constant MI). Used by the benchmark and by the test fixtures.

Only the numbers are made up here; everything else is the product's own: the config is
resolved and the run id made by trainer.config, the logged epochs come from
trainer.schedule (`log_schedule_for`: about LOGGED logged epochs), the record's fields from
trainer.store.run_fields and RunRecord, the final_* fields from trainer.final_metrics,
the dead_network / diverged flags from trainer.health, and every file is written by
trainer.atomic (run.json through trainer.store.write_record; without fsync, since a lost
synthetic root is written again). A finished run's tables are compacted base files
(`ib.compacted_through` in the footer), a running run's part files. Tables are built
column-wise from numpy arrays, and `make_root` writes with several processes (its running
time is printed; README lists measured figures).

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
from scipy.special import erf

from ibstore import collector, layout
from ibstore.record import SCHEMA_VERSION, RunRecord, Status
from ibstore.schema import TABLE_SCHEMAS
from trainer import config as config_module, schedule
from trainer.atomic import parquet_bytes
from trainer.final_metrics import FinalMetrics
from trainer.health import LayerHealth, NetworkHealth
from trainer.measure import params_text
from trainer.store import run_fields

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # bench.* when run as a script
from bench.staged_run import StagedRun, remove_stale

H_Y = 0.99916
ROWS = {"train": 3277, "test": 819, "full": 4096}
START = datetime(2026, 11, 27, 6, 0, tzinfo=timezone.utc)
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
    n = max(count, schedule.PARAMETRISED_SCHEDULES["log_spaced"])
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
    if status == Status.DIVERGED:   # what makes a run diverged: its last loss is not finite
        metrics = data["metrics"]
        last = pc.equal(metrics["epoch"], done)
        data["metrics"] = metrics.set_column(metrics.schema.get_field_index("loss"), "loss",
                                             pc.if_else(last, math.nan, metrics["loss"]))
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
        **(dict.fromkeys(("dead_network", "diverged", "dead_layers")) if running else health_flags(data)))
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
    """The dead_network, dead_layers and diverged flags as the trainer records them: trainer.health
    observing the epochs' losses and accuracy and every logged epoch's layer states.

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
        health.observe_metrics(int(epoch[at]), float(train_loss[at]), float(test_loss[at]), float(train_accuracy[at]))
    gradients = data["gradients"].sort_by([("epoch", "ascending"), ("layer", "ascending")])
    g_epoch, states = gradients["epoch"].to_numpy(), gradients["health"].to_pylist()
    epochs, starts = np.unique(g_epoch, return_index=True)     # each epoch's rows are contiguous
    for e, at_epoch in zip(epochs.tolist(), np.split(np.array(states, dtype=object), starts[1:])):
        health.observe_layers(e, [LayerHealth(state) for state in at_epoch
                                  if state is not None])   # the output layer has no state
    return health.flags()


def is_dead(config: dict[str, Any]) -> bool:
    """A relu net with a negative initial bias never learns (the synthetic data's dead network)."""
    return config["activation_fn"] == "relu" and config["initial_bias"] < 0


def synthetic_tables(run_id: str, config: dict[str, Any], logged: np.ndarray, done: int,
                     rng: np.random.Generator) -> dict[str, pa.Table]:
    """The five tables of one run; every array is [layer, epoch, ...] and flattened at the end."""
    units = np.array(list(config["architecture"]) + [2])
    n_layers, n_logged = len(units), len(logged)
    names = [f"dense_{i}" for i in range(n_layers - 1)] + ["output"]
    relu = config["activation_fn"] == "relu"
    dead = is_dead(config)
    tau = max(config["epochs"] / 12, 1.0)
    progress = 0.0 if dead else 1.0
    hidden = np.arange(n_layers) < n_layers - 1               # [layer]
    layer = np.arange(n_layers)[:, None]                      # [layer, 1]

    def fit(e: np.ndarray) -> np.ndarray:
        return progress * (1.0 - np.exp(-e / tau))

    def table(name: str, rows: int, **columns: Any) -> pa.Table:
        """Columns broadcast to `rows`; text columns are (index array, labels); None is all NULL."""
        arrays = []
        for field in TABLE_SCHEMAS[name]:
            value = run_id if field.name == "run_id" else columns[field.name]
            if value is None:
                arrays.append(pa.nulls(rows, field.type))
            elif isinstance(value, str):
                arrays.append(pa.repeat(pa.scalar(value), rows))
            elif isinstance(value, tuple):
                indices, labels = value
                arrays.append(pa.array(labels, pa.string()).take(np.broadcast_to(indices, (rows,))))
            else:   # numpy in the column's own type, and the type named: no conversion or
                # inference inside pyarrow (without it a float64 column of 4,000 rows took ~50 us)
                arrays.append(pa.array(np.ascontiguousarray(np.broadcast_to(value, (rows,)),
                                                            dtype=field.type.to_pandas_dtype()), field.type))
        return pa.Table.from_arrays(arrays, schema=TABLE_SCHEMAS[name])

    epochs_all = np.arange(done + 1)
    accuracy, loss = [], []
    for top in (0.95, 0.9):   # train, test
        accuracy.append(np.clip(0.5 + (top - 0.5) * fit(epochs_all) + rng.normal(0, 0.005, done + 1), 0, 1))
        loss.append(0.1 + 0.6 * (1 - fit(epochs_all)) + rng.normal(0, 0.003, done + 1))
    n = 2 * (done + 1)
    metrics = table("metrics", n, epoch=np.tile(epochs_all, 2), split=(np.repeat([0, 1], done + 1), ["train", "test"]),
                    accuracy=np.concatenate(accuracy), loss=np.concatenate(loss))

    late = progress * np.clip((logged - tau) / (4 * tau), 0, 1) ** 1.5
    depth = layer / (n_layers - 1)                                             # [layer, 1]
    base = 0.99 - 0.35 * depth ** 1.5 - 0.25 * ~hidden[:, None]
    compression = np.where(relu & hidden[:, None], 0.0, 0.25 * depth)
    y0 = 0.55 - 0.3 * depth
    mi_parts = []
    for estimator in config["estimators"]:
        params = params_text(estimator["params"])
        for split in config["mi_splits"]:
            cap = math.log2(ROWS[split])
            i_xt = cap * np.clip(base + 0.02 * fit(logged) - compression * late, 0.05, 1)   # [layer, epoch]
            i_yt = H_Y * (y0 + (0.99 - y0) * fit(logged) ** (1 + depth))
            noise = rng.normal(0, 0.01, (2, n_layers, n_logged))
            n = n_layers * n_logged
            mi_parts.append(table(
                "mi", n, epoch=np.tile(logged, n_layers), layer=np.repeat(np.arange(n_layers), n_logged),
                layer_name=(np.repeat(np.arange(n_layers), n_logged), names), units=np.repeat(units, n_logged),
                split=split, estimator=estimator["name"], params=params,
                i_xt=np.minimum(i_xt + noise[0], cap).ravel(), i_yt=np.clip(i_yt + noise[1], 0, H_Y).ravel(),
                h_t_bits=None))

    scale = np.where(dead, 0.0, 0.05 * (1 + layer))                             # [layer, 1]
    mean = scale * (np.exp(-logged / (2 * tau)) + 0.02) * (1 + rng.normal(0, 0.05, (n_layers, n_logged)))
    std = scale * (0.2 + 0.3 * (1 - np.exp(-logged / tau))) * (1 + rng.normal(0, 0.05, (n_layers, n_logged)))
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(std > 0, mean / std, np.nan)
    weight = np.sqrt(units)[:, None] * (1 + 0.6 * fit(logged))
    n = n_layers * n_logged
    gradients = table("gradients", n, epoch=np.tile(logged, n_layers), layer=np.repeat(np.arange(n_layers), n_logged),
                      layer_name=(np.repeat(np.arange(n_layers), n_logged), names),
                      grad_mean_norm=np.abs(mean).ravel(), grad_std_norm=np.abs(std).ravel(),
                      snr=np.abs(snr).ravel(), weight_norm=weight.ravel(),
                      health=(np.repeat(np.where(hidden, int(dead), 2), n_logged), ["alive", "dead", None]))

    bins = config["histogram_bins"]
    spread = 0.3 + 1.5 * fit(logged) * (layer + 1) / n_layers                  # [layer, epoch]
    center = config["initial_bias"] + 0.2 * np.sin(layer + fit(logged))
    lo = np.where(hidden, 0.0 if relu else -1.0, 0.0)[:, None]                 # [layer, 1]
    width = np.where(hidden, (3.0 if relu else 2.0) / bins, 1.0 / bins)[:, None]
    edges = lo[:, :, None] + width[:, :, None] * np.arange(bins + 1)           # [layer, 1, bin edge]
    z = (edges - center[:, :, None]) / spread[:, :, None]
    mass = np.diff(0.5 * (1 + erf(z / math.sqrt(2))), axis=2)                  # [layer, epoch, bin]
    share = mass / np.maximum(mass.sum(axis=2, keepdims=True), 1e-12)
    neuron_of = np.repeat(np.arange(n_layers), units)                          # [neuron over layers]
    activation_parts, stats_parts = [], []
    first = np.concatenate([[0], np.cumsum(units)[:-1]])                        # [layer]
    # The histograms hold no noise, so a config's seeds share them: made once, then only run_id changes.
    unseeded = (json.dumps({k: v for k, v in config.items() if k != "seed"}, sort_keys=True), logged.tobytes())
    histograms = _HISTOGRAMS.get(unseeded)
    for split in config["mi_splits"] if histograms is None else ():
        counts = np.round(share * ROWS[split] * units[:, None, None])
        layer_i, epoch_i, bin_i = np.nonzero(counts)
        activation_parts.append(table(
            "activations", len(layer_i), epoch=logged[epoch_i], layer=layer_i, layer_name=(layer_i, names),
            split=split, bin_index=bin_i,
            bin_lo=edges[layer_i, 0, bin_i], bin_hi=edges[layer_i, 0, bin_i + 1],
            count=counts[layer_i, epoch_i, bin_i].astype(np.int64)))
    if histograms is None:
        histograms = _concat("activations", activation_parts)
        _HISTOGRAMS.clear()
        _HISTOGRAMS[unseeded] = histograms
    else:
        histograms = histograms.set_column(0, "run_id", pa.repeat(pa.scalar(run_id), len(histograms)))
    for split in config["mi_splits"]:
        # per neuron (all layers' neurons side by side): [epoch, neuron]
        shift = rng.normal(0, 0.3, len(neuron_of))[None, :] * spread[neuron_of].T
        pre = center[neuron_of].T + shift
        mean = np.maximum(pre, 0) if relu else np.tanh(pre)
        if relu:
            frac_zero = np.full(mean.shape, 0.999) if dead else np.clip(0.5 - mean, 0, 1)
            saturated = frac_zero
        else:
            frac_zero = np.zeros(mean.shape)
            saturated = np.clip(np.abs(mean) - 0.6, 0, 1) * fit(logged)[:, None]
        # rows ordered by layer, then epoch, then neuron, like the trainer's
        index = (np.arange(n_logged)[None, :, None] * len(neuron_of)
                 + (first[:, None, None] + np.arange(units.max())[None, None, :]))      # [layer, epoch, neuron]
        valid = np.arange(units.max())[None, None, :] < units[:, None, None]
        valid = np.broadcast_to(valid, index.shape)
        flat = index[valid]
        spread_n = spread[neuron_of].T.ravel()[flat]
        n = len(flat)
        stats_parts.append(table(
            "activation_stats", n,
            epoch=np.broadcast_to(logged[None, :, None], index.shape)[valid],
            layer=np.broadcast_to(np.arange(n_layers)[:, None, None], index.shape)[valid],
            neuron=np.broadcast_to(np.arange(units.max())[None, None, :], index.shape)[valid],
            split=split, mean=mean.ravel()[flat], std=spread_n * 0.5,
            min=mean.ravel()[flat] - spread_n, max=mean.ravel()[flat] + spread_n,
            frac_zero=frac_zero.ravel()[flat], frac_saturated=saturated.ravel()[flat]))
    return {"metrics": metrics, "mi": _concat("mi", mi_parts), "gradients": gradients,
            "activations": histograms,
            "activation_stats": _concat("activation_stats", stats_parts)}


_HISTOGRAMS: dict[tuple, pa.Table] = {}   # the last config's activations table


def _concat(name: str, parts: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(parts) if parts else TABLE_SCHEMAS[name].empty_table()


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
