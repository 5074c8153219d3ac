"""A feedforward network whose weights carry a leading seed axis.

The S seeds of one experiment train as one computation: every kernel is
[S, fan_in, units], every bias [S, units], and the loss is the sum of the
seeds' losses, so each seed's gradient is exactly its own. Elementwise
optimisers (Adam, SGD, RMSprop) then update each seed as if it were alone.
S = 1 is a single run.

Layers follow deep-bottleneck's `models.feedforward`: Dense layers with a
truncated-normal kernel (stddev 1/sqrt(units)), a constant initial bias, an
optional max-norm constraint on each unit's incoming weights, optionally batch
normalisation before the activation, and a softmax output layer with one unit
per class.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

BATCHNORM_MOMENTUM = 0.99
BATCHNORM_EPSILON = 1e-3


def activation(name: str):
    """The Keras activation function of that name (`linear` is the identity)."""
    return keras.activations.get(name)


@dataclass
class Layer:
    name: str
    kernel: tf.Variable            # [S, fan_in, units]
    bias: tf.Variable              # [S, units]
    activation: str
    gamma: tf.Variable | None = None   # batch-norm scale [S, units]
    beta: tf.Variable | None = None
    moving_mean: tf.Variable | None = None
    moving_var: tf.Variable | None = None


class StackedMLP:
    """Weights and forward pass of S independent networks of the same shape."""

    def __init__(self, config: dict, n_inputs: int, n_classes: int, seeds: list[int]):
        units = [*config["architecture"], n_classes]
        fan_ins = [n_inputs, *config["architecture"]]
        batchnorm = config["model"] == "feedforward_batchnorm"
        self.max_norm = config["max_norm_weights"] or None
        self.layers: list[Layer] = []
        for index, (fan_in, n_units) in enumerate(zip(fan_ins, units)):
            is_output = index == len(units) - 1
            stddev = config["kernel_init_stddev"] or 1.0 / np.sqrt(n_units)
            kernel = np.stack([
                keras.initializers.TruncatedNormal(stddev=stddev, seed=seed * 1000 + index)(
                    (fan_in, n_units)).numpy()
                for seed in seeds])
            bias_value = 0.0 if is_output else config["initial_bias"]
            layer = Layer(
                name="output" if is_output else f"dense_{index}",
                kernel=tf.Variable(kernel, name=f"kernel_{index}"),
                bias=tf.Variable(np.full((len(seeds), n_units), bias_value, np.float32), name=f"bias_{index}"),
                activation="softmax" if is_output else config["activation_fn"],
            )
            if batchnorm and not is_output:
                shape = (len(seeds), n_units)
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
    def kernel_positions(self) -> list[int]:
        """Index of each layer's kernel in `trainable` (for per-layer gradient statistics)."""
        ids = [id(v) for v in self.trainable]
        return [ids.index(id(layer.kernel)) for layer in self.layers]

    @property
    def variables(self) -> list[tf.Variable]:
        """Everything that defines the network's state, for checkpoints."""
        extra = [v for layer in self.layers for v in (layer.moving_mean, layer.moving_var) if v is not None]
        return self.trainable + extra

    def forward(self, x: tf.Tensor, training: bool = False) -> tuple[list[tf.Tensor], tf.Tensor]:
        """Activations of every layer, each [S, batch, units] (the last is the softmax
        output), and the output logits, for a numerically stable loss.

        `x` is [batch, d] (shared by all seeds) or [S, batch, d].
        """
        outputs = []
        h = x
        for layer in self.layers:
            if len(h.shape) == 2:
                pre = tf.einsum("bi,sio->sbo", h, layer.kernel)
            else:
                pre = tf.einsum("sbi,sio->sbo", h, layer.kernel)
            pre = pre + layer.bias[:, None, :]
            if layer.gamma is not None:
                pre = self._batchnorm(layer, pre, training)
            if layer.activation == "softmax":
                h = tf.nn.softmax(pre)
            else:
                h = activation(layer.activation)(pre)
            outputs.append(h)
        return outputs, pre

    @staticmethod
    def _batchnorm(layer: Layer, pre: tf.Tensor, training: bool) -> tf.Tensor:
        """Batch normalisation per seed (Ioffe & Szegedy 2015); moving averages for evaluation."""
        if training:
            mean, var = tf.nn.moments(pre, axes=[1])
            layer.moving_mean.assign(BATCHNORM_MOMENTUM * layer.moving_mean + (1 - BATCHNORM_MOMENTUM) * mean)
            layer.moving_var.assign(BATCHNORM_MOMENTUM * layer.moving_var + (1 - BATCHNORM_MOMENTUM) * var)
        else:
            mean, var = layer.moving_mean, layer.moving_var
        normalised = (pre - mean[:, None, :]) * tf.math.rsqrt(var[:, None, :] + BATCHNORM_EPSILON)
        return normalised * layer.gamma[:, None, :] + layer.beta[:, None, :]

    def apply_constraints(self) -> None:
        """Max-norm: rescale each unit's incoming weight vector to norm <= max_norm (Keras MaxNorm)."""
        if self.max_norm is None:
            return
        for layer in self.layers:
            norms = tf.sqrt(tf.reduce_sum(tf.square(layer.kernel), axis=1, keepdims=True))
            desired = tf.clip_by_value(norms, 0.0, self.max_norm)
            layer.kernel.assign(layer.kernel * desired / (1e-7 + norms))
