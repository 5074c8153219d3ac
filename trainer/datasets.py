"""Datasets for the information-plane experiments.

`load(name, **options)` returns a `Dataset` with a train and a test `Split`
(`x` float32 [n, d], `y` int64 [n] with classes 0..n_classes-1):

- `harmonics`: Tishby's 12-bit data (see `harmonics()`), shuffled 80/20 with
  `split_seed`; `harmonics_zero_mean`: the same inputs minus 0.5
  (deep-bottleneck's `datasets.harmonics_zero_mean`).
- `mnist`, `fashion_mnist`: images flattened and scaled to [0, 1], native
  train/test split; from the Keras cache (downloaded by Keras if possible) or
  from an explicit `.npz` given as `path`.
- `file`: your own data from `.npz` (arrays `x`, `y`), `.parquet` or `.csv`,
  shuffled into train and test with `split_seed`.

Importing this module does not import TensorFlow; Keras is imported only when
MNIST or Fashion-MNIST has to be downloaded.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import socket
import stat
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trainer.machine import physical_memory

DATASETS = ("harmonics", "harmonics_zero_mean", "mnist", "fashion_mnist", "file")
# deep-bottleneck's dataset module names.
ALIASES = {
    "datasets.harmonics": "harmonics",
    "datasets.harmonics_zero_mean": "harmonics_zero_mean",
    "datasets.mnist": "mnist",
    "datasets.fashion_mnist": "fashion_mnist",
}

DEFAULT_OPTIONS: dict[str, Any] = {"test_fraction": 0.2, "split_seed": 0, "path": None, "label_column": "label"}
# Options each dataset uses; the others must stay at their defaults.
APPLICABLE_OPTIONS = {
    "harmonics": ("test_fraction", "split_seed"),
    "harmonics_zero_mean": ("test_fraction", "split_seed"),
    "mnist": ("path",),
    "fashion_mnist": ("path",),
    "file": ("path", "label_column", "test_fraction", "split_seed"),
}

# Neighbours of each of the 12 input bits (bit 0 = most significant = first
# column), which sit on the vertices of an icosahedron, and its 6 antipodal pairs.
ICOSAHEDRON_NEIGHBOURS = (
    {1, 3, 5, 10, 11}, {0, 2, 3, 4, 11}, {1, 3, 4, 8, 9}, {0, 1, 2, 8, 10},
    {1, 2, 6, 9, 11}, {0, 6, 7, 10, 11}, {4, 5, 7, 9, 11}, {5, 6, 8, 9, 10},
    {2, 3, 7, 9, 10}, {2, 4, 6, 7, 8}, {0, 3, 5, 7, 8}, {0, 1, 4, 5, 6},
)
ICOSAHEDRON_EDGES = np.array(sorted({(min(a, b), max(a, b))
                                     for a, neighbours in enumerate(ICOSAHEDRON_NEIGHBOURS)
                                     for b in neighbours}))
ANTIPODAL_PAIRS = np.array([(0, 9), (1, 7), (2, 5), (3, 6), (4, 10), (8, 11)])
HARMONICS_BITS = 12
HARMONICS_THRESHOLD = 176

KERAS_DATA_HOST = "storage.googleapis.com"
KERAS_DATA_URL = f"https://{KERAS_DATA_HOST}/tensorflow/tf-keras-datasets/"
# Files Keras keeps for each dataset, relative to its cache folder <keras home>/datasets.
KERAS_CACHE_FILES = {
    "mnist": ("mnist.npz",),
    "fashion_mnist": tuple(f"fashion-mnist/{name}" for name in (
        "train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")),
}
IMAGE_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_CLASSES = 10
DOWNLOAD_PROBE_TIMEOUT_S = 5.0
# Feature values must fit float32, as config values must (trainer.config.schema).
FLOAT32_RANGE = f"float32's range (at most {np.finfo(np.float32).max:.4g} in size; the networks compute in float32)"
# What a path that is not a regular file is instead (stat's tests), as a data file's error names it.
NOT_REGULAR = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a device"),
               (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message says what was wrong and what is allowed."""


@dataclass(frozen=True, eq=False)
class Split:
    """Inputs `x` float32 [n, d] and class labels `y` int64 [n]."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(f"Split needs x [n, d] and y [n]; got x {self.x.shape}, y {self.y.shape}")


@dataclass
class Dataset:
    """A train/test split; `split_seed` is None when the split is the dataset's own (MNIST)."""

    name: str
    train: Split
    test: Split
    n_classes: int
    split_seed: int | None
    feature_names: tuple[str, ...] | None = None     # a table's feature columns, in order (None: by position)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(inputs, features, classes), as config.memory_estimate takes it."""
        return len(self.train.y) + len(self.test.y), self.train.x.shape[1], self.n_classes

    @cached_property
    def full(self) -> Split:
        """Train rows then test rows (for harmonics: all 4096 distinct inputs); built once."""
        return Split(np.concatenate([self.train.x, self.test.x]), np.concatenate([self.train.y, self.test.y]))

    @property
    def sha256(self) -> str:
        """The SHA-256 of what the networks train and are measured on: the shape, then the inputs
        (float32) and labels (int64) of the train rows then the test rows, row-major. A run records
        it (RunRecord.data_sha256): an edited data file under the same path changes it, where the
        run id, which holds the path, does not (a new user's sweep skipped runs of the former file)."""
        digest = hashlib.sha256(repr((self.shape, self.train.x.shape)).encode())
        for part in (self.train.x, self.test.x, self.train.y, self.test.y):
            digest.update(np.ascontiguousarray(part).tobytes())
        return digest.hexdigest()


# A feature beyond this in absolute value lies far from the built-in datasets' [0, 1] (harmonics'
# bits, MNIST's scaled pixels); the networks take a file's features as given.
UNSCALED_BOUND = 10.0


def unscaled_note(dataset: Dataset, source: str) -> str | None:
    """A note naming the features of `dataset` (by column name, or by position from 0 in an .npz)
    whose values reach beyond UNSCALED_BOUND, or None. A new user's file held columns up to 3775: 6 of 10
    relu seeds died and tanh's first layer started saturated, and nothing said the features are not
    standardized."""
    largest = np.abs(dataset.full.x).max(axis=0)
    far = np.flatnonzero(largest > UNSCALED_BOUND)
    if not len(far):
        return None
    names = ([repr(name) for name in dataset.feature_names] if dataset.feature_names
             else [str(i) for i in range(len(largest))])
    named = ", ".join(f"{names[i]} (|x| up to {largest[i]:.4g})" for i in far[:5])
    how = "" if dataset.feature_names else "by position among the feature columns, from 0: "
    return (f"{source}: {len(far)} of {len(largest)} features reach beyond ±{UNSCALED_BOUND:g} ({how}"
            f"{named}{f' and {len(far) - 5} more' if len(far) > 5 else ''}). The "
            "networks take features as given, not standardized: on inputs this large tanh units saturate and relu "
            "units die from the first epoch. To compare with the built-in datasets, which lie in [0, 1] (harmonics_"
            "zero_mean in [-0.5, 0.5]), scale "
            "them first, e.g. (x - mean) / std per column.")


def harmonics() -> tuple[np.ndarray, np.ndarray]:
    """Tishby's 12-bit data `var_u.mat`, regenerated: x float32 [4096, 12], y int64 [4096].

    Shwartz-Ziv & Tishby 2017, "Opening the black box of deep neural networks
    via information" (arXiv:1703.00810), experimental setup: 12 binary inputs on
    points of a sphere, labelled by thresholding a spherically symmetric
    function so that p(y=1) is about one half. The paper does not spell the
    function out; this closed form reproduces every label of the published file
    (ravidziv/IDNNs, `var_u.mat`; checked in tests/test_datasets.py). With the
    bits on the vertices of an icosahedron, k bits on, n_adj active
    neighbouring pairs and n_anti active antipodal pairs:

        y = 1  iff  42 k - 9 C(k, 2) + 10 n_adj - 5 n_anti > 176

    Rows are all 2^12 patterns in binary counting order (row r holds the bits
    of r, most significant first), as in the file; 2118 labels are 1.
    """
    codes = np.arange(2 ** HARMONICS_BITS)
    bits = (codes[:, None] >> np.arange(HARMONICS_BITS - 1, -1, -1)) & 1
    k = bits.sum(axis=1)
    n_adj = (bits[:, ICOSAHEDRON_EDGES[:, 0]] & bits[:, ICOSAHEDRON_EDGES[:, 1]]).sum(axis=1)
    n_anti = (bits[:, ANTIPODAL_PAIRS[:, 0]] & bits[:, ANTIPODAL_PAIRS[:, 1]]).sum(axis=1)
    score = 42 * k - 9 * (k * (k - 1) // 2) + 10 * n_adj - 5 * n_anti
    return bits.astype(np.float32), (score > HARMONICS_THRESHOLD).astype(np.int64)


def load(name: str, **options: Any) -> Dataset:
    """Load dataset `name` (one of DATASETS, or a deep-bottleneck alias in ALIASES).

    Options (defaults in DEFAULT_OPTIONS):
    - `test_fraction` (0.2): share of rows in the test split, 0 < f < 1
      (harmonics, file). Test size is round(f * n), at least 1 row each side:
      3277 train / 819 test for harmonics.
    - `split_seed` (0): seed of the numpy Generator whose permutation shuffles
      the rows before the split (harmonics, file).
    - `path`: the data file for `file`; for `mnist`/`fashion_mnist` an optional
      `.npz` with arrays x_train, y_train, x_test, y_test (Keras' mnist.npz layout).
    - `label_column` ("label"): the label column of a `.parquet`/`.csv` file.

    Options a dataset does not use must keep their defaults (MNIST keeps its
    own split, so a `split_seed` there is an error rather than ignored).
    """
    canonical = ALIASES.get(name, name)
    if canonical not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)} "
                           f"(deep-bottleneck names {', '.join(ALIASES)} also work)")
    settings = _validated_options(canonical, options)
    if canonical in ("harmonics", "harmonics_zero_mean"):
        x, y = harmonics()
        if canonical == "harmonics_zero_mean":
            x = x - np.float32(0.5)
        return _shuffled_dataset(canonical, x, y, 2, settings["test_fraction"], settings["split_seed"])
    if canonical in ("mnist", "fashion_mnist"):
        return _load_image_dataset(canonical, settings["path"])
    return _load_file(settings["path"], settings["label_column"], settings["test_fraction"],
                      settings["split_seed"])


def load_data(config) -> Dataset:
    """The dataset an ExperimentConfig trains on (`dataset`, `dataset_path`, `label_column`,
    `test_fraction`, `split_seed`)."""
    options = {"test_fraction": config.test_fraction, "split_seed": config.split_seed}
    if config.dataset_path:
        options["path"] = config.dataset_path
    if config.dataset == "file":
        options["label_column"] = config.label_column
    return load(config.dataset, **options)


def _validated_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise DatasetError(f"unknown dataset option(s) {', '.join(map(repr, unknown))}; "
                           f"allowed: {', '.join(DEFAULT_OPTIONS)}")
    settings = {**DEFAULT_OPTIONS, **options}
    for option, value in options.items():
        if option not in APPLICABLE_OPTIONS[name] and value != DEFAULT_OPTIONS[option]:
            raise DatasetError(f"option {option}={value!r} does not apply to dataset {name!r}; "
                               f"it takes: {', '.join(APPLICABLE_OPTIONS[name])}")
    fraction = settings["test_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
        raise DatasetError(f"test_fraction={fraction!r} is not allowed: a number strictly between 0 and 1")
    seed = settings["split_seed"]
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise DatasetError(f"split_seed={seed!r} is not allowed: an integer >= 0")
    if settings["path"] is not None and not isinstance(settings["path"], (str, os.PathLike)):
        raise DatasetError(f"path={settings['path']!r} is not allowed: a file path (str) or None")
    if not isinstance(settings["label_column"], str):
        raise DatasetError(f"label_column={settings['label_column']!r} is not allowed: a column name (str)")
    if name == "file" and not settings["path"]:
        raise DatasetError("dataset 'file' needs a path (config key 'dataset_path'): "
                           "a .npz (arrays x, y), .parquet or .csv file")
    return settings


def _shuffled_dataset(name: str, x: np.ndarray, y: np.ndarray, n_classes: int, test_fraction: float,
                      split_seed: int, feature_names: tuple[str, ...] | None = None) -> Dataset:
    """Permute rows with np.random.default_rng(split_seed); the last round(f * n) go to test."""
    n = len(y)
    n_test = min(max(round(test_fraction * n), 1), n - 1)
    order = np.random.default_rng(split_seed).permutation(n)
    train, test = order[:n - n_test], order[n - n_test:]
    return Dataset(name, Split(x[train], y[train]), Split(x[test], y[test]), n_classes, int(split_seed),
                   feature_names)


def _load_image_dataset(name: str, path: str | os.PathLike | None) -> Dataset:
    """MNIST or Fashion-MNIST: 784 pixels in [0, 1], labels 0..9, the native train/test split."""
    if path is not None:
        (x_train, y_train), (x_test, y_test) = _read_image_npz(name, Path(path))
    else:
        (x_train, y_train), (x_test, y_test) = _keras_image_data(name)
    return Dataset(name, _image_split(name, "train", x_train, y_train), _image_split(name, "test", x_test, y_test),
                   IMAGE_CLASSES, None)


def _read_image_npz(name: str, path: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    _ensure_regular_file(path, f"{name} file", f"an .npz with arrays {', '.join(IMAGE_NPZ_KEYS)}")
    arrays = _read_npz(path)
    missing = [key for key in IMAGE_NPZ_KEYS if key not in arrays]
    if missing:
        raise DatasetError(f"{name} file {str(path)!r} lacks array(s) {', '.join(missing)}; "
                           f"it has {', '.join(arrays) or 'none'}, needs {', '.join(IMAGE_NPZ_KEYS)}")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _image_split(name: str, part: str, images: np.ndarray, labels: np.ndarray) -> Split:
    """Flatten images to [n, pixels]; uint8 0..255 is divided by 255, floats must already be in [0, 1]."""
    if images.ndim < 2 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError(f"{name} {part} data: need images [n, ...] and labels [n], "
                           f"got {images.shape} and {labels.shape}")
    pixels = images.reshape(len(images), -1)
    if np.issubdtype(pixels.dtype, np.integer):
        pixels = pixels.astype(np.float32) / np.float32(255)
    if not np.issubdtype(pixels.dtype, np.floating) or (pixels.size and not 0 <= pixels.min() <= pixels.max() <= 1):
        raise DatasetError(f"{name} {part} images must be integers 0..255 or floats in [0, 1], "
                           f"got {images.dtype} values outside that range")
    if not np.issubdtype(labels.dtype, np.integer) or \
            (labels.size and not 0 <= labels.min() <= labels.max() < IMAGE_CLASSES):
        raise DatasetError(f"{name} {part} labels must be integers 0..{IMAGE_CLASSES - 1}, got {labels.dtype} values")
    return Split(pixels.astype(np.float32), labels.astype(np.int64))


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets: $KERAS_HOME/datasets, else ~/.keras/datasets.

    Keras' own rule (keras.src.backend.config): KERAS_HOME if set, else
    ~/.keras, or /tmp/.keras when the home folder is not writable.
    """
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]) / "datasets"
    home = Path.home()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras" / "datasets"


def _keras_image_data(name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Keras' loader; without a cached copy, first check that the download host answers (so we never hang)."""
    cached = all((keras_cache_dir() / file).is_file() for file in KERAS_CACHE_FILES[name])
    if not cached:
        try:
            socket.create_connection((KERAS_DATA_HOST, 443), timeout=DOWNLOAD_PROBE_TIMEOUT_S).close()
        except OSError as error:
            raise DatasetError(_missing_image_data_message(name, f"cannot reach {KERAS_DATA_HOST}: {error}")) \
                from error
    import keras  # imports TensorFlow: kept out of the module's imports so the explorer side stays light

    try:
        return getattr(keras.datasets, name).load_data()
    # keras.utils.get_file turns URL failures into a bare Exception; hash and I/O errors are ValueError/OSError.
    except Exception as error:
        raise DatasetError(_missing_image_data_message(name, f"the Keras download failed: {error}")) from error


def _missing_image_data_message(name: str, reason: str) -> str:
    cache = keras_cache_dir()
    files = ", ".join(str(cache / file) for file in KERAS_CACHE_FILES[name])
    return (f"dataset {name!r} is not available ({reason}). Either put Keras' file(s) at {files} "
            f"(downloadable from {KERAS_DATA_URL}), or set config key 'dataset_path' (load option 'path') "
            f"to an .npz with arrays {', '.join(IMAGE_NPZ_KEYS)}.")


def _load_file(path: str | os.PathLike, label_column: str, test_fraction: float, split_seed: int) -> Dataset:
    """User data: .npz with arrays `x` [n, ...] and `y` [n]; or a .parquet/.csv table whose
    `label_column` holds the labels and whose other columns are the (numeric) features.

    Labels become class indices by numbering their distinct values in sorted
    order (labels 0..K-1 keep their values; "cat", "dog" become 0, 1).
    """
    path = Path(path)
    _ensure_regular_file(path, "data file", "a .npz (arrays x, y), .parquet or .csv file")
    suffix = path.suffix.lower()
    names = None
    if suffix == ".npz":
        features, labels = _read_xy_npz(path)
    elif suffix in (".parquet", ".csv"):
        features, labels, names = _read_table(path, label_column)
    else:
        raise DatasetError(f"data file {str(path)!r} has unsupported type {suffix!r}; "
                           f"allowed: .npz (arrays x, y), .parquet, .csv")
    if np.issubdtype(labels.dtype, np.floating) and not np.array_equal(labels, np.round(labels)):
        example = labels[labels != np.round(labels)][0]
        raise DatasetError(f"data file {str(path)!r}: labels must be classes (integers or names); they hold "
                           f"numbers with a fraction, such as {example:g}, as a continuous column would")
    classes, y = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise DatasetError(f"data file {str(path)!r}: every label is {classes.tolist()[0]!r}; a classifier needs at least "
                           f"2 classes (is the label column the right one?)")
    return _shuffled_dataset("file", features.astype(np.float32), y.astype(np.int64), len(classes),
                             test_fraction, split_seed, names)


def _ensure_regular_file(path: Path, what: str, wanted: str) -> None:
    """DatasetError unless `path` is a regular file (or a link to one), saying what it is instead:
    a folder, a named pipe or a device was once said not to exist. `wanted`: what to give instead."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetError(f"{what} {str(path)!r} does not exist; give {wanted}") from None
    except OSError as error:
        raise DatasetError(f"{what} {str(path)!r} cannot be read: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        kind = next((kind for test, kind in NOT_REGULAR if test(mode)), "of another kind")
        raise DatasetError(f"{what} {str(path)!r} is not a regular file but {kind}; give {wanted}")


def _beyond_float32(values: np.ndarray) -> tuple[int, ...] | None:
    """The index of the first value too large in size for float32, or None: in float32, which the
    networks compute in, it would be infinite (such a run trained and diverged at epoch 0)."""
    beyond = np.argwhere(np.abs(values) > np.finfo(np.float32).max)
    return tuple(int(i) for i in beyond[0]) if len(beyond) else None


def _ensure_two_rows(path: Path, n_rows: int) -> None:
    if n_rows < 2:
        raise DatasetError(f"data file {str(path)!r} has {n_rows} row(s); at least 2 are needed "
                           f"(one for train, one for test)")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):       # numpy would read it as a pickle, and say to allow pickles
        raise DatasetError(f"could not read {str(path)!r} as .npz: it is not a zip archive of .npy arrays "
                           f"(numpy.savez writes one)")
    try:
        _ensure_npz_fits(path)
        with np.load(path, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}
    except DatasetError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise DatasetError(f"could not read {str(path)!r} as .npz (numeric arrays, no pickles): {error}") from error


def _ensure_npz_fits(path: Path) -> None:
    """DatasetError if the arrays an .npz declares (each .npy member's header: shape and dtype) hold
    more than half of this machine's memory: an attacker's 7.8 MB file declared 7.45 GiB of zeros,
    which loading filled before any check could run."""
    declared = 0
    with zipfile.ZipFile(path) as archive:
        for member in (name for name in archive.namelist() if name.endswith(".npy")):
            with archive.open(member) as stream:
                header = (np.lib.format.read_array_header_1_0 if np.lib.format.read_magic(stream) == (1, 0) else
                          np.lib.format.read_array_header_2_0)
                shape, _, dtype = header(stream)
                declared += math.prod(shape) * dtype.itemsize
    if declared > (physical_memory() or math.inf) / 2:
        raise DatasetError(f"data file {str(path)!r} declares arrays of {declared / 2**30:.1f} GiB, more than half "
                           f"of this machine's memory")


# A CSV value takes at least 2 characters ("0,"), and becomes an 8-byte float: a file of n bytes can
# hold up to 4n bytes of values.
CSV_BYTES_PER_CHARACTER = 4


def _ensure_table_fits(path: Path, parquet: bool) -> None:
    """DatasetError if a table's values could take more than half of this machine's memory: a
    Parquet file's rows x columns as 8-byte values (its metadata: an attacker's 11 MB file declared
    12.8 GB), a CSV's size times CSV_BYTES_PER_CHARACTER (a 30 GB sparse file filled 5.7 GB and ended
    in a MemoryError traceback)."""
    if parquet:
        metadata = pq.read_metadata(path)
        declared, what = metadata.num_rows * metadata.num_columns * 8, "declares"
    else:
        declared, what = path.stat().st_size * CSV_BYTES_PER_CHARACTER, "may hold"
    if declared > (physical_memory() or math.inf) / 2:
        raise DatasetError(f"data file {str(path)!r} {what} values of {declared / 2**30:.1f} GiB, more than half of "
                           "this machine's memory")


def _read_xy_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    arrays = _read_npz(path)
    if "x" not in arrays or "y" not in arrays:
        raise DatasetError(f"data file {str(path)!r} must hold arrays 'x' (features [n, d]) and 'y' (labels [n]); "
                           f"it has {', '.join(arrays) or 'none'}")
    x, y = arrays["x"], arrays["y"]
    if y.ndim == 2 and y.shape[1] == 1:      # a column of labels (a new user's y of shape (n, 1))
        y = y[:, 0]
    if y.ndim == 2 and len(x) == len(y) and y.shape[1] > 1 and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
        raise DatasetError(f"data file {str(path)!r}: labels y are one-hot, shape {y.shape}; save the class of each "
                           f"row, y.argmax(axis=1), as y [n]")
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
        raise DatasetError(f"data file {str(path)!r}: need x [n, d] and y [n], got x {x.shape} and y {y.shape}")
    if x.dtype.kind not in "biuf":   # a complex x lost its imaginary part in the cast to float32
        raise DatasetError(f"data file {str(path)!r}: features x must be numeric and real (integers, floats or "
                           f"booleans), got dtype {x.dtype}")
    _ensure_two_rows(path, len(x))
    if x.size == 0:
        raise DatasetError(f"data file {str(path)!r} has no feature columns: x has shape {x.shape}")
    if not np.isfinite(x).all():
        raise DatasetError(f"data file {str(path)!r}: features x contain NaN or infinite values")
    beyond = _beyond_float32(x)
    if beyond is not None:
        raise DatasetError(f"data file {str(path)!r}: features x must be within {FLOAT32_RANGE}; "
                           f"x[{', '.join(map(str, beyond))}] is {x[beyond]!s}")
    x = x.reshape(len(x), -1)
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise DatasetError(f"data file {str(path)!r}: labels y contain NaN or infinite values")
    return x, y


def _read_table(path: Path, label_column: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    parquet = path.suffix.lower() == ".parquet"
    try:
        _ensure_table_fits(path, parquet)
        # as text: "01" and "1" name two columns
        header = (pq.read_schema(path).names if parquet
                  else pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0].tolist())
        # pandas renames a second "label" to "label.1": an attacker's duplicated label column became a feature
        if twice := sorted({str(name) for name in header if header.count(name) > 1}):
            raise DatasetError(f"data file {str(path)!r} names column(s) {', '.join(twice)} more than once; "
                               "each column needs a name of its own")
        table = pd.read_parquet(path) if parquet else pd.read_csv(path)
    except DatasetError:
        raise
    except MemoryError:    # what the size checks let through still fails as bad input, not as a traceback
        raise DatasetError(f"data file {str(path)!r} is too large to load in this machine's memory") from None
    except (ValueError, OSError, pa.ArrowException) as error:
        raise DatasetError(f"could not read data file {str(path)!r}: {error}") from error
    _ensure_two_rows(path, len(table))   # before the dtypes: the columns of a file without rows have none
    columns = [str(column) for column in table.columns]
    if label_column not in columns:
        raise DatasetError(f"data file {str(path)!r} has no label column {label_column!r}; "
                           f"its columns are {', '.join(columns)} (set config key 'label_column')")
    table.columns = columns
    features = table.drop(columns=label_column)
    if features.shape[1] == 0:
        raise DatasetError(f"data file {str(path)!r} has no feature columns besides label column {label_column!r}")
    non_numeric = [column for column in features.columns if not pd.api.types.is_numeric_dtype(features[column])]
    if non_numeric:
        raise DatasetError(f"data file {str(path)!r}: feature columns must be numeric; not numeric: "
                           f"{', '.join(non_numeric)}")
    values = features.to_numpy(dtype=float)
    with_missing = [column for column, finite in zip(features.columns, np.isfinite(values).all(axis=0)) if not finite]
    if with_missing:
        raise DatasetError(f"data file {str(path)!r}: feature columns with missing or infinite values: "
                           f"{', '.join(with_missing)}")
    beyond = _beyond_float32(values)
    if beyond is not None:
        row, column = beyond
        raise DatasetError(f"data file {str(path)!r}: feature values must be within {FLOAT32_RANGE}; "
                           f"column {features.columns[column]!r} holds {values[row, column]} in data row {row + 1}")
    labels = table[label_column]
    if labels.isna().any():
        raise DatasetError(f"data file {str(path)!r}: label column {label_column!r} has missing values")
    if not pd.api.types.is_numeric_dtype(labels):
        labels = labels.astype(str)
    return features.to_numpy(dtype=np.float32), labels.to_numpy(), tuple(features.columns)
