"""deep-bottleneck's configs read as ours: its key names, aliases and callbacks translated."""

from __future__ import annotations

from typing import Any

from trainer import datasets, estimators
from trainer.config.schema import IGNORED_KEYS, META_KEYS, ConfigError

MODEL_ALIASES = {"models.feedforward": "feedforward",
                 "models.feedforward_batchnorm": "feedforward_batchnorm"}
# deep-bottleneck's `calculate_mi_for`: the activations its estimators read (LoggingReporter)
MI_SPLITS_OF = {"full_dataset": ["full"], "training": ["train"], "test": ["test"]}


def translate_legacy(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """deep-bottleneck's keys and names to ours; returns (config, ignored keys with values)."""
    config = {k: v for k, v in raw.items() if k not in IGNORED_KEYS and k not in META_KEYS}
    ignored = {k: raw[k] for k in IGNORED_KEYS if k in raw}
    stop = _early_stopping_target(_ensure_callbacks(raw.get("callbacks")))
    if stop is not None:
        config.setdefault("stop_at_accuracy", stop)
        if not _other_callbacks(raw["callbacks"]):
            ignored.pop("callbacks")
    if isinstance(config.get("dataset"), str):
        config["dataset"] = datasets.ALIASES.get(config["dataset"], config["dataset"])
    if isinstance(config.get("model"), str):
        config["model"] = MODEL_ALIASES.get(config["model"], config["model"])
    if "calculate_mi_for" in config:
        if "mi_splits" in config:
            raise ConfigError("config has both 'mi_splits' and the legacy 'calculate_mi_for'; use 'mi_splits' only")
        legacy_splits = config.pop("calculate_mi_for")
        if not isinstance(legacy_splits, str) or legacy_splits not in MI_SPLITS_OF:
            raise ConfigError(f"config key 'calculate_mi_for' = {legacy_splits!r} (legacy key) is not allowed; "
                              f"must be one of {', '.join(map(repr, MI_SPLITS_OF))}")
        config["mi_splits"] = MI_SPLITS_OF[legacy_splits]
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


def _ensure_callbacks(callbacks: Any) -> list:
    """deep-bottleneck's `callbacks`: a list of names or [name, args] with args a list or an object."""
    if callbacks is None:
        return []
    entries_ok = isinstance(callbacks, list) and all(
        isinstance(entry, str) or (isinstance(entry, list) and entry and isinstance(entry[0], str)
                                   and (len(entry) < 2 or isinstance(entry[1], (list, dict))))
        for entry in callbacks)
    if not entries_ok:
        raise ConfigError(f"config key 'callbacks' = {callbacks!r} (legacy key) is not allowed; must be a list of "
                          "callback names or [name, args] with args a list or an object, as in deep-bottleneck")
    return callbacks


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
