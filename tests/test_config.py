"""Configs: defaults, deep-bottleneck compatibility, overrides, grids, errors."""

import json
import re

import pytest

from trainer import cli, config
from trainer.config import memory

# The config printed in the seed notebook (deep-bottleneck experiment 865).
DEEP_BOTTLENECK_CONFIG = {
    "activation_fn": "relu", "architecture": [10, 7, 5, 4, 3], "batch_size": 256, "callbacks": [],
    "dataset": "datasets.harmonics", "discretization_range": 0.07, "epochs": 8000,
    "estimator": "mi_estimator.binning", "initial_bias": 2, "learning_rate": 0.0004,
    "max_norm_weights": False, "model": "models.feedforward", "n_runs": 1, "optimizer": "adam",
    "plotters": [["plotter.informationplane", []], ["plotter.snr", []]], "seed": 0,
}


def test_defaults_are_deep_bottlenecks_standard_setup():
    resolved, ignored = config.resolve({})
    assert resolved["architecture"] == [10, 7, 5, 4, 3]
    assert (resolved["batch_size"], resolved["optimizer"], resolved["learning_rate"]) == (256, "adam", 0.0004)
    assert (resolved["activation_fn"], resolved["initial_bias"], resolved["max_norm_weights"]) == ("tanh", 0.0, False)
    assert (resolved["epochs"], resolved["n_runs"], resolved["seed"]) == (8000, 1, 0)
    assert resolved["estimators"] == [{"name": "binning", "params": {"bin_size": 0.07}}]
    assert resolved["dataset"] == "harmonics" and ignored == {}


def test_deep_bottleneck_config_loads_unchanged():
    resolved, ignored = config.resolve(DEEP_BOTTLENECK_CONFIG)
    assert resolved["dataset"] == "harmonics"
    assert resolved["model"] == "feedforward"
    assert resolved["estimators"] == [{"name": "binning", "params": {"bin_size": 0.07}}]
    assert resolved["initial_bias"] == 2.0 and resolved["activation_fn"] == "relu"
    assert set(ignored) == {"plotters", "callbacks"}


@pytest.mark.parametrize("legacy, splits", [("full_dataset", ["full"]), ("training", ["train"]), ("test", ["test"])])
def test_deep_bottlenecks_calculate_mi_for_chooses_the_split_mi_is_estimated_on(legacy, splits):
    # deep-bottleneck's configs/basic.json sets "calculate_mi_for": "full_dataset"; it was an unknown key
    resolved, ignored = config.resolve({**DEEP_BOTTLENECK_CONFIG, "calculate_mi_for": legacy})
    assert resolved["mi_splits"] == splits and "calculate_mi_for" not in ignored
    with pytest.raises(config.ConfigError, match="'calculate_mi_for' = 'validation'.*'full_dataset', 'training', 'test'"):
        config.resolve({"calculate_mi_for": "validation"})
    with pytest.raises(config.ConfigError, match="both 'mi_splits' and the legacy 'calculate_mi_for'"):
        config.resolve({"calculate_mi_for": legacy, "mi_splits": ["train"]})


def test_legacy_kde_estimator_takes_discretization_range_as_noise_variance():
    resolved, _ = config.resolve({"estimator": "mi_estimator.upper", "discretization_range": 0.001})
    assert resolved["estimators"] == [{"name": "kde_upper", "params": {"noise_variance": 0.001}}]


def test_early_stopping_callback_becomes_target_accuracy():
    resolved, ignored = config.resolve({"callbacks": [["callbacks.earlystopping_manual", {"target_acc": 0.9}]]})
    assert resolved["stop_at_accuracy"] == 0.9
    assert "callbacks" not in ignored


@pytest.mark.parametrize("callbacks", [5, [["callbacks.earlystopping_manual", 5]], [[3, {}]], "callbacks.x"])
def test_legacy_callbacks_of_another_shape_are_one_line(callbacks):
    # they were a TypeError traceback ('int' object is not iterable)
    with pytest.raises(config.ConfigError, match=r"config key 'callbacks' = .* must be a list of callback names"):
        config.resolve({"callbacks": callbacks})


@pytest.mark.parametrize("key", ["plotters", "description", "cohort", "name"])
def test_a_grid_over_a_key_that_changes_nothing_computed_is_refused(key):
    # {"grid": {"plotters": [1, 2]}} made two runs of one config hash: the same networks twice
    with pytest.raises(config.ConfigError, match=f"grid key '{key}' is not allowed: it names or documents a run"):
        config.plan({"epochs": 2, "grid": {key: ["a", "b"]}})


def test_an_estimator_listed_twice_is_refused():
    # its mi rows were written twice, the second copy as if another estimate
    with pytest.raises(config.ConfigError, match=r"estimator binning with params \{'bin_size': 0.07\} is listed twice"):
        config.resolve({"estimators": [{"name": "binning"}, {"name": "binning", "params": {"bin_size": 0.07}}]})
    resolved, _ = config.resolve({"estimators": [{"name": "binning"}, {"name": "binning", "params": {"bin_size": 0.1}}]})
    assert len(resolved["estimators"]) == 2


def test_overrides_are_typed():
    raw = config.apply_overrides({"epochs": 10}, ["architecture=[10,7,5]", "initial_bias=-0.5",
                                                  "activation_fn=relu", "log_schedule.every=5"])
    assert raw["architecture"] == [10, 7, 5] and raw["initial_bias"] == -0.5
    assert raw["activation_fn"] == "relu" and raw["log_schedule"] == {"every": 5}
    resolved, _ = config.resolve(raw)
    assert resolved["architecture"] == [10, 7, 5] and resolved["log_schedule"] == {"every": 5}


@pytest.mark.parametrize("raw, words", [
    ({"epochs": 0}, ["'epochs'", "0", "greater than or equal to 1"]),
    ({"learning_rate": 0}, ["'learning_rate'", "0", "greater than 0"]),
    ({"learning_rate": -1.0}, ["'learning_rate'", "-1", "greater than 0"]),
    ({"architecture": []}, ["'architecture'", "[]", "at least 1"]),
    ({"architecture": [10, 0, 5]}, ["'architecture.1' = 0 is not", "greater than or equal to 1"]),
    ({"activation_fn": "swish"}, ["'activation_fn'", "swish", "tanh", "relu"]),
    ({"optimizer": "adagrad"}, ["'optimizer'", "adagrad", "adam", "sgd", "rmsprop"]),
    ({"dataset": "cifar"}, ["'dataset'", "cifar", "harmonics", "mnist"]),
    ({"estimator": "mi_estimator.magic"}, ["estimator", "magic", "binning"]),
    ({"epochs": "many"}, ["'epochs'", "many"]),
    ({"batch_size": True}, ["'batch_size'", "True"]),
    ({"epochz": 5}, ["unknown config key 'epochz'", "epochs"]),
    ({"initial_bais": 0.2}, ["unknown config key 'initial_bais' (value 0.2): did you mean 'initial_bias'? allowed"]),
    ({"zzzz": 1}, ["unknown config key 'zzzz' (value 1); allowed keys: "]),
    # Beyond float32, which the networks compute in: 1e300 trained as infinity, recorded as 1e300.
    ({"initial_bias": -1e300}, ["'initial_bias' = -1e+300", "float32's range"]),
    ({"kernel_init_stddev": 1e39}, ["'kernel_init_stddev' = 1e+39", "float32's range"]),
    ({"max_norm_weights": 1e300}, ["'max_norm_weights'", "float32's range"]),
    ({"learning_rate": 1e300}, ["'learning_rate' = 1e+300", "float32's range"]),
    # Below float32's smallest normal number: 1e-320 trained as 0, recorded as 1e-320.
    ({"learning_rate": 1e-320}, ["'learning_rate' = 1e-320", "smallest normal", "would be 0"]),
    ({"initial_bias": -1e-39}, ["'initial_bias' = -1e-39", "smallest normal"]),
    # a 5,000-character value or key is cut, saying how long it was (an attacker's was printed whole)
    ({"activation_fn": "x" * 5000}, ["'activation_fn' = 'xxx", "… (5,002 characters) is not allowed"]),
    ({"zz" * 2500: 1}, ["unknown config key 'zzz", "… (5,002 characters) (value 1); allowed keys"]),
    ({"zzzz": "y" * 5000}, ["unknown config key 'zzzz' (value 'yyy", "… (5,002 characters)); allowed keys"]),
    ({"log_schedule": "x" * 5000}, ["'log_schedule' = 'xxx", "… (5,002 characters) is not allowed"]),
    ({"dataset_path": "p" * 5000}, ["dataset_path", "characters) is only allowed"]),
    ({"estimators": [{"name": "binning", "params": {"x" * 5000: 1}}]}, ["'estimators' = ", "characters)"]),
])
def test_bad_configs_name_key_value_and_what_is_allowed(raw, words):
    with pytest.raises(config.ConfigError) as error:
        config.resolve(raw)
    for word in words:
        assert word in str(error.value)
    assert len(str(error.value)) < 1500


@pytest.mark.parametrize("grid", [{"initial_bias": "z" * 5000}, {"k" * 5000: [1]}, {"initial_bias": ["w" * 5000] * 2}])
def test_a_grid_of_thousands_of_characters_is_cut_in_its_refusal(grid):
    # a reviewer's: the grid's refusals printed a 5,000-character key or value whole
    with pytest.raises(config.ConfigError) as error:
        config.plan({"grid": grid})
    assert "(5,002 characters)" in str(error.value) and len(str(error.value)) < 1500


def test_run_id_is_stable_and_ignores_seed_count_but_not_seed():
    a, _ = config.resolve({"initial_bias": 0.2})
    b, _ = config.resolve({"initial_bias": 0.2, "n_runs": 5})
    c, _ = config.resolve({"initial_bias": 0.5})
    assert config.run_id("x", a, 0) == config.run_id("x", b, 0)
    assert config.run_id("x", a, 0) != config.run_id("x", a, 1)
    assert config.group_id("x", a) != config.group_id("x", c)
    assert config.run_id("Initial bias!", a, 3).startswith("initial-bias-")
    assert config.slug("relu[initial_bias=-1]") == "relu-initial-bias-m1"
    assert config.slug("relu[initial_bias=1]") == "relu-initial-bias-1"


def test_grid_expands_every_combination_and_seeds():
    experiments = config.plan({"name": "g", "n_runs": 2, "seed": 5,
                               "grid": {"initial_bias": [0, 1], "activation_fn": ["relu", "tanh"]}})
    assert len(experiments) == 4
    assert {(e.config.initial_bias, e.config.activation_fn) for e in experiments} == {
        (0.0, "relu"), (0.0, "tanh"), (1.0, "relu"), (1.0, "tanh")}
    assert all(e.seeds == (5, 6) and e.cohort == "g" for e in experiments)
    # a cohort given is the grid's; null is none (an attacker's: it was the config's name)
    for cohort in ("c", None):
        grid = config.plan({"name": "g", "cohort": cohort, "grid": {"initial_bias": [0, 1]}})
        assert [e.cohort for e in grid] == [cohort, cohort]


def test_bad_grid_is_rejected():
    with pytest.raises(config.ConfigError, match="grid key 'bogus'"):
        config.plan({"grid": {"bogus": [1]}})
    with pytest.raises(config.ConfigError, match="non-empty list"):
        config.plan({"grid": {"epochs": 5}})


@pytest.mark.parametrize("key, values", [("seed", [0, 1]), ("n_runs", [1, 4])])
def test_a_grid_over_the_seeds_is_refused(key, values):
    # The seeds are each config's replicates. A grid over seed made groups of one seed each; with
    # n_runs 2, seed [1, 2] trained seed 2 in both groups, as n_runs [1, 4] trained seed 0 twice.
    with pytest.raises(config.ConfigError, match=f"grid key '{key}' is not allowed: .*set 'seed' and 'n_runs'"):
        config.plan({"n_runs": 2, "grid": {key: values, "initial_bias": [0, 1]}})


@pytest.mark.parametrize("values, shown", [([0, 0.5, 0.0], "0.0"), ([[10, 7], [10], [10, 7]], "[10, 7]"),
                                           (["relu", "tanh", "relu"], '"relu"')])
def test_a_grid_value_listed_twice_is_refused(values, shown):
    # 0 and 0.0 named two experiments ("[initial_bias=0]", "[initial_bias=0.0]") of one config:
    # the same networks trained twice, then counted twice in one seed group.
    key = {str: "activation_fn", list: "architecture"}.get(type(values[0]), "initial_bias")
    with pytest.raises(config.ConfigError, match=re.escape(f"grid key '{key}' lists the value {shown} twice")):
        config.plan({"grid": {key: values}})
    assert len(config.plan({"grid": {key: values[:2]}})) == 2


def test_cli_rejects_bad_config_with_status_2_and_writes_nothing(tmp_path, capsys):
    config_file = tmp_path / "bad.json"
    config_file.write_text(json.dumps({"epochs": 3}))
    results = tmp_path / "results"
    status = cli.main(["run", str(config_file), "--set", "learning_rate=-0.1", "--results", str(results)])
    assert status == 2
    err = capsys.readouterr().err
    assert "learning_rate" in err and "-0.1" in err and "Traceback" not in err
    assert not results.exists()


def test_cli_reports_missing_and_malformed_files(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path / "nope.json"), "--results", str(tmp_path)]) == 2
    (tmp_path / "broken.json").write_text("{not json")
    assert cli.main(["run", str(tmp_path / "broken.json"), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "not valid JSON" in err


# ---------------------------------------------------------------- edge cases: exit 2 and one line

def run_cli(tmp_path, capsys, config_path, *extra) -> str:
    """`trainer run`: exit 2, one line on stderr, nothing written; returns that line."""
    results = tmp_path / "results"
    assert cli.main(["run", str(config_path), "--results", str(results), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert not results.exists()
    return err


@pytest.mark.parametrize("text, words", [
    ('{"initial_bias": NaN}', ["not valid JSON", "NaN"]),
    ('{"learning_rate": Infinity}', ["not valid JSON", "Infinity"]),
    ('{"initial_bias": -Infinity}', ["not valid JSON", "-Infinity"]),
    ('{"initial_bias": 1e999}', ["not valid JSON", "1e999", "too large"]),
    ('{"initial_bias": 1e-400}', ["1e-400", "too small", "read as 0"]),    # an attacker's: trained as bias 0
    ('{"grid": {"initial_bias": [0, NaN]}}', ["not valid JSON", "NaN"]),
    ('{"name": 5}', ["'name' = 5", "non-empty string"]),
    ('{"name": ["a"]}', ["'name' = [\"a\"]", "non-empty string"]),
    ('{"cohort": {"a": 1}}', ["'cohort'", "non-empty string"]),
    ('{"seed": -1}', ["'seed' = -1", "greater than or equal to 0"]),
    ('{"seed": 4294967296}', ["'seed' = 4294967296", "less than or equal to 4294967295"]),
    ('{"seed": 4294967295, "n_runs": 2}', ["'seed' = 4294967295", "'n_runs' = 2", "at most 4294967295"]),
    ('{"split_seed": 4294967296}', ["'split_seed'", "less than or equal to 4294967295"]),
    # Beyond 64 bits anywhere (run.json records the config and refuses such integers), and epochs
    # or a schedule too long to plan (10**11 epochs stalled `trainer run` before its first epoch).
    ('{"split_seed": 99999999999999999999}', ["config file", "99999999999999999999", "64-bit range"]),
    ('{"epochs": 1000000000000000000000}', ["config file", "1000000000000000000000", "64-bit range"]),
    ('{"source": {"note": [1, -9223372036854775809]}}', ["-9223372036854775809", "64-bit range"]),
    ('{"epochs": 100000000000}', ["'epochs' = 100000000000", "less than or equal to 1000000"]),
    ('{"log_schedule": {"log_spaced": 100000000000}}', ["log_spaced must be an integer from 2 to 1000001"]),
    ('{"log_schedule": {"every": 1000001}}', ["every must be an integer from 1 to 1000000"]),
    ('{"discretization_range": -0.5}', ["'discretization_range' = -0.5", "legacy", "bin_size"]),
    ('{"estimator": "mi_estimator.upper", "discretization_range": "wide"}',
     ["'discretization_range' = 'wide'", "legacy", "noise_variance"]),
    ('{"estimator": "mi_estimator.magic", "discretization_range": 0.1}', ["'estimator'", "legacy", "magic"]),
    ('{"architecture": [100000, 100000]}', ["'architecture' = [100000, 100000]", "GiB of memory",
                                            "more than this machine's"]),
    pytest.param("[" * 100000, ["nests lists or objects too deeply"], id="deep-nesting"),
    ('{"epochs": 2, "initial_bias": 0, "epochs": 3}', ["config file", "the key 'epochs' twice"]),
    ('{"grid": {"initial_bias": [0], "initial_bias": [1]}}', ["the key 'initial_bias' twice"]),
])
def test_config_file_edge_cases_exit_2_with_one_line(tmp_path, capsys, text, words):
    path = tmp_path / "edge.json"
    path.write_text(text)
    err = run_cli(tmp_path, capsys, path)
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("override, words", [
    ("initial_bias=NaN", ["--set 'initial_bias=NaN'", "NaN and Infinity are refused"]),
    ("learning_rate=Infinity", ["Infinity"]),
    ("initial_bias=1e999", ["too large"]),
    ("initial_bias=1e-400", ["too small", "read as 0"]),
    ("initial_bias=nan", ["'initial_bias' = 'nan'"]),  # not JSON: a string, which is not a number
    ("seed=4294967296", ["'seed' = 4294967296"]),
    ("batch_size=1000000000000000000000", ["--set 'batch_size=1000000000000000000000'", "64-bit range"]),
    ('log_schedule={"every": 1000000000000000000000}', ["64-bit range"]),
    ("name=[1]", ["'name' = [1]"]),
    ("name=null", ["'name' = null", "non-empty string"]),     # an attacker's: AttributeError in slug
    ("grid=null", ["'grid' = null is not allowed"]),          # was "use 'trainer sweep'", said inside one
])
def test_overrides_edge_cases_exit_2_with_one_line(tmp_path, capsys, override, words):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps({"epochs": 2}))
    err = run_cli(tmp_path, capsys, path, "--set", override)
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("name", [None, 5, [1], ""])
def test_a_grid_config_whose_name_is_no_string_is_refused(name):
    # an attacker's: on a grid the name went into its runs' names as "None[initial_bias=0]", "5[...]"
    with pytest.raises(config.ConfigError, match="config key 'name' = .* is not allowed: must be a non-empty string"):
        config.plan({"name": name, "epochs": 1, "grid": {"initial_bias": [0, 1]}})


def test_config_paths_that_are_not_config_files(tmp_path, capsys):
    assert "is a folder, not a config file" in run_cli(tmp_path, capsys, tmp_path)
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"name": "caf\u00e9"}'.encode("latin-1"))
    assert "is not UTF-8 text" in run_cli(tmp_path, capsys, latin1)


def test_memory_estimate_counts_weights_activations_and_seeds():
    """Exact arithmetic of memory_estimate for a small net (figures computed by hand):
    widths 12-10-2: P = 12*10+10 + 10*2+2 = 152, U = 12; harmonics N = 4096, 3277 train rows; per weight
    7 float32 values (the two float64 gradient sums count as 4) and Adam's 2."""
    small, _ = config.validate({"architecture": [10], "batch_size": 256, "optimizer": "adam"})
    summaries = config.LOGGED_EPOCH_BYTES_PER_VALUE * 4096 * 10          # the widest layer: 10 units
    once = 16 * 4096 * 10 + config.TENSORFLOW_RUNTIME_BYTES + 2 * memory.COMPILE_BYTES_PER_LAYER   # 2 layers
    per_network = 4 * (9 * 152 + 2 * 4096 * 12 + 3 * 256 * 12) + summaries
    assert config.memory_estimate(small) == per_network + once
    three, _ = config.validate({"architecture": [10], "n_runs": 3, "optimizer": "sgd"})
    assert config.memory_estimate(three) == 3 * (4 * (7 * 152 + 2 * 4096 * 12 + 3 * 256 * 12) + summaries) + once


def test_the_estimate_matches_measured_peaks_and_refuses_the_issue_example():
    """Peak RSS of `trainer run data/configs/basic.json --set architecture=[W] --set epochs=1`,
    measured on this project's 2-core machine: 6.25, 11.73 and 22.6 GB."""
    for width, measured_gb in ((25_000, 6.25), (50_000, 11.73), (100_000, 22.6)):
        resolved, _ = config.validate({"architecture": [width]})
        assert config.memory_estimate(resolved) / 1e9 == pytest.approx(measured_gb, rel=0.05)
    huge, _ = config.validate({"architecture": [100_000]})
    if config.physical_memory() > config.memory_estimate(huge) / config.MEMORY_SHARE:
        pytest.skip("this machine has room for [100000]")
    with pytest.raises(config.ConfigError, match=r"\[100000\],.* needs about 2\d\.\d GiB"):
        config.check_memory(huge)
    assert config.memory_estimate(config.validate({"dataset": "file", "dataset_path": "x.csv"})[0]) is None
    # depth: 50 and 100 layers of two units peaked at 1.88 and 3.70 GB (compiling the step); 20,000 were
    # estimated at 1.45 GiB and reached 14.8 GB before they were stopped, still compiling
    # (40 MiB a layer, the slope between them and more, from the first layer on: at least the peak, within 2x)
    for layers, measured_gb in ((50, 1.88), (100, 3.70)):
        resolved, _ = config.validate({"architecture": [2] * layers})
        assert measured_gb <= config.memory_estimate(resolved) / 1e9 <= 2 * measured_gb
    deep, _ = config.validate({"architecture": [1] * 20_000})
    if config.physical_memory() <= config.memory_estimate(deep) / config.MEMORY_SHARE:
        with pytest.raises(config.ConfigError, match=r"about 40 MiB a layer to compile"):
            config.check_memory(deep)


def test_a_malformed_override_names_the_flag_it_came_from():
    # `trainer estimate --param bogus` once answered about `--set`, a flag it does not have.
    with pytest.raises(config.ConfigError) as error:
        config.parse_override("bogus", "--param", "bin_size=0.1")
    assert str(error.value) == "--param 'bogus': expected KEY=VALUE, e.g. --param bin_size=0.1"
    with pytest.raises(config.ConfigError, match=r"^--param 'k=NaN' is not valid JSON"):
        config.parse_override("k=NaN", "--param", "bin_size=0.1")


def test_a_config_file_name_that_is_not_utf8_is_refused_before_anything_is_written(tmp_path):
    # The run's name comes from the file's name: run.json could not be written, after the run's folder was
    import os
    path = tmp_path / os.fsdecode(b"bad\xffname.json")
    path.write_text('{"epochs": 2}')
    with pytest.raises(config.ConfigError, match="its name is not UTF-8.*give the config a 'name'"):
        config.load_file(path)
    path.write_text('{"epochs": 2, "name": "good"}')
    assert config.load_file(path)["name"] == "good"


@pytest.mark.parametrize("texts, given", [
    (["learning_rate=0.1", "learning_rate=0.2"], "'learning_rate' is already given by --set for 'learning_rate'"),
    (["log_schedule={\"every\": 5}", "log_schedule.every=7"], "'log_schedule.every' is already given by --set "
                                                              "for 'log_schedule'"),
])
def test_a_key_given_twice_is_refused_not_silently_the_last(texts, given):
    # `--set learning_rate=0.1 --set learning_rate=0.2` trained with 0.2 and said nothing.
    with pytest.raises(config.ConfigError) as error:
        config.apply_overrides({}, texts)
    assert given in str(error.value) and "give each key once" in str(error.value)
    assert config.parse_overrides(["k=2", "noise=0.1"], "--param") == [("k", 2), ("noise", 0.1)]


@pytest.mark.parametrize("dataset_path, words", [
    ("/etc/passwd", ["data file '/etc/passwd' has unsupported type", ".npz", ".csv"]),
    ("nowhere.csv", ["data file 'nowhere.csv' does not exist"]),
    ("/", ["data file '/' is not a regular file but a folder"]),     # was "does not exist"
    # became infinite in float32 and the run diverged at epoch 0
    ("big.csv", ["data file 'big.csv'", "float32's range", "column 'a' holds 1e+39 in data row 2"]),
])
def test_a_data_file_that_cannot_be_loaded_exits_2_with_nothing_written(tmp_path, capsys, monkeypatch, dataset_path,
                                                                        words):
    # It was found only when the training loop loaded it, after the runs were taken: exit 2,
    # but a `failed` run per seed was left in the results root.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "big.csv").write_text("a,label\n1,0\n1e39,1\n")
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"epochs": 2, "n_runs": 2, "dataset": "file", "dataset_path": dataset_path}))
    for workers in ("1", "2"):
        err = run_cli(tmp_path, capsys, path, "--workers", workers)
        for word in words:
            assert word in err, err
