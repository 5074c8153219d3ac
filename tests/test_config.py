"""Configs: defaults, deep-bottleneck compatibility, overrides, grids, errors."""

import json

import pytest

from trainer import cli, config

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


def test_legacy_kde_estimator_takes_discretization_range_as_noise_variance():
    resolved, _ = config.resolve({"estimator": "mi_estimator.upper", "discretization_range": 0.001})
    assert resolved["estimators"] == [{"name": "kde_upper", "params": {"noise_variance": 0.001}}]


def test_early_stopping_callback_becomes_target_accuracy():
    resolved, ignored = config.resolve({"callbacks": [["callbacks.earlystopping_manual", {"target_acc": 0.9}]]})
    assert resolved["stop_at_accuracy"] == 0.9
    assert "callbacks" not in ignored


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
    ({"activation_fn": "swish"}, ["'activation_fn'", "swish", "tanh", "relu"]),
    ({"optimizer": "adagrad"}, ["'optimizer'", "adagrad", "adam", "sgd", "rmsprop"]),
    ({"dataset": "cifar"}, ["'dataset'", "cifar", "harmonics", "mnist"]),
    ({"estimator": "mi_estimator.magic"}, ["estimator", "magic", "binning"]),
    ({"epochs": "many"}, ["'epochs'", "many"]),
    ({"batch_size": True}, ["'batch_size'", "True"]),
    ({"epochz": 5}, ["unknown config key 'epochz'", "epochs"]),
])
def test_bad_configs_name_key_value_and_what_is_allowed(raw, words):
    with pytest.raises(config.ConfigError) as error:
        config.resolve(raw)
    for word in words:
        assert word in str(error.value)


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
    assert {(e["config"]["initial_bias"], e["config"]["activation_fn"]) for e in experiments} == {
        (0.0, "relu"), (0.0, "tanh"), (1.0, "relu"), (1.0, "tanh")}
    assert all(e["seeds"] == [5, 6] and e["cohort"] == "g" for e in experiments)


def test_bad_grid_is_rejected():
    with pytest.raises(config.ConfigError, match="grid key 'bogus'"):
        config.plan({"grid": {"bogus": [1]}})
    with pytest.raises(config.ConfigError, match="non-empty list"):
        config.plan({"grid": {"epochs": 5}})


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
