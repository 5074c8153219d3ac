"""Which config keys differ among runs, and how to name a run by them.

Per key, not per value (deep-bottleneck compared sets of stringified values
across all keys at once, so keys whose values coincided were mislabelled).
Nested dicts are dotted keys; lists compare whole; a key missing from some
configs varies; numbers compare by value (1 == 1.0) but booleans are not
numbers. The seed is left out (runs that differ only in seed are repeats)
and reported by `varying_seed`; so are the launch settings (`LAUNCH_SETTINGS`: how
many seeds were started together, what was saved beside the results), which say
how a run was started or stored, not what network it trained.

Shared by the explorer (panel titles, the Config page) and `trainer ls` (a name's runs told
apart); `explorer.configdiff` is the public name for it (DESIGN.md).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from ibstore.flatten import flatten

__all__ = ["flatten", "varying_keys", "varying_flat_keys", "varying_seed", "format_config", "format_value", "short_value",
           "labels", "told_apart", "common_config_with_var", "differing_keys", "varying_of_values", "same_networks",
           "comparable", "VAR", "SEED_KEY", "LAUNCH_SETTINGS", "MEASUREMENT_SETTINGS", "DATA_KEYS"]

SEED_KEY = "seed"
# config keys that are no property of a run: `n_runs` counts the seeds launched with it (seed 3
# of n_runs=5 is the same network as seed 3 launched alone), the save_* keys choose what is
# stored beside the results. Two runs that differ only in these are the same experiment
# (trainer/config.py's group hash leaves out n_runs for the same reason).
LAUNCH_SETTINGS = frozenset({"n_runs", "save_activations", "save_checkpoints"})
# config keys that choose what a run measures and when, not the network it trains: its weights are
# the same whatever they are (trainer's equality tests: many epochs per call equal one; an
# attacker trained one config with histogram_bins 30 and 50 to the same loss, bit for bit)
MEASUREMENT_SETTINGS = frozenset({"estimators", "mi_splits", "histogram_bins", "log_schedule"})
# config keys that choose the data a run trains on and its split: configs with equal values train on
# the same data (trainer.config.data_key), whose SHA-256 a run records (RunRecord.data_sha256)
DATA_KEYS = ("dataset", "dataset_path", "label_column", "test_fraction", "split_seed")
VAR = "<var>"
_MISSING = object()


def varying_keys(configs: list[dict[str, Any]], *, with_settings: bool = False) -> list[str]:
    """Sorted dotted keys whose values are not the same in every config: the seed left out, and the
    launch settings (LAUNCH_SETTINGS) unless `with_settings`."""
    return varying_flat_keys([flatten(config) for config in configs], with_settings=with_settings)


def varying_flat_keys(flats: list[dict[str, Any]], *, with_settings: bool = False) -> list[str]:
    """`varying_keys` of configs already flattened."""
    keys = sorted(set().union(*flats)) if flats else []
    return [key for key in keys if key not in _skipped(with_settings) and _varies(flats, key)]


def varying_of_values(distinct: dict[str, list[Any]], partial: set[str]) -> list[str]:
    """`varying_flat_keys` (launch settings left out) from each key's distinct values over the configs
    (`distinct`) and the keys some configs lack (`partial`), instead of from every config (explorer.root_configs)."""
    return [key for key in sorted(distinct) if key not in _skipped(with_settings=False)
            and len({comparable(v) for v in distinct[key]} | ({_MISSING} if key in partial else set())) > 1]


def _skipped(with_settings: bool) -> set[str]:
    return {SEED_KEY} | (set() if with_settings else LAUNCH_SETTINGS)


def varying_seed(configs: list[dict[str, Any]]) -> bool:
    return _varies([flatten(config) for config in configs], SEED_KEY)


# Scalars of these types equal to another of the same type are the same value under comparable
# (NaN is unequal to itself and takes the full comparison).
_PLAIN = (str, int, float, type(None))


def _varies(flats: list[dict[str, Any]], key: str) -> bool:
    first = flats[0].get(key, _MISSING) if flats else _MISSING
    if type(first) in _PLAIN and all(type(v) is type(first) and v == first
                                     for v in (flat.get(key, _MISSING) for flat in flats)):
        return False   # one value everywhere: the common case, decided without comparable (100,000 runs)
    return len({comparable(flat[key]) if key in flat else _MISSING for flat in flats}) > 1


def same_networks(configs: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The ids of `configs` (one per run) whose configs differ in no key but the launch and
    measurement settings (LAUNCH_SETTINGS, MEASUREMENT_SETTINGS), the seed included, two or more a
    list, in the order given: the same network trained twice (a new user's `--set
    save_activations=true`, which `trainer estimate` asked for, trained a cohort's networks a second
    time under new ids in the same cohort; an attacker's copies with other histogram bins).

    >>> same_networks({"a-s0": {"lr": 1, "seed": 0, "save_activations": False},
    ...                "b-s0": {"lr": 1.0, "seed": 0, "save_activations": True}, "b-s1": {"lr": 1, "seed": 1}})
    [['a-s0', 'b-s0']]
    """
    by_identity: dict[tuple, list[str]] = {}
    for key, config in configs.items():
        # as text: a NaN (a hand-made run.json's) is the same value in two copies, though unequal to itself
        identity = tuple(sorted((k, repr(comparable(v))) for k, v in flatten(config).items()
                                if k.split(".")[0] not in LAUNCH_SETTINGS | MEASUREMENT_SETTINGS))
        by_identity.setdefault(identity, []).append(key)
    return [keys for keys in by_identity.values() if len(keys) > 1]


def comparable(value: Any) -> Any:
    """A hashable form in which equal values are equal: 1 and 1.0 alike, True unlike 1."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        number = float(value)
        return ("number", 0.0 if number == 0 else number)     # -0.0 == 0.0, and so must their forms be
    if isinstance(value, (list, tuple)):
        return ("list", tuple(comparable(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, comparable(v)) for k, v in value.items())))
    if value is None or isinstance(value, str):
        return (type(value).__name__, value)
    return ("other", repr(value))


def format_config(config: dict[str, Any], keys: list[str], value_text: Callable[[Any], str] | None = None) -> str:
    """'initial_bias=0.2, activation_fn=relu' for the given dotted keys, each value as `value_text`
    writes it (default `format_value`; `trainer ls` writes `short_value`). A key this config lacks
    is "(missing)", unless the config holds it in another form: a key above it (log_schedule
    "ibsgd" where others hold log_schedule.log_spaced) or below it (log_schedule.log_spaced where
    others hold log_schedule), which says it (a new user read "log_schedule=(missing)").

    >>> format_config({"log_schedule": {"log_spaced": 40}}, ["log_schedule", "log_schedule.log_spaced", "seed"])
    'log_schedule.log_spaced=40, seed=(missing)'
    """
    flat, value_text = flatten(config), value_text or format_value

    def held_otherwise(key: str) -> bool:
        return any(other in flat and (key.startswith(other + ".") or other.startswith(key + ".")) for other in keys)

    return ", ".join(f"{key}={value_text(flat[key]) if key in flat else '(missing)'}" for key in keys
                     if key in flat or not held_otherwise(key))


def short_value(value: Any) -> str:
    """A config value as a chip or an axis label shows it: a list of named entries (`estimators`),
    or its JSON text as the runs view holds it, by their names, "binning+adaptive", not the JSON,
    which fills a chip with '[{"name…'; anything else as `format_value`. Two lists of the same names
    read the same: where that matters the caller adds the run ids (the chips) or a tooltip.

    >>> short_value('[{"name": "binning", "params": {"bin_size": 0.07}}, {"name": "kde_upper"}]')
    'binning+kde_upper'
    """
    if isinstance(value, str) and value.startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, list) and value and all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in value):
        return "+".join(v["name"] for v in value)
    return format_value(value)


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def common_config_with_var(configs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first config, flattened, with '<var>' wherever the configs differ (seed and launch
    settings too: this says what the runs share)."""
    if not configs:
        return {}
    flats = [flatten(config) for config in configs]
    varying = differing_keys(configs)
    keys = sorted(set().union(*flats))
    return {key: VAR if key in varying else flats[0][key] for key in keys}


def differing_keys(configs: list[dict[str, Any]]) -> set[str]:
    """The flattened keys whose values differ among `configs`, seed and launch settings too (the
    `<var>` keys of `common_config_with_var`)."""
    return set(varying_keys(configs, with_settings=True)) | ({SEED_KEY} if varying_seed(configs) else set())


def labels(configs: dict[str, dict[str, Any]], with_seed: bool = True) -> dict[str, str]:
    """A title per run (or group) id from the keys that vary among these configs, the seed last if
    it varies and `with_seed` (the id if nothing varies), ordered by those keys' values; a list of
    estimators by their names (`short_value`) where the titles stay as distinct as with the JSON.

    >>> lists = [[{"name": "binning", "params": {"bin_size": 0.07}}], [{"name": "kde_upper", "params": {}}]]
    >>> labels({"a": {"estimators": lists[0]}, "b": {"estimators": lists[1]}})
    {'a': 'estimators=binning', 'b': 'estimators=kde_upper'}
    """
    keys = varying_keys(list(configs.values()))
    if with_seed and varying_seed(list(configs.values())):
        keys.append(SEED_KEY)
    flats = {key: flatten(config) for key, config in configs.items()}
    order = sorted(configs, key=lambda k: ([_sortable(flats[k].get(key)) for key in keys], k))
    titles = {k: format_config(configs[k], keys) if keys else k for k in order}
    # a list of estimators by their names, where that tells the groups apart as well: a new user's two
    # cohorts, reported together, had groups titled by 600 characters of JSON no one could type
    short = {k: format_config(configs[k], keys, short_value) if keys else k for k in order}
    return short if len(set(short.values())) == len(set(titles.values())) else titles


def told_apart(titles: dict[str, str], cohorts: dict[str, str | None]) -> dict[str, str]:
    """`titles` (id -> title, in order) with every title that several ids share made unique: led by
    the id's cohort where their cohorts differ ("x: initial_bias=0"), else followed by the id.
    Titles name groups and panels, and pages and reports group by them: two cohorts with the same
    grid pooled their seed groups under one title, and the report's tables failed."""
    shared = Counter(titles.values())
    cohorts_of = {title: {cohorts.get(k) for k, t in titles.items() if t == title}
                  for title, n in shared.items() if n > 1}
    out = {k: f"{cohorts.get(k) or '(no cohort)'}: {t}" if t in cohorts_of and len(cohorts_of[t]) > 1 else t
           for k, t in titles.items()}
    again = Counter(out.values())
    return {k: f"{t} ({k})" if again[t] > 1 else t for k, t in out.items()}


def _sortable(value: Any) -> tuple:
    kind, payload = comparable(value)
    return (kind, payload if kind == "number" else repr(payload))
