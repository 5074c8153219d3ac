"""A planned experiment: a raw config's grid expanded, validated, checked for memory, named."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ibstore.text import cut
from trainer.config.ids import run_id
from trainer.config.memory import check_memory
from trainer.config.raw import expand
from trainer.config.schema import SEED_MAX, ConfigError, ExperimentConfig
from trainer.config.validate import validate


def seeds(config: ExperimentConfig) -> list[int]:
    """deep-bottleneck's n_runs: seeds seed, seed+1, ..., seed+n_runs-1."""
    return [config.seed + i for i in range(config.n_runs)]


@dataclass(frozen=True)
class Experiment:
    """One experiment: a validated canonical config and the seeds to train, as planned."""

    name: str
    cohort: str | None
    config: ExperimentConfig        # typed and frozen; model_dump() only where it is written or hashed
    ignored: dict[str, Any]         # keys accepted but meaningless here, with their values
    seeds: tuple[int, ...]

    def run_id(self, seed: int) -> str:
        return run_id(self.name, self.config.model_dump(), seed)

    @property
    def run_ids(self) -> list[str]:
        return [self.run_id(seed) for seed in self.seeds]


def _check_names(raw: dict[str, Any]) -> None:
    """ConfigError unless `name`, where given, is a non-empty string (null too: a run's name became
    None and its id failed) and `cohort` one or null (no cohort)."""
    for key in ("name", "cohort"):
        if key in raw and not (key == "cohort" and raw[key] is None) and (
                not isinstance(raw[key], str) or not raw[key].strip()):
            raise ConfigError(f"config key {key!r} = {cut(json.dumps(raw[key]))} is not allowed: must be a non-empty "
                              f"string")


def plan(raw: dict[str, Any]) -> list[Experiment]:
    """Every experiment of a raw config (grid expanded), validated before anything runs."""
    experiments = []
    _check_names(raw)      # before a grid writes them into its runs' names ("None[initial_bias=0]")
    for combo in expand(raw):
        config, ignored = validate(combo)
        if config.seed + config.n_runs - 1 > SEED_MAX:
            raise ConfigError(f"config keys 'seed' = {config.seed} and 'n_runs' = {config.n_runs} are not "
                              f"allowed together: seeds run up to seed + n_runs - 1, at most {SEED_MAX}")
        check_memory(config)
        experiments.append(Experiment(combo.get("name", "run"), combo.get("cohort"), config, ignored,
                                      tuple(seeds(config))))
    return experiments
