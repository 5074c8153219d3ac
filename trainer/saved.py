"""Raw activations of logged epochs, kept for re-estimating MI after training.

Layout under <run>/activations/: `index.npz` (labels of all inputs, the
number of training rows: rows [0, n_train) are the train split, the rest the
test split, and the SHA-256 of the inputs, `inputs_digest`) and one compressed `epoch_NNNNNN.npz` per logged epoch holding
`layer_<i>` arrays [n_inputs, units] (float32) for every dense layer.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ibstore import layout
from trainer.atomic import write_arrays


def inputs_digest(inputs: np.ndarray) -> str:
    """SHA-256 of an input array, its dtype and shape included: the inputs are not saved (MNIST's
    would be 220 MB), so `trainer estimate` checks the inputs it loads again against this."""
    digest = hashlib.sha256(f"{inputs.dtype.str}{inputs.shape}".encode())
    digest.update(np.ascontiguousarray(inputs).tobytes())
    return digest.hexdigest()


def save_index(root: Path, run_id: str, labels: np.ndarray, n_train: int,
               layer_names: list[str], inputs: np.ndarray) -> None:
    folder = layout.real_folder(layout.activations_dir(root, run_id), parents=False)
    write_arrays(folder / "index.npz", {"labels": labels, "n_train": np.array(n_train),
                                        "layer_names": np.array(layer_names),
                                        "inputs_digest": np.array(inputs_digest(inputs))}, compressed=True)


def save_epoch(root: Path, run_id: str, epoch: int, layers: list[np.ndarray]) -> None:
    # through real_folder each time: a resumed run writes here without save_index
    write_arrays(layout.epoch_file(layout.real_folder(layout.activations_dir(root, run_id), parents=False), epoch),
                 {f"layer_{i}": values.astype(np.float32) for i, values in enumerate(layers)}, compressed=True)


def has_activations(root: Path, run_id: str) -> bool:
    return (layout.activations_dir(root, run_id) / "index.npz").exists()


def load_index(root: Path, run_id: str) -> tuple[np.ndarray, int, list[str]]:
    with np.load(layout.activations_dir(root, run_id) / "index.npz") as index:
        return index["labels"], int(index["n_train"]), [str(name) for name in index["layer_names"]]


def saved_inputs_digest(root: Path, run_id: str) -> str | None:
    """The inputs' SHA-256 saved with the activations; None in index files written before it was."""
    with np.load(layout.activations_dir(root, run_id) / "index.npz") as index:
        return str(index["inputs_digest"]) if "inputs_digest" in index.files else None


def saved_epochs(root: Path, run_id: str) -> list[int]:
    return layout.epochs_in(layout.activations_dir(root, run_id))


def load_epoch(root: Path, run_id: str, epoch: int) -> list[np.ndarray]:
    with np.load(layout.epoch_file(layout.activations_dir(root, run_id), epoch)) as arrays:
        return [arrays[f"layer_{i}"] for i in range(len(arrays.files))]
