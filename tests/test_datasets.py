"""Datasets: harmonics regenerated exactly, splits, user files, MNIST offline."""

import math
import os
import socket
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainer import datasets
from trainer.datasets import DatasetError, harmonics, load

ORIGINAL_HARMONICS = Path(__file__).resolve().parents[2] / "shared" / "data" / "var_u.mat"


# --- harmonics ---------------------------------------------------------------

@pytest.mark.skipif(not ORIGINAL_HARMONICS.is_file(),
                    reason=f"original harmonics file not found at {ORIGINAL_HARMONICS}")
def test_harmonics_equals_original_var_u_mat():
    from scipy.io import loadmat

    original = loadmat(ORIGINAL_HARMONICS)
    original_x, original_y = original["F"], original["y"]
    assert original_x.shape == (4096, 12) and original_y.shape == (1, 4096)  # labels: one row vector of 0/1
    x, y = harmonics()
    np.testing.assert_array_equal(x, original_x.astype(np.float32))
    np.testing.assert_array_equal(y, original_y.ravel().astype(np.int64))
    assert int(original_y.sum()) == 2118


def test_harmonics_shape_counting_order_and_label_entropy():
    x, y = harmonics()
    assert x.shape == (4096, 12) and x.dtype == np.float32
    assert y.shape == (4096,) and y.dtype == np.int64
    weights = 2 ** np.arange(11, -1, -1)  # first column is the most significant bit
    np.testing.assert_array_equal(x.astype(int) @ weights, np.arange(4096))
    assert len(np.unique(x, axis=0)) == 4096
    assert y.sum() == 2118
    p = y.mean()
    assert -(p * np.log2(p) + (1 - p) * np.log2(1 - p)) == pytest.approx(0.99916, abs=5e-6)


def test_harmonics_labels_are_invariant_under_an_icosahedron_symmetry():
    # Relabelling the vertices by a symmetry of the icosahedron must not change any label:
    # the antipodal map i -> antipode(i) is one.
    x, y = harmonics()
    antipode = np.arange(12)
    for a, b in datasets.ANTIPODAL_PAIRS:
        antipode[a], antipode[b] = b, a
    weights = 2 ** np.arange(11, -1, -1)
    mapped_rows = x[:, antipode].astype(int) @ weights
    np.testing.assert_array_equal(y[mapped_rows], y)


def test_harmonics_split_sizes_and_full():
    data = load("harmonics")
    assert (len(data.train.y), len(data.test.y)) == (3277, 819)
    assert math.log2(len(data.train.y)) == pytest.approx(11.68, abs=0.005)
    assert data.n_classes == 2 and data.split_seed == 0 and data.name == "harmonics"
    full = data.full
    assert full.x.shape == (4096, 12) and len(np.unique(full.x, axis=0)) == 4096
    np.testing.assert_array_equal(full.x[:3277], data.train.x)
    x, y = harmonics()
    codes = full.x.astype(int) @ 2 ** np.arange(11, -1, -1)
    np.testing.assert_array_equal(full.y, y[codes])  # every row keeps its own label


def test_split_is_deterministic_per_seed_and_differs_across_seeds():
    first, again, other = load("harmonics", split_seed=3), load("harmonics", split_seed=3), load("harmonics",
                                                                                                   split_seed=4)
    np.testing.assert_array_equal(first.train.x, again.train.x)
    np.testing.assert_array_equal(first.test.y, again.test.y)
    assert not np.array_equal(first.train.x, other.train.x)
    assert other.split_seed == 4


def test_test_fraction():
    data = load("harmonics", test_fraction=0.5)
    assert (len(data.train.y), len(data.test.y)) == (2048, 2048)


def test_zero_mean_variant_is_inputs_minus_half():
    plain, centred = load("harmonics", split_seed=7), load("harmonics_zero_mean", split_seed=7)
    np.testing.assert_array_equal(centred.train.x, plain.train.x - 0.5)
    np.testing.assert_array_equal(centred.test.y, plain.test.y)
    assert centred.train.x.dtype == np.float32 and set(np.unique(centred.full.x)) == {-0.5, 0.5}


def test_deep_bottleneck_aliases():
    assert load("datasets.harmonics").name == "harmonics"
    assert load("datasets.harmonics_zero_mean").name == "harmonics_zero_mean"
    assert set(datasets.ALIASES.values()) <= set(datasets.DATASETS)


@pytest.mark.slow
def test_importing_datasets_does_not_import_tensorflow():
    code = "import sys, trainer.datasets; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- option errors -----------------------------------------------------------

@pytest.mark.parametrize("name, options, fragments", [
    ("cifar", {}, ["'cifar'", "harmonics", "mnist", "fashion_mnist", "file"]),
    ("harmonics", {"seed": 1, "shuffle": True}, ["'seed'", "'shuffle'", "test_fraction", "split_seed"]),
    ("harmonics", {"test_fraction": 1.0}, ["test_fraction=1.0", "between 0 and 1"]),
    ("harmonics", {"test_fraction": "0.2"}, ["test_fraction='0.2'"]),
    ("harmonics", {"split_seed": -1}, ["split_seed=-1", ">= 0"]),
    ("harmonics", {"path": "x.npz"}, ["path='x.npz'", "'harmonics'", "test_fraction, split_seed"]),
    ("mnist", {"split_seed": 3}, ["split_seed=3", "'mnist'", "path"]),
    ("file", {}, ["needs a path", "dataset_path"]),
])
def test_bad_options(name, options, fragments):
    with pytest.raises(DatasetError) as error:
        load(name, **options)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_defaults_of_options_that_do_not_apply_are_accepted():
    data = load("harmonics", path=None, label_column="label")
    assert len(data.train.y) == 3277


# --- file datasets -----------------------------------------------------------

def _rows_to_labels(split):
    return {tuple(row): label for row, label in zip(split.x.tolist(), split.y.tolist())}


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3))
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 2])
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    data = load("file", path=tmp_path / "mine.npz", split_seed=1)
    assert data.name == "file" and data.n_classes == 3 and data.split_seed == 1
    assert (len(data.train.y), len(data.test.y)) == (8, 2)
    assert data.train.x.dtype == np.float32 and data.train.y.dtype == np.int64
    expected = {tuple(row): label for row, label in zip(x.astype(np.float32).tolist(), y.tolist())}
    assert _rows_to_labels(data.full) == expected


def test_parquet_round_trip_maps_string_labels_in_sorted_order(tmp_path):
    table = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [0, 1, 0, 1, 1],
                          "label": ["dog", "cat", "dog", "emu", "cat"]})
    table.to_parquet(tmp_path / "animals.parquet")
    data = load("file", path=str(tmp_path / "animals.parquet"))
    assert data.n_classes == 3 and data.train.x.shape == (4, 2) and data.test.x.shape == (1, 2)
    assert _rows_to_labels(data.full) == {(1.0, 0.0): 1, (2.0, 1.0): 0, (3.0, 0.0): 1, (4.0, 1.0): 2,
                                          (5.0, 1.0): 0}


def test_csv_round_trip_with_label_column(tmp_path):
    (tmp_path / "data.csv").write_text("target,x1,x2\n1,0.5,1\n0,0.25,2\n1,0.75,3\n0,1.0,4\n")
    data = load("file", path=tmp_path / "data.csv", label_column="target", test_fraction=0.25)
    assert data.n_classes == 2 and (len(data.train.y), len(data.test.y)) == (3, 1)
    assert _rows_to_labels(data.full) == {(0.5, 1.0): 1, (0.25, 2.0): 0, (0.75, 3.0): 1, (1.0, 4.0): 0}


def test_file_split_is_deterministic(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.arange(40.0).reshape(20, 2), y=np.arange(20) % 2)
    first, again = load("file", path=tmp_path / "d.npz", split_seed=5), load("file", path=tmp_path / "d.npz",
                                                                             split_seed=5)
    np.testing.assert_array_equal(first.test.x, again.test.x)
    assert not np.array_equal(first.test.x, load("file", path=tmp_path / "d.npz", split_seed=6).test.x)


@pytest.mark.parametrize("filename, content, options, fragments", [
    ("d.csv", "a,b,label\n1,2,0\n3,4,1\n", {"label_column": "y"},
     ["no label column 'y'", "a, b, label", "label_column"]),
    ("d.csv", "a,colour,label\n1,red,0\n3,blue,1\n", {}, ["must be numeric", "colour"]),
    ("d.csv", "a,b,label\n1,,0\n3,4,1\n", {}, ["missing or infinite", ": b"]),
    ("d.csv", "a,label\n1,0\n", {}, ["1 row(s)", "at least 2"]),
    ("d.csv", "a,b,label\n", {}, ["0 row(s)", "at least 2"]),
    ("d.csv", "a,label\n1,0\n2,0\n3,0\n", {}, ["every label is 0", "at least 2 classes"]),
    ("d.csv", "a,label\n1,one\n2,one\n", {}, ["every label is 'one'", "at least 2 classes"]),   # was a traceback
    ("d.csv", "a,label\n1,0.5\n2,1.5\n3,0.5\n", {}, ["labels must be classes", "such as 0.5"]),
    ("d.csv", "a,label\n1,\n2,1\n", {}, ["label column 'label' has missing values"]),
    ("d.csv", "label\n1\n0\n", {}, ["no feature columns"]),
    # beyond float32 they became infinite in the cast (a pandas RuntimeWarning) and the run diverged at epoch 0
    ("d.csv", "a,b,label\n1,2,0\n3,-1e308,1\n", {},
     ["float32's range", "at most 3.403e+38", "column 'b' holds -1e+308 in data row 2"]),
    ("d.txt", "1 2 3", {}, ["unsupported type '.txt'", ".npz", ".parquet", ".csv"]),
    # numpy read it as a pickle and said to pass allow_pickle, which the trainer has no option for
    ("d.npz", "not a zip", {}, ["could not read", "not a zip archive of .npy arrays"]),
])
def test_bad_files(tmp_path, filename, content, options, fragments):
    (tmp_path / filename).write_text(content)
    with pytest.raises(DatasetError) as error:
        load("file", path=tmp_path / filename, **options)
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize("arrays, fragments", [
    ({"features": np.zeros((3, 2)), "y": np.zeros(3)}, ["arrays 'x'", "features, y"]),
    ({"x": np.zeros(3), "y": np.zeros(3)}, ["need x [n, d]", "(3,)"]),
    ({"x": np.zeros((3, 2)), "y": np.zeros(4)}, ["need x [n, d]", "(4,)"]),
    ({"x": np.array([["a", "b"], ["c", "d"]]), "y": np.zeros(2)}, ["must be numeric"]),
    # each trained: the imaginary part dropped with a ComplexWarning; no input at all
    ({"x": np.ones((2, 2), dtype=complex), "y": np.arange(2)}, ["numeric and real", "dtype complex128"]),
    ({"x": np.zeros((50, 0)), "y": np.arange(50) % 2}, ["has no feature columns", "(50, 0)"]),
    ({"x": np.array([[1.0, 2.0], [3.0, 1e39]]), "y": np.arange(2)}, ["float32's range", "x[1, 1] is 1e+39"]),
    ({"x": np.array([[1.0], [np.nan]]), "y": np.zeros(2)}, ["NaN"]),
    ({"x": np.zeros((0, 2)), "y": np.zeros(0)}, ["0 row(s)"]),
    ({"x": np.zeros((3, 2)), "y": np.array(["cat"] * 3)}, ["every label is 'cat'"]),
    ({"x": np.zeros((3, 2)), "y": np.array([1.0, 2.0, 2.25])}, ["such as 2.25"]),
])
def test_bad_npz(tmp_path, arrays, fragments):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError) as error:
        load("file", path=tmp_path / "bad.npz")
    for fragment in fragments:
        assert fragment in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load("file", path=tmp_path / "nowhere.csv")


def test_a_path_that_is_no_regular_file_is_said_to_be_none(tmp_path):
    # a folder, a FIFO or a device was said not to exist
    os.mkfifo(tmp_path / "pipe.csv")
    for path, kind in ((tmp_path, "a folder"), (tmp_path / "pipe.csv", "a named pipe"), ("/dev/null", "a device")):
        with pytest.raises(DatasetError) as error:
            load("file", path=path)
        assert str(error.value) == (f"data file {str(path)!r} is not a regular file but {kind}; give a .npz "
                                    f"(arrays x, y), .parquet or .csv file")
    with pytest.raises(DatasetError, match=f"mnist file {str(tmp_path)!r} is not a regular file but a folder"):
        load("mnist", path=tmp_path)


def test_values_at_float32s_largest_are_kept(tmp_path, recwarn):
    largest = float(np.finfo(np.float32).max)
    (tmp_path / "d.csv").write_text(f"a,b,label\n1,{largest!r},0\n3,{-largest!r},1\n")
    assert set(np.abs(load("file", path=tmp_path / "d.csv").full.x[:, 1])) == {np.float32(largest)}
    assert not recwarn.list


# --- MNIST / Fashion-MNIST offline ------------------------------------------

def _fake_mnist_arrays():
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8),
            "y_train": np.array([0, 1, 2, 3, 4, 9], dtype=np.uint8),
            "x_test": rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8),
            "y_test": np.array([5, 6, 7], dtype=np.uint8)}


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    """HOME and KERAS_HOME in an empty folder, no network: connecting raises at once."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / ".keras"))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(socket, "create_connection", offline)
    return tmp_path / ".keras"


def test_mnist_from_explicit_npz(tmp_path):
    arrays = _fake_mnist_arrays()
    np.savez(tmp_path / "mnist.npz", **arrays)
    data = load("mnist", path=tmp_path / "mnist.npz")
    assert data.train.x.shape == (6, 784) and data.test.x.shape == (3, 784)
    assert data.train.x.dtype == np.float32 and data.train.y.dtype == np.int64
    np.testing.assert_allclose(data.train.x[2].reshape(28, 28), arrays["x_train"][2] / 255, rtol=1e-6)
    assert 0 <= data.full.x.min() and data.full.x.max() <= 1
    np.testing.assert_array_equal(data.test.y, [5, 6, 7])
    assert data.n_classes == 10 and data.split_seed is None and data.name == "mnist"


def test_mnist_explicit_npz_with_wrong_keys(tmp_path):
    np.savez(tmp_path / "m.npz", x=np.zeros((2, 4)), y=np.zeros(2))
    with pytest.raises(DatasetError) as error:
        load("mnist", path=tmp_path / "m.npz")
    assert "x_train, y_train, x_test, y_test" in str(error.value) and "it has x, y" in str(error.value)


def test_mnist_explicit_path_missing(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load("fashion_mnist", path=tmp_path / "fashion.npz")


def test_mnist_offline_without_file_says_where_to_put_it(empty_keras_home):
    with pytest.raises(DatasetError) as error:
        load("mnist")
    message = str(error.value)
    assert str(empty_keras_home / "datasets" / "mnist.npz") in message
    assert "dataset_path" in message and "x_train, y_train, x_test, y_test" in message
    assert "network is unreachable" in message
    assert isinstance(error.value.__cause__, OSError)


def test_fashion_mnist_offline_names_the_keras_files(empty_keras_home):
    with pytest.raises(DatasetError) as error:
        load("datasets.fashion_mnist")
    assert str(empty_keras_home / "datasets" / "fashion-mnist" / "train-images-idx3-ubyte.gz") in str(error.value)


def _fake_keras(monkeypatch, load_data):
    fake = types.SimpleNamespace(datasets=types.SimpleNamespace(mnist=types.SimpleNamespace(load_data=load_data)))
    monkeypatch.setitem(sys.modules, "keras", fake)


def test_failed_keras_download_becomes_dataset_error(empty_keras_home, monkeypatch):
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: types.SimpleNamespace(close=lambda: None))
    failure = Exception("URL fetch failure on https://storage.googleapis.com/...: None -- timed out")

    def failing_download():
        raise failure

    _fake_keras(monkeypatch, failing_download)
    with pytest.raises(DatasetError) as error:
        load("mnist")
    assert "the Keras download failed" in str(error.value) and "mnist.npz" in str(error.value)
    assert error.value.__cause__ is failure


def test_cached_keras_file_is_used_without_touching_the_network(empty_keras_home, monkeypatch):
    (empty_keras_home / "datasets").mkdir(parents=True)
    (empty_keras_home / "datasets" / "mnist.npz").write_bytes(b"cached")  # Keras reads it; we only check it exists
    arrays = _fake_mnist_arrays()
    _fake_keras(monkeypatch, lambda: ((arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])))
    data = load("mnist")  # create_connection would raise: it is not called
    assert data.train.x.shape == (6, 784)


def test_an_npz_declaring_more_than_half_of_memory_is_refused_before_it_is_read(tmp_path):
    # An attacker's 7.8 MB .npz declared 7.45 GiB of zeros, which loading filled before any check ran;
    # here the header alone declares 10^12 float32 values, and no data follows it
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)})
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue())
        archive.writestr("y.npy", header.getvalue())
    with pytest.raises(DatasetError, match=r"bomb.npz' declares arrays of 7450\.6 GiB, more than half of this machine"):
        load("file", path=tmp_path / "bomb.npz")


def test_a_table_that_could_fill_more_than_half_of_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    # An attacker's: a 30 GB sparse CSV filled 5.7 GB before a MemoryError traceback; an 11 MB Parquet
    # file declaring 800 million rows, an ArrowMemoryError traceback
    import pyarrow as pa
    import pyarrow.parquet as pq

    # a machine of 256 MiB, so that the code before the check reads 64 MiB of zeros, not 8 GiB (a
    # reviewer's fail-before run of an 8 GiB file was killed for the memory it took)
    memory = 256 * 2**20
    monkeypatch.setattr(datasets, "physical_memory", lambda: memory)
    sparse = tmp_path / "sparse.csv"
    with open(sparse, "wb") as file:
        file.truncate(32 * 2**20 + 1)                 # 4 bytes of values a character: just over 128 MiB
    with pytest.raises(DatasetError, match=r"sparse.csv' may hold values of 0\.1 GiB, more than half of this machine"):
        load("file", path=sparse)
    pq.write_table(pa.table({"a": np.zeros(1000), "label": np.arange(1000) % 2}), tmp_path / "t.parquet")
    assert load("file", path=tmp_path / "t.parquet").full.x.shape == (1000, 1)
    monkeypatch.setattr(datasets, "physical_memory", lambda: 2 * 1000 * 2 * 8 - 1)   # rows x columns x 8 > half
    with pytest.raises(DatasetError, match=r"t.parquet' declares values of 0\.0 GiB, more than half"):
        load("file", path=tmp_path / "t.parquet")
    # whatever the checks let through is bad input too, not a traceback
    monkeypatch.setattr(datasets, "physical_memory", lambda: memory)
    (tmp_path / "ok.csv").write_text("a,label\n1,0\n2,1\n3,0\n")

    read_csv = datasets.pd.read_csv

    def out_of_memory(*args, **kwargs):      # the whole table, not its header row
        if kwargs.get("nrows") is None:
            raise MemoryError
        return read_csv(*args, **kwargs)
    monkeypatch.setattr(datasets.pd, "read_csv", out_of_memory)
    with pytest.raises(DatasetError, match=r"ok.csv' is too large to load in this machine's memory"):
        load("file", path=tmp_path / "ok.csv")


def test_a_column_named_twice_is_refused_not_renamed(tmp_path):
    # An attacker's CSV with a second "label" column: pandas named it "label.1", and the network was
    # fed the label as a feature
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "twice.csv").write_text("a,label,label\n1,0,0\n2,1,1\n3,0,0\n")
    with pytest.raises(DatasetError, match=r"twice.csv' names column\(s\) label more than once"):
        load("file", path=tmp_path / "twice.csv")
    pq.write_table(pa.Table.from_arrays([pa.array([1.0, 2, 3]), pa.array([0, 1, 0]), pa.array([1.0, 1, 1])],
                                        names=["a", "label", "a"]), tmp_path / "twice.parquet")
    with pytest.raises(DatasetError, match=r"twice.parquet' names column\(s\) a more than once"):
        load("file", path=tmp_path / "twice.parquet")
    (tmp_path / "once.csv").write_text("a,b,label\n1,0,0\n2,1,1\n3,0,0\n")
    assert load("file", path=tmp_path / "once.csv").full.x.shape == (3, 2)
    # a reviewer's: headers are names, not numbers: 01 and 1, 1 and 1.0 are two columns
    (tmp_path / "numbers.csv").write_text("label,01,1,1.0\n0,1,2,3\n1,4,5,6\n0,7,8,9\n")
    assert load("file", path=tmp_path / "numbers.csv").full.x.shape == (3, 3)


def test_features_far_beyond_unit_scale_are_named_in_a_note(tmp_path):
    # A new user's CSV held a column from 185 to 3775, fed as given: 6 of 10 relu seeds died, and nothing
    # said the features are not standardized
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    x[:, 1] = rng.uniform(185, 3775, 300)
    x[:, 3] *= 20
    np.savez(tmp_path / "raw.npz", x=x, y=np.arange(300) % 2)
    raw = load("file", path=tmp_path / "raw.npz")
    note = datasets.unscaled_note(raw, "data file 'raw.npz'")
    largest = np.abs(x).max(axis=0).astype(np.float32)
    assert note.startswith(f"data file 'raw.npz': 2 of 4 features reach beyond ±10 (by position among the feature "
                           f"columns, from 0: 1 (|x| up to {largest[1]:.4g}), 3 (|x| up to {largest[3]:.4g})).")
    assert "not standardized" in note and "(x - mean) / std" in note
    np.savez(tmp_path / "scaled.npz", x=(x - x.mean(axis=0)) / x.std(axis=0) / 5, y=np.arange(300) % 2)
    assert datasets.unscaled_note(load("file", path=tmp_path / "scaled.npz"), "scaled") is None
    assert datasets.unscaled_note(load("harmonics"), "harmonics") is None


def test_labels_as_a_column_are_read_and_one_hot_labels_named(tmp_path):
    x = np.random.default_rng(1).normal(size=(40, 3))
    labels = np.arange(40) % 3
    np.savez(tmp_path / "column.npz", x=x, y=labels[:, None])
    assert (np.sort(load("file", path=tmp_path / "column.npz").full.y) == np.sort(labels)).all()
    np.savez(tmp_path / "onehot.npz", x=x, y=np.eye(3)[labels])
    with pytest.raises(DatasetError, match=r"labels y are one-hot, shape \(40, 3\); save the class of each row, "
                                           r"y.argmax\(axis=1\), as y \[n\]"):
        load("file", path=tmp_path / "onehot.npz")
