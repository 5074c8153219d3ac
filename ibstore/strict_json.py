"""JSON parsing with limits, for files a user or another process wrote (run.json, config files).

`loads` refuses, with one JsonError line naming what is wrong and what is allowed, what
would crash or stall a reader or silently change a value: too many bytes, nesting deeper
than `max_depth` (json.loads would raise RecursionError), text that is not UTF-8, NaN and
Infinity (not JSON) and numbers beyond a float, optionally integers beyond int64 and
keys given twice (json.loads keeps the last one silently), and lone UTF-16 surrogates.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from functools import partial
from typing import Any

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

# A JSON string literal (with escapes), removed before counting brackets for the depth.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# The escape of a UTF-16 surrogate (\ud800-\udfff), or text that merely looks like one (an
# escaped backslash before "udxxx"): where none occurs, no string can hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class JsonError(ValueError):
    """Input that `loads` refuses; the message starts with what the caller called it."""


class NotJson(JsonError):
    """Not JSON text at all (a syntax error), as opposed to JSON beyond the limits."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int | None = None
    max_depth: int = 64
    int64: bool = False          # integers must fit in 64 bits (Arrow and DuckDB columns)
    unique_keys: bool = False    # an object may not name a key twice


def loads(data: bytes | str, what: str, limits: Limits = Limits()) -> Any:
    """json.loads within `limits`; `what` names the input in messages ("run.json", "config file 'x'")."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if limits.max_bytes is not None and len(raw) > limits.max_bytes:
        raise JsonError(f"{what} is {len(raw)} bytes; at most {limits.max_bytes} are read")
    # Nesting is never deeper than the number of brackets, so most inputs skip the exact count.
    depth = 0 if raw.count(b"[") + raw.count(b"{") <= limits.max_depth else json_depth(raw)
    if depth > limits.max_depth:
        raise JsonError(f"{what} nests lists or objects too deeply ({depth} deep; at most "
                        f"{limits.max_depth} are allowed)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonError(f"{what} is not UTF-8 text ({error.reason} at byte {error.start})") from None

    try:
        value = json.loads(text, parse_int=partial(_integer, what, limits.int64),
                           parse_float=partial(_number, what), parse_constant=partial(_constant, what),
                           object_pairs_hook=partial(_unique, what) if limits.unique_keys else None)
    except json.JSONDecodeError as error:
        raise NotJson(f"{what} is not valid JSON ({error})") from None
    if _SURROGATE_ESCAPE.search(raw) is None:
        return value
    try:
        # A "\ud800" escape decodes to half a UTF-16 pair, which no UTF-8 consumer (Arrow,
        # DuckDB, a terminal) accepts: one such string would break every view of the root.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        bad = error.object[error.start:error.end]
        raise JsonError(f"{what} holds the escape {ascii(bad)[1:-1]}, half of a UTF-16 pair, not text") from None
    return value


def _integer(what: str, int64: bool, literal: str) -> int:
    # Length first: int() of a 100 000-digit literal raises ValueError (digit limit) or is slow.
    if int64 and (len(literal.lstrip("-")) > 19 or not INT64_MIN <= int(literal) <= INT64_MAX):
        shown = literal if len(literal) <= 30 else f"{literal[:12]}...({len(literal)} digits)"
        raise JsonError(f"{what} holds the integer {shown}, outside the 64-bit range {INT64_MIN}..{INT64_MAX}")
    return int(literal)


def _number(what: str, literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):   # 1e999 parses as infinity
        raise JsonError(f"{what} is not valid JSON: the number {literal[:30]} is too large for a 64-bit float")
    if value == 0 and any(digit in "123456789" for digit in literal.lower().split("e")[0]):
        # 1e-400 parses as 0: a bias "1e-400" trained (and was named) as bias 0, whose runs it reused
        raise JsonError(f"{what} is not valid JSON here: the number {literal[:30]} is too small for a 64-bit "
                        f"float (it would be read as 0)")
    return value


def _constant(what: str, name: str) -> float:
    raise JsonError(f"{what} is not valid JSON: it holds {name} (NaN and Infinity are refused; use null)")


def _unique(what: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise JsonError(f"{what} holds the key {key!r} twice; each key may appear once in an object")
        seen.add(key)
    return dict(pairs)


def json_depth(data: bytes) -> int:
    """Deepest nesting of [ and { outside string literals."""
    brackets = re.findall(rb"[\[\]{}]", _JSON_STRING.sub(b"", data))
    steps = (1 if b in (b"[", b"{") else -1 for b in brackets)
    return max(itertools.accumulate(steps, initial=0))
