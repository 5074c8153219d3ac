"""What identifies a canonical config: its run ids, and the shape of its computation."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ibstore.configdiff import DATA_KEYS
from trainer.config.schema import ExperimentConfig

# Config keys a stacked computation may vary per network: experiments equal in
# every other key share a shape and could train as one computation.
PER_NETWORK_KEYS = ("initial_bias", "learning_rate", "kernel_init_stddev", "max_norm_weights", "activation_fn",
                    "seed", "n_runs")


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


def data_key(config: ExperimentConfig) -> tuple:
    """The config's DATA_KEYS' values (ibstore.configdiff; trainer.datasets.load_data reads these keys):
    configs with equal ones train on the same data."""
    return tuple(getattr(config, key) for key in DATA_KEYS)


def shape_key(config: ExperimentConfig) -> str:
    """What the computation of a config looks like, per-network hyperparameters left out:
    experiments with equal keys can be stacked into one computation."""
    return json.dumps(config.model_dump(exclude=set(PER_NETWORK_KEYS)), sort_keys=True)
