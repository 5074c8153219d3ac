"""A results root whose phases are set by hand, for the phases, statistics and report tests.

Seed groups (one layer, train split, binning 0.07; logged epochs 0..29):
- `compress`: 6 live seeds whose I(X;T) rises from 5 to 8 bits at epoch 8 and falls to 6 with
  +-0.01 bits of noise (compression far above the noise floor), plus one seed flagged
  dead_network (flat at 5 bits) and one still running: both left out and named;
- `noise`: 6 seeds whose I(X;T) is 6 bits plus independent noise (sd 0.05) at every epoch:
  peak - final is positive in every seed, yet it is pure noise;
- `single`: one seed (n = 1: no interval).
The SNR of a run rises to its peak at epoch 4 and halves at epoch 12, except in the seed
`noise` 0, whose SNR only rises (no drop by its last epoch, 29: censored there).
The run.json of `compress` and `noise` runs records their train split (1024 inputs, H(Y) = 1 bit:
ceilings of 10 and 1 bits); `single`'s, as written before run.json recorded splits, does not.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench.make_results import write_run
from ibstore import layout
from ibstore.record import RunRecord, SplitFacts
from ibstore.schema import TABLE_SCHEMAS
from trainer.atomic import write_table

EPOCHS = list(range(30))
PARAMS = '{"bin_size": 0.07}'
TRAIN = SplitFacts(inputs=1024, h_y_bits=1.0)


def i_xt_curve(group: str, seed: int, dead: bool) -> np.ndarray:
    # stream 11: every noise seed's peak - final is > 0, and the excess over the floor has both signs
    rng = np.random.default_rng([11 if group == "noise" else 1, seed])
    if dead:
        return np.full(len(EPOCHS), 5.0)
    if group == "noise":
        return 6.0 + rng.normal(0, 0.05, len(EPOCHS))
    epochs = np.array(EPOCHS, dtype=float)
    shape = np.where(epochs <= 8, 5 + 3 * epochs / 8, 8 - 2 * (epochs - 8) / 21)
    return shape + 0.2 * seed / 6 + rng.uniform(-0.01, 0.01, len(EPOCHS))


def i_yt_curve(seed: int) -> np.ndarray:
    return np.minimum(1.0, 0.1 + 0.05 * np.array(EPOCHS) + 0.001 * seed)


def snr_curve(group: str, seed: int) -> np.ndarray:
    epochs = np.array(EPOCHS, dtype=float)
    if group == "noise" and seed == 0:
        return 1 + epochs
    return np.where(epochs <= 4, 1 + epochs, np.where(epochs < 12, 4.0, 2.0))   # peak 5 at 4, < 2.5 from 12


# (group, seed, status, dead)
RUNS = ([("compress", s, "completed", False) for s in range(6)] + [("compress", 6, "completed", True),
                                                                   ("compress", 7, "running", False)]
        + [("noise", s, "completed", False) for s in range(6)] + [("single", 0, "completed", False)])


def write_known_root(root: Path) -> dict[tuple[str, int], str]:
    """Writes RUNS into `root`; (group, seed) -> run_id."""
    ids = {}
    for group, seed, status, dead in RUNS:
        overrides = {"activation_fn": "tanh", "epochs": EPOCHS[-1], "architecture": [4],
                     "learning_rate": {"compress": 0.0004, "noise": 0.0001, "single": 0.001}[group]}
        run_id = write_run(root, group, overrides, seed=seed, cohort=f"cohort-{group}", status=status,
                           epochs_done=EPOCHS[-1], logged=len(EPOCHS))
        ids[(group, seed)] = run_id
        i_xt, i_yt = i_xt_curve(group, seed, dead), i_yt_curve(seed)
        _write(root, run_id, "mi", {
            "epoch": EPOCHS, "layer": [0] * len(EPOCHS), "layer_name": ["dense_0"] * len(EPOCHS),
            "units": [4] * len(EPOCHS), "split": ["train"] * len(EPOCHS), "estimator": ["binning"] * len(EPOCHS),
            "params": [PARAMS] * len(EPOCHS), "i_xt": i_xt.tolist(), "i_yt": i_yt.tolist()}, status)
        snr = snr_curve(group, seed)
        _write(root, run_id, "gradients", {
            "epoch": EPOCHS, "layer": [0] * len(EPOCHS), "grad_mean_norm": snr.tolist(),
            "grad_std_norm": [1.0] * len(EPOCHS), "snr": snr.tolist(), "weight_norm": [1.0] * len(EPOCHS)}, status)
        path = layout.run_json_path(root, run_id)
        record = RunRecord.from_json_bytes(path.read_bytes())
        path.write_bytes(record.model_copy(update={"dead_network": dead if status != "running" else None,
                                                   "splits": None if group == "single" else {"train": TRAIN}}
                                           ).to_json_bytes())
    return ids


def _write(root: Path, run_id: str, table: str, columns: dict[str, list], status: str) -> None:
    """Replaces the table write_run wrote with these rows (columns not given are NULL), through the
    product's table writer."""
    rows = len(next(iter(columns.values())))
    schema = TABLE_SCHEMAS[table]
    given = {"run_id": [run_id] * rows, **columns}
    data = pa.Table.from_pydict({name: given.get(name, [None] * rows) for name in schema.names}, schema=schema)
    if status == "running":
        write_table(layout.table_part_path(root, run_id, table, 1), data)
    else:
        write_table(layout.table_path(root, run_id, table), data, compacted_through=40)


# The phases of one run, computed here in plain Python from the curves above.

def group_peak_epoch(group: str) -> int:
    """The first epoch at which the mean I(X;T) of the group's kept seeds (completed, not dead) peaks."""
    kept = [i_xt_curve(g, seed, dead) for g, seed, status, dead in RUNS
            if g == group and status == "completed" and not dead]
    return EPOCHS[int(np.argmax(np.mean(kept, axis=0)))]


def expected_phases(group: str, seed: int, dead: bool) -> dict[str, float | int | None]:
    i_xt, i_yt, snr = i_xt_curve(group, seed, dead), i_yt_curve(seed), snr_curve(group, seed)
    peak = float(i_xt.max())
    group_peak = group_peak_epoch(group)
    snr_peak_at = int(np.argmax(snr))
    drop = next((EPOCHS[i] for i in range(snr_peak_at + 1, len(EPOCHS)) if snr[i] < snr[snr_peak_at] / 2), None)
    return {"peak_i_xt": peak, "peak_i_xt_epoch": EPOCHS[int(np.argmax(i_xt))], "final_epoch": EPOCHS[-1],
            "final_i_xt": float(i_xt[-1]), "compression_bits": peak - float(i_xt[-1]),
            "group_peak_epoch": group_peak, "noise_floor_bits": peak - float(i_xt[EPOCHS.index(group_peak)]),
            "peak_i_yt": float(i_yt.max()), "peak_i_yt_epoch": EPOCHS[int(np.argmax(i_yt))],
            "snr_drop_epoch": drop,
            "i_xt_ceiling_bits": None if group == "single" else math.log2(TRAIN.inputs),
            "i_yt_ceiling_bits": None if group == "single" else TRAIN.h_y_bits}
