"""Adam, SGD and RMSprop as pure functions of tensors, with a learning rate per network.

The update rules are TensorFlow's fused training kernels' (`ResourceApplyAdam`,
`ResourceApplyGradientDescent`, `ResourceApplyRMSProp` in
tensorflow/core/kernels/training_ops.cc), written out term by term in the same
order, with Keras' default constants. They are written out, not called, because
the fused kernels take one scalar learning rate and a stacked group of networks
has one learning rate per network (axis 0 of every parameter). All updates are
elementwise, so each network is updated exactly as if it were alone.

The state lives in tf.Variables (for checkpoints); the training loop reads them
into tensors, runs many steps as a graph loop and writes them back once.
"""

from __future__ import annotations

from trainer.tensorflow_without_keras import tf

ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7     # Kingma & Ba 2015; Keras defaults
RMSPROP_RHO, RMSPROP_EPSILON = 0.9, 1e-7                       # Keras defaults
OPTIMIZERS = ("adam", "sgd", "rmsprop")


class Optimizer:
    """One optimizer over a fixed list of stacked parameters; `variables` is its state, for checkpoints."""

    def __init__(self, name: str, learning_rates: list[float], parameters: list):
        if name not in OPTIMIZERS:
            raise ValueError(f"optimizer {name!r} is unknown; allowed: {', '.join(OPTIMIZERS)}")
        self.name = name
        self.learning_rates = tf.constant(learning_rates, tf.float32)     # [N]
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        n_slots = {"adam": 2, "sgd": 0, "rmsprop": 2}[name]
        self.slots = [[tf.Variable(tf.zeros_like(p), trainable=False) for p in parameters]
                      for _ in range(n_slots)]

    @property
    def variables(self) -> list[tf.Variable]:
        return [self.iterations] + [v for slot in self.slots for v in slot]

    def read_slots(self) -> list[list[tf.Tensor]]:
        return [[tf.convert_to_tensor(v) for v in slot] for slot in self.slots]

    def write(self, iterations: tf.Tensor, slots: list[list[tf.Tensor]]) -> None:
        self.iterations.assign(iterations)
        for variables, values in zip(self.slots, slots):
            for variable, value in zip(variables, values):
                variable.assign(value)

    def update(self, parameters: list[tf.Tensor], slots: list[list[tf.Tensor]], gradients: list[tf.Tensor],
               iterations: tf.Tensor) -> tuple[list[tf.Tensor], list[list[tf.Tensor]]]:
        """One step: (new parameters, new slots). `iterations` counts this step (1 for the first)."""
        def per_network(value: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
            return tf.reshape(value, [-1] + [1] * (len(like.shape) - 1))

        if self.name == "adam":
            step = tf.cast(iterations, tf.float32)
            beta_1_power, beta_2_power = tf.pow(ADAM_BETA_1, step), tf.pow(ADAM_BETA_2, step)
            alpha = self.learning_rates * tf.sqrt(1.0 - beta_2_power) / (1.0 - beta_1_power)
            new_p, new_m, new_v = [], [], []
            for p, m, v, g in zip(parameters, *slots, gradients):
                m = m + (g - m) * (1.0 - ADAM_BETA_1)
                v = v + (tf.square(g) - v) * (1.0 - ADAM_BETA_2)
                new_p.append(p - (m * per_network(alpha, p)) / (tf.sqrt(v) + ADAM_EPSILON))
                new_m.append(m)
                new_v.append(v)
            return new_p, [new_m, new_v]
        if self.name == "sgd":
            return [p - per_network(self.learning_rates, p) * g for p, g in zip(parameters, gradients)], []
        new_p, new_ms, new_mom = [], [], []
        for p, ms, _, g in zip(parameters, *slots, gradients):
            ms = ms + (tf.square(g) - ms) * (1.0 - RMSPROP_RHO)
            mom = (g * per_network(self.learning_rates, p)) / tf.sqrt(ms + RMSPROP_EPSILON)  # momentum 0
            new_p.append(p - mom)
            new_ms.append(ms)
            new_mom.append(mom)
        return new_p, [new_ms, new_mom]
