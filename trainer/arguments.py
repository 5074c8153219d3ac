"""Exit statuses and argument types shared by the `trainer` verbs (trainer.cli, trainer.sweep_command).

An argument type raises argparse.ArgumentTypeError naming what was given and what is allowed;
argparse prints it as one line and exits 2.
"""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT = 0, 1, 2
RAY_MODES = ("auto", "shared", "ship")   # `trainer sweep --ray-mode`: trainer.ray_pool's AUTO, SHARED, SHIP
MAX_SECONDS = 7 * 24 * 3600   # a week: far beyond any query or progress interval, within every timer's range


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: a whole number >= 1")
    return value


def _seconds(text: str, zero_allowed: bool, allowed: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 <= value if zero_allowed else 0 < value) or not value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {allowed}")
    return value


def positive_seconds(text: str) -> float:
    return _seconds(text, zero_allowed=False, allowed=f"seconds > 0, at most {MAX_SECONDS} (a week)")


def limit_seconds(text: str) -> float:
    return _seconds(text, zero_allowed=True, allowed=f"seconds from 0 to {MAX_SECONDS} (a week; 0: no limit)")


def size(text: str) -> int:
    from ibstore.sandbox import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
