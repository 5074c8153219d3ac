"""A feedforward network whose weights carry a leading network axis.

N independent networks of the same shape train as one computation: every
kernel is [N, fan_in, units], every bias [N, units], and the loss is the sum of
the networks' losses, so each network's gradient is exactly its own. The
networks may be the seeds of one experiment or several experiments of the same
shape: what may differ between them (seed, initial bias, kernel init stddev,
max-norm, learning rate, hidden activation) is a `NetworkSettings` each. N = 1 is a single run.

Layers follow deep-bottleneck's `models.feedforward`: Dense layers with a
truncated-normal kernel (stddev 1/sqrt(units)), a constant initial bias, an
optional max-norm constraint on each hidden unit's incoming weights (the
output layer is not constrained, as in deep-bottleneck), optionally batch
normalisation before the activation, and a softmax output layer with one unit
per class. The output layer's kernel is truncated-normal too, where
deep-bottleneck's (and ibsgd's) has Keras' default glorot_uniform: the
reproduction configs' `source` says so.

The forward pass and the constraint are pure functions of weight tensors, so
the training loop can carry the weights through a graph loop and write the
variables once at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.activation_facts import Activations, blocks
from trainer.config.schema import ExperimentConfig
from trainer.tensorflow_without_keras import tf

BATCHNORM_MOMENTUM = 0.99
BATCHNORM_EPSILON = 1e-3
MAX_NORM_EPSILON = 1e-7         # keras.constraints.MaxNorm's backend.epsilon()
KERAS_EPSILON = 1e-7            # keras.backend.epsilon(): categorical_crossentropy's clip


# Keras 3's activations (keras.activations.get(name)) as the TensorFlow ops its TensorFlow backend
# calls with their default arguments (keras/src/activations/activations.py, keras/src/backend/
# tensorflow/nn.py), written here so the trainer never imports Keras; the same ops give the same
# values and gradients, bit for bit (tests/test_model_without_keras.py).
ACTIVATIONS = {
    "tanh": tf.math.tanh,
    "relu": tf.nn.relu,
    "sigmoid": tf.nn.sigmoid,
    "softsign": tf.nn.softsign,
    "softplus": tf.math.softplus,
    "leaky_relu": lambda x: tf.nn.leaky_relu(x, alpha=0.2),          # Keras' negative_slope default
    "hard_sigmoid": lambda x: tf.nn.relu6(x + tf.constant(3.0, x.dtype)) / tf.constant(6.0, x.dtype),
    "selu": tf.nn.selu,
    "relu6": tf.nn.relu6,
    "elu": tf.nn.elu,                                                 # Keras' alpha default 1
    "linear": lambda x: x,
}
# keras.random.truncated_normal's seed: [seed, 0] as int64, then floormod (2**31 - 2) to int32
# (keras/src/random/seed_generator.py draw_seed, keras/src/backend/tensorflow/random.py _cast_seed).
KERAS_SEED_MODULUS = 2**31 - 2


def activation(name: str):
    """The activation function of that name, as Keras computes it (`linear` is the identity)."""
    return ACTIVATIONS[name]


def per_network_activation(activations: Activations, pre: tf.Tensor) -> tf.Tensor:
    """Each network's slice of `pre` [N, ...] through its own activation: each run of consecutive
    networks sharing one goes through it as one block, and the blocks are concatenated in stack
    order (one op when all share one). The activations are elementwise, so a network's values and
    gradients are those of its block alone (tests/test_stack_independence.py); a stack ordered by
    activation (trainer.plan) has one block per activation."""
    parts = blocks(activations, pre.shape[0])
    if len(parts) == 1:
        return activation(parts[0][0])(pre)
    # tf.split, not slicing: its gradient is one concatenation, where each slice's would be padded
    # back to the whole stack and the padded tensors added.
    pieces = tf.split(pre, [networks.stop - networks.start for _, networks in parts], axis=0)
    return tf.concat([activation(name)(piece) for (name, _), piece in zip(parts, pieces)], axis=0)


def truncated_normal(shape: tuple[int, int], stddev: float, seed: int) -> np.ndarray:
    """`keras.initializers.TruncatedNormal(stddev=stddev, seed=seed)(shape)` (float32, mean 0):
    TensorFlow's stateless truncated normal under Keras' seed mapping."""
    return tf.random.stateless_truncated_normal(shape, mean=0.0, stddev=stddev, dtype=tf.float32,
                                                seed=[seed % KERAS_SEED_MODULUS, 0]).numpy()


def cross_entropy(loss: str, logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Per-example cross-entropy in nats of integer `labels` [..., batch] under `logits` [..., classes,
    batch] (class-first, as the layers compute them: see below), for the config key `loss`
    (trainer.config.LOSSES).

    "exact": -log softmax(z)_y, computed from the logits (tf.nn.sparse_softmax_cross_entropy_with_logits,
    on the logits transposed to batch-major).
    "keras_clipped": Keras' categorical_crossentropy on the softmax output p, as deep-bottleneck
    (keras 2.3.1 on TensorFlow 1.8) and ibsgd ran it: p / sum(p), clipped to [epsilon, 1 - epsilon]
    with epsilon = 1e-7 (tf.clip_by_value: zero gradient where the value is outside), then
    -log of the label's entry. An example whose softmax gives its label more than 1 - 1e-7 (float32:
    0.99999988) or less than 1e-7 contributes no gradient. (Keras 3, and tf.keras since TF 1.14, take
    the logits of a softmax layer instead when the graph shows one: no clip.)

    Class-first because the classes are few (2 for the harmonics data) and the batch long: a reduction
    over a minor axis of 2 is a slow loop in XLA's CPU backend, one over a middle axis an elementwise
    loop along the batch; the clipped loss, written so, made the compiled chunk cheaper (bench/bench_step.py;
    bench/RESULTS.md, issue 18 stop 33). Its values and gradients are those of the batch-major
    TensorFlow ops, bit for bit (tests/test_loss.py), and so is every number a run stores. The exact
    loss stays TensorFlow's fused op: written out class-first, its values and gradients alone were
    equal, but trained networks differed from the batch-major op's at rounding level.
    """
    if loss == "exact":
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.linalg.matrix_transpose(logits))
    p = softmax_over_classes(logits)
    p = p / tf.reduce_sum(p, axis=-2, keepdims=True)
    return -tf.math.log(tf.clip_by_value(label_entry(p, labels), KERAS_EPSILON, 1.0 - KERAS_EPSILON))


@tf.custom_gradient
def softmax_over_classes(logits: tf.Tensor):
    """tf.nn.softmax over axis -2 of [..., classes, batch], written as XLA writes TensorFlow's
    Softmax (tensorflow/compiler/tf2xla/kernels/softmax_op.cc: exp(z - max z) / sum exp(z - max z)),
    with the gradient TensorFlow registers for it (tensorflow/python/ops/nn_grad.py, _SoftmaxGrad:
    (g - sum(g * p)) * p). tf.nn.softmax on another axis than the last transposes there and back."""
    shifted = logits - tf.reduce_max(logits, axis=-2, keepdims=True)
    exp_shifted = tf.exp(shifted)
    p = exp_shifted / tf.reduce_sum(exp_shifted, axis=-2, keepdims=True)

    def gradient(upstream):
        return (upstream - tf.reduce_sum(upstream * p, axis=-2, keepdims=True)) * p
    return p, gradient


# The most classes whose label entry is picked by selects (see label_entry).
MAX_SELECTED_CLASSES = 16


def label_entry(p: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """p[..., labels[..., b], b] from class-first p [..., classes, batch] and integer labels [..., batch].

    With few classes, a chain of selects over the classes (the value of a gather, exactly, and its
    gradient the upstream at the label's entry and 0 elsewhere): XLA's CPU gather computes an
    index per element and its gradient is a scatter; the selects fuse into the elementwise loop
    around them (issue 18, branch step3: the evaluation's gather was a measurable share of the chunk,
    bench/RESULTS.md, issue 18 stop 29)."""
    n_classes = p.shape[-2]
    if n_classes > MAX_SELECTED_CLASSES:
        return tf.gather(tf.linalg.matrix_transpose(p), labels, axis=-1, batch_dims=len(labels.shape))
    entry = p[..., 0, :]
    for label in range(1, n_classes):
        entry = tf.where(tf.equal(labels, label), p[..., label, :], entry)
    return entry


def stacked_dense(h: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """Every network's dense layer, batch-last: out[s, o, b] = sum_i kernel[s, i, o] h[s, i, b], from
    kernel [N, fan_in, units] and h [N, fan_in, batch] (or [fan_in, batch], shared by all networks).

    Batch-last because the layers are narrow (2 to 12 units) and the batch wide (256): XLA's CPU
    backend runs the batched product with the batch as the long output dimension several times
    faster than batch-major "sbi,sio->sbo", forward and backward (bench/bench_step.py,
    bench/bench_dense_layouts.py; bench/RESULTS.md)."""
    if len(h.shape) == 2:
        return tf.einsum("sio,ib->sob", kernel, h)      # the evaluation's shared inputs: no gradient taken
    return _stacked_dense_per_network(h, kernel)


# The widest layer whose input gradient is added term by term (see _stacked_dense_per_network).
MAX_SUMMED_UNITS = 32


@tf.custom_gradient
def _stacked_dense_per_network(h: tf.Tensor, kernel: tf.Tensor):
    """`stacked_dense` of per-network inputs, with the gradient with respect to h written as a sum
    of products, not a product: dh[s, i, b] = sum_o kernel[s, i, o] upstream[s, o, b].

    A batched product runs as one Eigen call per network (45 tiny ones per layer in a stack of 45);
    the sum over o (12 terms at most in the shipped networks) is one elementwise loop over the whole stack, fused with the
    activation's gradient, and made the minibatch step cheaper (bench/bench_dense_layouts.py,
    "batch-last, dh summed"; bench/RESULTS.md). Written the same way, the forward product and the
    kernel gradient (a sum over the batch, as a multiply and reduce) made the step slower, so both
    stay products. The kernel gradient is the product TensorFlow's einsum gradient gives
    (tensorflow/python/ops/linalg_grad.py, _EinsumGrad), which YNNPACK takes (trainer.xla_flags),
    written with h first: with upstream first, XLA multiplied h by upstream in a batched stack but
    upstream by h in a stack of one (no network axis), and YNNPACK's sums of the two differed at
    rounding level at batch 1024 (issue 18, branch ynn; tests/test_stack_independence.py). A small
    layer's kernel gradient was a multiply and reduce over the batch while products were Eigen's
    (up to 40 weights); with YNNPACK's the product is cheaper for every layer (bench/bench_step.py;
    bench/RESULTS.md, issue 18 stop 31)."""
    def gradient(upstream):
        units = kernel.shape[2]
        # A wide layer's sum would be hundreds of ops to trace and compile (MNIST's 1024 units):
        # it keeps the product, whose Eigen call per network is then not the cost that matters.
        dh = summed_over_units(kernel, upstream) if units <= MAX_SUMMED_UNITS else \
            tf.einsum("sio,sob->sib", kernel, upstream)
        return dh, tf.einsum("sib,sob->sio", h, upstream)
    return tf.einsum("sio,sib->sob", kernel, h), gradient


def summed_over_units(kernel: tf.Tensor, upstream: tf.Tensor) -> tf.Tensor:
    """dh[s, i, b] = sum_o kernel[s, i, o] upstream[s, o, b], from kernel [N, fan_in, units] and
    upstream [N, units, batch], added term by term in the order o = 0, 1, ..., units - 1:
    elementwise operations only, which XLA fuses into one loop, so each element's sum is computed
    the same way whatever the number of networks."""
    total = kernel[:, :, 0, None] * upstream[:, 0, None, :]
    for o in range(1, kernel.shape[2]):
        total = total + kernel[:, :, o, None] * upstream[:, o, None, :]
    return total


@dataclass(frozen=True)
class NetworkSettings:
    """The hyperparameters one network of a stacked computation may have of its own."""

    seed: int
    initial_bias: float
    kernel_init_stddev: float | None    # None: 1/sqrt(units)
    max_norm: float | None              # None: unconstrained
    learning_rate: float
    activation_fn: str                  # of the hidden layers (trainer.model.ACTIVATIONS)

    @classmethod
    def of(cls, config: ExperimentConfig, seed: int) -> NetworkSettings:
        return cls(seed=seed, initial_bias=config.initial_bias, kernel_init_stddev=config.kernel_init_stddev,
                   max_norm=config.max_norm_weights or None, learning_rate=config.learning_rate,
                   activation_fn=config.activation_fn)


@dataclass
class Layer:
    name: str
    kernel: tf.Variable            # [N, fan_in, units]
    bias: tf.Variable              # [N, units]
    activations: tuple[str, ...]   # each network's ("softmax" for every network of the output layer)
    gamma: tf.Variable | None = None   # batch-norm scale [N, units]
    beta: tf.Variable | None = None
    moving_mean: tf.Variable | None = None
    moving_var: tf.Variable | None = None


class StackedMLP:
    """Weights and forward pass of N independent networks of the same shape."""

    def __init__(self, config: ExperimentConfig, n_inputs: int, n_classes: int, networks: list[NetworkSettings]):
        units = [*config.architecture, n_classes]
        fan_ins = [n_inputs, *config.architecture]
        batchnorm = config.model == "feedforward_batchnorm"
        self.max_norm = tf.constant([n.max_norm or 0.0 for n in networks], tf.float32)       # [N]
        self.has_max_norm = tf.constant([n.max_norm is not None for n in networks])           # [N]
        self.any_max_norm = any(n.max_norm is not None for n in networks)
        self.layers: list[Layer] = []
        for index, (fan_in, n_units) in enumerate(zip(fan_ins, units)):
            is_output = index == len(units) - 1
            kernel = np.stack([truncated_normal((fan_in, n_units), n.kernel_init_stddev or 1.0 / np.sqrt(n_units),
                                                n.seed * 1000 + index) for n in networks])
            bias = np.stack([np.full(n_units, 0.0 if is_output else n.initial_bias, np.float32) for n in networks])
            layer = Layer(
                name="output" if is_output else f"dense_{index}",
                kernel=tf.Variable(kernel, name=f"kernel_{index}"),
                bias=tf.Variable(bias, name=f"bias_{index}"),
                activations=tuple("softmax" if is_output else n.activation_fn for n in networks),
            )
            if batchnorm and not is_output:
                shape = (len(networks), n_units)
                layer.gamma = tf.Variable(np.ones(shape, np.float32), name=f"gamma_{index}")
                layer.beta = tf.Variable(np.zeros(shape, np.float32), name=f"beta_{index}")
                layer.moving_mean = tf.Variable(np.zeros(shape, np.float32), trainable=False,
                                                name=f"moving_mean_{index}")
                layer.moving_var = tf.Variable(np.ones(shape, np.float32), trainable=False,
                                               name=f"moving_var_{index}")
            self.layers.append(layer)

    @property
    def trainable(self) -> list[tf.Variable]:
        variables = []
        for layer in self.layers:
            variables += [layer.kernel, layer.bias]
            if layer.gamma is not None:
                variables += [layer.gamma, layer.beta]
        return variables

    @property
    def moving(self) -> list[tf.Variable]:
        """Batch-norm moving means and variances (empty without batch norm)."""
        return [v for layer in self.layers for v in (layer.moving_mean, layer.moving_var) if v is not None]

    @property
    def kernel_positions(self) -> list[int]:
        """Index of each layer's kernel in `trainable` (for per-layer gradient statistics)."""
        ids = [id(v) for v in self.trainable]
        return [ids.index(id(layer.kernel)) for layer in self.layers]

    @property
    def variables(self) -> list[tf.Variable]:
        """Everything that defines the networks' state, for checkpoints."""
        return self.trainable + self.moving

    def forward(self, weights: list[tf.Tensor], moving: list[tf.Tensor], x: tf.Tensor,
                row_weights: tf.Tensor | None = None) -> tuple[list[tf.Tensor], tf.Tensor, list[tf.Tensor]]:
        """(activations of every layer, each [N, batch, units] with the softmax output last;
        the output logits, class-first [N, classes, batch] (`cross_entropy`); the new batch-norm
        moving statistics).

        `weights` and `moving` are tensors in the order of `trainable` and `moving`.
        `x` is [batch, d] (shared by all networks) or [N, d, batch] (each network's own, batch-last:
        trainer.compiled.batch_last_minibatch). `row_weights` [batch]
        (1 for a real row, 0 for padding) means training: batch norm uses the statistics of
        the real rows of the batch and updates the moving ones; None means evaluation.
        """
        outputs, new_moving = [], []
        weights, moving = list(weights), list(moving)
        # Batch-last inside: [..., units, batch] (see stacked_dense).
        h = tf.linalg.matrix_transpose(x) if len(x.shape) == 2 else x
        for layer in self.layers:
            kernel, bias = weights.pop(0), weights.pop(0)
            pre = stacked_dense(h, kernel) + bias[:, :, None]
            if layer.gamma is not None:
                gamma, beta = weights.pop(0), weights.pop(0)
                moving_mean, moving_var = moving.pop(0), moving.pop(0)
                if row_weights is not None:
                    # Batch normalisation per network (Ioffe & Szegedy 2015) over the real rows.
                    mean, var = tf.nn.weighted_moments(pre, axes=[2], frequency_weights=row_weights[None, None, :])
                    moving_mean = BATCHNORM_MOMENTUM * moving_mean + (1 - BATCHNORM_MOMENTUM) * mean
                    moving_var = BATCHNORM_MOMENTUM * moving_var + (1 - BATCHNORM_MOMENTUM) * var
                else:
                    mean, var = moving_mean, moving_var
                new_moving += [moving_mean, moving_var]
                pre = (pre - mean[:, :, None]) * tf.math.rsqrt(var[:, :, None] + BATCHNORM_EPSILON)
                pre = pre * gamma[:, :, None] + beta[:, :, None]
            if layer.name == "output":
                logits = pre
                outputs.append(tf.linalg.matrix_transpose(softmax_over_classes(pre)))
            else:
                h = per_network_activation(layer.activations, pre)
                outputs.append(tf.linalg.matrix_transpose(h))
        return outputs, logits, new_moving

    def constrain(self, weights: list[tf.Tensor]) -> list[tf.Tensor]:
        """Max-norm on the hidden layers (keras.constraints.MaxNorm, as deep-bottleneck's
        `kernel_constraint`): each unit's incoming weight vector w becomes
        w * clip(|w|, 0, m) / (epsilon + |w|), for the networks that have a max-norm m."""
        if not self.any_max_norm:
            return weights
        constrained = list(weights)
        max_norm = self.max_norm[:, None, None]
        has_max_norm = self.has_max_norm[:, None, None]
        for layer, position in zip(self.layers[:-1], self.kernel_positions[:-1]):
            kernel = weights[position]
            norms = tf.sqrt(tf.reduce_sum(tf.square(kernel), axis=1, keepdims=True))
            desired = tf.clip_by_value(norms, 0.0, max_norm)
            constrained[position] = tf.where(has_max_norm, kernel * (desired / (MAX_NORM_EPSILON + norms)), kernel)
        return constrained

    def read(self) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
        """Current (weights, moving statistics) as tensors."""
        return [v.read_value() for v in self.trainable], [v.read_value() for v in self.moving]

    def write(self, weights: list[tf.Tensor], moving: list[tf.Tensor]) -> None:
        for variable, value in zip(self.trainable + self.moving, list(weights) + list(moving)):
            variable.assign(value)
