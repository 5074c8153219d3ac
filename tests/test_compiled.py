"""The compiled chunk's flat parameters (trainer.compiled): the optimizer updates the stack's
parameters as one [N, P] tensor, which must give exactly the update of each parameter apart.
The chunk end to end: tests/test_stack_independence.py, tests/test_stacked_equal.py."""

import numpy as np
import pytest

from trainer.compiled import batch_last_minibatch, flattened, unflattened
from trainer.optimizers import OPTIMIZERS, Optimizer
from trainer.tensorflow_without_keras import tf

SHAPES = [(3, 12, 10), (3, 10), (3, 10, 7), (3, 7), (3, 7, 2), (3, 2)]


def random_parameters(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]


def test_a_minibatch_gathered_batch_last_is_the_rows_gathered_and_transposed():
    """batch_last_minibatch's single-number gather against numpy's rows, transposed."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((50, 12)).astype(np.float32)
    index = rng.integers(0, 50, size=(3, 16)).astype(np.int32)
    gathered = batch_last_minibatch(tf.constant(x.T.reshape(-1)), 50, tf.constant(index))
    np.testing.assert_array_equal(gathered.numpy(), np.swapaxes(x[index], 1, 2))


def test_unflattened_undoes_flattened():
    parameters = random_parameters(np.random.default_rng(1))
    flat = flattened([tf.constant(p) for p in parameters])
    assert flat.shape == (3, sum(int(np.prod(shape[1:])) for shape in SHAPES))
    np.testing.assert_array_equal(flat.numpy()[1], np.concatenate([p[1].ravel() for p in parameters]))
    for piece, parameter in zip(unflattened(flat, SHAPES), parameters):
        np.testing.assert_array_equal(piece.numpy(), parameter)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_an_update_of_the_flat_parameters_is_each_parameters_update_bit_for_bit(name):
    """Three compiled steps of the optimizer (a learning rate per network) on the parameter list
    and on its flattened form, slots included. RMSprop's slots are equal, its parameters only at
    rounding level: p - g * lr / sqrt(ms + eps) comes out a unit in the last place apart in a few
    elements (seen after one step; presumably XLA fuses and contracts the subtraction differently
    in the flat tensor's fusion; not pinned down). Elementwise either way: a network's update does
    not depend on its stack."""
    rng = np.random.default_rng(2)
    parameters = random_parameters(rng)
    gradients = [[rng.standard_normal(shape).astype(np.float32) for shape in SHAPES] for _ in range(3)]
    optimizer = Optimizer(name, [1e-3, 1e-2, 0.1], [tf.Variable(p) for p in parameters])

    def by_parameter(parameters, slots, gradients):
        for step, step_gradients in enumerate(gradients, start=1):
            parameters, slots = optimizer.update(parameters, slots, step_gradients, tf.constant(step, tf.int64))
        return parameters, slots

    def flat(parameters, slots, gradients):
        flat_parameters, flat_slots = [flattened(parameters)], [[flattened(slot)] for slot in slots]
        for step, step_gradients in enumerate(gradients, start=1):
            flat_parameters, flat_slots = optimizer.update(flat_parameters, flat_slots, [flattened(step_gradients)],
                                                           tf.constant(step, tf.int64))
        return unflattened(flat_parameters[0], SHAPES), [unflattened(slot, SHAPES) for (slot,) in flat_slots]

    slots = [[tf.constant(rng.random(shape).astype(np.float32)) for shape in SHAPES] for _ in optimizer.slots]
    arguments = ([tf.constant(p) for p in parameters], slots, [[tf.constant(g) for g in step] for step in gradients])
    expected = tf.function(by_parameter, jit_compile=True, autograph=False)(*arguments)
    actual = tf.function(flat, jit_compile=True, autograph=False)(*arguments)
    for actual_tensor, expected_tensor in zip(tf.nest.flatten(actual), tf.nest.flatten(expected), strict=True):
        if name == "rmsprop":
            np.testing.assert_allclose(actual_tensor.numpy(), expected_tensor.numpy(), rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(actual_tensor.numpy(), expected_tensor.numpy())
