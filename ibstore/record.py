"""One run's record (run.json): the typed contract between the writer and every reader.

The trainer writes run.json only through `RunRecord.to_json_bytes`; the scan reads it
only through `RunRecord.from_json_bytes`, which refuses anything a hostile or damaged
file could use to crash or stall a reader (huge files, deep nesting, integers beyond
int64, NaN/Infinity, wrong types) with a `RecordError` naming what is wrong.
"""

from __future__ import annotations

import enum
import itertools
import json
import math
import re
from datetime import datetime, timezone
from typing import Any

import pydantic
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 2   # 2: final_* metrics, dead_network / diverged flags, typed status

MAX_RECORD_BYTES = 1 << 20   # 1 MiB: a real run.json is a few kB
MAX_DEPTH = 64               # arrays/objects inside each other; configs nest 3 or 4 deep
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
SEED_MAX = (1 << 32) - 1     # numpy's seed range

# A JSON string literal (with escapes), removed before counting brackets for the depth.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


class Status(str, enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    DIVERGED = "diverged"

    def __str__(self) -> str:   # f-strings and print show "completed", not "Status.COMPLETED"
        return self.value


class RecordError(ValueError):
    """A run.json that cannot be used; the message names the field, the problem and what is allowed."""


class RunRecord(BaseModel):
    """run.json (DESIGN.md, "Results root"). Unknown extra keys are kept, so a newer
    writer's additions survive a rewrite by an older one."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    run_id: str
    group_id: str | None = None
    name: str | None = None
    cohort: str | None = None
    config: dict[str, Any] = {}
    seed: int | None = Field(default=None, ge=0, le=SEED_MAX)
    split_seed: int | None = None
    status: Status
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    epochs_done: int | None = Field(default=None, ge=0)
    epochs_total: int | None = Field(default=None, ge=0)
    versions: dict[str, str | None] = {}
    host: str | None = None
    pid: int | None = None
    ignored_keys: list[str] = []
    schema_version: int
    dead_network: bool | None = None
    dead_layers: list[int] | None = None    # hidden layers dead at the last logged epoch (trainer.health)
    diverged: bool | None = None
    final_train_accuracy: float | None = None
    final_test_accuracy: float | None = None
    final_train_loss: float | None = None
    final_test_loss: float | None = None
    best_test_accuracy: float | None = None

    @field_validator("started_at", "finished_at", "heartbeat_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Always tz-aware and in UTC, so any two times compare; a naive time is taken as UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        try:
            return value.astimezone(timezone.utc)
        except OverflowError:
            raise ValueError("time is outside the years 1..9999 once converted to UTC") from None

    @field_validator("final_train_accuracy", "final_test_accuracy", "final_train_loss",
                     "final_test_loss", "best_test_accuracy")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        """A diverged run's loss is NaN or infinite; JSON cannot hold that, so it is stored as null
        (the `diverged` flag says why)."""
        return value if value is None or math.isfinite(value) else None

    def to_json_bytes(self) -> bytes:
        """run.json's bytes; RecordError if they would exceed the limits `from_json_bytes` enforces."""
        try:
            data = self.model_dump_json(indent=1).encode()
        except pydantic_core.PydanticSerializationError as error:   # e.g. a lone surrogate in a string
            raise RecordError(f"run record cannot be written as JSON: {error}") from None
        _parse_limited(data)
        return data

    @classmethod
    def from_json_bytes(cls, data: bytes) -> RunRecord:
        """Parse and validate run.json; RecordError (never another exception) if it cannot be used."""
        raw = _parse_limited(data)
        if not isinstance(raw, dict):
            raise RecordError(f"run.json must hold a JSON object, not {_json_kind(raw)}")
        try:
            return cls.model_validate(raw)
        except pydantic.ValidationError as error:
            raise RecordError(_describe(error)) from None


def _parse_limited(data: bytes) -> Any:
    """json.loads with MAX_RECORD_BYTES, MAX_DEPTH, int64 and finite-number limits."""
    if len(data) > MAX_RECORD_BYTES:
        raise RecordError(f"run.json is {len(data)} bytes; at most {MAX_RECORD_BYTES} are read")
    depth = json_depth(data)
    if depth > MAX_DEPTH:
        raise RecordError(f"run.json nests arrays/objects {depth} deep; at most {MAX_DEPTH} are allowed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecordError(f"run.json is not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        value = json.loads(text, parse_int=_int64, parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise RecordError(f"run.json is not valid JSON ({error})") from None
    try:
        # A "\ud800" escape decodes to half a UTF-16 pair, which no UTF-8 consumer (Arrow,
        # DuckDB, a terminal) accepts: one such string would break every view of the root.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        bad = error.object[error.start:error.end]
        raise RecordError(f"run.json holds the escape {ascii(bad)[1:-1]}, half of a UTF-16 pair, "
                          f"not text") from None
    return value


def json_depth(data: bytes) -> int:
    """Deepest nesting of [ and { outside string literals (checked before json.loads, which
    would raise RecursionError on deep input)."""
    brackets = re.findall(rb"[\[\]{}]", _JSON_STRING.sub(b"", data))
    steps = (1 if b in (b"[", b"{") else -1 for b in brackets)
    return max(itertools.accumulate(steps, initial=0))


def _int64(text: str) -> int:
    # Length first: int() of a 100 000-digit literal raises ValueError (digit limit) or is slow.
    if len(text.lstrip("-")) > 19 or not INT64_MIN <= (value := int(text)) <= INT64_MAX:
        shown = text if len(text) <= 30 else f"{text[:12]}...({len(text)} digits)"
        raise RecordError(f"run.json holds the integer {shown}, outside the 64-bit range "
                          f"{INT64_MIN}..{INT64_MAX}")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise RecordError(f"run.json holds the number {text[:30]}, too large for a 64-bit float")
    return value


def _no_constant(name: str) -> float:
    raise RecordError(f"run.json holds {name}; NaN and Infinity are not JSON (use null)")


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def _describe(error: pydantic.ValidationError) -> str:
    """One line per wrong field: `field: what is wrong (got value)`."""
    lines = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "run.json"
        got = repr(item.get("input"))
        got = got if len(got) <= 60 else got[:57] + "..."
        message = item["msg"] if item["type"] == "missing" else f"{item['msg']} (got {got})"
        lines.append(f"{field}: {message}")
    return "run.json: " + "; ".join(lines)
