"""Whether a run's network trained at all: the dead_network and diverged flags of run.json.

A network whose gradients are all exactly zero no longer changes (a relu network with a
negative initial bias: every unit of some layer is 0 on every input, so no error
reaches the layers below it and every kernel's input or error signal is 0), and its
information plane is a constant point that averages in as "no compression". Such a
network may be dead from the first epoch or die after a few (a relu seed with initial
bias -0.2 in docs/reproductions.md trains for three epochs, then stays at chance). A
network whose loss became NaN or infinite has no meaningful estimates after that.
The trainer observes every run and records both flags when it ends, so a query can
leave such runs out (`WHERE dead_network IS NOT TRUE AND diverged IS NOT TRUE`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class NetworkHealth:
    """The health of one run, from what the training loop observes (definitions in DESIGN.md).

    dead_network: from some logged epoch >= 1 up to and including the last one, every
    layer's kernel gradient is exactly zero in every minibatch (grad_mean_norm == 0 and
    grad_std_norm == 0 for every layer), while the training loss is not zero. Zero
    gradients with a zero loss are a network that has fitted its training data exactly
    (a saturated softmax), not a dead one. Epoch 0 (the initial network, before any
    update) has no gradients and does not count.
    diverged: some observed train or test loss was NaN or infinite.
    """

    def __init__(self) -> None:
        self.silent_since: int | None = None   # first logged epoch of the current all-zero run
        self.train_loss = math.nan
        self.non_finite_loss = False

    def observe_losses(self, epoch: int, train_loss: float, test_loss: float) -> None:
        self.train_loss = train_loss
        if not (math.isfinite(train_loss) and math.isfinite(test_loss)):
            self.non_finite_loss = True

    def observe_gradients(self, epoch: int, grad_mean_norms: Sequence[float],
                          grad_std_norms: Sequence[float]) -> None:
        """Per-layer norms of the mean and the std of the kernel gradient over an epoch's minibatches."""
        if epoch < 1:
            return
        if all(norm == 0 for norm in (*grad_mean_norms, *grad_std_norms)):
            self.silent_since = epoch if self.silent_since is None else self.silent_since
        else:
            self.silent_since = None

    def flags(self) -> dict[str, bool]:
        return {"dead_network": self.silent_since is not None and self.train_loss != 0,
                "diverged": self.non_finite_loss}
