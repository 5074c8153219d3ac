"""Raw configs as a user writes them: read a file, apply `--set` overrides, expand a grid.

A raw config is still unvalidated data (a dict); `trainer.config.validate.resolve` checks it.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from ibstore import strict_json
from ibstore.text import cut

from trainer.config.schema import DEFAULTS, IGNORED_KEYS, KNOWN_KEYS, META_KEYS, ConfigError

# Configs nest 3 or 4 deep; a key given twice is refused rather than the last one silently winning.
# Integers beyond 64 bits are refused here, as run.json refuses them (ibstore.record): the config is
# recorded there, and such a config once trained nothing and left a run folder without run.json.
CONFIG_LIMITS = strict_json.Limits(max_bytes=1 << 20, int64=True, unique_keys=True)
SEED_KEYS = ("seed", "n_runs")   # not grid keys


def parse_json(data: bytes, what: str) -> Any:
    """strict_json.loads with CONFIG_LIMITS: NaN, Infinity, numbers beyond a float, integers
    beyond 64 bits, deep nesting and repeated keys are refused (strict_json.JsonError). -0.0 is
    0.0: equal values, one experiment (its hash and name had made `initial_bias=-0.0` a new one)."""
    return _unsigned_zeros(strict_json.loads(data, what, CONFIG_LIMITS))


def _unsigned_zeros(value: Any) -> Any:
    """`value` with every -0.0 in it as 0.0.

    >>> _unsigned_zeros({"a": [-0.0, 1.5], "b": -0.0})
    {'a': [0.0, 1.5], 'b': 0.0}
    """
    if isinstance(value, float) and value == 0.0:
        return 0.0
    if isinstance(value, list):
        return [_unsigned_zeros(item) for item in value]
    if isinstance(value, dict):
        return {name: _unsigned_zeros(item) for name, item in value.items()}
    return value


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
    if "name" not in raw:
        _ensure_utf8_name(path)
        raw["name"] = path.stem
    return raw


def _ensure_utf8_name(path: Path) -> None:
    """A run's name comes from its config file's name, and run.json is UTF-8 JSON: a name of other
    bytes failed only once the run's folder was made."""
    try:
        path.stem.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"config file {str(path)!r}: its name is not UTF-8, and a run's name comes from it; "
                          f"rename the file or give the config a 'name'") from None


def parse_override(text: str, flag: str = "--set", example: str = "initial_bias=-0.5") -> tuple[str, Any]:
    """`key=value` from `--set` (or another `flag`, named in messages with its `example`); the
    value is JSON if it parses, else a string.

    `architecture=[10,7,5]` gives a list, `initial_bias=-0.5` a float,
    `activation_fn=relu` the string "relu".
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{flag} {text!r}: expected KEY=VALUE, e.g. {flag} {example}")
    try:
        return key.strip(), parse_json(value.encode("utf-8", "surrogatepass"), f"{flag} {text!r}")
    except strict_json.NotJson:
        return key.strip(), value
    except strict_json.JsonError as error:
        raise ConfigError(str(error)) from None


def parse_overrides(texts: list[str], flag: str = "--set",
                    example: str = "initial_bias=-0.5") -> list[tuple[str, Any]]:
    """Each `key=value` of a repeated flag, parsed by `parse_override`. A key given twice, or a key
    and a dotted key inside it, is refused: the last would silently win."""
    overrides: list[tuple[str, Any]] = []
    for text in texts:
        key, value = parse_override(text, flag, example)
        for earlier, _ in overrides:
            if (key == earlier or key.startswith(earlier + ".") or earlier.startswith(key + ".")
                    or f"grid.{earlier}" == key or f"grid.{key}" == earlier):     # one key, set twice
                raise ConfigError(f"{flag} {text!r}: {key!r} is already given by {flag} for {earlier!r}; "
                                  f"give each key once")
        overrides.append((key, value))
    return overrides


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of `raw` with each `--set KEY=VALUE` applied; dotted keys reach into dicts. A key the
    config's grid lists becomes that one value in the grid (a grid value wins over a key beside it,
    so `--set activation_fn=relu` on the activation_functions cohort changed nothing; and taken out
    of the grid, the key no longer named its runs, `name[activation_fn=relu]`, so the runs the full
    grid had trained got new ids and were trained again)."""
    result = json.loads(json.dumps(raw))
    for text, (key, value) in zip(overrides, parse_overrides(overrides)):
        # (a grid entry that is no list stays so: expand refuses it)
        if isinstance(result.get("grid"), dict) and isinstance(result["grid"].get(key), list):
            # the grid's own spelling of an equal value (0 for 0.0 or -0.0): the runs' names, as the full grid's
            same = [item for item in result["grid"][key] if _grid_value_key(item) == _grid_value_key(value)]
            result["grid"][key] = same[:1] or [value]
            continue
        *parents, leaf = key.split(".")
        target = result
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is not a mapping")
        target[leaf] = value
    return result


def _grid_value_key(value: Any) -> Any:
    """A JSON value as a set member equal for equal values: numbers by value (0 and 0.0 are one
    member, as in any Python set), bools apart from them (no key takes both: validation refuses
    the one of the wrong type), lists and objects by their contents."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, list):
        return ("list", tuple(_grid_value_key(item) for item in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((name, _grid_value_key(item)) for name, item in value.items())))
    return value


def expand(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """One raw config per grid combination (`grid` maps keys to lists of values)."""
    if "grid" not in raw:
        return [raw]
    grid = raw["grid"]
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"config key 'grid' = {cut(json.dumps(grid))} is not allowed; must map config keys to "
                          f"lists of values")
    for key, values in grid.items():
        if key not in KNOWN_KEYS or key in ("grid",):
            raise ConfigError(f"grid key {cut(repr(key))} is not a config key; allowed: "
                              f"{', '.join(name for name in DEFAULTS if name not in SEED_KEYS)}")
        if key in IGNORED_KEYS or key in META_KEYS:
            raise ConfigError(f"grid key {cut(repr(key))} is not allowed: it names or documents a run (or means "
                              f"nothing here) and changes nothing it computes, so each value trained the same networks "
                              f"again")
        if key in SEED_KEYS:
            # The seeds are a config's replicates, the unit of every statistic: a grid over them made
            # groups that differ in their seeds alone (one seed each, or the same seed in two groups).
            raise ConfigError(f"grid key {key!r} is not allowed: every config of a grid trains the seeds seed, "
                              f"seed+1, ..., seed+n_runs-1; set 'seed' and 'n_runs' outside the grid")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid key {key!r} = {cut(repr(values))} is not allowed; must be a non-empty list of "
                              f"values")
        seen = set()
        for value in values:
            # 0 and 0.0 name two experiments but are one config: its networks would train twice.
            if (found := _grid_value_key(value)) in seen:
                raise ConfigError(f"grid key {key!r} lists the value {cut(json.dumps(value))} twice (an equal value "
                                  f"before it); each value is one experiment, listed once")
            seen.add(found)
    base = {k: v for k, v in raw.items() if k != "grid"}
    combos = []
    for values in itertools.product(*grid.values()):
        assignment = dict(zip(grid, values))
        label = ", ".join(f"{k}={json.dumps(v)}" for k, v in assignment.items())
        # a grid's runs are the config's cohort, named after it unless `cohort` says (null: none)
        combos.append({**base, **assignment, "name": f"{base.get('name', 'run')}[{label}]",
                       "cohort": base["cohort"] if "cohort" in base else base.get("name")})
    return combos
