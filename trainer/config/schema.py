"""The canonical config of one run: its keys, their types and ranges, their defaults.

`ExperimentConfig` (pydantic) is the schema; `KNOWN_KEYS` every key a config file may hold
(the schema's, deep-bottleneck's that are accepted and dropped, and the naming ones).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ibstore.record import SEED_MAX
from trainer import datasets, estimators, schedule

ACTIVATIONS = ("tanh", "relu", "sigmoid", "softsign", "softplus", "leaky_relu",
               "hard_sigmoid", "selu", "relu6", "elu", "linear")
# Keras' clipped categorical cross-entropy on the softmax output (deep-bottleneck's and ibsgd's
# loss, the default), or the exact cross-entropy from the logits (trainer.model.cross_entropy).
LOSSES = ("keras_clipped", "exact")
# deep-bottleneck keys that change nothing here: accepted, reported, dropped.
IGNORED_KEYS = ("plotters", "plot_median", "regularization", "steps_per_epoch", "callbacks")
# Keys that name, group or document a run but do not change what it computes
# ("description" and "source": free text or JSON saying what a config reproduces and from where).
META_KEYS = ("name", "cohort", "description", "source")
FLOAT32_MAX = 3.4028234663852886e38   # np.finfo(np.float32).max
FLOAT32_TINY = 1.1754943508222875e-38  # np.finfo(np.float32).tiny: the smallest normal float32


class ConfigError(ValueError):
    """A config the trainer refuses; the message names key, value and what is allowed."""


class ExperimentConfig(BaseModel):
    """The canonical config of one run, typed. Units: learning_rate per step, epochs as passes.

    `model_dump()` is its JSON form: what run.json records and what the run id hashes."""

    # frozen: a validated config travels typed into the training loop and is never changed there.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    dataset: Literal[datasets.DATASETS] = "harmonics"  # type: ignore[valid-type]
    dataset_path: str | None = None
    label_column: str = "label"
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    split_seed: Annotated[int, Field(ge=0, le=SEED_MAX)] = 0
    model: Literal["feedforward", "feedforward_batchnorm"] = "feedforward"
    architecture: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] = [10, 7, 5, 4, 3]
    activation_fn: Literal[ACTIVATIONS] = "tanh"  # type: ignore[valid-type]
    initial_bias: float = 0.0
    kernel_init_stddev: Annotated[float, Field(gt=0)] | None = None  # None: 1/sqrt(units)
    max_norm_weights: Literal[False] | Annotated[float, Field(gt=0)] = False
    loss: Literal[LOSSES] = "keras_clipped"  # type: ignore[valid-type]
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    learning_rate: Annotated[float, Field(gt=0)] = 0.0004
    batch_size: Annotated[int, Field(ge=1)] | Literal["full"] = 256
    epochs: Annotated[int, Field(ge=1, le=schedule.MAX_EPOCHS)] = 8000
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)] = 0
    n_runs: Annotated[int, Field(ge=1)] = 1
    estimators: list[dict[str, Any]] = [{"name": "binning", "params": {"bin_size": 0.07}}]
    mi_splits: Annotated[list[Literal["train", "test", "full"]], Field(min_length=1)] = ["train", "test"]
    log_schedule: str | dict[str, int] = "default"
    stop_at_accuracy: Annotated[float, Field(gt=0, le=1)] | None = None
    histogram_bins: Annotated[int, Field(ge=2, le=1000)] = 30
    save_activations: bool = False
    save_checkpoints: bool = False

    @field_validator("estimators")
    @classmethod
    def _canonical_estimators(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not value:
            raise ValueError("at least one estimator is needed")
        resolved = []
        for entry in value:
            if not isinstance(entry, dict) or "name" not in entry or set(entry) - {"name", "params"}:
                raise ValueError(f"each estimator is {{'name': ..., 'params': {{...}}}}, got {entry!r}")
            name, params = estimators.canonical(entry["name"], entry.get("params") or {})
            if {"name": name, "params": params} in resolved:   # its mi rows were written twice
                raise ValueError(f"estimator {name} with params {params} is listed twice")
            resolved.append({"name": name, "params": params})
        return resolved

    @field_validator("log_schedule")
    @classmethod
    def _valid_schedule(cls, value: Any) -> Any:
        return schedule.validate_schedule(value)

    @field_validator("initial_bias", "kernel_init_stddev", "max_norm_weights", "learning_rate")
    @classmethod
    def _within_float32(cls, value: Any) -> Any:
        # The networks compute in float32: 1e300 would train as infinity and 1e-320 as 0 (XLA flushes
        # subnormals to zero) while run.json said 1e300 or 1e-320.
        if isinstance(value, float) and abs(value) > FLOAT32_MAX:
            raise ValueError(f"must be within float32's range, at most {FLOAT32_MAX:.4g} in size "
                             f"(the networks compute in float32)")
        if isinstance(value, float) and 0 < abs(value) < FLOAT32_TINY:
            raise ValueError(f"a value other than 0 must be at least {FLOAT32_TINY:.4g} in size, float32's "
                             f"smallest normal number (the networks compute in float32, where this would be 0)")
        return value

    @field_validator("mi_splits")
    @classmethod
    def _unique_splits(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


DEFAULTS: dict[str, Any] = ExperimentConfig().model_dump()
KNOWN_KEYS = tuple(DEFAULTS) + IGNORED_KEYS + META_KEYS + ("grid", "estimator", "discretization_range",
                                                          "calculate_mi_for")
