"""The batch-last stacked dense layer and the forward pass built on it, against numpy ports in
float64, and a network's rows of a compiled stack against the network compiled alone."""

import numpy as np
import pytest

from trainer import config
from trainer.model import MAX_SUMMED_UNITS, NetworkSettings, StackedMLP, stacked_dense
from trainer.tensorflow_without_keras import tf

RNG = np.random.default_rng(7)


def compiled(function):
    return tf.function(function, jit_compile=True, autograph=False)


def test_stacked_dense_is_each_networks_matrix_product():
    """out[s, o, b] = sum_i kernel[s, i, o] h[s, i, b]: h[s].T @ kernel[s] per network, transposed."""
    kernel = RNG.standard_normal((4, 12, 10)).astype(np.float32)
    h = RNG.standard_normal((4, 12, 256)).astype(np.float32)
    shared = RNG.standard_normal((12, 256)).astype(np.float32)
    out = compiled(stacked_dense)(tf.constant(h), tf.constant(kernel)).numpy()
    out_shared = compiled(stacked_dense)(tf.constant(shared), tf.constant(kernel)).numpy()
    for s in range(4):
        truth = (h[s].astype(np.float64).T @ kernel[s].astype(np.float64)).T
        truth_shared = (shared.astype(np.float64).T @ kernel[s].astype(np.float64)).T
        np.testing.assert_allclose(out[s], truth, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out_shared[s], truth_shared, rtol=1e-5, atol=1e-5)


def value_and_gradients(h, kernel, upstream):
    """stacked_dense(h, kernel) and the gradients of sum(out * upstream) with respect to h and kernel."""
    with tf.GradientTape() as tape:
        tape.watch([h, kernel])
        out = stacked_dense(h, kernel)
        loss = tf.reduce_sum(out * upstream)
    return [out, *tape.gradient(loss, [h, kernel])]


@pytest.mark.parametrize("n_inputs, units", [(12, 10), (10, 7), (3, 2), (5, 4), (12, MAX_SUMMED_UNITS + 8)])
def test_stacked_dense_gradients_are_each_networks_matrix_products(n_inputs, units):
    """The gradients of the custom gradient (dh summed unit by unit, or a product past
    MAX_SUMMED_UNITS units; dkernel a product) against float64 products: dh[s] = kernel[s] @ upstream[s],
    dkernel[s] = h[s] @ upstream[s].T."""
    kernel = RNG.standard_normal((5, n_inputs, units)).astype(np.float32)
    h = RNG.standard_normal((5, n_inputs, 256)).astype(np.float32)
    upstream = RNG.standard_normal((5, units, 256)).astype(np.float32)
    out, dh, dkernel = (t.numpy() for t in compiled(value_and_gradients)(*map(tf.constant, (h, kernel, upstream))))
    for s in range(5):
        k, x, g = (a[s].astype(np.float64) for a in (kernel, h, upstream))
        np.testing.assert_allclose(out[s], k.T @ x, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dh[s], k @ g, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dkernel[s], x @ g.T, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("n_inputs, batch", [(12, 256), (3, 256), (7, 37), (5, 37)])
def test_a_network_of_a_compiled_stack_equals_it_compiled_alone_bit_for_bit(n_inputs, batch):
    """Forward and both gradients: what stacked training rests on (tests/test_stacked_equal.py end
    to end); a batch of 37 leaves a remainder after any vector width; 3 to 12 inputs to 7 units,
    each product (kernel gradient) as YNNPACK takes it (trainer.xla_flags)."""
    kernel = RNG.standard_normal((45, n_inputs, 7)).astype(np.float32)
    h = RNG.standard_normal((45, n_inputs, batch)).astype(np.float32)
    upstream = RNG.standard_normal((45, 7, batch)).astype(np.float32)

    stack = [t.numpy() for t in compiled(value_and_gradients)(*map(tf.constant, (h, kernel, upstream)))]
    alone = compiled(value_and_gradients)
    for s in (0, 17, 44):
        one = [t.numpy() for t in alone(*(tf.constant(a[s:s + 1]) for a in (h, kernel, upstream)))]
        for stacked_value, value in zip(stack, one):
            np.testing.assert_array_equal(stacked_value[s:s + 1], value)


# Each activation in float64, from its definition (Keras 3's defaults), to check the stacked forward pass.
NUMPY_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0), "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)), "linear": lambda x: x,
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x), "softsign": lambda x: x / (1 + np.abs(x)),
}


def numpy_forward(model: StackedMLP, x: np.ndarray, network: int, batchnorm_rows: np.ndarray | None):
    """Every layer's activations [batch, units] of one network, in float64: hidden layers through
    the network's own activation (NUMPY_ACTIVATIONS), softmax output; batch norm (when the model has it) over the rows where batchnorm_rows is 1
    (training), or with the moving statistics (None: evaluation)."""
    h, outputs = x.astype(np.float64), []
    for layer in model.layers:
        pre = h @ layer.kernel.numpy()[network] + layer.bias.numpy()[network]
        if layer.gamma is not None:
            if batchnorm_rows is None:
                mean, var = layer.moving_mean.numpy()[network], layer.moving_var.numpy()[network]
            else:
                real = pre[batchnorm_rows == 1]
                mean, var = real.mean(axis=0), real.var(axis=0)
            pre = (pre - mean) / np.sqrt(var + 1e-3) * layer.gamma.numpy()[network] + layer.beta.numpy()[network]
        if layer.name == "output":
            e = np.exp(pre - pre.max(axis=1, keepdims=True))
            h = e / e.sum(axis=1, keepdims=True)
        else:
            h = NUMPY_ACTIVATIONS[layer.activations[network]](pre)
        outputs.append(h)
    return outputs, pre


@pytest.mark.parametrize("model_name, shared, training",
                         [("feedforward", True, False), ("feedforward", False, True),
                          ("feedforward_batchnorm", False, True), ("feedforward_batchnorm", True, False)])
def test_forward_returns_batch_major_activations_and_class_first_logits_equal_to_a_numpy_port(model_name, shared, training):
    (experiment,) = config.plan({"epochs": 1, "architecture": [10, 7, 5], "activation_fn": "relu",
                                 "model": model_name, "initial_bias": 0.1})
    networks = [NetworkSettings.of(experiment.config, seed) for seed in range(3)]
    model = StackedMLP(experiment.config, 12, 2, networks)
    for layer in model.layers:
        if layer.gamma is not None:      # not the identity, so a transposed statistic would show
            layer.gamma.assign(RNG.uniform(0.5, 2, layer.gamma.shape).astype(np.float32))
            layer.moving_mean.assign(RNG.standard_normal(layer.moving_mean.shape).astype(np.float32))
    x = RNG.standard_normal((40, 12) if shared else (3, 40, 12)).astype(np.float32)
    given = x if shared else np.swapaxes(x, 1, 2)       # a stack's own minibatches go in batch-last
    rows = np.r_[np.ones(33), np.zeros(7)].astype(np.float32) if training else None
    weights, moving = model.read()
    outputs, logits, _ = compiled(lambda x: model.forward(weights, moving, x, None if rows is None
                                                          else tf.constant(rows)))(tf.constant(given))
    for network in range(3):
        truth, truth_logits = numpy_forward(model, x if shared else x[network], network, rows)
        np.testing.assert_allclose(logits.numpy()[network].T, truth_logits, rtol=1e-4, atol=1e-5)   # class-first
        for value, expected in zip(outputs, truth):
            assert value.shape[1:] == expected.shape
            np.testing.assert_allclose(value.numpy()[network], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activations", [("relu", "tanh", "sigmoid", "elu", "linear", "leaky_relu", "softsign"),
                                         ("tanh", "relu", "relu", "tanh", "sigmoid")])
def test_a_stack_of_mixed_activations_applies_each_networks_own(activations):
    """Unsorted and repeated activations too: every network through its own, whatever its neighbours'."""
    (experiment,) = config.plan({"epochs": 1, "architecture": [10, 7, 5], "initial_bias": 0.1})
    networks = [NetworkSettings.of(experiment.config.model_copy(update={"activation_fn": fn}), seed)
                for seed, fn in enumerate(activations)]
    model = StackedMLP(experiment.config, 12, 2, networks)
    x = RNG.standard_normal((40, 12)).astype(np.float32)
    weights, moving = model.read()
    outputs, logits, _ = compiled(lambda x: model.forward(weights, moving, x))(tf.constant(x))
    for network, fn in enumerate(activations):
        assert model.layers[0].activations[network] == fn and model.layers[-1].activations[network] == "softmax"
        truth, truth_logits = numpy_forward(model, x, network, None)
        np.testing.assert_allclose(logits.numpy()[network].T, truth_logits, rtol=1e-4, atol=1e-5)   # class-first
        for value, expected in zip(outputs, truth):
            np.testing.assert_allclose(value.numpy()[network], expected, rtol=1e-4, atol=1e-5)
