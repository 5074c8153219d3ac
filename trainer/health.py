"""Whether a run's network trained at all: the dead_network and diverged flags of run.json.

A network whose gradients are all exactly zero never changes (a relu network with a
negative initial bias: every unit of some layer is 0 on every input, so no error
reaches the layers below it and every kernel's input or error signal is 0), and its
information plane is a constant point that averages in as "no compression". A
network whose loss became NaN or infinite has no meaningful estimates after that.
The trainer observes every run and records both flags when it ends, so a query can
leave such runs out (`WHERE NOT dead_network AND NOT diverged`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class NetworkHealth:
    """The health of one run, from what the training loop observes (definitions in DESIGN.md).

    dead_network: at every logged epoch >= 1 with gradient statistics (and there is at
    least one), every layer's kernel gradient is exactly zero in every minibatch, i.e.
    grad_mean_norm == 0 and grad_std_norm == 0 for every layer. Epoch 0 (the initial
    network, before any update) has no gradients and does not count.
    diverged: some observed train or test loss was NaN or infinite.
    """

    def __init__(self) -> None:
        self.gradient_epochs = 0
        self.all_gradients_zero = True
        self.non_finite_loss = False

    def observe_losses(self, epoch: int, train_loss: float, test_loss: float) -> None:
        if not (math.isfinite(train_loss) and math.isfinite(test_loss)):
            self.non_finite_loss = True

    def observe_gradients(self, epoch: int, grad_mean_norms: Sequence[float],
                          grad_std_norms: Sequence[float]) -> None:
        """Per-layer norms of the mean and the std of the kernel gradient over an epoch's minibatches."""
        if epoch < 1:
            return
        self.gradient_epochs += 1
        if any(norm != 0 for norm in (*grad_mean_norms, *grad_std_norms)):
            self.all_gradients_zero = False

    def flags(self) -> dict[str, bool]:
        return {"dead_network": self.gradient_epochs > 0 and self.all_gradients_zero,
                "diverged": self.non_finite_loss}
