"""Declarative estimator params: defaults, validation and canonical (JSON-ready) values.

Each estimator module lists its params as `Param`s. `resolver(specs)` turns such a
list into the function that `trainer.estimators.canonical` calls: it rejects unknown
params, fills defaults and converts every value to one canonical JSON-serialisable
form (so `{"bin_size": 1}` and `{"bin_size": 1.0}` compare equal).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from trainer.estimators.errors import EstimatorError

AUTO = "auto"


@dataclass(frozen=True)
class Param:
    """One param: its default, what is allowed (in words) and its converter.

    `convert` returns the canonical value, or raises ValueError/TypeError when the
    value is not allowed.
    """

    default: Any
    allowed: str
    convert: Callable[[Any], Any]


def resolver(specs: Mapping[str, Param]) -> Callable[[str, Mapping[str, Any]], dict[str, Any]]:
    """The canonical-params function of an estimator with these param specs."""

    def resolve(estimator: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        reject_unknown(estimator, raw, specs)
        return {key: convert(estimator, key, raw.get(key, spec.default), spec) for key, spec in specs.items()}

    return resolve


def reject_unknown(estimator: str, raw: Mapping[str, Any], allowed: Mapping[str, Any]) -> None:
    """Raise EstimatorError naming the first param of `raw` that is not in `allowed`."""
    for key in raw:
        if key not in allowed:
            raise EstimatorError(f"estimator {estimator!r}: unknown param {key!r}; "
                                 f"allowed params: {', '.join(allowed)}")


def convert(estimator: str, key: str, value: Any, spec: Param) -> Any:
    """`spec.convert(value)`, with a failure reported as param, value and what is allowed."""
    try:
        return spec.convert(value)
    except (TypeError, ValueError):
        raise EstimatorError(f"estimator {estimator!r}: param {key!r} = {value!r} is not allowed; "
                             f"must be {spec.allowed}") from None


def as_number(value: Any) -> float:
    """A finite real number (not a bool) as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(value)
    return float(value)


def as_integer(value: Any) -> int:
    """An integral number (not a bool; 30.0 counts as 30) as an int."""
    number = as_number(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def positive_number(default: float) -> Param:
    def convert_value(value: Any) -> float:
        number = as_number(value)
        if number <= 0:
            raise ValueError(value)
        return number

    return Param(default, "a number > 0", convert_value)


def non_negative_number(default: float, high: float = math.inf) -> Param:
    """A number from 0 to `high` (a bound where a larger value overflows the estimate, e.g. ksg's jitter)."""
    def convert_value(value: Any) -> float:
        number = as_number(value)
        if not 0 <= number <= high:
            raise ValueError(value)
        return number

    return Param(default, "a number >= 0" if math.isinf(high) else f"a number from 0 to {high:g}", convert_value)


def integer_between(low: int, high: int, default: int) -> Param:
    def convert_value(value: Any) -> int:
        number = as_integer(value)
        if not low <= number <= high:
            raise ValueError(value)
        return number

    return Param(default, f"an integer from {low} to {high}", convert_value)
