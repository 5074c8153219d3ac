"""The config key `loss` (trainer.model.cross_entropy) against an independent numpy computation.

Keras' categorical_crossentropy (keras 2.3.1 / TensorFlow 1.8 as deep-bottleneck pins them; Keras 3's
keras/src/backend/tensorflow/nn.py when it is given probabilities): p = softmax(z), p / sum(p),
clip to [1e-7, 1 - 1e-7], -log p_y; tf.clip_by_value passes no gradient outside the interval.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from trainer import config
from trainer.model import MAX_SELECTED_CLASSES, cross_entropy, label_entry, softmax_over_classes

EPSILON = np.float32(1e-7)


def softmax64(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def keras_loss32(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The clipped loss in float32, written out: softmax, normalise, clip, log."""
    z = z.astype(np.float32)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    p = p / p.sum(axis=-1, keepdims=True)
    p_y = np.take_along_axis(p, y[..., None], axis=-1)[..., 0]
    return -np.log(np.clip(p_y, EPSILON, np.float32(1) - EPSILON))


def loss_and_gradient(loss: str, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cross_entropy of batch-major logits z [..., batch, classes] (given to it class-first), and its
    gradient, batch-major."""
    logits = tf.constant(np.swapaxes(z, -1, -2), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        per_example = cross_entropy(loss, logits, tf.constant(y, tf.int32))
    return per_example.numpy(), np.swapaxes(tape.gradient(per_example, logits).numpy(), -1, -2)


@pytest.fixture
def logits_and_labels() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two stacked networks x 8 examples x 3 classes; half the examples deep in the clipped zone
    (the label's probability above 1 - 1e-7 or below 1e-7), half well inside."""
    rng = np.random.default_rng(7)
    z = rng.normal(0, 1, (2, 8, 3))
    y = rng.integers(0, 3, (2, 8))
    clipped = np.zeros((2, 8), bool)
    clipped[:, ::2] = True
    for s, b in zip(*np.nonzero(clipped)):
        sign = 1.0 if (s + b) % 4 == 0 else -1.0                       # confidently right or confidently wrong
        z[s, b] = -sign * 10.0
        z[s, b, y[s, b]] = sign * 20.0
    return z, y, clipped


def test_the_clipped_loss_is_keras_loss(logits_and_labels):
    z, y, clipped = logits_and_labels
    value, _ = loss_and_gradient("keras_clipped", z, y)
    np.testing.assert_allclose(value, keras_loss32(z, y), rtol=1e-5, atol=1e-7)
    p_y = np.take_along_axis(softmax64(z), y[..., None], axis=-1)[..., 0]
    assert ((p_y > 1 - 1e-7) | (p_y < 1e-7))[clipped].all() and not ((p_y > 1 - 1e-7) | (p_y < 1e-7))[~clipped].any()
    # confidently right: the loss sits at its floor -log(1 - eps); confidently wrong: at its ceiling -log(eps)
    floor, ceiling = -np.log(np.float32(1) - EPSILON), -np.log(EPSILON)
    np.testing.assert_allclose(value[clipped], np.where(p_y[clipped] > 0.5, floor, ceiling), rtol=1e-5)


def test_the_clipped_loss_gives_exactly_zero_gradient_in_the_clipped_zone(logits_and_labels):
    z, y, clipped = logits_and_labels
    _, gradient = loss_and_gradient("keras_clipped", z, y)
    assert (gradient[clipped] == 0).all()
    # inside: d(-log p_y)/dz_j = p_j - [j == y] (the normalisation p / sum(p) adds 0 through softmax) ...
    expected = softmax64(z) - np.eye(3)[y]
    np.testing.assert_allclose(gradient[~clipped], expected[~clipped], atol=2e-6)
    # ... and by central finite differences of the float64 loss
    step = 1e-4
    for s, b in zip(*np.nonzero(~clipped)):
        for j in range(3):
            up, down = z[s, b].copy(), z[s, b].copy()
            up[j] += step
            down[j] -= step
            numeric = (-np.log(softmax64(up)[y[s, b]]) + np.log(softmax64(down)[y[s, b]])) / (2 * step)
            assert gradient[s, b, j] == pytest.approx(numeric, abs=1e-5)


def test_the_exact_loss_has_a_gradient_everywhere(logits_and_labels):
    z, y, clipped = logits_and_labels
    value, gradient = loss_and_gradient("exact", z, y)
    log_p = z - z.max(axis=-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(value, -np.take_along_axis(log_p, y[..., None], axis=-1)[..., 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gradient, softmax64(z) - np.eye(3)[y], atol=2e-6)
    # confidently wrong examples (label's probability ~e^-30) still pull: gradient ~1 on the label's logit
    wrong = clipped & (value > 1)
    assert wrong.any() and (np.abs(gradient[wrong]).max(axis=-1) > 0.99).all()


def tensorflow_cross_entropy(loss: str, logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """The loss from TensorFlow's own batch-major ops (logits [..., batch, classes]), as the trainer
    computed it before its class-first form: the truth for the bit-for-bit test below."""
    if loss == "exact":
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    p = tf.nn.softmax(logits)
    p = p / tf.reduce_sum(p, axis=-1, keepdims=True)
    p_y = tf.gather(p, labels, axis=-1, batch_dims=len(labels.shape))
    return -tf.math.log(tf.clip_by_value(p_y, EPSILON, 1.0 - EPSILON))


@pytest.mark.parametrize("n_classes", [2, 3, 10, MAX_SELECTED_CLASSES + 4])
def test_class_first_loss_softmax_and_argmax_equal_tensorflows_batch_major_ops_bit_for_bit(n_classes):
    """cross_entropy, softmax_over_classes and argmax over the class axis of class-first logits,
    compiled as training compiles them, against TensorFlow's batch-major ops: equal values and
    gradients, bit for bit, at every scale, with NaN, +inf and -inf logits and ties."""
    rng = np.random.default_rng(n_classes)
    z = np.concatenate([rng.normal(0, scale, (3, 61, n_classes)) for scale in (0.1, 3, 30, 300)], axis=1)
    z = z.astype(np.float32)
    z[0, 0, 0], z[0, 1, 1], z[0, 2, 0], z[0, 3, :], z[1, 4, :] = np.nan, np.inf, -np.inf, np.inf, 5.0
    y = rng.integers(0, n_classes, z.shape[:2]).astype(np.int32)
    upstream = rng.standard_normal(z.shape[:2]).astype(np.float32)

    def loss_gradient_softmax_argmax(loss, z, class_first):
        with tf.GradientTape() as tape:
            tape.watch(z)
            logits = tf.linalg.matrix_transpose(z) if class_first else z
            per_example = (cross_entropy if class_first else tensorflow_cross_entropy)(loss, logits, y)
            weighted = tf.reduce_sum(per_example * upstream)
        softmax = tf.linalg.matrix_transpose(softmax_over_classes(logits)) if class_first else tf.nn.softmax(z)
        argmax = tf.argmax(logits, axis=-2 if class_first else -1, output_type=tf.int32)
        return per_example, tape.gradient(weighted, z), softmax, argmax

    compiled = tf.function(loss_gradient_softmax_argmax, jit_compile=True, autograph=False)
    for loss in config.LOSSES:
        ours, truth = ([t.numpy() for t in compiled(loss, tf.constant(z), class_first)] for class_first in (True, False))
        assert np.isfinite(truth[0]).mean() > 0.9 and np.isnan(truth[0]).any()
        for value, expected in zip(ours, truth):
            np.testing.assert_array_equal(value, expected)


@pytest.mark.parametrize("n_classes", [2, 3, 10, MAX_SELECTED_CLASSES + 4])
def test_the_label_entry_is_the_gathered_one_bit_for_bit(n_classes):
    """label_entry (selects over the classes, a gather past MAX_SELECTED_CLASSES) of class-first p
    against the gather it replaces, compiled as training compiles it: equal values and gradients,
    a NaN off the label not leaking into the entry."""
    rng = np.random.default_rng(3)
    p = rng.random((3, 37, n_classes)).astype(np.float32)
    y = rng.integers(0, n_classes, (3, 37)).astype(np.int32)
    p[0, 0, (y[0, 0] + 1) % n_classes] = np.nan
    upstream = rng.standard_normal((3, 37)).astype(np.float32)

    def entry_and_gradient(pick, p, y):
        with tf.GradientTape() as tape:
            tape.watch(p)
            entry = pick(p, y)
            weighted = tf.reduce_sum(entry * upstream)
        return entry, tape.gradient(weighted, p)

    def class_first_entry(p, y):
        return label_entry(tf.linalg.matrix_transpose(p), y)

    def gathered(p, y):
        return tf.gather(p, y, axis=-1, batch_dims=2)

    compiled = tf.function(entry_and_gradient, jit_compile=True, autograph=False)
    picked = [t.numpy() for t in compiled(class_first_entry, tf.constant(p), tf.constant(y))]
    truth = [t.numpy() for t in compiled(gathered, tf.constant(p), tf.constant(y))]
    assert not np.isnan(picked[0]).any()
    np.testing.assert_array_equal(picked[0], np.take_along_axis(p, y[..., None], axis=-1)[..., 0])
    for value, expected in zip(picked, truth):
        np.testing.assert_array_equal(value, expected)


def test_the_loss_is_a_config_key_with_keras_as_default():
    (experiment,) = config.plan({"name": "x"})
    assert experiment.config.loss == "keras_clipped"
    (exact,) = config.plan({"name": "x", "loss": "exact"})
    assert exact.run_id(0) != experiment.run_id(0)
    with pytest.raises(config.ConfigError, match="'loss' = 'mse' is not allowed.*'keras_clipped' or 'exact'"):
        config.plan({"name": "x", "loss": "mse"})
