"""The minibatch gradients' sums and sums of squares that the `gradients` table's std and SNR come
from, on a saturated tanh network whose first kernel's gradients are far below float32's normal
range (about 1e-21 here): XLA on CPU flushes float32 denormals to 0, so summed in float32 their
squares read 0 and the std 0 (SNR NaN) while the mean was not; a sceptic found 89 of 90 epochs so
in a tanh seed of initial bias 5. Whatever the precision, sum_b g_b^2 >= (sum_b g_b)^2 / B for each
weight (Cauchy-Schwarz over the B minibatches), and each sum of squares is positive where a sum is."""

import numpy as np

from trainer import config
from trainer.compiled import CompiledSteps
from trainer.minibatch_orders import ChunkOrders
from trainer.model import NetworkSettings, StackedMLP
from trainer.optimizers import Optimizer
from trainer.training import load_data

EPOCHS = 2


def test_tiny_gradients_keep_their_squares():
    (experiment,) = config.plan({"architecture": [10, 7, 5, 4, 3], "batch_size": 256, "dataset": "harmonics",
                                 "activation_fn": "tanh", "epochs": EPOCHS})
    cfg = experiment.config
    data = load_data(cfg)
    networks = [NetworkSettings(seed=seed, initial_bias=5.0, kernel_init_stddev=None, max_norm=None,
                                learning_rate=4e-4, activation_fn="tanh") for seed in range(4)]
    model = StackedMLP(cfg, data.train.x.shape[1], data.n_classes, networks)
    optimizer = Optimizer(cfg.optimizer, [n.learning_rate for n in networks], model.trainable)
    steps = CompiledSteps(model, optimizer, data, cfg.batch_size, None, EPOCHS, cfg.loss)
    orders = ChunkOrders(EPOCHS, len(networks), steps.n_train, steps.padded).fill([n.seed for n in networks], 0, EPOCHS)
    chunk = steps.train(orders, np.ones(len(networks), bool))

    first_sum = chunk.grad_sum[0]
    assert np.abs(first_sum[first_sum != 0]).min() < 1e-19        # the case: squares below float32's smallest normal
    for grad_sum, grad_sq_sum in zip(chunk.grad_sum, chunk.grad_sq_sum):
        assert np.all(grad_sq_sum[grad_sum != 0] > 0)
        assert np.all(grad_sq_sum * steps.n_batches >= grad_sum.astype(np.float64) ** 2 * (1 - 1e-9))
