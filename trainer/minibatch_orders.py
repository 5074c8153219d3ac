"""The minibatch orders: which training rows each minibatch of a network's epoch takes, in turn.

A network's order in an epoch is `np.random.default_rng([seed, epoch]).permutation(n)`
(`epoch_order`): a function of (seed, epoch) alone, so how the epochs are cut into compiled
calls, which networks share a stack and whether a run resumed from a checkpoint change no
number. Resumed runs and old checkpoints rely on exactly this definition.

`ChunkOrders` makes the orders of a chunk of epochs, for every network of a stack, straight
into one preallocated int32 buffer [capacity, N, padded] that every chunk reuses (issue 18: one
array per network-epoch, two np.stack's and a padded copy of the chunk took a visible share of a
cohort's CPU; bench/RESULTS.md). Each row is an arange shuffled by the network-epoch's own generator: numpy's
`Generator.permutation(n)` is `arr = np.arange(n); self.shuffle(arr); return arr`
(numpy/random/_generator.pyx), so the row is exactly `epoch_order` (tested over many seeds,
epochs and sizes). The shuffle runs on an int64 row, then is copied into the int32 buffer: numpy
shuffles items of a pointer's size with a specialised loop, and an int32 row shuffled in place
took longer (bench/RESULTS.md, issue 18 stop 30).

Making each network-epoch's generator, `np.random.default_rng([seed, epoch])`, was a fair part of
the orders' cost (a SeedSequence, a PCG64 and a Generator object; bench/RESULTS.md, stop 33).
`pcg64_states` computes the same PCG64 states for a whole chunk at once, and one reused PCG64 is
set to each in turn, which makes a chunk's orders cheaper (bench/bench_step.py --orders).
"""

from __future__ import annotations

import numpy as np

# numpy's SeedSequence (numpy/random/bit_generator.pyx) and PCG64 seeding (numpy/random/src/pcg64/
# pcg64.h, pcg_setseq_128_srandom_r), for `pcg64_states`.
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_POOL_SIZE, _XSHIFT, _MASK32, _MASK128 = 4, np.uint32(16), 0xFFFFFFFF, (1 << 128) - 1
_PCG_MULTIPLIER = (2549297995355413924 << 64) | 4865540595714422341      # PCG_DEFAULT_MULTIPLIER_128


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
        self._pcg64 = np.random.PCG64(0)
        self._reused = np.random.Generator(self._pcg64)

    def fill(self, seeds: list[int], first_epoch: int, n_epochs: int) -> np.ndarray:
        """The orders of epochs first_epoch .. first_epoch + n_epochs - 1 of the networks with
        these seeds, [n_epochs, N, padded]: a view of the buffer, which the next fill overwrites."""
        capacity, n_networks, _ = self.buffer.shape
        if not 0 < n_epochs <= capacity or len(seeds) != n_networks:
            raise ValueError(f"ChunkOrders.fill: {n_epochs} epochs of {len(seeds)} networks; this buffer holds "
                             f"1 to {capacity} epochs of exactly {n_networks} networks")
        n = len(self._arange)
        # Every network-epoch of the chunk, epoch by epoch, as the buffer's rows run.
        lane_epochs = [epoch for epoch in range(first_epoch, first_epoch + n_epochs) for _ in seeds]
        lane_seeds = list(seeds) * n_epochs
        rows = self.buffer[:n_epochs].reshape(n_epochs * n_networks, -1)
        for seed, epoch, state, row in zip(lane_seeds, lane_epochs, pcg64_states(lane_seeds, lane_epochs), rows):
            self._shuffled[:] = self._arange
            self._generator(seed, epoch, state).shuffle(self._shuffled)
            row[:n] = self._shuffled
        return self.buffer[:n_epochs]

    def _generator(self, seed: int, epoch: int, state: tuple[int, int] | None) -> np.random.Generator:
        """`np.random.default_rng([seed, epoch])`: the reused PCG64 set to `state`, where there is one."""
        if state is None:
            return np.random.default_rng([seed, epoch])
        self._pcg64.state = {"bit_generator": "PCG64", "state": {"state": state[0], "inc": state[1]},
                             "has_uint32": 0, "uinteger": 0}
        return self._reused


def pcg64_states(seeds, epochs) -> list[tuple[int, int] | None]:
    """The PCG64 (state, inc) of `np.random.default_rng([seed, epoch])` for each pair (equal-length
    integer sequences), computed for all pairs at once; None for a pair with a number outside
    0 .. 2^32 - 1 (more than one word of entropy: `default_rng` makes that generator itself).

    SeedSequence([seed, epoch]) hashes the two words into a pool of four (mix_entropy) and draws
    eight 32-bit words from it (generate_state(4, uint64)); PCG64 takes the first two 64-bit words
    as its initial state and the last two as its stream, and steps: inc = 2 * stream + 1, state =
    (inc + initial) * multiplier + inc, modulo 2^128. The hash constants change with each use, the
    same for every pair: they stay Python integers, the pairs' words are numpy uint32 lanes (all
    arithmetic modulo 2^32). Tested equal to numpy's for thousands of pairs (tests/test_minibatch_orders.py).
    """
    words = [np.asarray(values, dtype=object) for values in (seeds, epochs)]
    fits = (words[0] >= 0) & (words[0] <= _MASK32) & (words[1] >= 0) & (words[1] <= _MASK32)
    entropy = [np.where(fits, values, 0).astype(np.uint32) for values in words]
    hash_a = _INIT_A

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal hash_a
        value = value ^ np.uint32(hash_a)
        hash_a = (hash_a * _MULT_A) & _MASK32
        value = value * np.uint32(hash_a)
        return value ^ (value >> _XSHIFT)

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = np.uint32(_MIX_MULT_L) * x - np.uint32(_MIX_MULT_R) * y
        return result ^ (result >> _XSHIFT)

    zeros = np.zeros_like(entropy[0])
    pool = [hashmix(entropy[i] if i < len(entropy) else zeros) for i in range(_POOL_SIZE)]
    for source in range(_POOL_SIZE):
        for target in range(_POOL_SIZE):
            if source != target:
                pool[target] = mix(pool[target], hashmix(pool[source]))
    hash_b, state_words = _INIT_B, []
    for i in range(8):
        value = pool[i % _POOL_SIZE] ^ np.uint32(hash_b)
        hash_b = (hash_b * _MULT_B) & _MASK32
        value = value * np.uint32(hash_b)
        state_words.append((value ^ (value >> _XSHIFT)).astype(np.uint64))
    # Little-endian pairs of 32-bit words: four 64-bit words, as Python integers; PCG64 reads the first
    # two as the initial state's high and low halves, the last two as the stream's.
    words64 = [(state_words[2 * k] | (state_words[2 * k + 1] << np.uint64(32))).tolist() for k in range(4)]
    states: list[tuple[int, int] | None] = []
    for fit, initial_high, initial_low, stream_high, stream_low in zip(fits.tolist(), *words64):
        if not fit:
            states.append(None)
            continue
        initial, stream = (initial_high << 64) | initial_low, (stream_high << 64) | stream_low
        inc = ((stream << 1) | 1) & _MASK128
        states.append(((((inc + initial) & _MASK128) * _PCG_MULTIPLIER + inc) & _MASK128, inc))
    return states
