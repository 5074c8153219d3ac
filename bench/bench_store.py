"""Writing a run's tables: appended part files (RunWriter) against rewriting every table at each
flush (the writer before part files), side by side, for growing runs.

    python bench/bench_store.py                 # 2000 and 8000 epochs, flush every 50 and 10 epochs

Rows are those of the default run (12-10-7-5-4-3-2 tanh, binning MI on train and test,
30 histogram bins): per epoch 2 metrics rows; per logged epoch (the default schedule) 12 mi,
6 gradients, 360 activations and 62 activation_stats rows. Both writers flush after every
N epochs (a real run flushes every 5 s: about every 50 to 300 epochs of the default
network) and write atomically with zstd; the appending writer's time includes its
compaction at the end. No training: the rows are made first and only the writers are
timed. Rewriting grows with (flushes x rows), appending with the rows and the flushes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ibstore.record import SCHEMA_VERSION, RunRecord, Status  # noqa: E402
from ibstore.schema import TABLE_SCHEMAS  # noqa: E402
from trainer import schedule  # noqa: E402
from trainer.atomic import write_table  # noqa: E402
from trainer.store import RunWriter, write_record  # noqa: E402

LAYERS, UNITS, SPLITS, BINS = 6, [10, 7, 5, 4, 3, 2], ["train", "test"], 30


def epoch_rows(run_id: str, epoch: int, logged: bool) -> dict[str, dict]:
    rows = {"metrics": {"run_id": run_id, "epoch": epoch, "split": SPLITS, "loss": [0.5, 0.6],
                        "accuracy": [0.9, 0.8]}}
    if not logged:
        return rows
    n = LAYERS * len(SPLITS)
    rows["mi"] = {"run_id": run_id, "epoch": epoch, "layer": np.repeat(np.arange(LAYERS), 2),
                  "layer_name": ["dense"] * n, "units": np.repeat(UNITS, 2), "split": SPLITS * LAYERS,
                  "estimator": "binning", "params": '{"bin_size": 0.07}', "i_xt": np.random.rand(n),
                  "i_yt": np.random.rand(n), "h_t_bits": None}
    rows["gradients"] = {"run_id": run_id, "epoch": epoch, "layer": np.arange(LAYERS), "layer_name": "dense",
                         **{k: np.random.rand(LAYERS) for k in ("grad_mean_norm", "grad_std_norm", "snr",
                                                                "weight_norm")}, "health": "alive"}
    n = n * BINS
    rows["activations"] = {"run_id": run_id, "epoch": epoch, "layer": np.repeat(np.arange(LAYERS), 2 * BINS),
                           "layer_name": "dense",
                           "split": np.tile(np.repeat(SPLITS, BINS), LAYERS), "bin_index": np.tile(np.arange(BINS), 12),
                           "bin_lo": np.random.rand(n), "bin_hi": np.random.rand(n),
                           "count": np.random.randint(0, 100, n)}
    n = sum(UNITS) * len(SPLITS)
    rows["activation_stats"] = {"run_id": run_id, "epoch": epoch,
                                "layer": np.repeat(np.arange(LAYERS), [2 * u for u in UNITS]),
                                "neuron": np.concatenate([np.tile(np.arange(u), 2) for u in UNITS]),
                                "split": np.concatenate([np.repeat(SPLITS, u) for u in UNITS]),
                                **{k: np.random.rand(n) for k in ("mean", "std", "min", "max", "frac_zero",
                                                                  "frac_saturated")}}
    return rows


def run_rows(run_id: str, epochs: int) -> list[dict[str, dict]]:
    logged = set(schedule.logged_epochs("default", epochs))
    return [epoch_rows(run_id, epoch, epoch in logged) for epoch in range(epochs + 1)]


def appending(root: Path, epochs: int, flush_every: int) -> float:
    """Seconds RunWriter spends: a part per table per flush, compaction when the run ends."""
    rows = run_rows("append", epochs)
    start = time.perf_counter()
    writer = RunWriter(root, {"run_id": "append", "epochs_total": epochs}, flush_seconds=0)
    for epoch, tables in enumerate(rows):
        for table, columns in tables.items():
            writer.add(table, columns)
        if epoch % flush_every == 0:
            writer.flush(epoch)
    writer.finish(Status.COMPLETED, epochs)
    return time.perf_counter() - start


def rewriting(root: Path, epochs: int, flush_every: int) -> float:
    """Seconds the earlier writer spent: every table with new rows rewritten whole at each flush."""
    rows = run_rows("rewrite", epochs)
    folder = root / "rewrite"
    folder.mkdir(parents=True)
    tables: dict[str, pa.Table] = {}
    pending: dict[str, list[dict]] = {name: [] for name in TABLE_SCHEMAS}
    start = time.perf_counter()
    for epoch, new_rows in enumerate(rows):
        for table, columns in new_rows.items():
            n = max((len(v) for v in columns.values() if np.ndim(v)), default=1)
            pending[table].append({k: (v if np.ndim(v) else [v] * n) for k, v in columns.items()})
        if epoch % flush_every == 0 or epoch == epochs:
            for name, parts in pending.items():
                if parts:
                    new = pa.Table.from_pydict({c: np.concatenate([p[c] for p in parts]) for c in parts[0]},
                                               schema=TABLE_SCHEMAS[name])
                    tables[name] = pa.concat_tables([tables[name], new]) if name in tables else new
                    write_table(folder / f"{name}.parquet", tables[name])
            pending = {name: [] for name in TABLE_SCHEMAS}
            record = RunRecord(run_id="rewrite", status=Status.RUNNING, epochs_done=epoch, schema_version=SCHEMA_VERSION)
            write_record(folder / "run.json", record)  # as RunWriter does at every flush
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--flush-every", type=int, nargs="+", default=[50, 10])
    args = parser.parse_args()
    print("seconds spent writing one run (lower is better)")
    print(f"{'epochs':>7} {'flush every':>12} {'flushes':>8} {'rewrite':>9} {'append':>9} {'rewrite/append':>15}")
    for epochs in args.epochs:
        for flush_every in args.flush_every:
            with tempfile.TemporaryDirectory() as tmp:
                old, new = rewriting(Path(tmp), epochs, flush_every), appending(Path(tmp), epochs, flush_every)
            print(f"{epochs:>7} {flush_every:>12} {epochs // flush_every + 1:>8} {old:>9.2f} {new:>9.2f} "
                  f"{old / new:>15.1f}")


if __name__ == "__main__":
    main()
