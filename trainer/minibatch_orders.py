"""The minibatch orders: which training rows each minibatch of a network's epoch takes, in turn.

A network's order in an epoch is `np.random.default_rng([seed, epoch]).permutation(n)`
(`epoch_order`): a function of (seed, epoch) alone, so how the epochs are cut into compiled
calls, which networks share a stack and whether a run resumed from a checkpoint change no
number. Resumed runs and old checkpoints rely on exactly this definition.

`ChunkOrders` makes the orders of a chunk of epochs, for every network of a stack, straight
into one preallocated int32 buffer [capacity, N, padded] that every chunk reuses (issue 18: one
array per network-epoch, two np.stack's and a padded copy of the chunk cost the host about 3 of a
cohort's 290 CPU-s). Each row is an arange shuffled by the network-epoch's own generator: numpy's
`Generator.permutation(n)` is `arr = np.arange(n); self.shuffle(arr); return arr`
(numpy/random/_generator.pyx), so the row is exactly `epoch_order` (tested over many seeds,
epochs and sizes). The shuffle runs on an int64 row, then is copied into the int32 buffer: numpy
shuffles items of a pointer's size with a specialised loop, and an int32 row shuffled in place
took about 1.4x as long (measured while writing this, 62 against 44 us per network-epoch).
"""

from __future__ import annotations

import numpy as np


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The minibatch order of one network's epoch: a function of (seed, epoch) alone, so a
    resumed run shuffles exactly as an uninterrupted one."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


class ChunkOrders:
    """The orders of up to `capacity` epochs of `n_networks` networks over `n` training rows,
    each order padded with zeros to `padded` (the last minibatch's padding rows, which weigh 0)."""

    def __init__(self, capacity: int, n_networks: int, n: int, padded: int):
        # Columns from n on are never written: they stay the zeros of the padding.
        self.buffer = np.zeros((capacity, n_networks, padded), np.int32)
        self._arange = np.arange(n, dtype=np.int64)
        self._shuffled = np.empty(n, np.int64)

    def fill(self, seeds: list[int], first_epoch: int, n_epochs: int) -> np.ndarray:
        """The orders of epochs first_epoch .. first_epoch + n_epochs - 1 of the networks with
        these seeds, [n_epochs, N, padded]: a view of the buffer, which the next fill overwrites."""
        capacity, n_networks, _ = self.buffer.shape
        if not 0 < n_epochs <= capacity or len(seeds) != n_networks:
            raise ValueError(f"ChunkOrders.fill: {n_epochs} epochs of {len(seeds)} networks; this buffer holds "
                             f"1 to {capacity} epochs of exactly {n_networks} networks")
        n = len(self._arange)
        for epoch, epoch_rows in zip(range(first_epoch, first_epoch + n_epochs), self.buffer):
            for seed, row in zip(seeds, epoch_rows):
                self._shuffled[:] = self._arange
                np.random.default_rng([seed, epoch]).shuffle(self._shuffled)
                row[:n] = self._shuffled
        return self.buffer[:n_epochs]
