"""The configs of every run as the explorer sees them, from the `config` view (explorer.root_configs),
against the same facts worked out from each run.json's config directly (configdiff's per-run rules)."""

from __future__ import annotations

import json

import pytest
from conftest import EPOCHS

from bench.make_results import write_run
from ibstore import configdiff
from explorer.results import ResultStore
from ibstore import layout

# extra config keys per seed: equal numbers of two types (1, 1.0), a bool beside a number, a key
# only some runs have, a list, a nested dict and a value that is the same everywhere
EXTRA = [
    {"same_number": 1, "flag": True, "items": [1, 2], "nested": {"lr": 0.1}, "constant": "x", "n_runs": 3},
    {"same_number": 1.0, "flag": 1, "items": [1.0, 2], "nested": {"lr": 0.2}, "constant": "x", "n_runs": 5,
     "only_some": None},
    {"same_number": 1, "flag": True, "items": [1, 2], "nested": {"lr": 0.1}, "constant": "x", "n_runs": 3,
     "only_some": [0]},
]


@pytest.fixture
def root(tmp_path):
    for seed, extra in enumerate(EXTRA):
        run_id = write_run(tmp_path, "configs", {"activation_fn": "tanh", "epochs": EPOCHS}, seed=seed, logged=2)
        path = layout.run_json_path(tmp_path, run_id)
        record = json.loads(path.read_text())
        record["config"].update(extra)
        path.write_text(json.dumps(record))
    return tmp_path


def configs_on_disk(root) -> dict[str, dict]:
    return {path.parent.name: json.loads(path.read_text())["config"] for path in (root / "runs").glob("*/run.json")}


def test_keys_values_and_varying_keys_are_those_of_the_configs_on_disk(root):
    configs = configs_on_disk(root)
    flats = [configdiff.flatten(config) for config in configs.values()]
    store = ResultStore(root)
    assert store.varying_keys() == configdiff.varying_keys(list(configs.values()))
    assert set(store.varying_keys()) == {"flag", "nested.lr", "only_some"}    # 1 == 1.0, [1, 2] == [1.0, 2]
    assert store.config_keys() == sorted(set().union(*flats))
    for key in [*store.config_keys(), "no.such.key"]:
        distinct = {}      # one JSON text per value as configdiff compares them, the shortest
        for flat in flats:
            text = json.dumps(flat.get(key), sort_keys=True)
            same = repr(configdiff.comparable(flat.get(key)))
            distinct[same] = min(distinct.get(same, text), text)
        assert store.config_values(key) == sorted(distinct.values()), key
    assert store.config_values("only_some") == ["[0]", "null"]               # a run lacks it, one holds null
    assert store.config_values("same_number") == ["1"]                       # 1 and 1.0: one value
    assert store.config_values("flag") == ["1", "true"]                      # a bool is no number


def test_a_value_spelt_two_ways_is_listed_once_and_filters_every_run_holding_it(root):
    """A hand-made run.json's integer 0 beside the trainer's 0.0 was listed twice in the Runs page's
    Values filter ("0", "0"), each choosing only its own spelling's runs."""
    configs = configs_on_disk(root)
    store = ResultStore(root)
    assert sorted(store.runs_with_config("same_number", ["1"])) == sorted(configs)
    assert sorted(store.runs_with_config("items", store.config_values("items"))) == sorted(configs)
    assert store.runs_with_config("flag", ["1"]) == [r for r, c in configs.items() if type(c["flag"]) is int]


def test_flat_configs_of_some_runs_are_their_flattened_configs(root):
    configs = configs_on_disk(root)
    chosen = sorted(configs)[:2]
    assert ResultStore(root).flat_configs(chosen) == {r: configdiff.flatten(configs[r]) for r in chosen}


def test_a_run_the_root_does_not_hold_has_no_flat_config(root):
    """A chip names a removed run by its id: it gets no config, not an empty one (whose missing
    seed key broke the sidebar)."""
    configs = configs_on_disk(root)
    kept = min(configs)
    assert ResultStore(root).flat_configs(["removed-s0", kept]) == {kept: configdiff.flatten(configs[kept])}


def test_a_changed_config_shows_after_a_refresh(root):
    store = ResultStore(root)
    assert "activation_fn" not in store.varying_keys()
    run_id = min(configs_on_disk(root))
    path = layout.run_json_path(root, run_id)
    record = json.loads(path.read_text())
    record["config"]["activation_fn"] = "relu"
    path.write_text(json.dumps(record))
    assert store.refresh()
    assert "activation_fn" in store.varying_keys()
    assert store.config_values("activation_fn") == ['"relu"', '"tanh"']
