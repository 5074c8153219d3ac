"""A synthetic run's tables (bench/synthetic_tables.py) do not depend on which runs were made
before it: the config's shared part, kept from one seed to the next, gives every run the tables
it gets when made alone; seeds share the columns without noise and differ in the noisy ones."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.compute as pc

from bench import synthetic_tables as synthetic
from bench.make_results import logged_epochs, planned_experiment
from trainer.atomic import parquet_bytes
from trainer.store import run_fields

SHAPE = {"epochs": 40, "architecture": [6, 4, 3]}
CONFIGS = {"tanh": {**SHAPE, "activation_fn": "tanh", "initial_bias": 0.0},
           "relu": {**SHAPE, "activation_fn": "relu", "initial_bias": -1.0}}


def tables_of(name: str, seed: int) -> tuple[str, dict]:
    fields = run_fields(planned_experiment(name, CONFIGS[name], None, 12), seed)
    config = fields["config"]
    logged = np.array(logged_epochs(json.dumps(config["log_schedule"]), config["epochs"]))
    return fields["run_id"], synthetic.synthetic_tables(fields["run_id"], config, logged, config["epochs"],
                                                        np.random.default_rng(seed))


def test_a_run_made_after_others_has_the_tables_it_has_made_alone():
    alone = {}
    for name, seed in (("tanh", 1), ("relu", 0), ("tanh", 0)):
        synthetic._SHAPES.clear()
        alone[name, seed] = tables_of(name, seed)[1]
    synthetic._SHAPES.clear()
    for name, seed in (("tanh", 0), ("tanh", 1), ("relu", 0), ("tanh", 1)):   # kept, kept, replaced, made again
        made = tables_of(name, seed)[1]
        for table, rows in made.items():   # compared as files: a dead net's snr is NaN, never equal to itself
            assert parquet_bytes(rows) == parquet_bytes(alone[name, seed][table]), (name, seed, table)


def test_seeds_share_the_columns_without_noise_and_differ_in_the_noisy_ones():
    (id0, seed0), (id1, seed1) = tables_of("tanh", 0), tables_of("tanh", 1)
    for table, noisy in (("metrics", ["accuracy", "loss"]), ("mi", ["i_xt", "i_yt"]),
                         ("gradients", ["grad_mean_norm", "grad_std_norm", "snr"]),
                         ("activation_stats", ["mean", "min", "max", "frac_saturated"]), ("activations", [])):
        a, b = seed0[table], seed1[table]
        assert pc.all(pc.equal(a["run_id"], id0)).as_py() and pc.all(pc.equal(b["run_id"], id1)).as_py(), table
        for column in a.column_names:
            if column == "run_id":
                continue
            assert a[column].equals(b[column]) is (column not in noisy), (table, column)
