"""Validation: one (grid-free) raw config to the typed canonical config a run records and is named by."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import ValidationError

from ibstore.text import cut
from trainer import estimators, schedule
from trainer.config.legacy import translate_legacy
from trainer.config.schema import KNOWN_KEYS, ConfigError, ExperimentConfig

# of a message an estimator's or schedule's check wrote with the value in it (an attacker's 5,000
# characters were printed whole)
MAX_MESSAGE_CHARS = 1000


def validate(raw: dict[str, Any]) -> tuple[ExperimentConfig, dict[str, Any]]:
    """Validate one (grid-free) raw config; returns (the typed canonical config, ignored keys).

    Raises ConfigError naming the key, the value and what is allowed.
    """
    unknown = [k for k in raw if k not in KNOWN_KEYS]
    if unknown:
        raise ConfigError(_unknown_key(unknown[0], f" (value {cut(repr(raw[unknown[0]]))})"))
    if "grid" in raw:
        raise ConfigError("a grid config expands to several runs: use 'trainer sweep' or expand() first")
    config, ignored = translate_legacy(raw)
    try:
        typed = ExperimentConfig(**config)
    except ValidationError as error:
        raise ConfigError(_describe(error, config)) from None
    except (estimators.EstimatorError, schedule.ScheduleError) as error:
        raise ConfigError(cut(str(error), MAX_MESSAGE_CHARS)) from None
    if typed.dataset not in ("file", "mnist", "fashion_mnist") and typed.dataset_path is not None:
        raise ConfigError(f"config key 'dataset_path' = {cut(repr(typed.dataset_path))} is only allowed "
                          f"for dataset 'file', 'mnist' or 'fashion_mnist'")
    if typed.dataset == "file" and not typed.dataset_path:
        raise ConfigError("dataset 'file' needs config key 'dataset_path' (a .npz, .parquet or .csv file)")
    return typed, ignored


def resolve(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`validate`, the config in its JSON form (as run.json records it and the run id hashes it)."""
    typed, ignored = validate(raw)
    return typed.model_dump(), ignored


def _describe(error: ValidationError, config: dict[str, Any]) -> str:
    """The first bad key as 'config key K = V is not allowed: <what is allowed>'.

    A union (e.g. batch_size: a number or "full") fails once per member; their
    messages are joined with "or"."""
    problems = error.errors()
    key = str(problems[0]["loc"][0])
    if problems[0]["type"] == "extra_forbidden":
        return _unknown_key(key)
    # List positions stay in the name (architecture.1), with that item's value; union member tags do not.
    positions = [p for p in problems[0]["loc"][1:] if isinstance(p, int)]
    where = ".".join([key] + [str(p) for p in positions])
    value = problems[0]["input"] if positions else config.get(key)
    details = dict.fromkeys(cut(p["msg"].removeprefix("Value error, "), MAX_MESSAGE_CHARS)
                            for p in problems if p["loc"][0] == key)
    return f"config key {cut(repr(where))} = {cut(repr(value))} is not allowed: {' or '.join(details)}"


def _unknown_key(key: str, value: str = "") -> str:
    """"unknown config key 'initial_bais' (value 0.2): did you mean 'initial_bias'? allowed keys: ...",
    or without a close key "unknown config key 'x'; allowed keys: ..."."""
    close = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1)
    said = f"unknown config key {cut(repr(key))}{value}" + (f": did you mean {close[0]!r}?" if close else ";")
    return f"{said} allowed keys: {', '.join(sorted(KNOWN_KEYS))}"
