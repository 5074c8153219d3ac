"""The PCG64 states `np.random.default_rng([seed, epoch])` starts from, for many (seed, epoch) at once.

`default_rng([seed, epoch])` hashes its entropy with a `SeedSequence` into four 64-bit words and
seeds a PCG64 with them: three Python objects and some forty scalar steps per generator, about a
fifth of a network-epoch's minibatch order (issue 18; bench/bench_step.py --orders). Here the
same arithmetic runs over arrays of (seed, epoch) pairs, and one reused generator is set to each
state in turn (`pcg64_state`). It is numpy's algorithm step for step (tested equal to
`default_rng` over many seeds and epochs):

- SeedSequence (numpy/random/bit_generator.pyx: `mix_entropy`, `generate_state`; after M. E.
  O'Neill's `seed_seq_fe`, 2015), all arithmetic on 32-bit words modulo 2**32:
  hashmix(v) = ((v ^ h) * h') ^ (((v ^ h) * h') >> 16), h' = h * MULT_A, the next hashmix using h';
  mix(x, y) = (L x - R y) ^ ((L x - R y) >> 16).
  The pool of 4 words is hashmix of the entropy words, [seed, epoch] and then zeros (numpy keeps
  hashing 0 past the end of the entropy: the same as entropy padded with zeros); then for each
  source word, every other word w = mix(w, hashmix(source)). The state: 8 words, word i the pool
  word i mod 4 hashed as hashmix but with INIT_B and MULT_B; words 2j, 2j + 1 are the low and
  high halves of 64-bit word j.
- PCG64 seeding (numpy/random/src/pcg64/pcg64.c `pcg64_set_seed`, after O'Neill's
  `pcg_setseq_128_srandom_r`), modulo 2**128, with the 64-bit words u0..u3:
  initstate = u0 * 2**64 + u1, inc = 2 (u2 * 2**64 + u3) + 1,
  state = (inc + initstate) * MULTIPLIER + inc (two LCG steps from 0, initstate added between).
"""

from __future__ import annotations

import numpy as np

# numpy/random/bit_generator.pyx
INIT_A, MULT_A = 0x43B0D7E5, 0x931E8875
INIT_B, MULT_B = 0x8B51F9DD, 0x58F38DED
MIX_MULT_L, MIX_MULT_R = 0xCA01F9DD, 0x4973F715
POOL_SIZE = 4
XSHIFT = 16
# numpy/random/src/pcg64/pcg64.h: PCG_DEFAULT_MULTIPLIER_HIGH, _LOW
PCG_MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341
MASK_32, MASK_128 = 2**32 - 1, 2**128 - 1


class _Hash:
    """hashmix with its multiplier h, which every call advances (h := h * mult)."""

    def __init__(self, init: int, mult: int):
        self.h, self.mult = init, mult

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = value ^ np.uint32(self.h)
        self.h = (self.h * self.mult) & MASK_32
        value = value * np.uint32(self.h)
        return value ^ (value >> np.uint32(XSHIFT))


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result = np.uint32(MIX_MULT_L) * x - np.uint32(MIX_MULT_R) * y
    return result ^ (result >> np.uint32(XSHIFT))


def seed_words(seeds: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """SeedSequence([seed, epoch]).generate_state(4, np.uint64) of each pair, [pairs, 4] uint64
    (seeds and epochs each below 2**32: one entropy word each)."""
    seeds, epochs = np.asarray(seeds, np.int64), np.asarray(epochs, np.int64)
    if seeds.min(initial=0) < 0 or epochs.min(initial=0) < 0 or max(seeds.max(initial=0), epochs.max(initial=0)) > MASK_32:
        raise ValueError("seed_words: seeds and epochs must be integers from 0 to 2**32 - 1")
    hashmix = _Hash(INIT_A, MULT_A)
    zeros = np.zeros(len(seeds), np.uint32)
    pool = [hashmix(word) for word in (seeds.astype(np.uint32), epochs.astype(np.uint32), zeros, zeros)]
    for source in range(POOL_SIZE):
        for destination in range(POOL_SIZE):
            if source != destination:
                pool[destination] = _mix(pool[destination], hashmix(pool[source]))
    hash_out = _Hash(INIT_B, MULT_B)
    halves = np.stack([hash_out(pool[i % POOL_SIZE]) for i in range(2 * POOL_SIZE)], axis=1).astype(np.uint64)
    return halves[:, 0::2] | (halves[:, 1::2] << np.uint64(32))


def pcg64_state(words: np.ndarray) -> dict:
    """The `PCG64.state` of a generator seeded with these four 64-bit words (a row of `seed_words`)."""
    u0, u1, u2, u3 = (int(word) for word in words)
    initstate, inc = (u0 << 64) | u1, (((u2 << 64) | u3) << 1 | 1) & MASK_128
    state = ((inc + initstate) * PCG_MULTIPLIER + inc) & MASK_128
    return {"bit_generator": "PCG64", "state": {"state": state, "inc": inc}, "has_uint32": 0, "uinteger": 0}
