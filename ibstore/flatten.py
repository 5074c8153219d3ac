"""Nested configs as flat, dotted keys: {"a": {"b": 1}} -> {"a.b": 1}.

Lists stay whole (one key, the list as its value); an empty dict stays a value
so that no key disappears. Two keys that flatten alike ({"a.b": 1, "a": {"b": 2}})
are refused: one would silently hide the other.
"""

from __future__ import annotations

from typing import Any


class FlattenCollision(ValueError):
    """Two keys of a config flatten to one dotted key."""


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`config` with nested keys dotted.

    >>> flatten({"a": {"b": 1}, "c": [1, 2], "d": {}})
    {'a.b': 1, 'c': [1, 2], 'd': {}}
    >>> flatten({"a.b": 1, "a": {"b": 2}})
    Traceback (most recent call last):
    ...
    ibstore.flatten.FlattenCollision: two config keys flatten to 'a.b' (a dotted key and a nested one); give it once
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        nested = flatten(value, prefix=f"{dotted}.") if isinstance(value, dict) and value else {dotted: value}
        if same := sorted(flat.keys() & nested.keys()):
            raise FlattenCollision(f"two config keys flatten to {same[0]!r} (a dotted key and a nested one); "
                                   f"give it once")
        flat.update(nested)
    return flat
