"""Plans that cannot run are refused before anything happens (issue 17.5): the number of runs is
counted from the grids without expanding them; above 10,000 runs `trainer sweep` needs --yes,
beyond what the machine could hold it is refused with the count; nothing is written either way."""

from __future__ import annotations

import json

import pytest

from trainer import cli, config, plan


def grid_config(folder, sizes: dict[str, int], n_runs=None):
    values = {"learning_rate": lambda i: 1e-4 * (i + 1), "initial_bias": lambda i: i / 1000,
              "batch_size": lambda i: i + 1, "kernel_init_stddev": lambda i: 0.01 * (i + 1)}
    raw = {"name": "big", "epochs": 1, "architecture": [4],
           "grid": {key: [values[key](i) for i in range(size)] for key, size in sizes.items()}}
    if n_runs is not None:
        raw["n_runs"] = n_runs
    path = folder / "big.json"
    path.write_text(json.dumps(raw))
    return path


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


@pytest.mark.parametrize("sizes, n_runs", [({"learning_rate": 3, "initial_bias": 2}, None),
                                           ({"learning_rate": 2}, 3)])
def test_the_count_is_what_planning_expands_to(tmp_path, sizes, n_runs):
    raw = json.loads(grid_config(tmp_path, sizes, n_runs).read_text())
    expanded = sum(len(experiment.seeds) for experiment in config.plan(raw))
    assert plan.count_runs(tmp_path / "big.json") == expanded


def test_a_plan_beyond_the_machine_is_refused_with_its_count(tmp_path, capsys):
    path = grid_config(tmp_path, {"learning_rate": 100, "initial_bias": 100, "batch_size": 100,
                                  "kernel_init_stddev": 10})
    root = tmp_path / "results"
    before = rss_bytes()
    assert cli.main(["sweep", str(path), "--results", str(root), "--yes"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refused: the configs plan 10,000,000 runs") and err.count("\n") == 1
    assert rss_bytes() - before < 100 * 2**20    # counted, not expanded
    assert not root.exists()


@pytest.mark.parametrize("verb", ["sweep", "run"])
def test_more_than_ten_thousand_runs_need_yes(tmp_path, capsys, verb):
    # `trainer run` of a grid is planned as a sweep is; it once started a 10^6-run grid (10 GB
    # resident, 12,000 run folders in 14 minutes) without asking.
    path = grid_config(tmp_path, {"learning_rate": 100, "initial_bias": 100}, n_runs=10)
    root = tmp_path / "results"
    assert cli.main([verb, str(path), "--results", str(root)]) == 2
    assert capsys.readouterr().err == ("error: the configs plan 100,000 runs (more than 10,000); "
                                       "run again with --yes to start them\n")
    assert not root.exists()


def test_trainer_run_counts_the_runs_its_overrides_plan(tmp_path, capsys):
    path = grid_config(tmp_path, {"learning_rate": 2})
    root = tmp_path / "results"
    assert cli.main(["run", str(path), "--results", str(root), "--set", "n_runs=5001"]) == 2
    assert "the configs plan 10,002 runs" in capsys.readouterr().err and not root.exists()


def test_a_plan_the_disk_cannot_hold_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(plan, "_free_bytes", lambda root: 100 * plan.MIN_RUN_BYTES)
    with pytest.raises(plan.SweepError, match="the configs plan 101 runs; .* has 0.00164 GB free"):
        plan.check_plan_size(101, tmp_path, confirmed=True)
    plan.check_plan_size(100, tmp_path, confirmed=True)


def test_a_sweeps_set_overrides_every_config_before_it_is_counted_and_planned(tmp_path, capsys):
    # a built-in cohort shortened from the command line (a helper copied estimators.json to do it)
    grid_config(tmp_path, {"learning_rate": 2}, n_runs=2)
    (tmp_path / "other.json").write_text(json.dumps({"name": "other", "epochs": 8000, "architecture": [4]}))
    assert plan.count_runs(tmp_path) == 2 * 2 + 1
    assert plan.count_runs(tmp_path, ["n_runs=5"]) == 2 * 5 + 5
    experiments = plan.load_experiments(tmp_path, ["epochs=20", "n_runs=5"])
    assert {e.config.epochs for e in experiments} == {20} and sum(len(e.seeds) for e in experiments) == 15
    # the overridden config is another experiment, with its own run ids
    assert {e.run_id(0) for e in experiments}.isdisjoint(e.run_id(0) for e in plan.load_experiments(tmp_path))
    assert cli.main(["sweep", str(tmp_path), "--set", "epochs=-1", "--results", str(tmp_path / "results")]) == 2
    assert "config key 'epochs' = -1 is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()      # nothing written


def test_a_set_of_a_key_the_grid_lists_is_its_one_value_and_keeps_the_grids_run_ids(tmp_path):
    # a grid value wins over a key beside it: --set activation_fn=relu on a grid over activations
    # planned every activation again, without a word
    (tmp_path / "c.json").write_text(json.dumps({"name": "c", "epochs": 1, "architecture": [4], "n_runs": 2,
                                                 "grid": {"activation_fn": ["tanh", "relu", "elu"],
                                                          "initial_bias": [0, 1]}}))
    assert plan.count_runs(tmp_path) == 12
    assert plan.count_runs(tmp_path, ["activation_fn=relu"]) == 4
    experiments = plan.load_experiments(tmp_path, ["activation_fn=relu"])
    assert {e.config.activation_fn for e in experiments} == {"relu"} and len(experiments) == 2
    alone = plan.load_experiments(tmp_path, ["activation_fn=relu", "initial_bias=0.5"])
    assert [(e.config.activation_fn, e.config.initial_bias) for e in alone] == [("relu", 0.5)]
    # An attacker's: taken out of the grid, the key no longer named the runs, so the runs the full grid
    # had trained (c[activation_fn=relu,initial_bias=0]) got new ids and were trained again; as the one
    # value of its grid key they keep the full grid's ids. -0.0 is 0.0, not another experiment.
    full = {e.run_id(seed) for e in plan.load_experiments(tmp_path) for seed in e.seeds}
    for overrides in (["activation_fn=relu"], ["activation_fn=relu", "initial_bias=0"],
                      ["activation_fn=relu", "initial_bias=-0.0"]):
        ids = {e.run_id(seed) for e in plan.load_experiments(tmp_path, overrides) for seed in e.seeds}
        assert ids and ids <= full, overrides
    # a grid entry that is no list is refused, --set or not (it was made a list by --set, and trained)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "b.json").write_text(json.dumps({"name": "b", "epochs": 1, "grid": {"initial_bias": 0.5}}))
    with pytest.raises(config.ConfigError, match="grid key 'initial_bias' = 0.5 is not allowed"):
        plan.load_experiments(tmp_path / "bad", ["initial_bias=1"])
    # a key and its grid entry both set: the last would win, so neither does
    with pytest.raises(config.ConfigError, match="'grid.activation_fn' is already given by --set for "
                                                 "'activation_fn'"):
        plan.load_experiments(tmp_path, ["activation_fn=tanh", 'grid.activation_fn=["relu"]'])
