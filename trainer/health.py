"""Whether a run's network trained at all: per-layer health states and the dead_network and
diverged flags of run.json (definitions in DESIGN.md, "Results root").

A hidden layer is dead when no learning signal reaches it or when it carries no information.
A relu network with a negative initial bias has a layer that is 0 on every input: no error
reaches the layers below it and every kernel above gets a zero input. A tanh network with
initial bias 5 or 10 saturates a layer to exactly 1.0 (float32) on every input: tanh' = 0
there, so no gradient passes, and I(X;T) = 0 under any estimator. In both, the softmax
layer still learns the class prior, so its gradient is not zero: what matters is whether
some hidden layer is dead, since nothing the output learns can then depend on the input.
A network may be dead from the first epoch or die after a few (a relu seed with initial
bias -0.2 in docs/reproductions.md trains for three epochs, then stays at chance). A
network whose loss became NaN or infinite has no meaningful estimates after that.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence

import numpy as np

from trainer.activation_facts import Activations, saturated
from trainer.bit_counts import true_counts

# A layer is saturated when at least this fraction of its values (inputs x units) sit at a bound.
SATURATED_FRACTION = 0.99


class LayerHealth(str, enum.Enum):
    ALIVE = "alive"
    SATURATED = "saturated"     # (nearly) every value at a bound of a bounded activation
    DEAD = "dead"               # no learning signal reaches it, or it is the same on every input

    def __str__(self) -> str:
        return self.value


def layer_health(activation_fn: Activations, values: np.ndarray, grad_mean_norm: np.ndarray,
                 grad_std_norm: np.ndarray, saturated_count: np.ndarray | None = None) -> list[LayerHealth]:
    """The state of one hidden layer in each of N networks at a logged epoch >= 1.

    activation_fn: the networks' one activation or each network's own.
    values: the layer's activations [N, inputs, units] on every input; grad_mean_norm,
    grad_std_norm [N]: norms of the mean and std of its kernel gradient over the last
    epoch's minibatches (both 0: the gradient was exactly 0 in every minibatch).
    dead: the kernel gradient is exactly 0, or every input gives the same activations;
    saturated: at least SATURATED_FRACTION of the values sit at a bound
    (trainer.activation_facts.saturated); else alive. saturated_count: each network's number of
    values at a bound [N] when already counted (the per-neuron statistics count them, see
    trainer.measure.activation_rows), else counted here.
    """
    n_networks = values.shape[0]
    flat = values.reshape(n_networks, values.shape[1], -1)
    # Every input gives the same activations as the first. Only the networks whose last input
    # does are compared in full: a mask of every value costs a pass over the layer, and a
    # network that learns anything almost always differs on its first and last inputs.
    constant = np.all(flat[:, -1:] == flat[:, :1], axis=(1, 2))
    maybe = np.flatnonzero(constant)
    constant[maybe] = np.all(flat[maybe] == flat[maybe, :1], axis=(1, 2))
    silent = (np.asarray(grad_mean_norm) == 0) & (np.asarray(grad_std_norm) == 0)
    # The fraction np.mean of the bool mask gives (an exact integer count over the same size), counted
    # on packed bits: the mean would widen every value to float64 first.
    if saturated_count is None:
        saturated_count = true_counts(saturated(activation_fn, flat).reshape(n_networks, -1))
    at_bound = saturated_count / flat[0].size >= SATURATED_FRACTION
    return [LayerHealth.DEAD if dead else LayerHealth.SATURATED if sat else LayerHealth.ALIVE
            for dead, sat in zip(constant | silent, at_bound)]


class NetworkHealth:
    """The health of one run, from what the training loop observes (definitions in DESIGN.md).

    dead_network: from some logged epoch >= 1 to the last one, some hidden layer is dead in
    every logged epoch, and the network does not classify every training example correctly
    (a network that fits its training data exactly gets no gradient either, and is not dead).
    saturated_network: not dead, but from some logged epoch >= 1 to the last one some hidden layer
    is saturated or dead in every logged epoch, and the network does not fit its training data
    exactly: (nearly) every value of that layer sits at a bound of its activation, where almost
    no gradient passes and binning sees (almost) one bin. A tanh network with initial bias 5
    saturates its first layers from the first epoch while its last ones turn between dead,
    saturated and alive: dead_network alone called one seed of five dead (a 3000-epoch cohort)
    and left the other four, equally at chance, unflagged.
    dead_layers: the hidden layers dead at the last logged epoch. Epoch 0 (the initial
    network, before any update) has no gradients and does not count.
    diverged: some observed train or test loss was NaN or infinite, or a logged epoch's activations
    exploded (`exploded`: beyond what a histogram can index, trainer.summaries.HistogramOverflow).
    """

    def __init__(self) -> None:
        self.dead_since: int | None = None    # first logged epoch of the current run of epochs with a dead layer
        self.stuck_since: int | None = None   # ... with a dead or saturated layer
        self.dead_layers: list[int] = []
        self.train_accuracy = math.nan
        self.non_finite_loss = False
        self.exploded = False

    def observe_metrics(self, train_loss: float, test_loss: float, train_accuracy: float) -> None:
        self.train_accuracy = train_accuracy
        if not (math.isfinite(train_loss) and math.isfinite(test_loss)):
            self.non_finite_loss = True

    def observe_layers(self, epoch: int, states: Sequence[LayerHealth]) -> None:
        """The hidden layers' states at a logged epoch >= 1 (epoch 0 is ignored)."""
        if epoch < 1:
            return
        self.dead_layers = [layer for layer, state in enumerate(states) if state is LayerHealth.DEAD]
        self.dead_since = (self.dead_since if self.dead_since is not None else epoch) if self.dead_layers else None
        stuck = any(state is not LayerHealth.ALIVE for state in states)
        self.stuck_since = (self.stuck_since if self.stuck_since is not None else epoch) if stuck else None

    def state(self) -> dict[str, np.ndarray]:
        """What a checkpoint keeps (trainer.checkpoint), so that a resumed run judges its whole
        training, not only the epochs after its checkpoint."""
        return {"dead_since": np.int64(-1 if self.dead_since is None else self.dead_since),
                "stuck_since": np.int64(-1 if self.stuck_since is None else self.stuck_since),
                "dead_layers": np.asarray(self.dead_layers, np.int64),
                "train_accuracy": np.float64(self.train_accuracy),
                "non_finite_loss": np.bool_(self.non_finite_loss)}

    @classmethod
    def restored(cls, state: dict[str, np.ndarray]) -> "NetworkHealth":
        """The health a checkpoint's `state()` recorded (empty, from an older checkpoint: a fresh one;
        one written before saturated_network judges that flag from the resumed epochs on)."""
        health = cls()
        if state:
            dead_since, stuck_since = int(state["dead_since"]), int(state.get("stuck_since", -1))
            health.dead_since = None if dead_since < 0 else dead_since
            health.stuck_since = None if stuck_since < 0 else stuck_since
            health.dead_layers = [int(layer) for layer in state["dead_layers"]]
            health.train_accuracy = float(state["train_accuracy"])
            health.non_finite_loss = bool(state["non_finite_loss"])
        return health

    def flags(self) -> dict[str, bool | list[int]]:
        fitted = self.train_accuracy == 1.0
        dead = self.dead_since is not None and not fitted
        return {"dead_network": dead,
                "saturated_network": self.stuck_since is not None and not fitted and not dead,
                "dead_layers": self.dead_layers,
                "diverged": self.non_finite_loss or self.exploded}
