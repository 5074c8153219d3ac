"""The chunk's minibatch orders made in one reused buffer (trainer.minibatch_orders.ChunkOrders)
must be exactly `epoch_order`, the definition resumed runs and old checkpoints rely on. That the
compiled call trains with them: tests/test_training.py (many epochs per call equal one per call,
resumed equals uninterrupted), tests/test_stack_independence.py."""

import numpy as np
import pytest

from trainer.minibatch_orders import ChunkOrders, epoch_order, pcg64_states

# Seeds around the 32-bit boundaries (a seed of 2**32 or more is more than one word of the
# SeedSequence's entropy); sizes from one row to more than 2**16, odd and even.
SEEDS = [0, 1, 7, 12345, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40 + 3, 2**63 + 5]
SIZES = [1, 2, 3, 255, 256, 257, 3277, 65_537]


@pytest.mark.parametrize("n", SIZES)
def test_the_orders_of_a_chunk_are_each_network_epochs_epoch_order(n):
    first_epoch, n_epochs = (0, 3) if n > 10_000 else (999_998, 4)
    orders = ChunkOrders(5, len(SEEDS), n, n + 11).fill(SEEDS, first_epoch, n_epochs)
    assert orders.shape == (n_epochs, len(SEEDS), n + 11) and orders.dtype == np.int32
    for e in range(n_epochs):
        for s, seed in enumerate(SEEDS):
            np.testing.assert_array_equal(orders[e, s, :n], epoch_order(seed, first_epoch + e, n))
            # the definition itself, spelled out as DESIGN.md promises it
            np.testing.assert_array_equal(orders[e, s, :n], np.random.default_rng([seed, first_epoch + e]).permutation(n))
    np.testing.assert_array_equal(orders[:, :, n:], 0)


def test_a_shorter_chunk_after_a_longer_one_gets_its_own_orders_and_zero_padding():
    seeds, n = [3, 4], 100
    orders = ChunkOrders(6, len(seeds), n, 128)
    orders.fill(seeds, 1, 6)
    again = orders.fill(seeds, 7, 2)
    assert again.shape == (2, 2, 128)
    for e in range(2):
        for s, seed in enumerate(seeds):
            np.testing.assert_array_equal(again[e, s], np.r_[epoch_order(seed, 7 + e, n), np.zeros(28, np.int32)])


@pytest.mark.parametrize("seeds, n_epochs", [([1, 2], 4), ([1, 2], 0), ([1], 2), ([1, 2, 3], 2)])
def test_a_chunk_the_buffer_cannot_hold_is_refused_with_what_it_holds(seeds, n_epochs):
    with pytest.raises(ValueError, match="holds 1 to 3 epochs of exactly 2 networks"):
        ChunkOrders(3, 2, 10, 16).fill(seeds, 1, n_epochs)


def test_the_pcg64_states_are_those_numpy_seeds_for_every_seed_and_epoch_of_one_word():
    """pcg64_states ports numpy's SeedSequence and PCG64 seeding: equal to numpy's own states for
    thousands of random (seed, epoch) pairs and the 32-bit edges; None past one word, where the
    orders come from default_rng itself (the first test)."""
    rng = np.random.default_rng(18)
    seeds = [0, 0, 1, 2**32 - 1, 2**32 - 1, *rng.integers(0, 2**32, 2000).tolist(), *range(50)]
    epochs = [0, 2**32 - 1, 0, 0, 2**32 - 1, *rng.integers(0, 2**32, 2000).tolist(), *range(50)]
    states = pcg64_states(seeds, epochs)
    for seed, epoch, state in zip(seeds, epochs, states):
        numpy_state = np.random.PCG64(np.random.SeedSequence([seed, epoch])).state["state"]
        assert state == (numpy_state["state"], numpy_state["inc"]), (seed, epoch)
    assert pcg64_states([2**32, 3, 2**63 + 5], [1, 2**32, 0]) == [None, None, None]
