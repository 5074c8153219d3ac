"""Experiment configs: load, override, expand grids, validate, name.

A config is plain data (a dict). `resolve` turns what a user wrote (our keys or
deep-bottleneck's) into the canonical, fully defaulted config that a run
records in run.json and that identifies it (`run_id`). `plan` turns a raw
config into typed `Experiment`s, each checked to fit in this machine's memory.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ibstore import strict_json

from trainer import datasets, estimators, schedule

ACTIVATIONS = ("tanh", "relu", "sigmoid", "softsign", "softplus", "leaky_relu",
               "hard_sigmoid", "selu", "relu6", "elu", "linear")
# Keras' clipped categorical cross-entropy on the softmax output (deep-bottleneck's and ibsgd's
# loss, the default), or the exact cross-entropy from the logits (trainer.model.cross_entropy).
LOSSES = ("keras_clipped", "exact")
MODEL_ALIASES = {"models.feedforward": "feedforward",
                 "models.feedforward_batchnorm": "feedforward_batchnorm"}

# deep-bottleneck keys that change nothing here: accepted, reported, dropped.
IGNORED_KEYS = ("plotters", "plot_median", "regularization", "steps_per_epoch", "callbacks")
# Keys that name, group or document a run but do not change what it computes
# ("description" and "source": free text or JSON saying what a config reproduces and from where).
META_KEYS = ("name", "cohort", "description", "source")


SEED_MAX = 2**32 - 1  # numpy's and TensorFlow's seed range

# Inputs (train + test), features and classes of the built-in datasets, for the memory
# estimate before anything is loaded ("file" datasets are only known once read).
DATASET_SHAPES = {"harmonics": (4096, 12, 2), "harmonics_zero_mean": (4096, 12, 2),
                  "mnist": (70000, 784, 10), "fashion_mnist": (70000, 784, 10)}
OPTIMIZER_SLOTS = {"adam": 2, "rmsprop": 1, "sgd": 0}  # per-weight state kept by each optimizer


class ConfigError(ValueError):
    """A config the trainer refuses; the message names key, value and what is allowed."""


class ExperimentConfig(BaseModel):
    """The canonical config of one run. Units: learning_rate per step, epochs as passes."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

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
    epochs: Annotated[int, Field(ge=1)] = 8000
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
            resolved.append({"name": name, "params": params})
        return resolved

    @field_validator("log_schedule")
    @classmethod
    def _valid_schedule(cls, value: Any) -> Any:
        return schedule.validate_schedule(value)

    @field_validator("mi_splits")
    @classmethod
    def _unique_splits(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


DEFAULTS: dict[str, Any] = ExperimentConfig().model_dump()
KNOWN_KEYS = tuple(DEFAULTS) + IGNORED_KEYS + META_KEYS + ("grid", "estimator", "discretization_range")


# Configs nest 3 or 4 deep; a key given twice is refused rather than the last one silently winning.
CONFIG_LIMITS = strict_json.Limits(max_bytes=1 << 20, unique_keys=True)


def parse_json(data: bytes, what: str) -> Any:
    """strict_json.loads with CONFIG_LIMITS: NaN, Infinity, numbers beyond a float, deep
    nesting and repeated keys are refused (strict_json.JsonError)."""
    return strict_json.loads(data, what, CONFIG_LIMITS)


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON config file; `name` defaults to the file's stem."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config path {str(path)!r} is a folder, not a config file "
                          f"(`trainer sweep` takes a folder of configs)")
    what = f"config file {str(path)!r}"
    try:
        raw = parse_json(path.read_bytes(), what)
    except FileNotFoundError:
        raise ConfigError(f"{what} does not exist") from None
    except OSError as error:
        raise ConfigError(f"{what} cannot be read: {error.strerror or error}") from None
    except strict_json.JsonError as error:
        raise ConfigError(str(error)) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a JSON object, got {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    return raw


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` from `--set`; the value is JSON if it parses, else a string.

    `architecture=[10,7,5]` gives a list, `initial_bias=-0.5` a float,
    `activation_fn=relu` the string "relu".
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set initial_bias=-0.5")
    try:
        return key.strip(), parse_json(value.encode("utf-8", "surrogatepass"), f"--set {text!r}")
    except strict_json.NotJson:
        return key.strip(), value
    except strict_json.JsonError as error:
        raise ConfigError(str(error)) from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of `raw` with each `--set KEY=VALUE` applied; dotted keys reach into dicts."""
    result = json.loads(json.dumps(raw))
    for text in overrides:
        key, value = parse_override(text)
        *parents, leaf = key.split(".")
        target = result
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is not a mapping")
        target[leaf] = value
    return result


def expand(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """One raw config per grid combination (`grid` maps keys to lists of values)."""
    grid = raw.get("grid")
    if grid is None:
        return [raw]
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"config key 'grid' = {grid!r} is not allowed; must map config keys to lists of values")
    for key, values in grid.items():
        if key not in KNOWN_KEYS or key in ("grid",):
            raise ConfigError(f"grid key {key!r} is not a config key; allowed: {', '.join(DEFAULTS)}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid key {key!r} = {values!r} is not allowed; must be a non-empty list of values")
    base = {k: v for k, v in raw.items() if k != "grid"}
    combos = []
    for values in itertools.product(*grid.values()):
        assignment = dict(zip(grid, values))
        label = ", ".join(f"{k}={json.dumps(v)}" for k, v in assignment.items())
        combos.append({**base, **assignment, "name": f"{base.get('name', 'run')}[{label}]",
                       "cohort": base.get("cohort") or base.get("name")})
    return combos


def _translate_legacy(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """deep-bottleneck's keys and names to ours; returns (config, ignored keys with values)."""
    config = {k: v for k, v in raw.items() if k not in IGNORED_KEYS and k not in META_KEYS}
    ignored = {k: raw[k] for k in IGNORED_KEYS if k in raw}
    stop = _early_stopping_target(raw.get("callbacks"))
    if stop is not None:
        config.setdefault("stop_at_accuracy", stop)
        if not _other_callbacks(raw["callbacks"]):
            ignored.pop("callbacks")
    if isinstance(config.get("dataset"), str):
        config["dataset"] = datasets.ALIASES.get(config["dataset"], config["dataset"])
    if isinstance(config.get("model"), str):
        config["model"] = MODEL_ALIASES.get(config["model"], config["model"])
    if "estimator" in config or "discretization_range" in config:
        if "estimators" in config:
            raise ConfigError("config has both 'estimators' and the legacy 'estimator'/'discretization_range'; "
                              "use 'estimators' only")
        legacy_name = config.pop("estimator", "binning")
        legacy_range = config.pop("discretization_range", None)
        try:
            estimators.canonical(legacy_name, {})
        except estimators.EstimatorError as error:
            raise ConfigError(f"config key 'estimator' = {legacy_name!r} (legacy key): {error}") from None
        try:
            name, params = estimators.canonical(legacy_name, {}, discretization_range=legacy_range)
        except estimators.EstimatorError as error:
            raise ConfigError(f"config key 'discretization_range' = {legacy_range!r} (legacy key, with estimator "
                              f"{legacy_name!r}): {error}") from None
        config["estimators"] = [{"name": name, "params": params}]
    if isinstance(config.get("max_norm_weights"), int) and not isinstance(config["max_norm_weights"], bool):
        config["max_norm_weights"] = float(config["max_norm_weights"])
    for key in ("initial_bias", "learning_rate", "test_fraction", "stop_at_accuracy", "kernel_init_stddev"):
        if isinstance(config.get(key), int) and not isinstance(config[key], bool):
            config[key] = float(config[key])
    return config, ignored


def _is_early_stopping(entry: Any) -> bool:
    name = entry[0] if isinstance(entry, list) and entry else entry
    return isinstance(name, str) and name.endswith("earlystopping_manual")


def _early_stopping_target(callbacks: Any) -> float | None:
    """Target accuracy of deep-bottleneck's `callbacks.earlystopping_manual`, if configured."""
    for entry in callbacks or []:
        if _is_early_stopping(entry):
            args = entry[1] if isinstance(entry, list) and len(entry) > 1 else {}
            values = args.values() if isinstance(args, dict) else args
            numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            return numbers[0] if numbers else None
    return None


def _other_callbacks(callbacks: Any) -> list:
    return [entry for entry in callbacks or [] if not _is_early_stopping(entry)]


def resolve(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate one (grid-free) raw config; returns (canonical config, ignored keys).

    Raises ConfigError naming the key, the value and what is allowed.
    """
    unknown = [k for k in raw if k not in KNOWN_KEYS]
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r} (value {raw[unknown[0]]!r}); "
                          f"allowed keys: {', '.join(sorted(KNOWN_KEYS))}")
    if "grid" in raw:
        raise ConfigError("a grid config expands to several runs: use 'trainer sweep' or expand() first")
    config, ignored = _translate_legacy(raw)
    try:
        model = ExperimentConfig(**config)
    except ValidationError as error:
        raise ConfigError(_describe(error, config)) from None
    except (estimators.EstimatorError, schedule.ScheduleError) as error:
        raise ConfigError(str(error)) from None
    resolved = model.model_dump()
    if resolved["dataset"] != "file" and resolved["dataset"] not in ("mnist", "fashion_mnist") \
            and resolved["dataset_path"] is not None:
        raise ConfigError(f"config key 'dataset_path' = {resolved['dataset_path']!r} is only allowed "
                          f"for dataset 'file', 'mnist' or 'fashion_mnist'")
    if resolved["dataset"] == "file" and not resolved["dataset_path"]:
        raise ConfigError("dataset 'file' needs config key 'dataset_path' (a .npz, .parquet or .csv file)")
    return resolved, ignored


def _describe(error: ValidationError, config: dict[str, Any]) -> str:
    """The first bad key as 'config key K = V is not allowed: <what is allowed>'.

    A union (e.g. batch_size: a number or "full") fails once per member; their
    messages are joined with "or"."""
    problems = error.errors()
    key = str(problems[0]["loc"][0])
    if problems[0]["type"] == "extra_forbidden":
        return f"unknown config key {key!r}; allowed keys: {', '.join(sorted(KNOWN_KEYS))}"
    # List positions stay in the name (architecture.1); union member tags do not.
    where = ".".join([key] + [str(p) for p in problems[0]["loc"][1:] if isinstance(p, int)])
    details = dict.fromkeys(p["msg"].removeprefix("Value error, ") for p in problems if p["loc"][0] == key)
    return f"config key {where!r} = {config.get(key)!r} is not allowed: {' or '.join(details)}"


def config_hash(config: dict[str, Any]) -> str:
    """8 hex digits of the canonical config without seed and n_runs (same experiment, same hash)."""
    identity = {k: v for k, v in config.items() if k not in ("seed", "n_runs")}
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]


def slug(name: str) -> str:
    """Lower-case letters, digits and dashes; a minus sign becomes "m" so bias=-1 and bias=1 differ."""
    signed = re.sub(r"(?<![a-z0-9])-(?=\d)", "m", name.lower())
    return re.sub(r"[^a-z0-9]+", "-", signed).strip("-")[:48] or "run"


def group_id(name: str, config: dict[str, Any]) -> str:
    """Runs of the same experiment that differ only in seed share this id."""
    return f"{slug(name)}-{config_hash(config)}"


def run_id(name: str, config: dict[str, Any], seed: int) -> str:
    """Short, stable, readable: `<name slug>-<config hash>-s<seed>`."""
    return f"{group_id(name, config)}-s{seed}"


def seeds(config: dict[str, Any]) -> list[int]:
    """deep-bottleneck's n_runs: seeds seed, seed+1, ..., seed+n_runs-1."""
    return [config["seed"] + i for i in range(config["n_runs"])]


@dataclass(frozen=True)
class Experiment(Mapping):
    """One experiment: a validated canonical config and the seeds to train, as planned.

    Also readable as a mapping (experiment["config"], .get("cohort")), the form the
    training loop was written against."""

    name: str
    cohort: str | None
    config: dict[str, Any]          # canonical: resolve()'s output, never a raw config
    ignored: dict[str, Any]         # keys accepted but meaningless here, with their values
    seeds: tuple[int, ...]

    def run_id(self, seed: int) -> str:
        return run_id(self.name, self.config, seed)

    @property
    def run_ids(self) -> list[str]:
        return [self.run_id(seed) for seed in self.seeds]

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def plan(raw: dict[str, Any]) -> list[Experiment]:
    """Every experiment of a raw config (grid expanded), validated before anything runs."""
    experiments = []
    for combo in expand(raw):
        for key in ("name", "cohort"):
            value = combo.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"config key {key!r} = {value!r} is not allowed: must be a non-empty string")
        config, ignored = resolve(combo)
        if config["seed"] + config["n_runs"] - 1 > SEED_MAX:
            raise ConfigError(f"config keys 'seed' = {config['seed']} and 'n_runs' = {config['n_runs']} are not "
                              f"allowed together: seeds run up to seed + n_runs - 1, at most {SEED_MAX}")
        check_memory(config)
        experiments.append(Experiment(combo.get("name", "run"), combo.get("cohort"), config, ignored,
                                      tuple(seeds(config))))
    return experiments


# Measured, not derived: peak RSS of `trainer run data/configs/basic.json --set architecture=[W]
# --set epochs=1` was 6.2, 11.7 and 22.6 GB for W = 25,000, 50,000 and 100,000 units, i.e. about
# 53 bytes per activation value (input x unit) of one network. The terms of memory_estimate
# below the constant count 25 of them; the rest are the temporaries of a logged epoch's
# histograms, per-neuron statistics and MI (float64 copies, masks, bin codes; tracemalloc: 2.4
# and 2.1 GiB at W = 25,000) and TensorFlow's buffers for the evaluation with every layer.
LOGGED_EPOCH_BYTES_PER_VALUE = 28
TENSORFLOW_RUNTIME_BYTES = 800 * 2**20     # the process with TensorFlow loaded, before any model
# An experiment may plan on this share of physical memory: the system, the explorer, other
# workers and the allocator's slack need the rest.
MEMORY_SHARE = 0.8


def memory_estimate(config: dict[str, Any]) -> int | None:
    """Bytes one experiment needs (all its seeds trained stacked), or None if its dataset's
    size is unknown before loading (dataset "file").

    Per network, float32: the weights W (P values) with their gradient, the two gradient
    sums of the gradient statistics and a host copy at logged epochs (5 P), plus the
    optimizer's per-weight state (Adam 2 P, RMSprop P); every layer's activations on all
    N inputs at logged epochs, on the device and as a host copy (2 N U, U = units of all
    layers); a minibatch's activations for the forward and backward pass (3 B U); and the
    temporaries of a logged epoch's summaries, which are computed for every network at once
    (LOGGED_EPOCH_BYTES_PER_VALUE x N x the widest layer, measured). Once per experiment:
    one layer's activations in float64 plus their bin codes for the MI estimate
    (16 N max-units) and TensorFlow itself. Within 1 % of the measured peaks above.
    """
    shape = DATASET_SHAPES.get(config["dataset"])
    if shape is None:
        return None
    n_inputs, n_features, n_classes = shape
    widths = [n_features, *config["architecture"], n_classes]
    params = sum(a * b + b for a, b in zip(widths, widths[1:]))
    units, widest = sum(widths[1:]), max(widths[1:])
    n_train = n_inputs - int(n_inputs * config["test_fraction"])
    batch = n_train if config["batch_size"] == "full" else min(config["batch_size"], n_train)
    per_network = (4 * ((5 + OPTIMIZER_SLOTS[config["optimizer"]]) * params + 2 * n_inputs * units
                        + 3 * batch * units)
                   + LOGGED_EPOCH_BYTES_PER_VALUE * n_inputs * widest)
    return config["n_runs"] * per_network + 16 * n_inputs * widest + TENSORFLOW_RUNTIME_BYTES


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this platform
        return None


def check_memory(config: dict[str, Any]) -> None:
    """Refuse, before anything is written, an experiment that cannot fit in this machine's memory."""
    needed, physical = memory_estimate(config), physical_memory()
    if needed is not None and physical is not None and needed > MEMORY_SHARE * physical:
        raise ConfigError(
            f"config key 'architecture' = {config['architecture']} with {config['n_runs']} seed(s) on "
            f"{config['dataset']} needs about {needed / 2**30:.1f} GiB of memory (weights, optimizer state and "
            f"every layer's activations on all inputs), more than this machine's {MEMORY_SHARE:.0%} of "
            f"{physical / 2**30:.1f} GiB; use fewer or narrower layers, or fewer seeds (n_runs)")
