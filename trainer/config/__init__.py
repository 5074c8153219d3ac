"""Experiment configs: load, override, expand grids, validate, name, size.

A config is plain data (a dict) until validated. `resolve` turns what a user wrote
(our keys or deep-bottleneck's) into the canonical, fully defaulted config that a
run records in run.json and that identifies it (`run_id`). `plan` turns a raw
config into `Experiment`s, each checked to fit in this machine's memory.

One job per module: `schema` (the keys, types, defaults), `raw` (files, `--set`,
grids), `legacy` (deep-bottleneck's keys), `validate` (raw to canonical), `ids`
(run ids and the stacking shape), `memory` (the memory estimate), `experiment`
(`Experiment` and `plan`). The names below are the package's interface.
"""

from trainer.config.experiment import Experiment, plan, seeds
from trainer.config.ids import PER_NETWORK_KEYS, config_hash, data_key, group_id, run_id, shape_key, slug
from trainer.config.memory import (LOGGED_EPOCH_BYTES_PER_VALUE, MEMORY_SHARE, TENSORFLOW_RUNTIME_BYTES,
                                   check_memory, memory_estimate, physical_memory)
from trainer.config.raw import apply_overrides, expand, load_file, parse_json, parse_override, parse_overrides
from trainer.config.schema import (ACTIVATIONS, DEFAULTS, KNOWN_KEYS, LOSSES, SEED_MAX, ConfigError,
                                   ExperimentConfig)
from trainer.config.validate import resolve, validate

__all__ = ["ACTIVATIONS", "DEFAULTS", "KNOWN_KEYS", "LOGGED_EPOCH_BYTES_PER_VALUE", "LOSSES", "MEMORY_SHARE",
           "PER_NETWORK_KEYS", "SEED_MAX", "TENSORFLOW_RUNTIME_BYTES", "ConfigError", "Experiment",
           "ExperimentConfig", "apply_overrides", "check_memory", "config_hash", "data_key", "expand", "group_id",
           "load_file", "memory_estimate", "parse_json", "parse_override", "parse_overrides", "physical_memory",
           "plan", "resolve", "run_id", "seeds", "shape_key", "slug", "validate"]
