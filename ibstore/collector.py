"""Python's cyclic garbage collector kept off the objects a scan builds, which all stay alive.

A cold scan keeps every entry it reads, and the views' rows, until it ends: each collection
meanwhile walks all of them again and frees none (reading a run folder makes no reference
cycles). So the collector is off during the scan, and at its end everything alive is moved
to the oldest generation without being walked (`gc.freeze` then `gc.unfreeze`): left young,
the first collection after the scan would walk every object it made at once. The oldest
generation is collected as before, when it has grown by a quarter through ordinary
promotions, so a cycle made meanwhile is still freed in time. bench/bench_cold_scan.py
measures the difference.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector off meanwhile, what is alive then old, the collector as it was. If scans
    overlap on two threads, the first to end turns it on again while the other goes on: only
    the saving is lost. (Nothing in this project freezes objects for good: unfreeze would
    release them too.)"""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()     # every tracked object to the permanent generation: a list splice
        gc.unfreeze()   # and from there to the oldest one
        if was_enabled:
            gc.enable()
