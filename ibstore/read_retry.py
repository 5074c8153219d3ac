"""How often, and after what wait, a store read that lost a file is tried again on a new scan.

A file the snapshot lists can vanish before it is read (a compaction replaces a run's parts by
its base; `ResultStore._retried`). Rescanning at once can lose the same race again, up to every
one of READ_ATTEMPTS tries (issue 20; bench/bench_read_retry.py counts how often, with and
without the waits). So each try after the first waits first: FIRST_WAIT_S, doubled at every try, each
scaled by a random factor in [1 - JITTER, 1 + JITTER) so that a reader does not fall into step
with a periodic writer ("exponential back-off with jitter", Metcalfe & Boggs 1976 for Ethernet;
AWS Architecture Blog, "Exponential Backoff And Jitter", 2015). All the waits of one read add up
to at most `max_total_wait_s()`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

READ_ATTEMPTS = 5
FIRST_WAIT_S = 0.025
JITTER = 0.5


def wait_s(attempt: int, uniform: Callable[[], float] = random.random) -> float:
    """The wait before try `attempt` (2..READ_ATTEMPTS): FIRST_WAIT_S * 2^(attempt - 2) *
    (1 - JITTER + 2 * JITTER * u), u = `uniform()` in [0, 1)."""
    return FIRST_WAIT_S * 2 ** (attempt - 2) * (1 - JITTER + 2 * JITTER * uniform())


def max_total_wait_s() -> float:
    """The longest a read waits in all: every try's wait at its largest factor."""
    return sum(FIRST_WAIT_S * 2 ** (attempt - 2) * (1 + JITTER) for attempt in range(2, READ_ATTEMPTS + 1))


def wait_before(attempt: int) -> None:
    time.sleep(wait_s(attempt))
