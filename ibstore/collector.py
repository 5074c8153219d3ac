"""Python's cyclic garbage collector paused while a scan builds many objects that all stay alive.

A cold scan keeps every entry it reads, and the views' rows, until it ends: each full
collection meanwhile walks all of them again and frees none (reading a run folder makes no
reference cycles). bench/bench_cold_scan.py measures the difference.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector off meanwhile, then as it was. If scans overlap on two threads, the first
    to end turns it on again while the other goes on: only the saving is lost."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
