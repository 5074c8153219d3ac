"""explorer.phase_charts: the seed bands and marks against hand-computed values, and the chart's
layers and legend."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import vl_convert as vlc

from bench.make_results import write_run
from explorer import phase_charts
from explorer.results import ResultStore
from ibstore.phases import DISCRETE_ESTIMATORS
from ibstore.record import Status


def mi_rows() -> pd.DataFrame:
    """Group A: seeds with I(X;T) 1, 2, 4 at epoch 0 (and a dead seed at 0, a diverged one at 100);
    group B: one seed."""
    rows = []
    for run_id, group, left_out, i_xt in (("a0", "A", None, 1.0), ("a1", "A", None, 2.0), ("a2", "A", None, 4.0),
                                          ("a3", "A", "dead", 0.0), ("a4", "A", "diverged", 100.0),
                                          ("b0", "B", None, 3.0)):
        for epoch in (0, 10):
            rows.append({"run_id": run_id, "group": group, "left_out": left_out, "epoch": epoch, "layer": 0,
                         "layer_name": "dense_0", "i_xt": i_xt + epoch, "i_yt": 0.5})
    return pd.DataFrame(rows)


def test_bands_are_mean_and_t_interval_of_the_seeds_drawn():
    bands = phase_charts.seed_bands(mi_rows(), "ci").set_index(["group", "quantity", "epoch"])
    a = bands.loc[("A", "i_xt", 0)]
    # 1, 2, 4: mean 7/3, sd sqrt(7/3), t(0.975, 2) = 4.302653
    half = 4.302653 * math.sqrt(7 / 3) / math.sqrt(3)
    assert (a["n"], a["mean"]) == (3, pytest.approx(7 / 3))
    assert (a["low"], a["high"]) == (pytest.approx(7 / 3 - half, rel=1e-6), pytest.approx(7 / 3 + half, rel=1e-6))
    assert a["legend"] == "A (3 seeds, 1 dead, 1 diverged left out)"
    b = bands.loc[("B", "i_xt", 10)]
    assert b["mean"] == 13 and math.isnan(b["low"]) and b["legend"] == "B (1 seed)"
    minmax = phase_charts.seed_bands(mi_rows(), "min-max").set_index(["group", "quantity", "epoch"])
    assert (minmax.loc[("A", "i_xt", 10), "low"], minmax.loc[("A", "i_xt", 10), "high"]) == (11, 14)
    with pytest.raises(ValueError, match="band 'iqr'"):
        phase_charts.seed_bands(mi_rows(), "iqr")


def test_bands_are_drawn_at_the_epochs_every_seed_drawn_has_a_value_at():
    # a1 stopped early (or is still training): without epoch 20 of a1, group A's mean there would be
    # over a0 and a2 alone, 2.5 + 20 against 7/3 + 20 with a1; the group is drawn to epoch 10
    mi = mi_rows()
    later = mi[(mi["epoch"] == 10) & mi["run_id"].isin(["a0", "a2", "b0"])].assign(epoch=20)
    later["i_xt"] += 10
    bands = phase_charts.seed_bands(pd.concat([mi, later], ignore_index=True), "ci")
    a, b = (bands[(bands["group"] == group) & (bands["quantity"] == "i_xt")] for group in "AB")
    assert a["epoch"].tolist() == [0, 10] and set(a["n"]) == {3}
    assert b["epoch"].tolist() == [0, 10, 20] and b["mean"].tolist() == [3, 13, 23]
    # a value missing in one seed at one epoch (not finite) takes that epoch out of the group, not the seed
    gap = mi.copy()
    gap.loc[(gap["run_id"] == "a1") & (gap["epoch"] == 0), "i_xt"] = math.nan
    bands = phase_charts.seed_bands(gap, "ci")
    a = bands[(bands["group"] == "A") & (bands["quantity"] == "i_xt")]
    assert a["epoch"].tolist() == [10] and a["mean"].tolist() == [pytest.approx(10 + 7 / 3)]
    # files written before layer_name existed hold NULL there: the same bands (the count once dropped them all)
    unnamed = phase_charts.seed_bands(mi_rows().assign(layer_name=None), "ci")
    assert len(unnamed) == len(phase_charts.seed_bands(mi_rows(), "ci")) == 8


def test_bands_of_an_estimator_that_cannot_go_below_zero_are_cut_there():
    rows = mi_rows()
    rows["i_yt"] = rows["run_id"].map({"a0": 0.01, "a1": 0.02, "a2": 0.30, "a3": 0.0, "a4": 9.0, "b0": 0.5})
    whole = phase_charts.seed_bands(rows, "ci").set_index(["group", "quantity", "epoch"])
    cut = phase_charts.seed_bands(rows, "ci", non_negative=True).set_index(["group", "quantity", "epoch"])
    assert whole.loc[("A", "i_yt", 0), "low"] < 0 and cut.loc[("A", "i_yt", 0), "low"] == 0.0
    assert cut.loc[("A", "i_yt", 0), "high"] == whole.loc[("A", "i_yt", 0), "high"]
    assert cut.loc[("A", "i_xt", 10), "low"] == whole.loc[("A", "i_xt", 10), "low"] > 0   # above 0: as it was
    assert math.isnan(cut.loc[("B", "i_yt", 0), "low"])                                    # one seed: no band
    assert "binning" in DISCRETE_ESTIMATORS and "ksg" not in DISCRETE_ESTIMATORS


def test_bands_of_a_discrete_estimator_are_cut_at_its_ceilings():
    # group A: I(Y;T) 0.5, 0.9, 1.0 over three live seeds at epoch 0; its t interval 0.8 +- 4.30 * 0.265 / sqrt 3
    # reaches 1.46 bits, past H(Y) = 0.999 bits, and I(X;T) 1, 2, 4 past log2 n = 3 bits
    rows = mi_rows()
    rows["i_yt"] = rows["run_id"].map({"a0": 0.5, "a1": 0.9, "a2": 1.0, "a3": 0.0, "a4": 9.0, "b0": 0.5})
    phases = pd.DataFrame({"group": ["A", "A", "B"], "i_xt_ceiling_bits": [3.0, 3.0, None],
                           "i_yt_ceiling_bits": [0.999, 0.999, None]})
    ceilings = phase_charts.group_ceilings(phases)
    whole = phase_charts.seed_bands(rows, "ci", non_negative=True).set_index(["group", "quantity", "epoch"])
    cut = phase_charts.seed_bands(rows, "ci", True, ceilings).set_index(["group", "quantity", "epoch"])
    half = 4.302653 * np.std([0.5, 0.9, 1.0], ddof=1) / math.sqrt(3)
    assert whole.loc[("A", "i_yt", 0), "high"] == pytest.approx(0.8 + half, rel=1e-6) and 0.8 + half > 0.999
    assert cut.loc[("A", "i_yt", 0), "high"] == 0.999 and cut.loc[("A", "i_yt", 0), "low"] == pytest.approx(0.8 - half, rel=1e-6)
    assert cut.loc[("A", "i_xt", 0), "high"] == 3.0
    # epoch 10: I(X;T) 11, 12, 14 all above the ceiling given here: the band keeps its mean, never below it
    assert cut.loc[("A", "i_xt", 10), "high"] == pytest.approx(37 / 3)
    assert math.isnan(cut.loc[("B", "i_xt", 0), "high"])                                # one seed: no band


def test_bands_of_a_kde_bound_are_cut_for_i_xt_only():
    # a Gaussian-mixture bound's I(X;T) lies in [0, log2 n] (ibstore.phases.MIXTURE_ESTIMATORS): the phases
    # view gives its i_xt ceiling and no i_yt one, and the chart is drawn without non_negative
    rows = mi_rows()
    rows["i_xt"] = rows["run_id"].map({"a0": 0.01, "a1": 0.02, "a2": 2.9, "a3": 0.0, "a4": 9.0, "b0": 0.5})
    rows["i_yt"] = rows["run_id"].map({"a0": 0.01, "a1": 0.02, "a2": 0.30, "a3": 0.0, "a4": 9.0, "b0": 0.5})
    ceilings = phase_charts.group_ceilings(pd.DataFrame({"group": ["A", "B"], "i_xt_ceiling_bits": [3.0, 3.0],
                                                         "i_yt_ceiling_bits": [None, None]}))
    whole = phase_charts.seed_bands(rows, "ci").set_index(["group", "quantity", "epoch"])
    cut = phase_charts.seed_bands(rows, "ci", False, ceilings).set_index(["group", "quantity", "epoch"])
    assert whole.loc[("A", "i_xt", 0), "low"] < 0 < 3.0 < whole.loc[("A", "i_xt", 0), "high"]
    assert (cut.loc[("A", "i_xt", 0), "low"], cut.loc[("A", "i_xt", 0), "high"]) == (0.0, 3.0)
    assert whole.loc[("A", "i_yt", 0), "low"] < 0
    assert cut.loc[("A", "i_yt", 0), ["low", "high"]].tolist() == whole.loc[("A", "i_yt", 0), ["low", "high"]].tolist()


def phase_row(dead: bool = False, status: str = "completed", **epochs) -> dict:
    return {"group": "A", "layer": 0, "layer_name": "dense_0", "dead_network": dead,
            "diverged": status == "diverged", "status": status, **epochs}


def test_marks_are_the_groups_epochs_over_the_seeds_drawn_and_the_chart_has_them():
    # the I(X;T) rule is where the group's mean curve peaks (group_peak_epoch, one value per group), not
    # the seeds' own peaks' mean (4 and 8 here)
    phases = pd.DataFrame([
        phase_row(peak_i_xt_epoch=4, group_peak_epoch=5, peak_i_yt_epoch=10, snr_drop_epoch=6),
        phase_row(peak_i_xt_epoch=8, group_peak_epoch=5, peak_i_yt_epoch=10, snr_drop_epoch=None),
        phase_row(dead=True, peak_i_xt_epoch=0, group_peak_epoch=5, peak_i_yt_epoch=0, snr_drop_epoch=1),
        phase_row(status="diverged", peak_i_xt_epoch=900, group_peak_epoch=5, peak_i_yt_epoch=900,
                  snr_drop_epoch=900),
        phase_row(status="running", peak_i_xt_epoch=6, group_peak_epoch=5, peak_i_yt_epoch=10, snr_drop_epoch=None),
        phase_row(status="interrupted", peak_i_xt_epoch=300, group_peak_epoch=5, peak_i_yt_epoch=300,
                  snr_drop_epoch=300),
        phase_row(status="failed", peak_i_xt_epoch=500, group_peak_epoch=5, peak_i_yt_epoch=500, snr_drop_epoch=500),
    ])
    marks = phase_charts.phase_marks(phases).set_index(["quantity", "mark"])["epoch"]
    # over the completed live runs only, as the statistics, not the unfinished runs' too
    assert marks[("i_xt", "peak I(X;T)")] == 5 and marks[("i_yt", "peak I(Y;T)")] == 10
    assert marks[("i_xt", "SNR drop")] == marks[("i_yt", "SNR drop")] == 6   # a missing drop is no 0
    spec = phase_charts.phase_lines(phase_charts.seed_bands(mi_rows()), phase_charts.phase_marks(phases)).to_dict()
    marks_in_spec = [layer["mark"]["type"] for layer in spec["spec"]["layer"]]
    assert marks_in_spec == ["area", "line", "rule"]
    legend_values = spec["spec"]["layer"][1]["encoding"]["color"]["scale"]["domain"]
    assert legend_values == ["A (3 seeds, 1 dead, 1 diverged left out)", "B (1 seed)"]


def test_networks_of_two_depths_keep_i_xt_and_i_yt_in_their_own_columns():
    # A's layer 1 is its output, B's a hidden layer: the panels ran "1 · dense_1: I(X;T)",
    # "1 · output: I(X;T)", then both I(Y;T), so the two columns no longer held one quantity each
    rows = mi_rows()
    deeper = rows[rows["group"] == "B"].assign(layer=1, layer_name="dense_1")
    shallow = rows[rows["group"] == "A"].assign(layer=1, layer_name="output")
    rows = pd.concat([shallow, rows, deeper], ignore_index=True)
    phases = pd.DataFrame([phase_row(group_peak_epoch=4, peak_i_yt_epoch=10, snr_drop_epoch=6)])
    spec = phase_charts.phase_lines(phase_charts.seed_bands(rows), phase_charts.phase_marks(phases)).to_dict()
    assert spec["facet"]["sort"] == ["0 · dense_0: I(X;T)", "0 · dense_0: I(Y;T)", "1 · dense_1: I(X;T)",
                                     "1 · dense_1: I(Y;T)", "1 · output: I(X;T)", "1 · output: I(Y;T)"]
    assert spec["columns"] == 2


def test_groups_keep_the_order_they_come_in():
    rows = mi_rows()
    rows = pd.concat([rows[rows["group"] == "B"], rows[rows["group"] == "A"]])   # B first: "bias=-1" before "-0.2"
    assert list(dict.fromkeys(phase_charts.seed_bands(rows)["group"])) == ["B", "A"]


def test_a_given_colour_domain_keeps_every_group_and_the_axis_can_be_linear():
    """A group whose seeds are all left out draws no line but keeps its legend entry and colour slot;
    the epochs go on a symmetric-log axis by default, a linear one on request."""
    rows = mi_rows()
    rows.loc[rows["group"] == "B", "left_out"] = "dead"
    bands = phase_charts.seed_bands(rows)
    assert set(bands["group"]) == {"A"}
    domain = list(phase_charts.legend_labels(rows.drop_duplicates("run_id")).values())
    assert domain == ["A (3 seeds, 1 dead, 1 diverged left out)", "B (0 seeds, 1 dead left out)"]
    marks = phase_charts.phase_marks(pd.DataFrame(columns=["group", "layer", "layer_name", "dead_network",
                                                           "diverged", "status", *phase_charts.MARKS]))
    spec = phase_charts.phase_lines(bands, marks, color_domain=domain).to_dict()
    assert spec["spec"]["layer"][1]["encoding"]["color"]["scale"]["domain"] == domain
    assert spec["spec"]["layer"][1]["encoding"]["x"]["scale"]["type"] == "symlog"
    assert spec["facet"]["sort"] == ["0 · dense_0: I(X;T)", "0 · dense_0: I(Y;T)"]
    linear = phase_charts.phase_lines(bands, marks, color_domain=domain, log_epochs=False).to_dict()
    assert "scale" not in linear["spec"]["layer"][1]["encoding"]["x"]


def test_an_estimator_without_i_xt_draws_only_i_yt_panels_and_their_marks():
    # ksg records no I(X;T): its chart once had an empty I(X;T) panel per layer holding SNR-drop rules
    rows = mi_rows().assign(i_xt=math.nan)
    phases = pd.DataFrame([phase_row(group_peak_epoch=None, peak_i_yt_epoch=10, snr_drop_epoch=6)])
    bands = phase_charts.seed_bands(rows)
    assert set(bands["quantity"]) == {"i_yt"}
    spec = phase_charts.phase_lines(bands, phase_charts.phase_marks(phases)).to_dict()
    data = pd.DataFrame(next(iter(spec["datasets"].values())))
    assert set(data["panel"]) == {"0 · dense_0: I(Y;T)"}
    assert sorted(data.loc[data["kind"] == "mark", "mark"]) == ["SNR drop", "peak I(Y;T)"]
    dash = spec["spec"]["layer"][2]["encoding"]["strokeDash"]["scale"]
    assert dash == {"domain": ["peak I(Y;T)", "SNR drop"], "range": [[1, 3], [5, 2, 1, 2]]}


@pytest.mark.slow  # draws the chart with Vega
def test_the_legend_swatches_show_three_patterns_told_apart():
    """SNR drop's long dashes, [8, 3], looked like peak I(X;T)'s [4, 2] on the chart and solid at
    the legend's 10 px swatch: each swatch now holds two repeats of its pattern at least, and SNR
    drop is a dash-dot against the peaks' one dash per repeat."""
    phases = pd.DataFrame([phase_row(group_peak_epoch=4, peak_i_yt_epoch=10, snr_drop_epoch=6)])
    spec = phase_charts.phase_lines(phase_charts.seed_bands(mi_rows()), phase_charts.phase_marks(phases)).to_dict()
    svg = vlc.vegalite_to_svg(spec)
    swatches = re.findall(r'role-legend-symbol.*?d="M(-?[\d.]+),0L(-?[\d.]+),0"[^>]*stroke-dasharray="([\d,.]+)"'
                          r'.*?role-legend-label.*?>([^<]+)</text>', svg)
    patterns = {label: [float(v) for v in dashes.split(",")] for _, _, dashes, label in swatches}
    assert set(patterns) == set(phase_charts.MARKS.values())
    for start, end, dashes, _ in swatches:
        assert float(end) - float(start) >= 2 * sum(float(v) for v in dashes.split(","))
    x_peak, y_peak, drop = phase_charts.MARKS.values()
    assert len(patterns[drop]) == 4 and len(patterns[x_peak]) == len(patterns[y_peak]) == 2
    assert patterns[x_peak] != patterns[y_peak]


BINNING = '{"bin_size": 0.07}'


def write_group(root, bias: float, statuses: list[Status], **options) -> list[str]:
    """One seed group (initial_bias `bias`), a run of each status in turn; unfinished ones stop at epoch 10."""
    return [write_run(root, "g", {"initial_bias": bias, "epochs": 20}, seed=seed, logged=5, status=status,
                      epochs_done=None if status in (Status.COMPLETED, Status.DIVERGED) else 10, **options)
            for seed, status in enumerate(statuses)]


def drawn_legends(data: phase_charts.PhaseData) -> set[str]:
    return set(phase_charts.seed_bands(data.mi, "ci", data.non_negative, data.ceilings)["legend"])


def test_the_legend_counts_the_runs_drawn_not_a_selected_run_without_mi_rows(tmp_path):
    """A selected run with no MI rows (killed before its first flush, a damaged file) draws nothing: the
    legend entry once counted it while the lines were labelled without it, so the colour scale lacked
    the label drawn and the group's lines had no colour. The page's info box names that run."""
    ids = write_group(tmp_path, 0.2, [Status.COMPLETED] * 2)
    ids += [write_run(tmp_path, "g", {"initial_bias": 0.2, "epochs": 20}, seed=2, logged=5, tables=("metrics",))]
    ids += write_group(tmp_path, 1.0, [Status.COMPLETED])
    data = ResultStore(tmp_path).phase_data(ids, "binning", BINNING, "train")
    assert data.domain == ["initial_bias=0.2 (2 seeds)", "initial_bias=1 (1 seed)"]
    assert drawn_legends(data) == set(data.domain)


def test_the_chart_leaves_out_the_runs_the_statistics_leave_out_and_counts_them(tmp_path):
    """Interrupted, failed and running runs are left out of the lines and marks as ibstore.stats
    leaves them out of the tables (exclusions), and counted in the legend as unfinished; a group
    with none kept keeps its entry."""
    ids = write_group(tmp_path, 0.5, [Status.COMPLETED, Status.COMPLETED, Status.DIVERGED, Status.INTERRUPTED,
                                      Status.FAILED])
    ids += write_group(tmp_path, 1.0, [Status.INTERRUPTED])
    store = ResultStore(tmp_path)
    data = store.phase_data(ids, "binning", BINNING, "train")
    assert data.domain == ["initial_bias=0.5 (2 seeds, 1 diverged, 2 unfinished left out)",
                           "initial_bias=1 (0 seeds, 1 unfinished left out)"]
    bands = phase_charts.seed_bands(data.mi)
    assert set(bands["legend"]) == {data.domain[0]} and set(bands["n"]) == {2}
    # the I(X;T) mark is where the mean over the two completed runs peaks, as the phases view's rows of those runs
    phases = store.phases(ids[:2])
    phases = phases[(phases["estimator"] == "binning") & (phases["split"] == "train")]
    want = phases.groupby("layer")["group_peak_epoch"].mean()
    marks = data.marks[(data.marks["mark"] == "peak I(X;T)")].set_index("layer")["epoch"]
    assert marks.to_dict() == pytest.approx(want.to_dict())


def test_a_chart_without_marks_is_valid_json():
    # a root whose mi files hold no layer names has no peak marks: their empty column went into the
    # spec as a bare NaN, and vl-convert refused the report's figure
    bands = phase_charts.seed_bands(mi_rows().assign(layer_name=None), "ci")
    marks = pd.DataFrame(columns=["group", "layer", "layer_name", "quantity", "mark", "epoch"])
    spec = phase_charts.phase_lines(bands, marks, "t").to_json(indent=None)

    def refuse(constant):
        raise ValueError(f"{constant} is no JSON")
    assert json.loads(spec, parse_constant=refuse)["title"]
    assert vlc.vegalite_to_svg(spec).lstrip().startswith("<svg")
