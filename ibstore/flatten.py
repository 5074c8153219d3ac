"""Nested configs as flat, dotted keys: {"a": {"b": 1}} -> {"a.b": 1}.

Lists stay whole (one key, the list as its value); an empty dict stays a value
so that no key disappears.
"""

from __future__ import annotations

from typing import Any


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, prefix=f"{dotted}."))
        else:
            flat[dotted] = value
    return flat
