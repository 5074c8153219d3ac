"""Checkpoints of weights and optimizer state at logged epochs (`save_checkpoints: true`).

One file per run, `<run>/checkpoints/epoch_NNNNNN.npz`, holding that seed's
slice of every stacked variable (model and optimizer slots) and the optimizer's
scalars. Only the newest checkpoint is kept; it is written atomically before
the older one is removed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ibstore import layout
from trainer.atomic import write_arrays


def _variables(model, optimizer) -> list:
    return list(model.variables) + list(optimizer.variables)


def checkpoint_epochs(root: Path, run_id: str) -> list[int]:
    return layout.epochs_in(layout.checkpoints_dir(root, run_id))


def latest_common_epoch(root: Path, run_ids: list[str]) -> int:
    """The newest epoch every one of these runs has a checkpoint for (0: none)."""
    common = None
    for run_id in run_ids:
        epochs = set(checkpoint_epochs(root, run_id))
        common = epochs if common is None else common & epochs
    return max(common) if common else 0


def start_epoch(root: Path, run_ids: list[str], resume: bool, save_checkpoints: bool) -> int:
    """The epoch these runs' training starts from: their common checkpoint when resumed, else 0."""
    return latest_common_epoch(root, run_ids) if resume and save_checkpoints else 0


def save(root: Path, run_ids: list[str], indices: list[int], epoch: int, model, optimizer) -> None:
    """Write seed `indices[k]`'s slice of every variable to run `run_ids[k]`'s checkpoint."""
    values = [v.numpy() for v in _variables(model, optimizer)]
    for run_id, index in zip(run_ids, indices):
        folder = layout.checkpoints_dir(root, run_id)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {f"v{i}": (value[index] if value.ndim else value) for i, value in enumerate(values)}
        write_arrays(layout.epoch_file(folder, epoch), arrays)
        for older in checkpoint_epochs(root, run_id):
            if older < epoch:
                layout.epoch_file(folder, older).unlink(missing_ok=True)


def restore(root: Path, run_ids: list[str], epoch: int, model, optimizer) -> None:
    """Load the checkpoints of these runs (seed k = run_ids[k]) into the stacked variables."""
    per_run = []
    for run_id in run_ids:
        with np.load(layout.epoch_file(layout.checkpoints_dir(root, run_id), epoch)) as arrays:
            per_run.append([arrays[f"v{i}"] for i in range(len(arrays.files))])
    for i, variable in enumerate(_variables(model, optimizer)):
        if len(variable.shape):
            variable.assign(np.stack([values[i] for values in per_run]))
        else:
            variable.assign(per_run[0][i])
