"""One run's record (run.json): the typed contract between the writer and every reader.

The trainer writes run.json only through `RunRecord.to_json_bytes`; the scan reads it
only through `RunRecord.from_json_bytes`, which refuses anything a hostile or damaged
file could use to crash or stall a reader (huge files, deep nesting, integers beyond
int64, NaN/Infinity, wrong types) with a `RecordError` naming what is wrong.
"""

from __future__ import annotations

import enum
import math
from datetime import datetime, timezone
from typing import Annotated, Any

import pydantic
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ibstore import strict_json
from ibstore.flatten import flatten
# Re-exported: ibstore.sandbox and ibstore.views import them from here.
from ibstore.strict_json import INT64_MAX, INT64_MIN, json_depth  # noqa: F401

SCHEMA_VERSION = 2   # 2: final_* metrics, dead_network / diverged flags, typed status

MAX_RECORD_BYTES = 1 << 20   # 1 MiB: a real run.json is a few kB
MAX_DEPTH = 64               # arrays/objects inside each other; configs nest 3 or 4 deep
SEED_MAX = (1 << 32) - 1     # numpy's and TensorFlow's seed range (trainer.config's too)
RECORD_LIMITS = strict_json.Limits(max_bytes=MAX_RECORD_BYTES, max_depth=MAX_DEPTH, int64=True)


class Status(str, enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    DIVERGED = "diverged"

    def __str__(self) -> str:   # f-strings and print show "completed", not "Status.COMPLETED"
        return self.value


# The flags a run carries (`trainer ls`, the explorer's badges): record field -> flag, set where the
# field is true; a run whose status is in FLAG_OF_STATUS carries that flag too, whatever its field says.
FLAGS = {"dead_network": "dead", "saturated_network": "saturated", "diverged": "diverged"}
FLAG_OF_STATUS = {Status.DIVERGED: "diverged"}


class RecordError(ValueError):
    """A run.json that cannot be used; the message names the field, the problem and what is allowed."""


class SplitFacts(BaseModel):
    """One split of a run's data: its number of inputs n, the plug-in entropy H(Y) of its labels and
    H(X) of its input rows, in bits. They bound a discrete estimate on that split
    (ibstore.phases.DISCRETE_ESTIMATORS): the plug-in I(X;T) = H(T) of n equally likely inputs is at
    most H(X), log2 n where no two rows are alike (inputs alike give alike activations), and I(Y;T)
    at most H(Y); the kde bounds' and EDGE's I(X;T) is at most H(X) too
    (ibstore.phases.I_XT_BOUNDED_ESTIMATORS). Runs written before h_x_bits have None: log2 n."""

    model_config = ConfigDict(extra="allow")

    inputs: int = Field(ge=0, le=INT64_MAX)
    h_y_bits: float = Field(ge=0, allow_inf_nan=False)
    h_x_bits: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    # inputs of each class 0..K-1 on the split (None before it was recorded): the majority class's share
    # is what a network that predicts one class scores (a dead network's accuracy)
    class_counts: list[Annotated[int, Field(ge=0, le=INT64_MAX)]] | None = None

    @model_validator(mode="after")
    def _entropies_within_their_bounds(self) -> SplitFacts:
        """H(X) of n rows is at most log2 n (an attacker's hand-edited 1e300 was taken as a ceiling;
        below it any value is possible, so a hand-edited 0 still reads every layer at its ceiling);
        class counts add up to n."""
        if self.h_x_bits is not None and self.h_x_bits > math.log2(max(self.inputs, 1)) + 1e-9:
            raise ValueError(f"h_x_bits {self.h_x_bits} exceeds log2 of the split's {self.inputs} inputs")
        if self.class_counts is not None and sum(self.class_counts) != self.inputs:
            raise ValueError(f"class_counts add up to {sum(self.class_counts)}, not the split's {self.inputs} inputs")
        return self


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
    saturated_network: bool | None = None   # not dead, a hidden layer saturated to the end (trainer.health)
    dead_layers: list[int] | None = None    # hidden layers dead at the last logged epoch (trainer.health)
    diverged: bool | None = None
    final_train_accuracy: float | None = None
    final_test_accuracy: float | None = None
    final_train_loss: float | None = None
    final_test_loss: float | None = None
    best_test_accuracy: float | None = None
    splits: dict[str, SplitFacts] | None = None     # train, test, full: set once the data is loaded
    data_sha256: str | None = None     # of the data trained on (trainer.datasets.Dataset.sha256), set with splits

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

    @field_validator("config")
    @classmethod
    def _flattens(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Every view reads a config flattened (ibstore.flatten): keys that flatten alike, which the
        trainer refuses, would show one value and hide the other."""
        flatten(value)
        return value

    @field_validator("final_train_accuracy", "final_test_accuracy", "final_train_loss",
                     "final_test_loss", "best_test_accuracy")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        """A diverged run's loss is NaN or infinite; JSON cannot hold that, so it is stored as null
        (the `diverged` flag says why)."""
        return value if value is None or math.isfinite(value) else None

    @field_validator("final_train_accuracy", "final_test_accuracy", "best_test_accuracy")
    @classmethod
    def _share(cls, value: float | None) -> float | None:
        """An accuracy is a share of the inputs: another value (1e308 took the Runs page's axes down)
        was not written by a trainer."""
        if value is not None and not 0 <= value <= 1:
            raise ValueError(f"an accuracy lies in [0, 1], not {value:g}")
        return value

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
    try:
        return strict_json.loads(data, "run.json", RECORD_LIMITS)
    except strict_json.JsonError as error:
        raise RecordError(str(error)) from None


def run_flags(record: RunRecord) -> list[str]:
    """The flags of one run (FLAGS, FLAG_OF_STATUS), in FLAGS' order."""
    return [flag for field, flag in FLAGS.items()
            if getattr(record, field) or FLAG_OF_STATUS.get(record.status) == flag]


def utc_now() -> datetime:
    """Now, in UTC, to the second: the times of run.json and of a sweep's progress file."""
    return datetime.now(timezone.utc).replace(microsecond=0)


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
        said = item["msg"].removeprefix("Value error, ")   # pydantic's prefix for our validators' words
        message = said if item["type"] == "missing" else f"{said} (got {got})"
        lines.append(f"{field}: {message}")
    return "run.json: " + "; ".join(lines)
