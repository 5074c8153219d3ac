"""Raw activations of logged epochs, kept for re-estimating MI after training.

Layout under <run>/activations/: `index.npz` (labels of all inputs and the
number of training rows: rows [0, n_train) are the train split, the rest the
test split) and one compressed `epoch_NNNNNN.npz` per logged epoch holding
`layer_<i>` arrays [n_inputs, units] (float32) for every dense layer.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ibstore import layout
from trainer.store import write_arrays

EPOCH_FILE = re.compile(r"epoch_(\d+)\.npz$")


def save_index(root: Path, run_id: str, labels: np.ndarray, n_train: int,
               layer_names: list[str]) -> None:
    folder = layout.activations_dir(root, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    write_arrays(folder / "index.npz", {"labels": labels, "n_train": np.array(n_train),
                                  "layer_names": np.array(layer_names)}, compressed=True)


def save_epoch(root: Path, run_id: str, epoch: int, layers: list[np.ndarray]) -> None:
    write_arrays(layout.activations_dir(root, run_id) / f"epoch_{epoch:06d}.npz",
                 {f"layer_{i}": values.astype(np.float32) for i, values in enumerate(layers)}, compressed=True)


def has_activations(root: Path, run_id: str) -> bool:
    return (layout.activations_dir(root, run_id) / "index.npz").exists()


def load_index(root: Path, run_id: str) -> tuple[np.ndarray, int, list[str]]:
    with np.load(layout.activations_dir(root, run_id) / "index.npz") as index:
        return index["labels"], int(index["n_train"]), [str(name) for name in index["layer_names"]]


def saved_epochs(root: Path, run_id: str) -> list[int]:
    folder = layout.activations_dir(root, run_id)
    return sorted(int(m.group(1)) for p in folder.glob("epoch_*.npz") if (m := EPOCH_FILE.search(p.name)))


def load_epoch(root: Path, run_id: str, epoch: int) -> list[np.ndarray]:
    with np.load(layout.activations_dir(root, run_id) / f"epoch_{epoch:06d}.npz") as arrays:
        return [arrays[f"layer_{i}"] for i in range(len(arrays.files))]
