"""Checkpoints of weights and optimizer state at logged epochs (`save_checkpoints: true`).

One file per run, `<run>/checkpoints/epoch_NNNNNN.npz`, holding that seed's
slice of every stacked variable (model and optimizer slots) and the optimizer's
scalars (`v0`, `v1`, ...), and the run's own state as the training loop observed
it so far (`state_<name>`: its health, trainer.health.NetworkHealth.state). Only the
newest checkpoint is kept; it is written atomically before the older one is removed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ibstore import layout
from trainer.atomic import write_arrays

STATE = "state_"    # the prefix of a run's own state in its checkpoint file


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


def save(root: Path, run_ids: list[str], indices: list[int], epoch: int, model, optimizer,
         states: list[dict[str, np.ndarray]]) -> None:
    """Write seed `indices[k]`'s slice of every variable and `states[k]` to run `run_ids[k]`'s checkpoint."""
    values = [v.numpy() for v in _variables(model, optimizer)]
    for run_id, index, state in zip(run_ids, indices, states):
        folder = layout.real_folder(layout.checkpoints_dir(root, run_id), parents=False)
        arrays = {f"v{i}": (value[index] if value.ndim else value) for i, value in enumerate(values)}
        arrays.update({STATE + name: value for name, value in state.items()})
        write_arrays(layout.epoch_file(folder, epoch), arrays)
        for older in checkpoint_epochs(root, run_id):
            if older < epoch:
                layout.epoch_file(folder, older).unlink(missing_ok=True)


def restore(root: Path, run_ids: list[str], epoch: int, model, optimizer) -> list[dict[str, np.ndarray]]:
    """Load the checkpoints of these runs (seed k = run_ids[k]) into the stacked variables; returns
    each run's saved state (empty from a checkpoint written before states were kept)."""
    per_run, states = [], []
    for run_id in run_ids:
        with np.load(layout.epoch_file(layout.checkpoints_dir(root, run_id), epoch)) as arrays:
            n_variables = sum(not name.startswith(STATE) for name in arrays.files)
            per_run.append([arrays[f"v{i}"] for i in range(n_variables)])
            states.append({name[len(STATE):]: arrays[name] for name in arrays.files if name.startswith(STATE)})
    for i, variable in enumerate(_variables(model, optimizer)):
        if len(variable.shape):
            variable.assign(np.stack([values[i] for values in per_run]))
        else:
            variable.assign(per_run[0][i])
    return states
