"""The dead_network and diverged flags (trainer.health), alone and as the trainer records them."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from trainer.health import NetworkHealth


def test_no_gradient_epoch_is_not_dead():
    health = NetworkHealth()
    health.observe_losses(0, 0.69, 0.69)
    health.observe_gradients(0, [0.0, 0.0], [0.0, 0.0])  # epoch 0: the initial network, not counted
    assert health.flags() == {"dead_network": False, "diverged": False}


def test_all_zero_gradients_at_every_logged_epoch_is_dead():
    health = NetworkHealth()
    for epoch in (1, 2, 5):
        health.observe_losses(epoch, 0.69, 0.69)
        health.observe_gradients(epoch, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert health.flags()["dead_network"] is True
    health.observe_gradients(6, [0.0, 0.0, 0.0], [0.0, 1e-30, 0.0])  # one minibatch moved one layer
    assert health.flags()["dead_network"] is False


def test_a_network_that_dies_while_training_is_dead():
    """Gradients at epochs 1-3, then exactly zero to the end: dead (from epoch 4)."""
    health = NetworkHealth()
    for epoch in range(1, 10):
        health.observe_losses(epoch, 0.69, 0.69)
        norm = 0.5 if epoch < 4 else 0.0
        health.observe_gradients(epoch, [norm, norm], [norm, 0.0])
    assert health.flags()["dead_network"] is True
    assert health.silent_since == 4


def test_zero_gradients_with_zero_loss_are_a_fitted_network_not_a_dead_one():
    health = NetworkHealth()
    health.observe_gradients(1, [0.3], [0.1])
    health.observe_losses(2, 0.0, 0.01)
    health.observe_gradients(2, [0.0], [0.0])
    assert health.flags()["dead_network"] is False


def test_non_finite_loss_is_diverged_and_nan_gradients_are_not_dead():
    health = NetworkHealth()
    health.observe_losses(1, 0.5, math.inf)
    health.observe_gradients(1, [math.nan], [math.nan])
    assert health.flags() == {"dead_network": False, "diverged": True}


# --- as the trainer records them ---------------------------------------------------------------------------


def train(tmp_path, **config) -> dict:
    """One tiny harmonics run (3 epochs, every epoch logged); its run.json."""
    from trainer import config as config_module
    from trainer.training import run_experiment

    raw = {"name": "health", "architecture": [10, 7, 5], "epochs": 3, "log_schedule": {"every": 1},
           "estimators": [{"name": "binning", "params": {"bin_size": 0.07}}], **config}
    (run_id, _), = run_experiment(config_module.plan(raw)[0], tmp_path, progress=False).items()
    return json.loads((tmp_path / "runs" / run_id / "run.json").read_text())


@pytest.mark.slow
def test_relu_with_negative_initial_bias_is_flagged_dead(tmp_path):
    # bias -1: every unit of some hidden layer is 0 on every input, so every kernel gradient is exactly 0.
    # The same network with bias 0 trains and is not flagged (test_estimators' training run checks that).
    record = train(tmp_path, activation_fn="relu", initial_bias=-1.0)
    assert record["status"] == "completed"
    assert record["dead_network"] is True
    assert record["diverged"] is False


@pytest.mark.slow
def test_huge_learning_rate_is_flagged_diverged(tmp_path):
    record = train(tmp_path, activation_fn="relu", optimizer="sgd", learning_rate=1e20)
    assert record["status"] == "diverged"
    assert record["diverged"] is True
    assert record["dead_network"] is False


@pytest.mark.slow
def test_a_relu_network_that_dies_after_a_few_epochs_is_flagged_dead(tmp_path):
    # docs/reproductions.md: relu, initial bias -0.2, seed 1 trains for three epochs, then every
    # kernel gradient is exactly zero and it stays at chance.
    record = train(tmp_path, activation_fn="relu", initial_bias=-0.2, seed=1, architecture=[10, 7, 5, 4, 3],
                   epochs=8)
    gradients = pd.concat(pd.read_parquet(p) for p in (tmp_path / "runs" / record["run_id"]).glob("gradients*.parquet"))
    by_epoch = gradients.groupby("epoch")[["grad_mean_norm", "grad_std_norm"]].max().max(axis=1)
    assert by_epoch.loc[1] > 0 and by_epoch.loc[8] == 0     # it learned, then died
    assert record["dead_network"] is True
