"""Adam, SGD and RMSprop on TensorFlow's fused training kernels.

The update rules are TensorFlow's own (`tf.raw_ops.ResourceApplyAdam`, ...), the
same arithmetic as Keras' optimizers with Keras' defaults. We call the kernels
directly because a Keras optimizer costs about half a second to trace per
minibatch step of our unrolled epoch (seconds per run), where a fused kernel is
one op. All updates are elementwise, so seeds stacked along the first axis of a
variable are updated exactly as if each were alone.
"""

from __future__ import annotations

import tensorflow as tf

ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7     # Kingma & Ba 2015; Keras defaults
RMSPROP_RHO, RMSPROP_EPSILON = 0.9, 1e-7                       # Keras defaults
OPTIMIZERS = ("adam", "sgd", "rmsprop")


class Optimizer:
    """One optimizer over a fixed list of variables; `variables` is its state, for checkpoints."""

    def __init__(self, name: str, learning_rate: float, parameters: list):
        if name not in OPTIMIZERS:
            raise ValueError(f"optimizer {name!r} is unknown; allowed: {', '.join(OPTIMIZERS)}")
        self.name, self.learning_rate = name, learning_rate
        self.parameters = parameters
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        n_slots = {"adam": 2, "sgd": 0, "rmsprop": 2}[name]
        self.slots = [[tf.Variable(tf.zeros_like(p), trainable=False) for p in parameters]
                      for _ in range(n_slots)]

    @property
    def variables(self) -> list[tf.Variable]:
        return [self.iterations] + [v for slot in self.slots for v in slot]

    def apply(self, gradients: list[tf.Tensor]) -> None:
        """One update of every parameter with its gradient."""
        self.iterations.assign_add(1)
        lr = tf.constant(self.learning_rate, tf.float32)
        if self.name == "adam":
            step = tf.cast(self.iterations, tf.float32)
            beta_1_power, beta_2_power = tf.pow(ADAM_BETA_1, step), tf.pow(ADAM_BETA_2, step)
            for p, m, v, g in zip(self.parameters, *self.slots, gradients):
                tf.raw_ops.ResourceApplyAdam(
                    var=p.handle, m=m.handle, v=v.handle, beta1_power=beta_1_power, beta2_power=beta_2_power,
                    lr=lr, beta1=ADAM_BETA_1, beta2=ADAM_BETA_2, epsilon=ADAM_EPSILON, grad=g)
        elif self.name == "sgd":
            for p, g in zip(self.parameters, gradients):
                tf.raw_ops.ResourceApplyGradientDescent(var=p.handle, alpha=lr, delta=g)
        else:
            for p, ms, mom, g in zip(self.parameters, *self.slots, gradients):
                tf.raw_ops.ResourceApplyRMSProp(var=p.handle, ms=ms.handle, mom=mom.handle, lr=lr,
                                                rho=RMSPROP_RHO, momentum=0.0, epsilon=RMSPROP_EPSILON, grad=g)
