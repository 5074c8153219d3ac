"""Python's cyclic garbage collector kept off the objects a scan or an import builds, which all
stay alive.

A cold scan keeps every entry it reads, and the views' rows, until it ends: each collection
meanwhile walks all of them again and frees none (reading a run folder makes no reference
cycles). So the collector is off during the scan, and at its end everything alive is moved
to the oldest generation without being walked (`gc.freeze` then `gc.unfreeze`): left young,
the first collection after the scan would walk every object it made at once. The oldest
generation is collected as before, when it has grown by a quarter through ordinary
promotions, so a cycle made meanwhile is still freed in time. bench/bench_cold_scan.py
measures the difference.

An import whose objects live as long as the process (TensorFlow's, some 400,000, which every
full collection would otherwise walk again) is paused `for_good`: its objects stay in the
permanent generation, never walked again (bench/RESULTS.md, issue 18, stop 34). Frozen objects
are still freed by reference counting; only a reference cycle among them would never be.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_frozen_for_good = False     # once a pause froze objects for good, no pause unfreezes any


@contextmanager
def paused(for_good: bool = False) -> Iterator[None]:
    """The collector off meanwhile, what is alive then old (or, `for_good`, frozen), the collector
    as it was. If scans overlap on two threads, the first to end turns it on again while the other
    goes on: only the saving is lost. Once anything is frozen for good, every later pause freezes
    too: gc.unfreeze would release those objects as well."""
    global _frozen_for_good
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()     # every tracked object to the permanent generation: a list splice
        _frozen_for_good = _frozen_for_good or for_good
        if not _frozen_for_good:
            gc.unfreeze()   # and from there to the oldest one
        if was_enabled:
            gc.enable()
