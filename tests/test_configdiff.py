from ibstore.configdiff import (VAR, common_config_with_var, flatten, format_config, labels, told_apart,
                                 varying_flat_keys, varying_keys, varying_seed)


def test_coinciding_values_are_attributed_to_the_right_key():
    # deep-bottleneck compared the set of values across keys: here both keys take the
    # values {0, 1}, but only initial_bias varies.
    configs = [{"initial_bias": 0, "n_runs": 1, "epochs": 8000},
               {"initial_bias": 1, "n_runs": 1, "epochs": 8000},
               {"initial_bias": 0, "n_runs": 1, "epochs": 8000}]
    assert varying_keys(configs) == ["initial_bias"]
    swapped = [{"a": 0, "b": 1}, {"a": 1, "b": 1}]
    assert varying_keys(swapped) == ["a"]


def test_identical_configs_have_no_varying_keys():
    config = {"activation_fn": "relu", "architecture": [10, 7, 5], "learning_rate": 0.0004}
    assert varying_keys([config, dict(config)]) == []
    assert varying_keys([]) == []


def test_a_key_missing_in_some_config_varies():
    assert varying_keys([{"a": 1, "b": 2}, {"a": 1}]) == ["b"]
    assert varying_keys([{"a": 1}, {"a": 1, "c": None}]) == ["c"]


def test_numbers_by_value_but_booleans_are_not_numbers():
    assert varying_keys([{"x": 1}, {"x": 1.0}]) == []
    assert varying_keys([{"x": True}, {"x": 1}]) == ["x"]
    assert varying_keys([{"x": False}, {"x": 0.0}]) == ["x"]
    assert varying_keys([{"x": "1"}, {"x": 1}]) == ["x"]


def test_nested_dicts_flatten_to_dotted_keys():
    configs = [{"opt": {"name": "adam", "lr": 0.001}}, {"opt": {"name": "adam", "lr": 0.01}}]
    assert flatten(configs[0]) == {"opt.name": "adam", "opt.lr": 0.001}
    assert varying_keys(configs) == ["opt.lr"]


def test_lists_compare_whole():
    assert varying_keys([{"architecture": [10, 7, 5]}, {"architecture": [10, 7, 5]}]) == []
    assert varying_keys([{"architecture": [10, 7, 5]}, {"architecture": [10, 7, 4]}]) == ["architecture"]
    assert varying_keys([{"l": [1, 2]}, {"l": [1.0, 2.0]}]) == []
    estimators = [{"estimators": [{"name": "binning", "params": {"bin_size": 0.07}}]},
                  {"estimators": [{"name": "binning", "params": {"bin_size": 0.1}}]}]
    assert varying_keys(estimators) == ["estimators"]


def test_seed_is_reported_separately():
    configs = [{"seed": 0, "initial_bias": 0.2}, {"seed": 1, "initial_bias": 0.2}]
    assert varying_keys(configs) == []
    assert varying_seed(configs) is True
    assert varying_seed([{"seed": 3}, {"seed": 3}]) is False


def test_format_config_names_the_varying_values():
    config = {"initial_bias": 0.2, "activation_fn": "relu", "architecture": [10, 7], "max_norm_weights": False,
              "opt": {"lr": 0.0004}}
    assert format_config(config, ["initial_bias", "activation_fn"]) == "initial_bias=0.2, activation_fn=relu"
    assert format_config(config, ["architecture", "max_norm_weights", "opt.lr"]) == \
        "architecture=[10, 7], max_norm_weights=False, opt.lr=0.0004"
    assert format_config(config, ["absent"]) == "absent=(missing)"
    assert format_config(config, []) == ""


def test_common_config_with_var_marks_the_varying_keys():
    configs = [{"activation_fn": "relu", "initial_bias": 0.0, "seed": 0, "opt": {"lr": 1}},
               {"activation_fn": "relu", "initial_bias": 2, "seed": 0, "opt": {"lr": 1.0}}]
    assert common_config_with_var(configs) == {"activation_fn": "relu", "initial_bias": VAR, "seed": 0,
                                               "opt.lr": 1}
    configs[1]["seed"] = 1
    assert common_config_with_var(configs)["seed"] == VAR
    assert common_config_with_var([]) == {}


def test_labels_order_by_value_and_name_the_seed_when_asked():
    configs = {"a": {"initial_bias": 2, "seed": 0}, "b": {"initial_bias": -1, "seed": 0},
               "c": {"initial_bias": 0.5, "seed": 1}}
    assert labels(configs) == {"b": "initial_bias=-1, seed=0", "c": "initial_bias=0.5, seed=1",
                               "a": "initial_bias=2, seed=0"}
    assert list(labels(configs, with_seed=False).values()) == ["initial_bias=-1", "initial_bias=0.5",
                                                                "initial_bias=2"]
    assert labels({"x": {"a": 1}, "y": {"a": 1}}) == {"x": "x", "y": "y"}


def test_launch_settings_are_not_varying_keys():
    # the cohort: seeds launched as n_runs=2 and n_runs=1, one saving checkpoints
    configs = [{"initial_bias": 0.0, "n_runs": 2, "save_checkpoints": True, "save_activations": False},
               {"initial_bias": 1.0, "n_runs": 1, "save_checkpoints": False, "save_activations": True}]
    assert varying_keys(configs) == ["initial_bias"]
    assert varying_keys(configs, with_settings=True) == ["initial_bias", "n_runs", "save_activations",
                                                         "save_checkpoints"]
    assert labels({"a": configs[0], "b": configs[1]}) == {"a": "initial_bias=0", "b": "initial_bias=1"}
    # what the runs share is still said honestly: they do not share n_runs
    assert common_config_with_var(configs)["n_runs"] == VAR


def test_varying_flat_keys_agree_with_the_full_comparison_on_mixed_types():
    flats = [{"same": 1, "int_float": 1, "bool_int": True, "list": [1, 2], "nan": float("nan"), "gap": "a"},
             {"same": 1, "int_float": 1.0, "bool_int": 1, "list": [1.0, 2], "nan": float("nan")}]
    # 1 == 1.0 and [1, 2] == [1.0, 2] by value; True is not the number 1; NaN is unequal to itself; a gap varies
    assert varying_flat_keys(flats) == ["bool_int", "gap", "nan"]
    assert varying_flat_keys(flats[:1] * 3) == []


def test_titles_that_several_ids_share_are_told_apart_by_cohort_then_id():
    # two cohorts with the same grid got the same group titles: pages pooled their seeds under one
    # title, and the report's tables failed (a Series where one group's n was expected)
    titles = {"x-b0": "initial_bias=0", "y-b0": "initial_bias=0", "x-b1": "initial_bias=1",
              "z-1": "lr=1", "z-2": "lr=1"}
    cohorts = {"x-b0": "x", "y-b0": "y", "x-b1": "x", "z-1": "z", "z-2": "z"}
    assert told_apart(titles, cohorts) == {"x-b0": "x: initial_bias=0", "y-b0": "y: initial_bias=0",
                                           "x-b1": "initial_bias=1", "z-1": "lr=1 (z-1)", "z-2": "lr=1 (z-2)"}
    assert list(told_apart(titles, cohorts)) == list(titles)
    assert told_apart({"a": "t", "b": "t"}, {"a": None, "b": "x"}) == {"a": "(no cohort): t", "b": "x: t"}


def test_the_store_titles_two_cohorts_with_one_grid_apart(tmp_path):
    from bench.make_results import write_run
    from explorer.results import ResultStore
    for name, cohort in (("a", "x"), ("b", "y")):
        for bias in (0.0, 1.0):
            write_run(tmp_path, name, {"initial_bias": bias, "epochs": 20}, cohort=cohort, logged=4)
    store = ResultStore(tmp_path)
    titles = store.labels(list(store.runs()["run_id"]), by_group=True)
    assert sorted(titles.values()) == ["x: initial_bias=0", "x: initial_bias=1", "y: initial_bias=0",
                                       "y: initial_bias=1"]


def test_groups_told_apart_by_their_estimator_lists_are_titled_by_the_names(tmp_path):
    # A new user's: two cohorts with different estimator lists, reported together, titled every group
    # by its whole list's JSON (600 characters); by the names where those tell the groups apart
    from bench.make_results import write_run
    from explorer.results import ResultStore
    one, two = ([{"name": "binning", "params": {"bin_size": 0.07}}],
                [{"name": "binning", "params": {"bin_size": 0.07}}, {"name": "kde_upper", "params": {}}])
    for estimators, cohort in ((one, "x"), (two, "y")):
        write_run(tmp_path, cohort, {"epochs": 20, "estimators": estimators, "activation_fn": "tanh"}, cohort=cohort,
                  logged=4)
    store = ResultStore(tmp_path)
    assert sorted(store.labels(list(store.runs()["run_id"]), by_group=True).values()) == [
        "estimators=binning", "estimators=binning+kde_upper"]
    # where the names alone would not tell them apart, the JSON does
    assert labels({"a": {"estimators": one}, "b": {"estimators": [{"name": "binning", "params": {"bin_size": 0.3}}]}}
                  )["a"] == 'estimators=[{"name": "binning", "params": {"bin_size": 0.07}}]'


def test_a_key_held_as_a_dict_in_some_configs_titles_them_without_missing_parts():
    # A new user's: log_schedule "ibsgd" beside {"log_spaced": 40} titled the groups
    # "log_schedule=ibsgd, log_schedule.log_spaced=(missing)" and "log_schedule=(missing), ..."
    titles = labels({"a": {"log_schedule": "ibsgd", "epochs": 10}, "b": {"log_schedule": {"log_spaced": 40},
                                                                         "epochs": 10},
                     "c": {"log_schedule": "ibsgd", "epochs": 20}})
    assert titles == {"a": "epochs=10, log_schedule=ibsgd", "b": "epochs=10, log_schedule.log_spaced=40",
                      "c": "epochs=20, log_schedule=ibsgd"}
    # a key no form of which a config holds is still named missing
    assert labels({"a": {"x": 1}, "b": {"y": 2}}) == {"a": "x=1, y=(missing)", "b": "x=(missing), y=2"}


def test_two_cohorts_on_one_grid_get_a_trend_each(tmp_path):
    # their groups are told apart, but the trend along initial_bias pooled their seeds as one group's
    from bench.make_results import write_run
    from explorer import cohort_tables
    from explorer.results import ResultStore
    for name, cohort in (("a", "x"), ("b", "y")):
        for bias in (0.0, 0.5, 1.0):
            write_run(tmp_path, name, {"initial_bias": bias, "epochs": 20}, cohort=cohort, logged=4)
    store = ResultStore(tmp_path)
    runs = store.runs()
    along = cohort_tables.trend_key(store, list(runs["run_id"]))
    assert along.key == "initial_bias"
    assert {run_id: along.within[run_id] for run_id in runs["run_id"]} == {
        run_id: f"cohort {cohort}" for run_id, cohort in zip(runs["run_id"], runs["cohort"])}
    # one cohort: no split
    x_only = list(runs.loc[runs["cohort"] == "x", "run_id"])
    assert cohort_tables.trend_key(store, x_only).within == {}


def test_the_public_name_explorer_configdiff_is_the_same_module_contents():
    """DESIGN.md's public name `explorer.configdiff.varying_keys` keeps working now that the rules
    live in ibstore (shared with `trainer ls`)."""
    import explorer.configdiff as public
    import ibstore.configdiff as rules

    assert rules.__all__ and all(getattr(public, name) is getattr(rules, name) for name in rules.__all__)
    assert public.varying_keys([{"seed": 0, "a": 1}, {"seed": 1, "a": 1.0}, {"seed": 2, "a": 2}]) == ["a"]


def test_the_same_networks_are_found_whatever_was_measured_and_a_nan_equals_a_nan():
    # An attacker's: copies that differ in histogram bins, log schedule or the order of mi_splits train
    # the same networks, and a NaN value (a hand-made run.json) never equalled the other copy's NaN
    from ibstore.configdiff import same_networks

    base = {"lr": 0.001, "seed": 0, "mi_splits": ["train", "test"], "log_schedule": "default", "odd": float("nan")}
    copies = {"a": base, "b": {**base, "histogram_bins": 50, "log_schedule": {"log_spaced": 40}},
              "c": {**base, "mi_splits": ["test", "train"], "save_activations": True},
              "other seed": {**base, "seed": 1}, "other lr": {**base, "lr": 0.01}}
    assert same_networks(copies) == [["a", "b", "c"]]
