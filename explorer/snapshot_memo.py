"""What the explorer worked out from a snapshot of the root, kept by name: once per snapshot, or
carried over to the next snapshot and patched for the runs that changed (a flush changes a few
runs of 100,000: working out again what depends on every run took seconds at each one)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ibstore.scan import Scan

T = TypeVar("T")


def changed_runs(before: Scan, after: Scan) -> tuple[set[str], bool]:
    """The run ids that came, went or changed (their folder's signature or shown status) between
    two snapshots, from their fingerprints (an entry per shown run), and whether no run came or
    went (every changed run has an entry in both)."""
    if len(before.fingerprint) == len(after.fingerprint):   # the common case, in one pass: a flush
        differ = [(old, new) for old, new in zip(before.fingerprint, after.fingerprint) if old != new]
        if all(old[0] == new[0] for old, new in differ):
            return {old[0] for old, _ in differ}, True
    old, new = set(before.fingerprint), set(after.fingerprint)
    left, now = {entry[0] for entry in old - new}, {entry[0] for entry in new - old}
    return left | now, left == now


# Values `of` keeps for a snapshot. Names come from users too (a `where` condition of a link or the
# Runs page), and a root that does not change keeps its snapshot: unbounded, each distinct condition
# kept its run ids for ever (memory grew with every link opened; bench/RESULTS.md).
MAX_VALUES = 64


class SnapshotMemo:
    """Values by name, each with the snapshot it is of (read-only: callers copy)."""

    def __init__(self) -> None:
        self._once: dict[Any, tuple[Scan, Any]] = {}       # `of`: the current snapshot's, least recent first
        self._carried: dict[Any, tuple[Scan, Any]] = {}    # `carried`: the last value of each name
        self._changes: tuple[Scan, Scan, set[str], bool] | None = None
        self._lock = threading.Lock()                      # sessions' script threads share the store

    def of(self, current: Scan, name: Any, compute: Callable[[Scan], T]) -> T:
        """`compute(current)`, worked out once per snapshot under `name`; at most MAX_VALUES kept, the
        least recently asked dropped first."""
        with self._lock:
            kept = self._once.pop(name, None)
            if kept is not None and kept[0] is current:
                self._once[name] = kept
                return kept[1]
            self._once = {key: value for key, value in self._once.items() if value[0] is current}   # older ones
        value = compute(current)            # outside the lock: a slow query must not hold up other pages
        with self._lock:
            self._once[name] = (current, value)
            while len(self._once) > MAX_VALUES:
                del self._once[next(iter(self._once))]
        return value

    def carried(self, current: Scan, name: Any, compute: Callable[[Scan], T],
                patch: Callable[[T, Scan, set[str], bool], T | None]) -> T:
        """`compute(current)`, or the value of the last snapshot asked, patched:
        `patch(value, current, the runs changed since, whether the same runs are shown)`, None
        when it cannot be patched (then computed)."""
        kept = self._carried.get(name)
        if kept is not None and kept[0] is current:
            return kept[1]
        value = None
        if kept is not None:
            changed, same = self.changes(kept[0], current)
            value = patch(kept[1], current, changed, same)
        if value is None:
            value = compute(current)
        self._carried[name] = (current, value)
        return value

    def changes(self, before: Scan, after: Scan) -> tuple[set[str], bool]:
        """`changed_runs` between two snapshots, worked out once per pair."""
        if self._changes is None or self._changes[0] is not before or self._changes[1] is not after:
            self._changes = (before, after, *changed_runs(before, after))
        return self._changes[2], self._changes[3]
