"""The group's peak epoch (phases.PHASES_SQL) is taken over the runs the compression test reads."""

import math

import duckdb
import numpy as np
import pandas as pd

from ibstore import phases, stats


def phases_of(curves: dict[str, np.ndarray], dead: set[str] = frozenset(), neurons: pd.DataFrame | None = None,
              running: set[str] = frozenset(), snr: dict[str, list[float]] | None = None,
              std_norm: dict[str, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PHASES_SQL and CURVES_SQL over one group of completed runs (`dead` ones dead), one layer, I(X;T)
    per run by epoch; `neurons`: activation_stats rows (run_id, epoch, neuron, min, max) of that layer;
    `running` ones still training; `snr`: the layer's gradient SNR per run by epoch, of a gradient
    whose std has the norm `std_norm` (1 where not given) and whose mean the SNR times that."""
    mi = pd.DataFrame([{"run_id": run_id, "epoch": epoch, "layer": 0, "layer_name": "dense_0", "units": 4,
                        "split": "test", "estimator": "binning", "params": "{}", "i_xt": float(value),
                        "i_yt": 0.5, "h_t_bits": None}
                       for run_id, curve in curves.items() for epoch, value in enumerate(curve)])
    runs = pd.DataFrame({"run_id": list(curves), "group_id": "g",
                         "status": ["running" if run_id in running else "completed" for run_id in curves],
                         "dead_network": [run_id in dead for run_id in curves], "diverged": False})
    with duckdb.connect() as con:
        con.register("mi_rows", mi)
        con.register("run_rows", runs)
        con.execute("CREATE TABLE mi AS FROM mi_rows")
        con.execute("CREATE TABLE runs AS SELECT *, {'train': {'inputs': 4096, 'h_y_bits': 1.0, 'h_x_bits': 12.0}, "
                    "'test': {'inputs': 4096, 'h_y_bits': 1.0, 'h_x_bits': 12.0}, "
                    "'full': {'inputs': 4096, 'h_y_bits': 1.0, 'h_x_bits': 12.0}} "
                    "AS splits FROM run_rows")
        con.execute("CREATE TABLE gradients (run_id VARCHAR, epoch INTEGER, layer SMALLINT, grad_mean_norm DOUBLE, "
                    "grad_std_norm DOUBLE, snr DOUBLE)")
        for run_id, values in (snr or {}).items():
            std = (std_norm or {}).get(run_id, 1.0)
            con.executemany("INSERT INTO gradients VALUES (?, ?, 0, ?, ?, ?)",
                            [(run_id, epoch, value * std, std, value) for epoch, value in enumerate(values)])
        con.execute("CREATE TABLE config (run_id VARCHAR, key VARCHAR, value VARCHAR)")
        con.execute('CREATE TABLE activation_stats (run_id VARCHAR, epoch INTEGER, layer SMALLINT, neuron INTEGER, '
                    'split VARCHAR, "min" DOUBLE, "max" DOUBLE)')
        if neurons is not None:
            con.register("neuron_rows", neurons)
            con.execute("INSERT INTO activation_stats SELECT run_id, epoch, 0, neuron, 'test', \"min\", \"max\" "
                        "FROM neuron_rows")
        return con.execute(phases.PHASES_SQL).df(), con.execute(phases.CURVES_SQL).df()


def test_a_kept_run_without_a_last_value_does_not_move_the_groups_peak():
    # Six kept seeds; one has no finite last I(X;T) (it is "missing" from the test) and a bump at epoch
    # 5. Its bump moved the group's peak to epoch 5, so the five tested seeds' mean fall was read
    # there (0.39) while their test found 0.89 at epoch 9: a mean below its own lower bound (0.84).
    rng = np.random.default_rng(0)
    shape = np.r_[np.linspace(0, 3, 6), np.linspace(3, 3.5, 5)[1:], np.linspace(3.5, 2.5, 11)][:20]
    curves = {f"s{i}": shape + rng.normal(0, 0.02, 20) for i in range(6)}
    curves["s5"][5] += 10
    curves["s5"][-1] = np.nan
    rows, curve_rows = phases_of(curves)
    tested = np.array([curves[f"s{i}"] for i in range(5)])
    falls = (tested - tested[:, -1:]).mean(axis=0)          # the tested seeds' mean curve minus its end
    assert (rows["group_peak_epoch"] == int(falls.argmax())).all() and falls.argmax() == 9
    excess = stats.phase_stats(rows, curve_rows).query("quantity == @stats.EXCESS").iloc[0]
    assert (excess["n"], excess["n_missing"], excess["missing_runs"]) == (5, 1, "s5")
    assert abs(excess["mean"] - falls.max()) < 1e-9        # the mean curve's peak minus its end
    assert excess["ci_low"] <= excess["mean"] and excess["compresses"] is True


def test_with_no_kept_run_tested_the_peak_is_the_kept_runs_not_the_dead_ones():
    # Every kept run lacks a last value: the peak fell back to all runs, and a dead run's 40 bits set it
    curves = {f"k{i}": np.array([1.0, 2.0, 5.0, 3.0, np.nan]) for i in range(5)}
    curves["dead"] = np.array([40.0, 1.0, 1.0, 1.0, 1.0])
    rows, _ = phases_of(curves, dead={"dead"})
    assert (rows["group_peak_epoch"] == 2).all()
    assert (rows.set_index("run_id").drop("dead")["noise_floor_bits"] == 0).all()


def test_a_group_still_rising_at_its_end_is_not_shown_with_the_reason():
    # Five seeds whose I(X;T) rises to the last epoch: the mean curve peaks at its end, every seed's
    # compression over the floor is 0 and the test's p is 1. "not shown" there means "not yet".
    from explorer import cohort_tables

    rng = np.random.default_rng(1)
    curves = {f"s{i}": np.linspace(1, 4, 12) + rng.normal(0, 0.01, 12) for i in range(5)}
    for curve in curves.values():
        curve[-1] = curve.max() + 0.05                       # each seed highest at its end
    rows, curve_rows = phases_of(curves)
    assert (rows["group_peak_epoch"] == 11).all()
    excess = stats.phase_stats(rows, curve_rows).query("quantity == @stats.EXCESS").iloc[0]
    assert (excess["mean"], excess["p_value"], excess["compresses"]) == (0.0, 1.0, False)
    assert excess["note"] == stats.STILL_RISING
    assert cohort_tables._compresses(excess) == cohort_tables.STILL_RISING_CELL
    group_stats = stats.phase_stats(rows, curve_rows).assign(group="g")
    assert cohort_tables.glance_note(group_stats) == (
        "In no group is the last hidden layer shown to compress at q (over groups) < 0.05 (1 group tested). Still "
        "rising at the last logged epoch, no fall within the epochs trained (whether it falls later, only longer "
        "training can tell): g.")
    # one seed's fall moves the group's peak off its end: an ordinary test, no note
    curves["s0"][-1] -= 5
    rows, curve_rows = phases_of(curves)
    moved = stats.phase_stats(rows, curve_rows).query("quantity == @stats.EXCESS").iloc[0]
    assert (rows["group_peak_epoch"] < 11).all() and pd.isna(moved["note"])


def test_units_that_die_after_the_groups_peak_are_counted_per_run():
    # Four seeds peaking together at epoch 2 (of 0-4), three units each, (min, max) per epoch 0-4.
    # a: unit 0 varies up to the peak and is constant after it (died); unit 1 is constant from epoch 1
    # (dead before the peak: no part of the fall); unit 2 varies throughout. b: unit 0 is constant at
    # the peak and varies again at the end (revived); unit 1 is constant at the peak, varies at epoch 3
    # and is constant at the end (died after the peak). c: its end is not logged for the neurons:
    # unknown, NULL. d: unit 2 varies before the peak alone. f: a saturated tanh unit whose range
    # flickers by one float32 step after the peak is constant throughout (the sceptic's); its unit
    # that varies by 0.009 after the peak and is constant at the end died.
    varying, constant = (0.0, 1.0), (0.5, 0.5)
    flicker, saturated, close = (0.9999, 0.9999 + 2.0 ** -23), (0.9999, 0.9999), (0.99, 0.999)
    units = {"a": [[varying] * 3 + [constant] * 2, [varying] + [constant] * 4, [varying] * 5],
             "b": [[varying] * 2 + [constant, constant, varying], [varying, varying, constant, varying, constant],
                   [varying] * 5],
             "c": [[varying] * 4, [varying] * 4, [varying] * 4],
             "d": [[varying] * 5, [varying] * 5, [varying, varying, constant, constant, constant]],
             "f": [[saturated, flicker, saturated, flicker, saturated], [varying] * 3 + [close, saturated]]}
    neurons = pd.DataFrame([{"run_id": run_id, "epoch": epoch, "neuron": neuron, "min": low, "max": high}
                            for run_id, spans in units.items() for neuron, by_epoch in enumerate(spans)
                            for epoch, (low, high) in enumerate(by_epoch)])
    curve = np.array([1.0, 2.0, 3.0, 2.5, 2.0])
    curves = {"a": curve, "b": curve + 0.01, "c": curve - 0.01, "d": curve, "e": curve[:2], "f": curve}
    # e still trains, at epoch 1 of the group's peak at 2: its units are not known to have died or not
    short = pd.DataFrame([{"run_id": "e", "epoch": epoch, "neuron": 0, "min": 0.0, "max": 1.0} for epoch in (0, 1)])
    # an attacker's damaged files: a unit varying to epoch 3 whose end is NaN, NULL, or min > max was
    # counted as dying; unknown, NULL
    damaged = pd.DataFrame([{"run_id": run_id, "epoch": epoch, "neuron": 0, "min": low, "max": high}
                            for run_id, end in (("nan", [(math.nan, math.nan)]), ("null", [(None, None)]),
                                                ("swapped", [(0.6, 0.5)]))
                            for epoch, (low, high) in [(e, varying) for e in range(4)] + [(4, span) for span in end]])
    curves.update(dict.fromkeys(["nan", "null", "swapped"], curve))
    rows, _ = phases_of(curves, neurons=pd.concat([neurons, short, damaged]), running={"e"})
    assert (rows["group_peak_epoch"] == 2).all() and (rows.set_index("run_id")["final_epoch"].drop("e") == 4).all()
    died = rows.set_index("run_id")["units_died"]
    assert (died["a"], died["b"], died["d"], died["f"]) == (1, 1, 0, 1) and pd.isna(died["c"]) and pd.isna(died["e"])
    assert died[["nan", "null", "swapped"]].isna().all()


def test_the_units_died_note_counts_the_kept_seeds_whose_units_are_known():
    from explorer import cohort_tables

    phases = pd.DataFrame({"run_id": ["a", "b", "c", "d", "e", "f"], "group_id": "g", "layer": 3,
                           "layer_name": "dense_3", "units_died": [2, 0, None, 1, 0, 1], "status": "completed",
                           "compression_bits": [0.5, 0.5, 0.5, 0.5, 0.5, 0.0],
                           "dead_network": [False, False, False, True, False, False], "diverged": False})
    note = cohort_tables.units_died_note(phases, {"g": "initial_bias=1"})
    # a died; b and e did not; c is unknown; d is dead, left out of the statistics as everywhere; f's
    # unit died but its I(X;T) did not fall: no fall to be the unit's
    assert "initial_bias=1: 3 · dense_3 (1 of 4 seeds)" in note
    assert cohort_tables.units_died_note(phases.assign(units_died=[0, 0, None, 1, 0, 1]), {"g": "g"}) is None
    assert cohort_tables.units_died_note(phases.drop(columns="units_died"), {"g": "g"}) is None   # older views


def test_a_drop_epoch_is_censored_where_the_snr_is_finite_and_never_halves():
    # A reviewer's: full-batch training has one minibatch, no spread, and no finite SNR at all: its
    # missing drop is no censoring. Where the SNR is finite and never falls below half its peak, it is.
    curve = np.array([1.0, 2.0, 3.0, 2.5, 2.0])
    nan = float("nan")
    rows, _ = phases_of({"drops": curve, "rises": curve, "none": curve, "ends": curve},
                        snr={"drops": [1.0, 4.0, 3.0, 1.5, 1.0], "rises": [1.0, 2.0, 3.0, 4.0, 5.0],
                             "none": [nan] * 5, "ends": [1.0, 2.0, 3.0, nan, nan]})
    by_run = rows.set_index("run_id")
    assert by_run.loc["drops", "snr_drop_epoch"] == 3 and not by_run.loc["drops", "snr_drop_censored"]
    assert pd.isna(by_run.loc["rises", "snr_drop_epoch"]) and by_run.loc["rises", "snr_drop_censored"]
    assert pd.isna(by_run.loc["none", "snr_drop_epoch"]) and not by_run.loc["none", "snr_drop_censored"]
    # where the drop is censored: the last epoch with a finite SNR (epochs 0 ... 4 here)
    assert by_run.loc["rises", "snr_last_epoch"] == 4 and by_run.loc["ends", "snr_last_epoch"] == 2
    assert by_run.loc["ends", "snr_drop_censored"] and pd.isna(by_run.loc["none", "snr_last_epoch"])


def test_a_vanished_gradients_snr_is_no_snr_for_the_drop():
    # A sceptic's: a saturated tanh layer's gradient norms of 1e-16 and 1e-17 read an SNR of 10, a
    # ratio of rounding errors; where the spread has not vanished, a vanished mean is a low SNR, kept
    curve = np.array([1.0, 2.0, 3.0, 2.5, 2.0])
    rows, curve_rows = phases_of({"vanished": curve, "low": curve},
                                 snr={"vanished": [10.0, 20.0, 5.0, 1.0, 1.0], "low": [1.0, 4.0, 3.0, 1e-8, 1e-8]},
                                 std_norm={"vanished": 1e-17})
    by_run = rows.set_index("run_id")
    assert pd.isna(by_run.loc["vanished", "snr_drop_epoch"]) and not by_run.loc["vanished", "snr_drop_censored"]
    assert pd.isna(by_run.loc["vanished", "snr_last_epoch"])
    assert by_run.loc["low", "snr_drop_epoch"] == 3                 # a mean of 1e-8 beside a spread of 1
    assert pd.isna(curve_rows.set_index("run_id").loc["vanished", "snr_epochs"])


def test_the_curves_carry_each_layers_finite_snr_for_the_drop_at_one_horizon():
    # ibstore.stats.drops_within cuts the SNR drop of runs of different lengths at one horizon from
    # these lists: each run's finite SNR by epoch, as gradients holds it (NULL where it has none)
    nan = float("nan")
    curve = np.array([1.0, 2.0, 3.0, 2.5, 2.0])
    _, curve_rows = phases_of({"long": curve, "short": curve[:3], "none": curve},
                              snr={"long": [1.0, 4.0, nan, 1.5, 1.0], "short": [2.0, 3.0, 1.0]})
    by_run = curve_rows.set_index("run_id")
    snr_of = stats.snr_curves_by_layer(curve_rows)[0]
    assert list(snr_of["long"][0]) == [0, 1, 3, 4] and list(snr_of["long"][1]) == [1.0, 4.0, 1.5, 1.0]
    assert list(snr_of["short"][1]) == [2.0, 3.0, 1.0] and "none" not in snr_of
    assert pd.isna(by_run.loc["none", "snr_epochs"])
    # shared epochs 0 and 1 (long has no finite SNR at 2): long peaks at 1 with 4.0, short at 1 with 3.0,
    # and neither falls below half its peak by epoch 1, the horizon
    drops, horizon, shared = stats.drops_within(snr_of, np.array(["long", "short"]))
    assert list(drops) == [math.inf, math.inf] and (horizon, shared) == (1, 2)
