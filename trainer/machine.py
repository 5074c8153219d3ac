"""This machine's physical memory, which planning (config.memory) and data loading (datasets) check
what they are asked to hold against."""

from __future__ import annotations

import os


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this platform
        return None
