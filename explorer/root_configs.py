"""What every run's config gives the explorer, from the `config` view (run_id, key, value as JSON
text; ibstore.views) without parsing a record: the keys, each key's values, the keys that vary,
and the flattened configs of a few runs.

At 100,000 runs, parsing every run.json the index holds and flattening it took tens of seconds
of CPU after every change of the root; the view is Arrow, patched by the index for the changed
runs only, and grouping its rows by key and value gives the distinct values, of which there are
few, so only those are decoded to be compared (`configdiff.varying_of_values`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ibstore import configdiff

NULL = json.dumps(None)   # the value of a key a run lacks, as `config_values` lists it


@dataclass(frozen=True)
class RootConfigs:
    """The configs of every run of one snapshot."""
    keys: list[str]                      # every flattened key of any run, sorted
    values: dict[str, list[str]]         # key -> its values as sorted JSON text, NULL when some run lacks it
    varying: list[str]                   # keys whose values differ among the runs (configdiff's rules)
    runs: int                            # how many runs
    # key -> a value of `values` -> every JSON text of an equal value (configdiff.comparable: 0 and
    # 0.0), where there are several: a hand-made run.json's 0 beside the trainer's 0.0 was listed twice
    spellings: dict[str, dict[str, list[str]]]

    def values_of(self, key: str) -> list[str]:
        """The values of `key` as sorted JSON text, one per value as configdiff compares them (NULL
        alone for a key no run has)."""
        return list(self.values.get(key, [NULL] if self.runs else []))

    def texts_of(self, key: str, values: list[str]) -> list[str]:
        """Every JSON text of `key` equal to one of `values` (of `values_of`), as the `config` view holds them."""
        spelt = self.spellings.get(key, {})
        return [text for value in values for text in spelt.get(value, [value])]


def root_configs(config: pa.Table, runs: int) -> RootConfigs:
    """RootConfigs of the `config` view's table of `runs` runs (each run has a key at most once)."""
    counts = config.group_by(["key", "value"]).aggregate([("run_id", "count")])
    texts: dict[str, list[str]] = {}
    having: dict[str, int] = {}
    for key, text, count in zip(*(counts[c].to_pylist() for c in ("key", "value", "run_id_count"))):
        texts.setdefault(key, []).append(text)
        having[key] = having.get(key, 0) + count
    partial = {key for key, count in having.items() if count < runs}
    decoded = {key: [json.loads(text) for text in found] for key, found in texts.items()}
    spellings: dict[str, dict[str, list[str]]] = {}
    for key, found in texts.items():
        equal: dict[Any, list[str]] = {}
        for text, value in zip(found, decoded[key]):
            equal.setdefault(repr(configdiff.comparable(value)), []).append(text)   # repr: a NaN equals its copy
        spellings[key] = {min(same): sorted(same) for same in equal.values() if len(same) > 1}
        texts[key] = [min(same) for same in equal.values()]
    values = {key: sorted(set(found) | ({NULL} if key in partial else set())) for key, found in texts.items()}
    return RootConfigs(sorted(texts), values, configdiff.varying_of_values(decoded, partial), runs,
                       {key: spelt for key, spelt in spellings.items() if spelt})


def flat_configs(config: pa.Table, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """run_id -> its flattened config (as `configdiff.flatten` gives it), for those of `run_ids`
    the view holds (a run that vanished, or whose run.json cannot be read, is left out)."""
    rows = config.filter(pc.is_in(config["run_id"], value_set=pa.array(run_ids, pa.string())))
    flats: dict[str, dict[str, Any]] = {}
    for run_id, key, text in zip(*(rows[c].to_pylist() for c in ("run_id", "key", "value"))):
        flats.setdefault(run_id, {})[key] = json.loads(text)
    return flats
