"""The cohort's tables and the sentences that read them: per seed group its health, final test
accuracy and phase statistics (ibstore.stats), the comparisons between groups, the trends along a
config key (ibstore.trend), the glance at each group's last hidden layer, with their captions and
notes. `trainer report` writes them (explorer.report) and the Phases, Training and Compare pages
show the same tables, so what a page says and what a report says are one text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from explorer.charts import layer_label
from explorer.results import ResultStore
from explorer.run_rows import in_order
from ibstore import configdiff, stats, trend
from ibstore.phases import MIXTURE_ESTIMATORS
from ibstore.record import Status

TABLE_QUANTITIES = ("peak_i_xt_epoch", "compression_bits", "noise_floor_bits", stats.EXCESS, "peak_i_yt",
                    "snr_drop_epoch")
# Not peak - final (compression_bits): noise makes it positive in every run, and a group with noisier
# estimates would "compress more" by that alone; compression over the floor is the compared fall.
COMPARED = (stats.EXCESS, "final_i_xt", "peak_i_yt", "snr_drop_epoch")
# Why `compresses` can be "–" (ibstore.stats.UNTESTABLE): said beside every table that shows it.
UNDECIDED = (f"compresses is – where no test can decide: fewer than {stats.MIN_SEEDS_TESTED} seeds, too few to "
             "measure the noise the test needs; it reads – (at ceiling) where I(X;T) ends at its ceiling in every "
             "seed, where the estimator cannot show compression, and – (bins clip) where idnns' fixed bins [-1, 1] "
             "clip a layer whose activation is not bounded by 1, where its fall is the bins', not the layer's.")
AT_CEILING_CELL = "– (at ceiling)"
CLIPPED_CELL = "– (bins clip)"
# ibstore.stats.CENSORED_RANKS and CENSORED_AT_HORIZON: a p, no interval; each with why a seed is censored
CENSORED_WHY = {stats.CENSORED_RANKS: "a seed's SNR never halved",
                stats.CENSORED_AT_HORIZON: "a seed's SNR did not halve within the horizon"}
RANKS_CELL = {note: f"none: by ranks ({why})" for note, why in CENSORED_WHY.items()}
# a trend table's cell for a row without an interval, where its note is a sentence the caption says
UNTESTED_CELL = {**RANKS_CELL, stats.CLIPPED_BINS: CLIPPED_CELL,
                 stats.PEAKS_AT_END: "– (a group peaks at its last epoch)",
                 stats.AT_CEILING_COMPARED: "– (a group at its ceiling)",
                 stats.AT_CEILING_ALL: "– (every group at its ceiling)",
                 stats.NO_SHARED_EPOCH: "– (no logged epoch shared)",
                 stats.IMPLAUSIBLE_BITS: "– (beyond 10^6 bits)",
                 stats.CENSORED_DROP: "– (a seed's SNR never halved; its last epoch not known)",
                 stats.UNEQUAL_SPANS: "– (SNR followed to different epochs)",
                 stats.NO_DROP: "– (no seed's SNR halved in the epochs compared)"}
# The `compresses` cells besides yes and –: p >= 0.05 is no evidence of compression with these seeds, not
# evidence of none; every table asks a question of several tests (which layers, which groups), answered
# by its q, so p < 0.05 alone is not a finding.
NOT_SHOWN_CELL = "not shown"
STILL_RISING_CELL = "not shown (still rising)"    # ibstore.stats.STILL_RISING: its mean peaks at its last epoch
P_ONLY_CELL = "p only (q ≥ 0.05)"
VERDICTS = (f"compresses: yes at p < {stats.ALPHA:g} and q < {stats.ALPHA:g} (the table's q: over the layers, or at a "
            f"glance over the groups), {P_ONLY_CELL} where p alone is below {stats.ALPHA:g}; {NOT_SHOWN_CELL} where p "
            f"≥ {stats.ALPHA:g}: no evidence of compression with these seeds, not evidence of none; "
            f"{STILL_RISING_CELL} where the group's mean I(X;T) peaks at its last logged epoch: no fall within the "
            "epochs trained (the finding for relu in Saxe et al. 2018; whether it falls later, only longer training "
            "can tell). p < 0.001 is written so: a permutation test's p stops at a floor "
            "set by its draws or arrangements. Intervals are cut to the range their quantity can take (0, a ceiling, "
            "the last logged epoch); the one-sided bound of compression over the floor is not: below 0 it says how "
            "far the seeds' noise reaches.")
# What q is: said beside every table that shows it (ibstore.stats.over_layers).
ADJUSTED = ("q: p adjusted by Benjamini-Hochberg over every layer tested with it (all the layers recorded, shown or "
            "not; not a layer at its ceiling or with clipping bins, which has no test). Read q when asking which "
            "layers: noise alone gives one p < 0.05 among six independent layers one time in four.")
# The heading of `last_hidden_comparison_table`, with the group every row is compared with, else EACH_COMPARED.
LAST_HIDDEN_QUESTION = "Does the last hidden layer compress more or less than in {}?"
EACH_COMPARED = "the group each is compared with"
# Beside `last_hidden_comparison_table`.
LAST_HIDDEN_COMPARED = (f"The last hidden layer's {stats.EXCESS}, in the comparison table's pairs of seed groups: one "
                        "layer and one quantity asked of in advance, so its q (over groups) adjusts over those pairs "
                        "alone (Benjamini-Hochberg), where each estimator's comparison table adjusts over every pair "
                        "and layer. a - b, its 95 % interval and p as there. A pair of groups of two depths is not in "
                        "it: their last hidden layers are different layers.")
# How the per-layer tables show compression over the floor (ibstore.stats.drop_test).
EXCESS_BOUND = (f"noise floor: how far a run's own peak stands above its I(X;T) at the epoch where its group's mean "
                f"peaks, the part of peak - final that picking each run's own maximum adds. {stats.EXCESS}: the "
                "mean of compression - floor (the mean curve's fall from its peak to its end) and (≥ ...) its "
                f"one-sided 95 % lower bound from the test, above 0 exactly where compresses is yes (no bound below "
                f"{stats.MIN_SEEDS_TESTED} seeds).")
# Said under a comparison or trend table with a row whose drops were cut at one horizon (`horizon_note`).
HORIZON = ("Where the seeds' SNR was followed to different last epochs or at different epochs (runs of different "
           "lengths, stopped early, or with no SNR at some epochs: a gradient that vanished there has none), "
           "their SNR drop epochs are taken again on the epochs every compared seed has an SNR at, up to the end of "
           "the seed followed the shortest (snr_drop_epoch (to epoch H), H the last of them): each seed's first such "
           "epoch after its SNR's peak among them with an SNR below half of it. A drop taken over a whole run is not "
           "one quantity across lengths (a longer run can peak again and drop later), and one read on each run's "
           "own epochs is not one across schedules (the same networks logged on two schedules read different "
           "drops). A seed with no such epoch is censored at H, ranked after every drop; a seed whose SNR halved "
           "early and then rose above that first peak is read from the higher one. The comparison or trend is "
           "then of these cut drops, not of the groups' means in the phase table, which are over each seed's "
           "whole run: the two can differ, even in sign.")
# Cliff's delta's interval (ibstore.stats.cliffs_delta), said beside every table that shows one.
CLIFF_INTERVAL = ("with its own 95 % interval (Feng and Cliff's, as R's effsize computes it; none where the seeds "
                  "are too few for p < 0.05), which is neither the test's nor adjusted as q is: it can hold 0 where "
                  "p < 0.05, and leave 0 out where p >= 0.05.")
# What a comparison row holds (ibstore.stats.compare): said beside every comparison table.
# Which groups are compared (`compared_pairs`): said beside every comparison table.
PAIRS = ("Where the groups differ in one key, each is compared with the reference. In a grid of several keys, "
         "each group is compared, for each key in which it differs from the reference, with the group that "
         "differs from it in that key alone, at the reference's value where there is one: each key's effect at "
         "each level of the others (a full 2 x 2 grid: four comparisons; fewer where the grid has holes). A group "
         "with no such neighbour (two groups apart in two keys, nothing between) is compared with the reference.")
COMPARED_CAPTION = ("Difference of means a - b; two-sided p, the larger of the studentized permutation test's "
                    "(Welch's t permuted) and Welch's t test's, and its 95 % interval, the span of the two tests' "
                    "intervals, so the interval leaves out 0 exactly when p < 0.05 (unbounded where the seeds are too "
                    "few for p < 0.05). Each test guards where the other errs: the permutation test where the seeds "
                    "are not normal, Welch's where a group of a few seeds spreads wider (a group of 2 seeds: t on "
                    "Hsu's 1 degree of freedom, which holds 5 % whatever the spreads). Compression over the floor, "
                    "which each group's seeds take at the epoch their group peaks at: p is also at least that of the "
                    "permutation test that picks each group's peak epoch again in every split of the seeds (9,999 "
                    "random ones where there are more), and the interval then holds 0 where that test keeps it; no "
                    "test where a group peaks at its last logged epoch (0 in every seed by construction). Cliff's "
                    f"delta: P(a > b) - P(a < b), {CLIFF_INTERVAL} q over groups and layers: p adjusted by "
                    "Benjamini-Hochberg over "
                    "every pair of groups compared and every layer; read it when asking which groups differ. "
                    f"{PAIRS}")
# What a trend row holds (ibstore.trend): said beside every trend table.
TREND_CAPTION = ("Over every run kept, the seed as the unit: the least-squares slope of the quantity against the "
                 "run's step along {key} (the values with at least 2 runs kept, ranked 0 to k - 1, so their spacing "
                 "does not count; a value with one run kept or none, e.g. all dead, has no step: one run has no "
                 "spread of its own), in the quantity's units "
                 "per step; two-sided p, the larger of the studentized permutation test's (the slope over its HC3 "
                 "error, the values shuffled over the runs) and the t test's of the slope over each step's own "
                 "variance (on Hsu's 1 degree of freedom where a step of 2 enters the slope), and its 95 % "
                 "interval, the span of the two tests' intervals, so the interval "
                 "leaves out 0 exactly when p < 0.05; Spearman's rho of {key} and the quantity with its own 95 % "
                 "interval (Fisher's z, Bonett and Wright's error), which is neither the test's nor adjusted as q "
                 "is: it can hold 0 where p < 0.05, and leave 0 out where p >= 0.05. "
                 "Compression over the "
                 "floor: p also at least that of the permutation test that picks each group's peak epoch again in "
                 "every order of the runs' curves (9,999 random ones where there are more; the interval then holds 0 "
                 "where that test keeps it); no trend where a group peaks at its last logged epoch. q: p adjusted by "
                 "Benjamini-Hochberg over every layer recorded, per quantity. Where the groups also differ in other "
                 "keys, a trend per combination of those (within). A slope finds a steady rise or fall, not a change "
                 "that peaks between the key's ends.")
ENDED = (Status.COMPLETED, Status.DIVERGED)   # runs that ended on their own: the report's runs
HEALTH_CAPTION = ("Per seed group, its runs that ended on their own (completed or diverged) and how many of them "
                  "are dead, saturated or diverged; final test accuracy over its completed runs (mean [95 % t "
                  "interval]), dead networks included, diverged ones left out (the runs view keeps the accuracy "
                  "of a diverged run's last epoch where it was finite).")
# What the final test accuracy's comparison holds (`accuracy_comparison`).
ACCURACY_CAPTION = ("Final test accuracy over each group's completed runs, dead networks included: their chance "
                    "accuracy is what that setting gives. Difference of means a - b, two-sided p and its 95 % "
                    "interval from the studentized permutation test bounded by Welch's t test, as every comparison of "
                    "two groups. q (over groups): p adjusted by Benjamini-Hochberg over the pairs of groups "
                    f"compared. Cliff's delta: P(a > b) - P(a < b), {CLIFF_INTERVAL} {PAIRS}")
# The test accuracy the report's epochs-to-accuracy comparison asks of, the Training page's default.
REACH_ACCURACY = 0.9
REACH_CAPTION = ("Per run, the first epoch at which its test accuracy (on every test input, after that epoch's "
                 "training) reaches the threshold; epoch 0 is the untrained network. A run that completed without "
                 "reaching it is censored at its end, and every run of its pair at the shortest such end (to epoch), "
                 "ranked after every run that does; a run stopped on reaching it (stop_at_accuracy) is not censored. "
                 "Median epoch over each group's seeds (\"> m\" where censored seeds make it at least m, \"never\" "
                 "where most seeds diverged first), and how many reach it. Compared by ranks: Mann and Whitney's U "
                 "test over the arrangements of the seeds, every one up to 9,999 of them, else 9,999 random ones "
                 "(p), and Cliff's delta with its interval (below 0: a reaches it sooner); no difference in epochs, "
                 "which censored seeds leave unknown. "
                 "q (over groups): Benjamini-Hochberg over the pairs. Dead and diverged networks are kept: never "
                 "reaching it is what their setting gives (a diverged run stopped training). A threshold that a "
                 f"network predicting one class meets is not compared. {PAIRS}")
# What the at-a-glance p and q answer: one layer per group, chosen before looking, so no q over layers.
ONE_LAYER = ("One layer per group, chosen in advance (the last hidden one): its p needs no adjustment over layers. "
             "q (over groups): p adjusted by Benjamini-Hochberg over the groups, per estimator (each estimator "
             "asks the question again; none adjusts over the others), the answer to which groups compress: yes "
             "needs it below 0.05 too.")


def records_no_i_xt(phases: pd.DataFrame) -> bool:
    """Whether `phases` (one estimator's rows) hold no I(X;T) at all: ksg records none (its k-NN
    estimate of I(X;T) is h(T), kept in mi's h_t_bits), so it has no compression to test."""
    return not np.isfinite(pd.to_numeric(phases["final_i_xt"], errors="coerce").to_numpy(dtype=float)).any()


# What the information-plane pages say beside ksg rows written before ksg left i_xt NULL: they hold h(T) there.
LEGACY_KSG = ("These ksg rows hold h(T) as I(X;T) (written before ksg recorded it apart): a differential entropy, "
              "which depends on the scale of the activations, can be negative, and is not comparable with the "
              "binning estimators' I(X;T).")

# What the information-plane pages say in place of a plane (`no_i_xt_note`'s `instead`).
NO_PLANE = "There is no information plane to draw; the Phases page draws its I(Y;T) per layer."


def no_i_xt_note(estimator: str, instead: str = "There is no compression to test; its I(Y;T) per layer is in "
                                               "the figure.") -> str:
    """What the report and the pages say in place of what an estimator without I(X;T) cannot give."""
    return (f"{estimator} records no I(X;T): its k-NN estimate of I(X;T) on a deterministic network is the "
            f"differential entropy h(T), not a mutual information (mi's h_t_bits holds it). {instead}")


# Why a layer at its I(X;T) ceiling says nothing of its compression, per estimator (ibstore.phases).
AT_CEILING_BECAUSE = {
    "binning": "Every input still has a bin of its own there: this binning cannot show those layers' compression, "
               "and what their test says is about the binning, not the layer.",
    "edge": "Every input still has a bucket of its own in every hash there, or every bucket's term is at EDGE's cap "
            "U_xt: buckets this fine, or a cap this low, cannot show those layers' compression, and what their test "
            "says is about EDGE's bandwidth or cap, not the layer.",
    **dict.fromkeys(MIXTURE_ESTIMATORS, "Every input's Gaussian still stands apart from all the others there: at "
                    "this noise variance the bound cannot show those layers' compression, and what their test "
                    "says is about the noise variance, not the layer."),
}


# Where every input keeps a bin (or Gaussian) of its own, T tells X apart, so I(Y;T) = I(X;Y): a new
# user's layers all read H(Y) from epoch 0, which looked like a fitting phase already done.
AT_CEILING_I_YT = (" Where I(X;T) is at it, I(Y;T) is I(X;Y) (H(Y) where each input has one label) whatever the "
                   "layer learned: an I(Y;T) flat at H(Y) there is the estimator's, not a fitting phase done.")


def split_ceilings_note(phases: pd.DataFrame, split: str) -> str | None:
    """The sentence giving each split's ceiling of I(X;T) (`phases`: rows of one estimator and params,
    every split), the split shown first, where they differ: each is the entropy of that split's own
    inputs, so its I(X;T) is on a scale of its own (a new user asked why the train split's layers
    ended at 12.23 bits and the test split's at 10.23); None where there is one split or one ceiling.

    >>> phases = pd.DataFrame({"split": ["train", "test", "test"], "i_xt_ceiling_bits": [12.23, 10.23, 10.23],
    ...                        "split_inputs": [4800, 1200, 1200]})
    >>> split_ceilings_note(phases, "test").split(", against ")[1][:45]
    '12.23 bits on the train split (4,800 inputs):'
    """
    if "i_xt_ceiling_bits" not in phases:
        return None
    known = phases.dropna(subset=["i_xt_ceiling_bits"])
    ceilings = known.groupby("split").agg(low=("i_xt_ceiling_bits", "min"), high=("i_xt_ceiling_bits", "max"),
                                          inputs=("split_inputs", "max"))
    if len(ceilings) < 2 or split not in ceilings.index or ceilings[["low", "high"]].round(2).nunique().max() < 2:
        return None

    def ceiling(name: str) -> str:
        row = ceilings.loc[name]
        bits = f"{row.low:.2f}" if round(row.low, 2) == round(row.high, 2) else f"{row.low:.2f}-{row.high:.2f}"
        inputs = f" ({row.inputs:,.0f} inputs)" if pd.notna(row.inputs) else ""
        return f"{bits} bits on the {name} split{inputs}"
    others = [name for name in ceilings.index if name != split]
    return (f"The ceiling of I(X;T), H(X), is {ceiling(split)}, against " + " and ".join(map(ceiling, others))
            + ": each split's is the entropy of its own inputs (log2 n where no two are alike), so a split of "
            "fewer inputs has a lower ceiling, and its I(X;T) and compression are on a scale of their own.")


def ceiling_note(phases: pd.DataFrame, labels: dict[str, str]) -> str | None:
    """The sentences naming the layers of `phases` (one estimator, params and split) whose I(X;T) ends
    at its ceiling in every seed (ibstore.stats.at_ceiling), and those where it does in some seeds
    (counted: `stats.ceiling_counts`), by seed group; None if there are none."""
    counts = stats.ceiling_counts(phases)
    counts = in_order(counts[counts["at_ceiling"] > 0], "group_id", labels)     # by the varying keys
    if counts.empty:
        return None
    estimator = counts["estimator"].iloc[0]
    ceiling = "H(X) (log2 n bits where no two inputs are alike)" + (", or EDGE's cap U_xt" if estimator == "edge" else "")
    every = counts["at_ceiling"] == counts["seeds"]

    def named(rows: pd.DataFrame, counted: bool) -> str:
        return "; ".join(f"{labels.get(group_id, group_id)}: " + ", ".join(
            layer_label(row.layer, row.layer_name) + (f" ({row.at_ceiling} of {row.seeds} seeds)" if counted else "")
            for row in layers.itertuples()) for group_id, layers in rows.groupby("group_id", sort=False))
    sentences = []
    if every.any():
        sentences.append(f"I(X;T) ends at its ceiling, {ceiling}, in every seed of {named(counts[every], False)}. "
                         + AT_CEILING_BECAUSE.get(estimator, AT_CEILING_BECAUSE["binning"]) + AT_CEILING_I_YT)
    if (~every).any():
        sentences.append(f"I(X;T) ends at its ceiling in some seeds of {named(counts[~every], True)}: those seeds "
                         f"cannot show compression, so where a group has the {stats.MIN_SEEDS_TESTED} seeds a test "
                         "needs it reads the others' fall diluted by theirs, and a \"not shown\" there may be the "
                         "estimator's.")
    return " ".join(sentences)


def clipped_note(phases: pd.DataFrame, labels: dict[str, str]) -> str | None:
    """The sentence naming the layers of `phases` (one estimator, params and split) whose activations
    idnns' fixed bins [-1, 1] clip in some run (ibstore.phases' `bins_clip`), by seed group, for the
    figures as well as the tables; None if there are none."""
    clipped = phases[stats.rows_with_clipped_bins(phases)].drop_duplicates(["group_id", "layer"])
    if clipped.empty:
        return None
    clipped = in_order(clipped.sort_values("layer"), "group_id", labels)
    groups = [f"{labels.get(group_id, group_id)}: " + ", ".join(layer_label(row.layer, row.layer_name)
                                                               for row in rows.itertuples())
              for group_id, rows in clipped.groupby("group_id", sort=False)]
    return ("idnns' fixed bins [-1, 1] clip the activations of " + "; ".join(groups) + ": their I(X;T), drawn and "
            "tabled, is the bins' (values beyond 1 share the last bin), not the layer's.")


def from_start_note(phases: pd.DataFrame, group_stats: pd.DataFrame, labels: dict[str, str]) -> str | None:
    """The sentence naming, by seed group, the layers of `phases` (one estimator, params and split)
    that compress (their phase_stats row of `group_stats` says so) from a group mean of I(X;T) that
    is highest at epoch 0, before any training, over its kept seeds (ibstore.phases'
    `group_peak_epoch`); None if there are none. Their compression, Saxe et al.'s peak - final, has
    no fitting phase before it (a new user's "yes" on two moons fell from initialisation). Only a
    "yes": a layer at its ceiling from epoch 0 on, whose mean merely ties there, is no such fall (a
    sceptic's tanh dense_0, 0.0001 bits below its ceiling at the end)."""
    if "group_peak_epoch" not in phases or group_stats.empty:
        return None
    kept = phases[np.equal(stats.exclusions(phases), None)]
    layers = kept.groupby(["group_id", "layer"], sort=True).agg(
        layer_name=("layer_name", "first"), first=("group_peak_epoch", "max")).reset_index()
    excess = group_stats[group_stats["quantity"] == stats.EXCESS]
    compressing = set(zip(excess.loc[excess["compresses"].eq(True), "group_id"],
                          excess.loc[excess["compresses"].eq(True), "layer"]))
    compresses = np.array([key in compressing for key in zip(layers["group_id"], layers["layer"])], dtype=bool)
    layers = layers[(layers["first"] == 0).to_numpy() & compresses]
    layers = in_order(layers, "group_id", labels)
    if layers.empty:
        return None
    groups = [f"{labels.get(group_id, group_id)}: " + ", ".join(layer_label(row.layer, row.layer_name)
                                                               for row in rows.itertuples())
              for group_id, rows in layers.groupby("group_id", sort=False)]
    return ("I(X;T) is highest at epoch 0, before any training, and falls from there in " + "; ".join(groups)
            + ": the group's mean peaks at initialisation. Their compression (yes) is the fall from that peak "
            "(Saxe et al.'s peak - final), with no fitting phase before it, not a compression phase after fitting "
            "as Shwartz-Ziv and Tishby describe it.")


def last_hidden_yes(phases: pd.DataFrame, group_stats: pd.DataFrame) -> pd.DataFrame:
    """The rows of `phases` of each group's last hidden layer where the glance says "yes" (p and q
    below ALPHA: not its "p only")."""
    tests = last_hidden_tests(group_stats)
    yes = tests.loc[(tests["p_value"] < stats.ALPHA) & (tests["q_groups"] < stats.ALPHA), "group_id"]
    last = last_hidden_rows(group_stats)[["group_id", "layer"]].drop_duplicates()
    return phases.merge(last[last["group_id"].isin(set(yes))], on=["group_id", "layer"])


def last_hidden_from_start_note(phases: pd.DataFrame, group_stats: pd.DataFrame,
                                labels: dict[str, str]) -> str | None:
    """`from_start_note` of each group's last hidden layer alone, for beside the glance's "yes": a
    new user's glance said tanh's last hidden layer compresses, and only the per-layer section, 60
    lines later, that its fall started at initialisation, with no fitting phase before it."""
    return from_start_note(last_hidden_yes(phases, group_stats), group_stats, labels)


def below_glance_from_start_note(phases: pd.DataFrame, group_stats: pd.DataFrame,
                                 labels: dict[str, str]) -> str | None:
    """`from_start_note` of the layers that `last_hidden_from_start_note` has not named: for the
    per-layer section of a page that shows the glance's note above it (the Phases page named the
    last hidden layer twice, a screen apart)."""
    named = last_hidden_yes(phases, group_stats)[["group_id", "layer"]].drop_duplicates()
    rest = phases.merge(named, how="left", on=["group_id", "layer"], indicator=True)
    return from_start_note(rest[rest.pop("_merge") == "left_only"], group_stats, labels)


def units_died_note(phases: pd.DataFrame, labels: dict[str, str]) -> str | None:
    """The sentence naming, by seed group, the layers of `phases` (one estimator, params and split) in
    which units of some kept seeds died after the group's peak epoch (ibstore.phases' `units_died`)
    while their I(X;T) fell (compression_bits > 0: where it did not, no fall is the units'), with how
    many of the seeds whose units are known; None if there are none."""
    if "units_died" not in phases:
        return None
    kept = phases[np.equal(stats.exclusions(phases), None)]
    known = kept.dropna(subset=["units_died"]).assign(
        died=lambda rows: (rows["units_died"] > 0) & (pd.to_numeric(rows["compression_bits"]) > 0))
    layers = known.groupby(["group_id", "layer"], sort=True).agg(   # one row per run and layer
        layer_name=("layer_name", "first"), seeds=("run_id", "size"), died=("died", "sum")).reset_index()
    layers = in_order(layers[layers["died"] > 0], "group_id", labels)
    if layers.empty:
        return None

    def counted(row) -> str:
        return f"{layer_label(row.layer, row.layer_name)} ({row.died} of {row.seeds} seed{'s' * (row.seeds != 1)})"

    groups = [f"{labels.get(group_id, group_id)}: " + ", ".join(counted(row) for row in rows.itertuples())
              for group_id, rows in layers.groupby("group_id", sort=False)]
    return ("Units died after the group's peak epoch (they varied over the split's inputs at some logged epoch from "
            "the peak on and are constant on every one of them at the end: a relu unit at 0, a saturated tanh unit, "
            "a unit fed by constant ones; on the test split a unit may still fire on training inputs) while the "
            "layer's I(X;T) fell, in "
            + "; ".join(groups)
            + ". Each lost unit takes its share of I(X;T): those layers' fall is partly the lost units', not only "
            "compression of the live ones. The Activations page shows each unit.")


def majority_class_note(runs: pd.DataFrame, labels: dict[str, str]) -> str | None:
    """The sentence giving the share of the test inputs in each class, for the seed groups (of
    `labels`) of `runs` (`runs` view rows): the most frequent class's is the accuracy of a network that
    predicts one class, as a dead network whose activations are alike for every input does (a
    sceptic's networks frozen by zero gradients scored 0.532, their features'). A new user's dead
    seeds scored 0.590, 0.303 and 0.107, their classes' shares, read beside real accuracies. None
    where no run records its counts.

    >>> runs = pd.DataFrame({"group_id": ["g", "h"], "splits": [{"test": {"class_counts": [580, 310, 110]}}, None]})
    >>> majority_class_note(runs, {"g": "relu", "h": "tanh"}).split(": ", 1)[1]
    'class 0, the most frequent, is 0.58 of them (580 of 1000; each class: 0.58, 0.31, 0.11).'
    """
    by_counts: dict[tuple, list[str]] = {}
    for group_id, counts in _test_class_counts(runs):
        if group_id in labels:
            by_counts.setdefault(counts, []).append(group_id)
    parts = []
    for counts, groups in by_counts.items():
        total, top = sum(counts), max(counts)
        parts.append(f"class {counts.index(top)}, the most frequent, is {top / total:.3g} of them ({top} of {total}; "
                     f"each class: {', '.join(f'{count / total:.3g}' for count in counts)})"
                     + ("" if len(by_counts) == 1 else f" in {', '.join(labels[g] for g in dict.fromkeys(groups))}"))
    return ("A network that predicts one class scores its share of the test inputs, as a dead network whose "
            "activations are alike for every input does (one frozen by zero gradients scores what its untrained "
            "features give): "
            f"{'; '.join(parts)}." if parts else None)


def _test_class_counts(runs: pd.DataFrame) -> Iterable[tuple[str, tuple[int, ...]]]:
    """(group_id, the test split's inputs per class) of each run of `runs` that records them."""
    for group_id, splits in zip(runs["group_id"], runs["splits"] if "splits" in runs else [None] * len(runs)):
        counts = ((splits if isinstance(splits, dict) else {}).get("test") or {}).get("class_counts")
        if counts is not None and sum(counts):
            yield group_id, tuple(int(count) for count in counts)


def health_table(runs: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """Per seed group (in the labels' order): its runs (completed and diverged), the dead, saturated
    and diverged among them, and the final test accuracy over the completed ones (its interval cut
    to [0, 1]; a diverged run's accuracy, null since it has none, was its NaN outputs' in older roots)."""
    rows = []
    for group_id, label in labels.items():
        members = runs[runs["group_id"] == group_id]
        why = stats.exclusions(members)
        completed = members["status"] == Status.COMPLETED
        rows.append({"seed group": label, "runs": len(members),
                     "dead": int((why == "dead").sum()),
                     "saturated": int(members["saturated_network"].astype("boolean").fillna(False).sum()),
                     "diverged": int((why == "diverged").sum()),
                     "final test accuracy": _estimate(stats.summarize(
                         members.loc[completed, "final_test_accuracy"].to_numpy(dtype=float), (0.0, 1.0)), 3)})
    return pd.DataFrame(rows)


def _decimals(values: tuple[float, ...], digits: int) -> int:
    """`digits`, or as many as the smallest nonzero finite of `values` (a mean and its interval's ends)
    needs not to read 0 (two significant digits, at most 6): a compression of 0.0049 bits,
    significant over its floor, read "0.00 [0.00, 0.01]"."""
    smallest = min((abs(v) for v in values if math.isfinite(v) and v != 0), default=math.inf)
    if smallest >= 0.5 * 10.0 ** -digits:
        return digits
    return min(6, 1 - math.floor(math.log10(smallest)))


def _estimate(summary: stats.Summary, digits: int = 2) -> str:
    if summary.n == 0:
        return "–"
    if summary.note == stats.CENSORED_MEAN:      # NaN where a censored seed's last epoch is not known
        return "–" if math.isnan(summary.mean) else f"≥ {summary.mean:.{digits}f} (a seed's SNR never halved)"
    # an end within rounding of 0 (seeds tied at a ceiling: -2.7e-17) is 0, and asks for no decimals:
    # within a billionth of the mean, or beyond the 12 decimals the statistics compare at
    tie = max(1e-9 * abs(summary.mean), 10.0 ** -stats.DECIMALS)
    low, high = (0.0 if abs(end) < tie else end for end in (summary.ci_low, summary.ci_high))
    digits = _decimals((summary.mean, low, high), digits)
    if summary.n == 1 or summary.note == stats.NO_INTERVAL:   # another note (at ceiling) may stand in its place
        return f"{summary.mean:.{digits}f} (n = 1: no interval)"
    if math.isnan(low) or math.isnan(high):
        return f"{summary.mean:.{digits}f} (no interval)"
    if math.isinf(high):            # a one-sided bound, to the mean's decimals: compression over its floor
        return f"{summary.mean:.{digits}f} ({'no bound' if math.isinf(low) else f'≥ {low:.{digits}f}'})"
    return f"{summary.mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def estimate_cell(row: pd.Series, digits: int = 2) -> str:
    """A phase_stats row (n, mean, sd, ci_low, ci_high, note) as the tables show it: "0.42 [0.30, 0.56]",
    "1.99 (≥ 0.47)" for a one-sided bound, "(n = 1: no interval)", "–" without seeds."""
    return _estimate(stats.Summary(int(row["n"]), row["mean"], row["sd"], row["ci_low"], row["ci_high"], row["note"]),
                     digits)


def number_text(value: float) -> str:
    """A difference or a statistic to 3 significant digits; "–" for none."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3g}"


def effect_text(value: float, low: float, high: float) -> str:
    """An effect size (Cliff's delta, Spearman's rho) with its 95 % interval (ibstore.stats.cliffs_delta,
    ibstore.trend.rho_interval), to 3 significant digits; the value alone where it has none (one
    seed in a group, fewer than 4 runs in a trend).

    >>> effect_text(0.76, -0.1504, 0.9729), effect_text(1.0, float("nan"), float("nan"))
    ('0.76 [-0.15, 0.973]', '1')
    """
    if any(end is None or math.isnan(end) for end in (value, low, high)):
        return number_text(value)
    return f"{number_text(value)} [{number_text(low)}, {number_text(high)}]"


def cliffs_text(item) -> str:
    """A comparison's (ibstore.stats.Comparison's fields) Cliff's delta with its interval, as `effect_text`."""
    return effect_text(item.cliffs_delta, item.cliffs_low, item.cliffs_high)


P_SMALLEST_SHOWN = 0.001


def p_text(value: float) -> str:
    """A p or q as `number_text`, but "< 0.001" below 0.001: a permutation test's p stops at a floor
    set by its draws or arrangements (1 / (draws + 1): 0.0001 at 9999 draws; 2 / C(n_a + n_b, n_a)
    where every arrangement is counted), so its digits there count them, not evidence (Welch's p
    beside it may be 1e-30); the SQL views keep every digit.

    A p just below ALPHA keeps the digits that show it below (0.04996 is not "0.05" beside a yes).

    >>> p_text(0.0123), p_text(0.0001), p_text(float("nan")), p_text(0.04996)
    ('0.0123', '< 0.001', '–', '0.04996')
    """
    if value is not None and value < P_SMALLEST_SHOWN:
        return f"< {P_SMALLEST_SHOWN:g}"
    digits = 3
    while value is not None and value < stats.ALPHA <= float(f"{value:.{digits}g}") and digits < 17:
        digits += 1
    return number_text(value) if digits == 3 else f"{value:.{digits}g}"


def difference_interval(note: str | None, low: float, high: float) -> str:
    """A comparison's 95 % interval (ibstore.stats.compare_groups: note, ci_low, ci_high) to 3
    significant digits (`_end`), "unbounded" where the seeds are too few to reject any shift."""
    if note == stats.NO_INTERVAL:
        return note
    if note in RANKS_CELL:
        return RANKS_CELL[note]
    if math.isnan(low):
        return "–"
    if math.isinf(low):
        return "unbounded"
    scale = max(abs(low), abs(high))
    return f"[{_end(low, scale)}, {_end(high, scale)}]"


def _end(value: float, scale: float) -> str:
    """An interval's end to 3 significant digits, shown as 0 within a billionth of `scale` of it:
    where seeds tie (a layer at its ceiling in most seeds) an end is 0 up to the rounding of the
    means, e.g. 2.7e-17."""
    return number_text(0.0 if abs(value) < 1e-9 * scale else value)


def group_table(group_stats: pd.DataFrame) -> pd.DataFrame:
    """Per seed group (`group`) and layer of phase_stats rows: the runs kept and left out, counted
    (`left_out_note` names them), the test of compression against the noise floor (the tested
    quantity, p, q over the layers, the verdict), then the other TABLE_QUANTITIES, each as
    "mean [95 % CI]". The answer comes first: the table is wider than a page's column."""
    rows = []
    for (group, layer), frame in group_stats.groupby(["group", "layer"], sort=False):   # a name can be NULL
        by = frame.set_index("quantity")
        excess = by.loc[stats.EXCESS]
        row = {"seed group": group, "layer": layer_label(layer, by["layer_name"].iloc[0]),
               "n": int(by.loc["compression_bits", "n"]), "left out": _left_out(excess),
               stats.EXCESS: estimate_cell(excess, 2), "p (compression > floor)": p_text(excess["p_value"]),
               "q (over layers)": p_text(excess["q_value"]),
               "compresses": _compresses(excess, q_value=excess["q_value"])}
        for quantity in (q for q in TABLE_QUANTITIES if q != stats.EXCESS):
            cell = estimate_cell(by.loc[quantity], 1 if quantity.endswith("epoch") else 2)
            n = int(by.loc[quantity, "n"])
            # over fewer seeds than the row's n: a layer without a finite SNR has no drop epoch
            row[quantity] = f"{cell} (n = {n})" if 1 < n < row["n"] else cell
        rows.append(row)
    return pd.DataFrame(rows)


def left_out_note(group_stats: pd.DataFrame) -> str | None:
    """The sentence naming, once per seed group (`group`) of phase_stats rows, the runs its statistics
    leave out (a table row per layer counts them); None if there are none."""
    named = group_stats.dropna(subset=["excluded_runs"]).drop_duplicates("group")
    missing = group_stats[group_stats["quantity"] == stats.EXCESS].dropna(subset=["missing_runs"])
    parts = [f"{row.group}: {row.excluded_runs}" for row in named.itertuples()]
    parts += [f"{row.group}, {row.layer_name}: {row.missing_runs} (no finite I(X;T) to test)"
              for row in missing.itertuples()]
    never = group_stats[group_stats["quantity"] == "snr_drop_epoch"].dropna(subset=["missing_runs"])
    parts += [f"{row.group}, {row.layer_name}: {row.missing_runs} from snr_drop_epoch (no SNR: all-zero or vanished "
              "gradients, or one minibatch)" for row in never.itertuples()]
    return "Left out: " + "; ".join(parts) + "." if parts else None


def live_groups(these: pd.DataFrame, labels: dict[str, str]) -> list[str]:
    """The seed groups of `these` (phases rows) with a run the statistics keep (not dead, diverged or
    unfinished), in the labels' order: the groups a comparison can say something of."""
    kept = set(these.loc[np.equal(stats.exclusions(these), None), "group_id"])
    return [group_id for group_id in labels if group_id in kept]


def compared_pairs(configs: dict[str, dict], reference: str) -> list[tuple[str, str]]:
    """The comparisons (a, b) among the seed groups of `configs` (group_id -> its flattened config, in
    the tables' order): each group a other than the `reference`, for each factor in which it differs
    from the reference, against a group b that differs from a in that factor alone, b holding the
    reference's value of it where such a group is there (the reference itself first), else the first
    such group before a in the tables' order (so a pair is asked once). A factor is a varying key,
    or keys that change together in every group (two cohorts reported together: name and
    activation). Along one key that is every group against the reference; in a grid, each key's
    effect at each level of the others. A 2 x 2 grid of learning rate and activation compared
    lr=0.1, relu only with the reference lr=0.01, tanh, so the learning rate's effect under relu was
    asked nowhere (a new user's); a grid with a hole compared a group across the diagonal (a
    sceptic's). A group with no such b (two groups apart in two keys with nothing between, or its
    config the reference's: the same networks trained twice) is compared with the reference.

    >>> grid = {"lo,tanh": {"lr": 1, "fn": "tanh"}, "hi,tanh": {"lr": 10, "fn": "tanh"},
    ...         "lo,relu": {"lr": 1, "fn": "relu"}, "hi,relu": {"lr": 10, "fn": "relu"}}
    >>> compared_pairs(grid, "lo,tanh")
    [('hi,tanh', 'lo,tanh'), ('lo,relu', 'lo,tanh'), ('hi,relu', 'hi,tanh'), ('hi,relu', 'lo,relu')]
    >>> compared_pairs({"a": {"lr": 1, "fn": "tanh"}, "b": {"lr": 10, "fn": "relu"}}, "a")
    [('b', 'a')]
    """
    keys = configdiff.varying_flat_keys(list(configs.values()))
    values = {group: {key: repr(configdiff.comparable(flat.get(key))) for key in keys}
              for group, flat in configs.items()}

    def apart(a: str, b: str) -> frozenset[str]:
        return frozenset(key for key in keys if values[a][key] != values[b][key])

    pairs, order = [], list(configs)
    for group in configs:
        if group == reference:
            continue
        found = []
        for factor in _factors(keys, values):
            if not factor <= apart(group, reference):     # a factor's keys differ all together or not at all
                continue
            partners = [other for other in configs if other != group and apart(group, other) == factor]
            at_reference = [other for other in partners if not factor & apart(other, reference)]
            # without one at the reference's value, the first before it (its mirror pair is not asked again)
            before = [other for other in partners if order.index(other) < order.index(group)]
            chosen = reference if reference in at_reference else next(iter(at_reference or before), None)
            found += [(group, chosen)] if chosen is not None else []
        pairs += found or [(group, reference)]
    return pairs


def _factors(keys: list[str], values: dict[str, dict[str, str]]) -> list[frozenset[str]]:
    """`keys` gathered into factors: keys that split the groups (`values`: group -> key -> value) into
    the same classes change together in every pair of groups, and are one factor. In `keys`' order."""
    by_classes: dict[frozenset, set[str]] = {}
    for key in keys:
        classes: dict[str, set[str]] = {}
        for group, of_group in values.items():
            classes.setdefault(of_group[key], set()).add(group)
        by_classes.setdefault(frozenset(frozenset(members) for members in classes.values()), set()).add(key)
    return [frozenset(together) for together in by_classes.values()]


def reference_comparisons(these: pd.DataFrame, labels: dict[str, str], reference: str | None = None,
                          curves: pd.DataFrame | None = None, configs: dict[str, dict] | None = None) -> pd.DataFrame:
    """The seed groups of `these` (phases rows of one estimator, params and split) with a kept run
    (`live_groups`) compared on COMPARED, per layer: with `configs` (run_id -> flattened config, of
    these runs or more) the pairs of `compared_pairs` around the `reference` group, else every group
    against it; the reference is the first such group if it has none (`reference_note`).
    `stats.compare_groups`' rows with group_id (a), compared_with (b), layer_name and q_groups, q
    over every pair and layer compared (`stats.over_groups`); empty if there is no other such
    group. A group without a kept run has no value to compare: it is left out (`not_compared`). The
    `curves` of these runs (CURVES_SQL's rows, of any estimator: looked up by key) bound the p of
    compression over the floor and give the SNR curves (`stats.compare_groups`)."""
    live = live_groups(these, labels)
    reference = reference if reference in live else first_alive(these, live) if live else None
    pairs = _pairs(these, live, reference, configs)
    compared = [stats.compare_groups(these, a, b, COMPARED, curves).assign(group_id=a, compared_with=b)
                for a, b in pairs]
    if not compared:
        return pd.DataFrame()
    compared = pd.concat(compared, ignore_index=True)
    return compared.assign(q_groups=stats.over_groups(compared), reference=reference,
                           layer_name=_pair_layer_names(these, compared))


def _pair_layer_names(these: pd.DataFrame, compared: pd.DataFrame) -> pd.Series:
    """Each compared row's layer name in its own pair: a's, which is b's (`stats.compare_groups`
    compares a layer only where both name it alike). The name of the first group with the layer
    named every pair's: a new user's two [32, 16, 8] groups, compared at their output layer, read
    "3 · dense_3", a deeper group's name for layer 3."""
    name = these.drop_duplicates(["group_id", "layer"]).set_index(["group_id", "layer"])["layer_name"]
    return pd.Series(list(zip(compared["group_id"], compared["layer"])), index=compared.index).map(name)


def _pairs(rows: pd.DataFrame, groups: list[str], reference: str | None,
           configs: dict[str, dict] | None) -> list[tuple[str, str]]:
    """`compared_pairs` of `groups` (rows: runs with run_id and group_id) where `configs` (run_id -> its
    flattened config) are given, else each group against the reference."""
    if configs is None:
        return [(group, reference) for group in groups if group != reference]
    first_run = rows.drop_duplicates("group_id").set_index("group_id")["run_id"]
    return compared_pairs({group: configs.get(first_run[group], {}) for group in groups}, reference)


def comparison_table(these: pd.DataFrame, labels: dict[str, str], reference: str | None = None,
                     layers: Iterable[int] | None = None, compared: pd.DataFrame | None = None) -> pd.DataFrame:
    """`reference_comparisons` as the tables show them (`compared`, when already computed): the rows
    of `layers` (default all), with their q over every layer recorded and over every group and layer."""
    compared = reference_comparisons(these, labels, reference) if compared is None else compared
    if compared.empty:
        return pd.DataFrame()
    if layers is not None:
        compared = compared[compared["layer"].isin(list(layers))]
    rows = [{"a": labels[item.group_id], "b": labels[item.compared_with],
             "layer": layer_label(item.layer, item.layer_name),
             "quantity": quantity_text(item), **_compared_cells(item), "q (over layers)": p_text(item.q_value),
             "q (over groups and layers)": p_text(item.q_groups), "Cliff's delta": cliffs_text(item)}
            for item in compared.itertuples(index=False)]
    return pd.DataFrame(rows)


def _needed_at(smallest: float, tests: int) -> int | None:
    """How many of `tests` must reach p = `smallest` for their q to fall below ALPHA (the others at
    p = 1): Benjamini-Hochberg's q of j such tests is smallest * tests / j, computed as the q is
    (`stats.over_layers`), so the count agrees with it at a tie; None if all of them are not enough.

    >>> _needed_at(2 / 252, 42), _needed_at(2 / 252, 3), _needed_at(0.333, 12)
    (7, 1, None)
    """
    return next((j for j in range(1, tests + 1)
                 if stats.over_layers(np.r_[np.full(j, smallest), np.ones(tests - j)]).min() < stats.ALPHA), None)


def last_hidden_comparisons(compared: pd.DataFrame, these: pd.DataFrame) -> pd.DataFrame:
    """The `reference_comparisons` rows (`compared`, of the phases rows `these`) of compression over
    the floor at the last hidden layer of each group whose last hidden layer is the reference's (a
    group of another depth has its own: no like layer to compare), q_groups Benjamini-Hochberg over
    those groups alone. One layer and one quantity asked of in advance, as `last_hidden_tests` asks
    each group's own test, where the comparison table's q adjusts over every group and layer: 42
    tests for 7 groups of 6 layers, of which 7 would have to reach the smallest p of 5 seeds a side
    (0.0079) for any q < 0.05."""
    if compared.empty:
        return compared
    own = these.groupby("group_id")["layer"].agg(last_hidden_layer)        # each group's last hidden layer
    rows = compared[compared["quantity"] == stats.EXCESS]
    like = (rows["layer"] == rows["group_id"].map(own)) & (rows["layer"] == rows["compared_with"].map(own))
    rows = rows[like]
    return rows.assign(q_groups=stats.over_layers(rows["p_value"].to_numpy(dtype=float)))


def other_depth_note(compared: pd.DataFrame, last: pd.DataFrame, labels: dict[str, str]) -> str | None:
    """The sentence naming the groups of `compared` (`reference_comparisons`) that `last`
    (`last_hidden_comparisons`) leaves out for their depth; None if there are none."""
    if compared.empty:
        return None
    against = one_compared_with(compared)
    kept = set(zip(last["group_id"], last["compared_with"]))
    pairs = dict.fromkeys(zip(compared["group_id"], compared["compared_with"]))
    other = [pair_text(a, b, labels, against) for a, b in pairs if (a, b) not in kept]
    if not other:
        return None
    if against is not None:
        return (f"Not in this comparison, another depth than {labels[against]}'s (their last hidden layer is another "
                f"layer): {'; '.join(other)}.")
    return (f"Not in this comparison, pairs of two depths (their last hidden layers are different layers): "
            f"{'; '.join(other)}.")


def two_depths_note(compared: pd.DataFrame, these: pd.DataFrame, labels: dict[str, str]) -> str | None:
    """The sentence naming the pairs of `compared` (`reference_comparisons` of the phases rows
    `these`) whose groups are of two depths: their layers are compared by number from the input, so a
    layer of one name sits at another depth in each (a new user's dense_2, the last hidden layer of
    [32, 16, 8] and a middle one of [10, 7, 5, 4, 3], compared without a word); None where there is none."""
    if compared.empty:
        return None
    hidden = these.groupby("group_id")["layer"].max()       # the output layer's number: the hidden layers
    against = one_compared_with(compared)
    pairs = dict.fromkeys(zip(compared["group_id"], compared["compared_with"]))
    named = [f"{pair_text(a, b, labels, against)} ({hidden[a]} and {hidden[b]} hidden layers)"
             for a, b in pairs if hidden[a] != hidden[b]]
    if not named:
        return None
    return ("Of two depths, compared layer by layer from the input, so a layer of one name sits at another depth in "
            f"each (the last hidden layers' comparison leaves such pairs out): {'; '.join(named)}.")


def compared_title(b_labels: pd.Series, quoted: Callable[[str], str]) -> str:
    """What a comparison table's heading says after "compared", from its "b" column: " with X" where
    every group is compared with one (`quoted` as the page or report quotes a label), else the pairs.

    >>> "Compared" + compared_title(pd.Series(["lr=1", "lr=1"]), str)
    'Compared with lr=1'
    """
    if b_labels.nunique() == 1:
        return f" with {quoted(b_labels.iloc[0])}"
    return " in pairs: each key's effect at each level of the others"


def one_compared_with(compared: pd.DataFrame) -> str | None:
    """The one group every row of `compared` (`reference_comparisons`) is compared with (the reference,
    where the groups differ in one key), or None where the pairs of a grid have several."""
    return compared["compared_with"].iloc[0] if compared["compared_with"].nunique() == 1 else None


def pair_text(a: str, b: str, labels: dict[str, str], against: str | None) -> str:
    """A compared pair as the sentences name it: a's label where every pair has b (`against`), else "a against b"."""
    return labels[a] if against is not None else f"{labels[a]} against {labels[b]}"


def last_hidden_comparison_table(rows: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """`last_hidden_comparisons` as the tables show them."""
    return pd.DataFrame([{"a": labels[item.group_id], "b": labels[item.compared_with],
                          "layer": layer_label(item.layer, item.layer_name), **_compared_cells(item),
                          "q (over groups)": p_text(item.q_groups), "Cliff's delta": cliffs_text(item)}
                         for item in rows.itertuples(index=False)])


MAX_DIFFERENCES_NAMED = 10   # rows a sentence names one by one; more are counted per group (the table has them)


def differences_note(compared: pd.DataFrame, labels: dict[str, str], family: str = "groups and layers",
                     scope: str = "in any layer or quantity tested") -> str | None:
    """The sentence answering "which groups differ?" from `reference_comparisons`
    (or `last_hidden_comparisons`, whose q is over the groups alone: `family`, and `scope` what was
    tested): the rows with q_groups below ALPHA (Benjamini-Hochberg: on average at most 5 % of them
    are noise), by pair, each with its difference and interval, or counted with their layers when
    there are more than MAX_DIFFERENCES_NAMED; or that none does, and why it could not. None where
    nothing was compared."""
    if compared.empty:
        return None
    against = one_compared_with(compared)
    # "from initial_bias=0" where every group is compared with it; a grid's pairs are named each ("a against b")
    from_whom = f" from {labels[against]}" if against is not None else ""
    tested = compared.dropna(subset=["p_value"])
    without = _untested_comparisons(compared[compared["p_value"].isna()])
    if tested.empty:
        rising = ("; a group whose I(X;T) still rises at its last logged epoch has not fallen there yet: train "
                  "longer to compare" if (compared["note"] == stats.PEAKS_AT_END).any() else "")
        return (f"No comparison{f' with {labels[against]}' if against is not None else ''} could be tested "
                f"({without}): no evidence of a difference, nor of "
                f"none; each group's own verdict stands{rising}.")
    without = f" ({without.replace(' without', ' more without', 1)})" if without else ""
    found = compared[compared["q_groups"] < stats.ALPHA]
    per_quantity = tested.groupby("quantity").size().max()
    if found.empty:
        smallest = min(stats.smallest_p(a, b) for a, b in zip(tested["n_a"], tested["n_b"]))
        needed = _needed_at(smallest, per_quantity)
        reach = ("" if needed == 1 else
                 f": no q can reach {stats.ALPHA:g} with these seeds" if needed is None else
                 f": q < {stats.ALPHA:g} needs at least {needed} of them at that p, so with these seeds a "
                 "difference can be there and not shown")
        return (f"No {'group' if against is not None else 'pair of groups'} is shown to differ{from_whom} "
                f"at q (over {family}) < {stats.ALPHA:g}, "
                f"{scope} (the smallest p these seeds allow is {number_text(smallest)}, and "
                f"each quantity's q adjusts up to {per_quantity} test{'' if per_quantity == 1 else 's'} "
                f"together{reach})"
                f"{without}.")
    by_group = found.groupby(["group_id", "compared_with"], sort=False)
    if len(found) <= MAX_DIFFERENCES_NAMED:
        named = [f"{pair_text(*pair, labels, against)}: " + "; ".join(
                     f"{layer_label(row.layer, row.layer_name)} {quantity_text(row)} " +
                     (f"{'later' if row.cliffs_delta > 0 else 'earlier'} by ranks (Cliff's delta "
                      f"{cliffs_text(row)}; {CENSORED_WHY[row.note]})"
                      if row.note in CENSORED_WHY
                      else f"{number_text(row.difference)} {difference_interval(row.note, row.ci_low, row.ci_high)}")
                     for row in rows.itertuples())
                 for pair, rows in by_group]
        return (f"Differ{from_whom} at q (over {family}) < {stats.ALPHA:g} (a - b [95 % CI]), "
                f"{len(found)} of {_tested(len(tested))}{_families(tested, ['quantity'])}{without}: "
                + ". ".join(named) + ".")
    counted = [f"{pair_text(*pair, labels, against)} ({len(rows)}, layers "
               f"{', '.join(map(str, sorted(set(rows['layer']))))})" for pair, rows in by_group]
    return (f"Differ{from_whom} at q (over {family}) < {stats.ALPHA:g}: {len(found)} of "
            f"{_tested(len(tested))}{_families(tested, ['quantity'])}{without}, the table's rows with that q, "
            "in " + "; ".join(counted) + ".")


def _families(tests: pd.DataFrame, family: list[str]) -> str:
    """What a found difference's (or trend's) q adjusted, where `tests` (the rows with a p) span
    several families (`family`: the columns a q adjusts within: each quantity, and for trends each
    combination of the other keys): a table of identical groups passes at least one of them more
    often than 5 % (a sceptic's two groups of the same settings under two names "differed" in
    peak_i_yt at q 0.048, 1 of 24 comparisons; over all four quantities its q would be 0.19)."""
    sizes = tests.groupby(family, dropna=False).size()
    if len(sizes) < 2:
        return ""
    what = "quantity" if family == ["quantity"] else "quantity and combination of the other keys"
    most = int(sizes.max())
    return (f" (q adjusts each {what} on its own, up to {most} test{'' if most == 1 else 's'}: with no difference at "
            f"all, at least one of these {len(sizes)} families passes in up to {len(sizes)} x {stats.ALPHA * 100:g} % "
            "of such tables)")


# why a comparison has no p, as `_untested_comparisons` says it (else: too few seeds with a value)
UNTESTED_COMPARISON = {stats.CLIPPED_BINS: "idnns' bins clip the layer",
                       stats.PEAKS_AT_END: f"a group's mean I(X;T) peaks at its last logged epoch ({stats.EXCESS})",
                       stats.AT_CEILING_COMPARED: "a group's I(X;T) ends at its ceiling in every seed, where the "
                                                  "estimator cannot show its compression (compression_bits, "
                                                  f"{stats.EXCESS})",
                       stats.AT_CEILING_ALL: "every group's I(X;T) ends at its ceiling in every seed, where each MI "
                                             "quantity is the estimator's",
                       stats.NO_SHARED_EPOCH: f"no logged epoch every run's I(X;T) shares ({stats.EXCESS})",
                       stats.IMPLAUSIBLE_BITS: f"a value beyond {stats.MAX_DROP_BITS:g} bits",
                       stats.UNEQUAL_SPANS: "the seeds' SNR was followed to different epochs (snr_drop_epoch)",
                       stats.NO_DROP: "no kept seed's SNR halved in the epochs compared (snr_drop_epoch)",
                       stats.CENSORED_DROP: "a kept seed's SNR never fell below half its peak, and its last "
                                            "epoch is not known (snr_drop_epoch)"}


def _untested_comparisons(untested: pd.DataFrame, known: dict[str, str] = UNTESTED_COMPARISON,
                          otherwise: str = "fewer than 2 seeds with a value a side") -> str:
    """"20 without a test, – in the table: idnns' bins clip the layer (20)": how many comparisons (or
    trends, with their `known` reasons) have no p, and why; empty if none."""
    if untested.empty:
        return ""
    why = untested["note"].map(known).fillna(otherwise)
    return f"{len(untested)} without a test, – in the table: " + "; ".join(
        f"{reason} ({count})" for reason, count in why.value_counts(sort=False).items())


def _tested(count: int) -> str:
    return f"the {count} comparison{'' if count == 1 else 's'} tested"


def horizon_note(rows: pd.DataFrame) -> str | None:
    """HORIZON and each horizon of `rows` (stats.compare_groups' or trend.trends') whose drops were
    cut (horizon_epoch): how many epochs the seeds shared up to it, the seed followed the shortest,
    and how many seeds the cut censored that have a drop over their own run (a sceptic's: one seed
    stopped at epoch 11 cut a whole trend there, and 7 of 12 seeds read censored against 2 over
    their own runs); None where none was cut."""
    if "horizon_epoch" not in rows or rows["horizon_epoch"].isna().all():
        return None
    cut = rows.dropna(subset=["horizon_epoch"])
    per_horizon = cut.groupby(["horizon_epoch", "horizon_run"]).agg(censored=("censored_by_cut", "max"),
                                                                    shared=("shared_epochs", "min"))
    def censored_text(count: int) -> str:
        return (f", in a row up to {count} seed{'' if count == 1 else 's'} censored there that halved over "
                f"{'its' if count == 1 else 'their'} whole run" if count else "")
    parts = [f"to epoch {horizon:.0f} ({row.shared} epoch{'' if row.shared == 1 else 's'} shared; {run} was followed "
             f"the shortest){censored_text(row.censored)}" for (horizon, run), row in per_horizon.iterrows()]
    return f"{HORIZON} Here: {'; '.join(parts)}."


def quantity_text(item) -> str:
    """A comparison's or trend's quantity as the tables and sentences name it: "snr_drop_epoch (to
    epoch 300)" where its seeds' drops were cut at one horizon (ibstore.stats.tested_drops)."""
    horizon = getattr(item, "horizon_epoch", math.nan)
    return item.quantity if pd.isna(horizon) else f"{item.quantity} (to epoch {horizon:.0f})"


def _compared_cells(item) -> dict[str, str]:
    """A comparison's (ibstore.stats.Comparison's fields) n, difference, interval and p as the tables
    show them, p with the note where the seeds are too few for p < 0.05."""
    floor = f" ({item.note})" if item.note in (stats.TOO_FEW_TO_DIFFER, stats.HSU_PAIR) else ""
    return {"n a, b": f"{item.n_a}, {item.n_b}", "a - b": number_text(item.difference),
            "95 % CI": difference_interval(item.note, item.ci_low, item.ci_high), "p": p_text(item.p_value) + floor}


@dataclass(frozen=True)
class Along:
    """The numeric config key the seed groups lie along, each run's value of it, and each run's
    values of the other keys the groups differ in ("activation_fn=relu"; empty where none does)."""
    key: str
    values: dict[str, float]
    within: dict[str, str]

    def trends(self, these: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
        """ibstore.trend.trends of COMPARED in `these` (phases rows) along the key, the `curves`
        (CURVES_SQL's rows, of any estimator) bounding the p of compression over the floor and giving
        the SNR curves."""
        return trend.trends(these, self.values, COMPARED, self.within, curves)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def not_a_number_note(store: ResultStore, run_ids: list[str]) -> str | None:
    """The sentence naming the varying keys of `run_ids` that would be a trend's axis (`trend_key`)
    but for runs whose value is no number, or None. An attacker's hand-edited initial_bias of
    "0.5; DROP TABLE runs" in one run took the trend section away without a word."""
    flats = store.flat_configs(run_ids)
    named, text = [], False
    for key in store.varying_keys(run_ids):
        values = {run_id: flat.get(key) for run_id, flat in flats.items()}
        others = [run_id for run_id, value in values.items() if not _is_number(value)]
        if others and len({value for value in values.values() if _is_number(value)}) >= trend.MIN_LEVELS:
            more = f" and {len(others) - 1} more" if len(others) > 1 else ""
            value = values[others[0]]
            named.append(f"{key} ({others[0]} holds {'null' if value is None else configdiff.short_value(value)}"
                         f"{more})")
            text = text or any(values[run_id] is not None for run_id in others)   # a null leaves it numbers
    return (f"No trend along {'; '.join(named)}: a trend needs every run's value a number"
            + ("; the column is text for every run in SQL too." if text else ".") if named else None)


def trend_key(store: ResultStore, run_ids: list[str]) -> Along | None:
    """The key the seed groups of `run_ids` lie along: the one key among those that vary (the seed
    aside) whose every value is a number, at least trend.MIN_LEVELS of them (initial_bias -1 ... 5);
    the others, if any, split the runs (`Along.within`). None where no key, or more than one, is
    such (a grid of two numeric keys has no one axis). Two cohorts at one point of the axis with one
    setting split the runs as well (their groups are told apart: configdiff.told_apart)."""
    varying = store.varying_keys(run_ids)
    flats = store.flat_configs(run_ids)

    def numeric(key: str) -> bool:
        values = [flat.get(key) for flat in flats.values()]
        return all(map(_is_number, values)) and len(set(values)) >= trend.MIN_LEVELS

    axes = [key for key in varying if numeric(key)]
    if len(axes) != 1:
        return None
    others = [key for key in varying if key != axes[0]]
    within = {run_id: ", ".join(f"{key}={configdiff.short_value(flat.get(key))}" for key in others)
              for run_id, flat in flats.items()}
    # Two cohorts with one setting at one point of the axis are two groups (configdiff.told_apart), so
    # two trends: pooled, the trend's "runs at each value" counted both cohorts' seeds as one group's.
    snapshot = store.snapshot()
    cohort = {run_id: getattr(snapshot.run(run_id), "cohort", None) for run_id in flats}
    places: dict[tuple, set] = {}
    for run_id, flat in flats.items():
        places.setdefault((within[run_id], flat[axes[0]]), set()).add(cohort[run_id])
    if any(len(cohorts) > 1 for cohorts in places.values()):
        within = {run_id: ", ".join(filter(None, [f"cohort {cohort[run_id]}", text]))
                  for run_id, text in within.items()}
    return Along(axes[0], {run_id: float(flat[axes[0]]) for run_id, flat in flats.items()},
                 within if any(within.values()) else {})


# Beside a trend's p where values of the key with one run kept were left out (ibstore.trend.trends).
ONE_RUN_LEFT_OUT = "values of one run left out: {}"


def trend_table(trends: pd.DataFrame, layers: Iterable[int] | None = None) -> pd.DataFrame:
    """ibstore.trend.trends rows as the tables show them: those of `layers` (default all), each slope
    with its interval, p, q over the layers and Spearman's rho."""
    if layers is not None:
        trends = trends[trends["layer"].isin(list(layers))]
    return pd.DataFrame([{**({"within": item.within} if trends["within"].notna().any() else {}),
                          "layer": layer_label(item.layer, item.layer_name), "quantity": quantity_text(item),
                          "values": item.levels, "n": item.n, "slope per step": number_text(item.slope),
                          # a note column of None and text holds NaN for None (pandas' string type)
                          "95 % CI": UNTESTED_CELL.get(item.note, item.note)
                          if isinstance(item.note, str) and item.note != stats.HSU_PAIR
                          else difference_interval(None, item.ci_low, item.ci_high),
                          "p": p_text(item.p_value) + (f" ({item.note})" if item.note == stats.HSU_PAIR else "")
                          + (f" ({ONE_RUN_LEFT_OUT.format(item.values_left_out)})"
                             if item.values_left_out and not math.isnan(item.p_value) else ""),
                          "q (over layers)": p_text(item.q_value),
                          "Spearman's rho": effect_text(item.spearman_rho, item.rho_low, item.rho_high)}
                         for item in trends.itertuples(index=False)])


def trend_note(trends: pd.DataFrame, key: str) -> str | None:
    """The sentence answering "does anything change along `key`?" from ibstore.trend.trends rows: the
    rows with q over the layers below ALPHA, each with its slope and interval (counted per quantity
    beyond MAX_DIFFERENCES_NAMED), or that none does; that none could be tested, and why, where no
    row has a test (the table says no more); None without rows."""
    tested = trends.dropna(subset=["p_value"])
    if tested.empty:      # the callers then leave out the table: a sceptic's read 30 rows of "–"
        reasons = "; ".join(dict.fromkeys(UNTESTED_COMPARISON.get(note, note) for note in trends["note"].dropna()))
        return f"No trend along {key} could be tested ({reasons})." if len(trends) else None
    # the rows without a p, counted by why (a sceptic's sentence said "1 of 20 trends" beside 4 rows of
    # "– (a group at its ceiling)" it did not count)
    without = _untested_comparisons(trends[trends["p_value"].isna()],
                                    {**UNTESTED_COMPARISON, trend.TOO_FEW_LEVELS: trend.TOO_FEW_LEVELS},
                                    "too few runs with a value")
    untested = f" {without[0].upper()}{without[1:]}." if without else ""
    found = tested[tested["q_value"] < stats.ALPHA]
    if found.empty:
        return (f"No layer changes along {key} at q (over layers) < {stats.ALPHA:g} in any quantity tested "
                f"({tested['n'].max()} runs kept at {tested['levels'].max()} values): a slope finds a steady rise or "
                f"fall along {key}, not a change that peaks between its ends (the comparisons between groups "
                f"show those).{untested}")
    def where(within) -> str:             # "activation_fn=relu: ", or nothing (None, NaN from a groupby)
        return f"{within}: " if isinstance(within, str) and within else ""

    strata = ["within"] if tested["within"].nunique(dropna=False) > 1 else []
    families = _families(tested, [*strata, "quantity"])
    if len(found) > MAX_DIFFERENCES_NAMED:
        found = found.assign(named=[quantity_text(row) for row in found.itertuples()])   # "(to epoch H)" kept
        counted = [f"{where(within)}{quantity} (layers {', '.join(map(str, sorted(set(rows['layer']))))})"
                   for (within, quantity), rows in found.groupby(["within", "named"], sort=False, dropna=False)]
        return (f"Change along {key} at q (over layers) < {stats.ALPHA:g}: {len(found)} of {len(tested)} "
                f"trends{families}, the table's rows with that q: " + "; ".join(counted) + "." + untested)
    named = [f"{where(row.within)}{layer_label(row.layer, row.layer_name)} {quantity_text(row)} " +
             (f"{'rises' if row.spearman_rho > 0 else 'falls'} by ranks (Spearman's rho "
              f"{effect_text(row.spearman_rho, row.rho_low, row.rho_high)}; {CENSORED_WHY[row.note]})"
              if row.note in CENSORED_WHY else
              f"{'rises' if row.slope > 0 else 'falls'}, "
              f"{number_text(row.slope)} {difference_interval(row.note, row.ci_low, row.ci_high)} per step")
             for row in found.itertuples()]
    return (f"Change along {key} at q (over layers) < {stats.ALPHA:g} (slope [95 % CI]), {len(found)} of "
            f"{len(tested)} trends{families}: " + "; ".join(named) + "." + untested)


def mixed_groups_note(store: ResultStore, run_ids: list[str], labels: dict[str, str]) -> str | None:
    """The sentence naming the seed groups (of `labels`) among `run_ids` whose runs' configs differ in
    more than the seed and the launch settings (configdiff.varying_flat_keys: n_runs differs where
    seeds were added), or None. A group is its recorded group_id: an attacker's run.json edited by
    hand (initial_bias 0.5 in a group of 0.2) stayed in its group, counted in its n and title."""
    flats = store.flat_configs(run_ids)
    parts = []
    for group_id, members in store.groups([run_id for run_id in run_ids if run_id in flats]).items():
        if keys := configdiff.varying_flat_keys([flats[run_id] for run_id in members]):
            first = [configdiff.comparable(flats[members[0]].get(key)) for key in keys]
            odd = [run_id for run_id in members[1:]
                   if [configdiff.comparable(flats[run_id].get(key)) for key in keys] != first]
            verb = "differs" if len(odd) == 1 else "differ"
            parts.append(f"{labels.get(group_id, group_id)}: {', '.join(odd)} {verb} from {members[0]} in "
                         f"{', '.join(keys)}")
    if not parts:
        return None
    return ("Seed groups whose runs were trained with other settings than their seed apart (a run.json edited or "
            "copied in by hand; the group is the one its record names, and its statistics pool them): "
            + "; ".join(parts) + ".")


def data_versions_note(runs: pd.DataFrame, labels: dict[str, str], configs: dict[str, dict]) -> str | None:
    """The sentence naming the seed groups of `runs` (`runs` view rows; `configs`: run_id -> flattened
    config) trained on different versions of one dataset, its SHA-256 (data_sha256) differing under
    one value of every data key (configdiff.DATA_KEYS: the digest is of the split too, so groups of
    two split seeds are two datasets, which their titles name): a file edited between runs, or runs
    copied in from another root. Within a group its seeds pool two datasets; across groups their
    data differ besides what their titles name. None where each dataset has one version (or runs
    record none: before stop 63)."""
    known = runs[runs["group_id"].isin(labels) & runs["data_sha256"].notna()]
    keys = [tuple(repr(configdiff.comparable(configs.get(run_id, {}).get(key))) for key in configdiff.DATA_KEYS)
            for run_id in known["run_id"]]
    names = {key: str(configs.get(run_id, {}).get("dataset_path") or configs.get(run_id, {}).get("dataset"))
             for key, run_id in zip(keys, known["run_id"])}
    parts = []
    for key, rows in known.groupby(pd.Series(keys, index=known.index, dtype=object), sort=False):
        name = names[key]
        versions = rows.groupby("data_sha256", sort=False)["group_id"].agg(lambda groups: list(dict.fromkeys(groups)))
        if len(versions) > 1:
            named = [f"{digest[:12]}…: {', '.join(labels[group] for group in groups)}"
                     for digest, groups in versions.items()]
            parts.append(f"{name}: {len(versions)} versions ({'; '.join(named)})")
    if not parts:
        return None
    return ("Trained on different versions of one dataset (its SHA-256, data_sha256, differs): " + "; ".join(parts)
            + ". A group under two versions pools seeds of both, and groups on different versions differ in their "
            "data besides what their titles name: compare them knowing that, or train them again on one version.")


def same_networks_note(store: ResultStore, run_ids: list[str], labels: dict[str, str]) -> str | None:
    """The sentence naming seed groups (of `labels`) among `run_ids` that hold the same networks
    (configdiff.same_networks: runs of one config and seed that differ only in launch or measurement
    settings, such as save_activations or histogram_bins),
    whose seeds the comparisons and trends would count twice; None if there are none."""
    group_of = {run_id: group_id for group_id, runs in store.groups(run_ids).items() if group_id in labels
                for run_id in runs}
    twins = dict.fromkeys(tuple(dict.fromkeys(group_of[run_id] for run_id in same))
                          for same in configdiff.same_networks(store.configs(list(group_of))))
    named = "; ".join(" and ".join(labels[group_id] for group_id in groups) for groups in twins if len(groups) > 1)
    if not named:
        return None
    settings = sorted(configdiff.LAUNCH_SETTINGS | configdiff.MEASUREMENT_SETTINGS)
    return (f"The same networks in more than one seed group: {named} (runs of one config and seed that differ only "
            f"in {', '.join(settings)}, which choose what is measured or stored, not what is trained). "
            "Their seeds are not independent of each other, yet the comparisons and trends count them as if they "
            "were: read each set once (a copy trained to save activations belongs in a cohort of its own: "
            "--set cohort=...).")


def first_alive(runs: pd.DataFrame, groups: list[str]) -> str:
    """Where the comparisons start by default: the first of `groups` with two runs in `runs` (rows of
    `runs` or `phases`) that are not dead (diverged or unfinished), the fewest any comparison can
    test, else the first with one, else the first. A sceptic's default, a group with one seed alive
    of three, left every comparison of the MI untested beside groups of 3 and 2 seeds.

    >>> runs = pd.DataFrame({"run_id": ["a0", "b0", "b1"], "group_id": ["a", "b", "b"], "status": "completed",
    ...                      "dead_network": False, "diverged": False})
    >>> first_alive(runs, ["a", "b"]), first_alive(runs[runs["group_id"] == "a"], ["a", "b"])
    ('b', 'a')
    """
    kept = kept_runs(runs)
    return next((group_id for group_id in groups if kept.get(group_id, 0) >= 2),
                next((group_id for group_id in groups if kept.get(group_id, 0) >= 1), groups[0]))


def kept_runs(runs: pd.DataFrame) -> pd.Series:
    """group_id -> how many of its runs in `runs` (rows of `runs` or `phases`) the statistics keep."""
    return runs.loc[np.equal(stats.exclusions(runs), None)].groupby("group_id")["run_id"].nunique()


def accuracy_comparison(runs: pd.DataFrame, labels: dict[str, str], reference: str | None = None,
                        configs: dict[str, dict] | None = None) -> pd.DataFrame:
    """Final test accuracy of the seed groups of `runs` (completed runs' `runs` rows, dead ones too)
    compared in the pairs `reference_comparisons` makes of them with `configs` (else every group
    against `reference`), the reference by default the first group with a run that is not dead, as
    the comparisons of the phases start, else the first: the comparison's cells, q over the pairs,
    Cliff's delta."""
    groups = [group_id for group_id in labels if group_id in set(runs["group_id"])]
    if len(groups) < 2:
        return pd.DataFrame()
    reference = reference if reference in groups else first_alive(runs, groups)
    accuracy = {group_id: runs.loc[runs["group_id"] == group_id, "final_test_accuracy"] for group_id in groups}
    compared = [(a, b, stats.compare(accuracy[a], accuracy[b])) for a, b in _pairs(runs, groups, reference, configs)]
    q_values = stats.over_layers(np.array([item.p_value for *_, item in compared]))
    return pd.DataFrame([{"a": labels[a], "b": labels[b], **_compared_cells(item),
                          "q (over groups)": p_text(q), "Cliff's delta": cliffs_text(item)}
                         for (a, b, item), q in zip(compared, q_values)])


def no_accuracy_note(ended: pd.DataFrame, labels: dict[str, str]) -> str | None:
    """The sentence naming the seed groups of `ended` (ended runs' `runs` rows) with no completed run,
    which `accuracy_comparison` leaves out: a sceptic's all-diverged group had no row and no word
    there, beside the epochs-to-accuracy table that compares it; None if there are none.

    >>> ended = pd.DataFrame({"group_id": ["a", "b", "b"], "status": ["completed", "diverged", "diverged"]})
    >>> no_accuracy_note(ended, {"a": "lr=0.1", "b": "lr=9"})
    'Not compared on final accuracy, no run completed: lr=9 (the health table counts how its runs ended).'
    """
    completed = set(ended.loc[ended["status"] == Status.COMPLETED, "group_id"])
    missing = [labels[group_id] for group_id in labels
               if group_id in set(ended["group_id"]) and group_id not in completed]
    if not missing:
        return None
    return (f"Not compared on final accuracy, no run completed: {'; '.join(missing)} (the health table counts how "
            f"{'its' if len(missing) == 1 else 'their'} runs ended).")


def one_class_score(runs: pd.DataFrame) -> float | None:
    """The highest test accuracy a network that predicts one class scores among `runs` (`runs` view
    rows): the largest class's share of a test split (`majority_class_note`); None where no run
    records its counts.

    >>> one_class_score(pd.DataFrame({"group_id": ["g"], "splits": [{"test": {"class_counts": [908, 92]}}]}))
    0.908
    """
    shares = [max(counts) / sum(counts) for _, counts in _test_class_counts(runs)]
    return max(shares) if shares else None


def reach_threshold(runs: pd.DataFrame) -> float:
    """The test accuracy whose epochs the report compares (the Training page's default): REACH_ACCURACY,
    or halfway from the one-class score to 1 (rounded up to the slider's step of 0.01) where that is
    higher: a sceptic's 90/10 test split had a group that never learned "reach" 0.9 at epoch 0, p
    0.048, and a score of 0.899 would have asked barely above it (a reviewer's).

    >>> [reach_threshold(pd.DataFrame({"group_id": ["g"], "splits": [{"test": {"class_counts": counts}}]}))
    ...  for counts in ([50, 50], [85, 15], [908, 92])]
    [0.9, 0.93, 0.96]
    """
    score = one_class_score(runs)
    return REACH_ACCURACY if score is None else max(REACH_ACCURACY, min(math.ceil(50 * (1 + score)) / 100, 1.0))


def reach_note(runs: pd.DataFrame, threshold: float) -> str | None:
    """Why `epochs_to_accuracy` compares nothing at `threshold`: predicting one class scores it
    already, so a network that learned nothing reaches it at epoch 0; None where it does compare."""
    score = one_class_score(runs)
    if score is None or threshold > score:
        return None
    if score >= 1:
        return "Not compared: every test input is of one class, so no accuracy tells learning from predicting it."
    return (f"Not compared at {threshold:g}: a network that predicts one class scores {score:.3g} on the test split, "
            "so one that learned nothing reaches it from epoch 0. Choose a threshold above it.")


def reach_epochs(metrics: pd.DataFrame, runs: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per run of `runs` (`runs` view rows of ended runs; `metrics` their per-epoch rows): `reached`,
    the first epoch its test accuracy is at least `threshold` (epoch 0 is the untrained network; NaN
    if none), `last`, its last epoch, and `window`, the epochs it could tell: its last where it
    completed without reaching the threshold (a longer run might have), else unbounded (it reached
    it, or it diverged and stopped training: never reaching it is what it did).

    >>> metrics = pd.DataFrame({"run_id": ["a"] * 3 + ["b"] * 2, "split": "test", "epoch": [0, 1, 2, 0, 1],
    ...                         "accuracy": [.5, .9, .95, .5, .6]})
    >>> runs = pd.DataFrame({"run_id": ["a", "b"], "group_id": "g", "status": ["completed", "diverged"]})
    >>> reach_epochs(metrics, runs, 0.9)[["run_id", "reached", "last", "window"]].values.tolist()
    [['a', 1.0, 2, inf], ['b', nan, 1, inf]]
    """
    test = metrics[(metrics["split"] == "test") & metrics["run_id"].isin(set(runs["run_id"]))]
    last = test.groupby("run_id")["epoch"].max()
    ended = runs[runs["run_id"].isin(last.index)][["run_id", "group_id"] + (["seed"] if "seed" in runs else [])]
    reached = test[test["accuracy"] >= threshold].groupby("run_id")["epoch"].min()
    status = runs.set_index("run_id")["status"].astype(object)
    frame = ended.assign(reached=ended["run_id"].map(reached).astype(float), last=ended["run_id"].map(last))
    censored = frame["reached"].isna() & (frame["run_id"].map(status) != Status.DIVERGED)
    return frame.assign(window=np.where(censored, frame["last"], math.inf)).reset_index(drop=True)


def reach_per_seed(per_run: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """`reach_epochs` per seed, in the groups' order of `labels`: the epoch a run reached the
    threshold, else "not by epoch N" (its end: censored) or "never (diverged at N)".

    >>> per_run = pd.DataFrame({"run_id": ["a", "b"], "group_id": "g", "seed": [0, 1], "reached": [3.0, math.nan],
    ...                         "last": [9, 4], "window": [math.inf, math.inf]})
    >>> reach_per_seed(per_run, {"g": "tanh"})["first epoch at the threshold"].tolist()
    ['3', 'never (diverged at 4)']
    """
    order = {group_id: position for position, group_id in enumerate(labels)}
    rows = per_run[per_run["group_id"].isin(order)]
    rows = rows.assign(order=rows["group_id"].map(order)).sort_values(["order", "seed" if "seed" in rows else "run_id"])
    reached = [f"{first:g}" if not math.isnan(first) else f"not by epoch {last}" if math.isfinite(window)
               else f"never (diverged at {last})"
               for first, last, window in zip(rows["reached"], rows["last"], rows["window"])]
    return pd.DataFrame({"seed group": rows["group_id"].map(labels).tolist(),
                         **({"seed": rows["seed"].tolist()} if "seed" in rows else {}),
                         "run": rows["run_id"].tolist(), "first epoch at the threshold": reached})


def epochs_to_accuracy(metrics: pd.DataFrame, runs: pd.DataFrame, labels: dict[str, str], threshold: float,
                       reference: str | None = None, configs: dict[str, dict] | None = None) -> pd.DataFrame:
    """How soon the seed groups of `runs` (ended runs' `runs` rows: completed, dead ones too, and
    diverged) reach a test accuracy of `threshold` (`metrics`: their per-epoch rows; `reach_epochs`),
    compared in the pairs `accuracy_comparison` makes (REACH_CAPTION): a sceptic's learning rate 10x
    reached 0.9 at epoch 17 against 125, and the page's one comparison, of final accuracy, said p
    0.667. Nothing where predicting one class reaches `threshold` (`reach_note`).

    A run that completed without reaching it is censored at its end, and so every run of its pair at
    the shortest such end (to epoch): a run stopped on reaching it (`stop_at_accuracy`) is no
    censoring, where the pair's shortest run had censored a sceptic's 9 of 10 seeds at epoch 11.

    >>> metrics = pd.DataFrame({"run_id": ["a0"] * 3 + ["a1"] * 3 + ["b0"] * 3 + ["b1"] * 3, "split": "test",
    ...                         "epoch": [0, 1, 2] * 4, "accuracy": [.5, .9, .9, .5, .6, .9, .5, .5, .6, .5, .5, .5]})
    >>> runs = pd.DataFrame({"run_id": ["a0", "a1", "b0", "b1"], "group_id": ["a", "a", "b", "b"], "status": "completed",
    ...                      "dead_network": False, "diverged": False})
    >>> epochs_to_accuracy(metrics, runs, {"a": "fast", "b": "slow"}, 0.9).iloc[0, :5].astype(str).tolist()
    ['slow', 'fast', '2', '> 2 (0 of 2)', '1.5 (2 of 2)']
    """
    groups = [group_id for group_id in labels if group_id in set(runs["group_id"])]
    if len(groups) < 2 or reach_note(runs, threshold):
        return pd.DataFrame()
    reference = reference if reference in groups else first_alive(runs, groups)
    per_run = reach_epochs(metrics, runs, threshold).set_index("run_id")
    members = {group_id: per_run.index[per_run["group_id"] == group_id].tolist() for group_id in groups}

    def epochs(group_id: str, horizon: int) -> np.ndarray:
        first = per_run.loc[members[group_id], "reached"].to_numpy(float)
        return np.where(first <= horizon, first, math.inf)        # NaN (never) and beyond the horizon: censored

    def median_text(group_id: str, horizon: int) -> str:
        """The median, "> m" where a censored seed enters it (m its bound, the censored at the horizon):
        [5, never] by epoch 8 has a median above 6.5, not "> 8" (a reviewer's). "never" where more than
        half the seeds diverged without reaching it: no longer run would have (an all-diverged group
        read "> 300", its seeds "never (diverged at 1)")."""
        values = epochs(group_id, horizon)
        if not len(values):
            return "–"
        group = per_run.loc[members[group_id]]
        never = int((group["reached"].isna() & np.isinf(group["window"])).sum())
        bound = np.median(np.minimum(values, horizon))
        shown = ("never" if 2 * never > len(values) else f"> {bound:g}" if np.median(values) > bound
                 else f"{bound:g}")
        return f"{shown} ({int(np.isfinite(values).sum())} of {len(values)})"

    rows, p_values = [], []
    for a, b in _pairs(runs, groups, reference, configs):
        if not members[a] or not members[b]:
            continue
        pair = per_run.loc[members[a] + members[b]]
        window = pair["window"].min()
        horizon = int(window if np.isfinite(window) else pair["last"].max())
        item = stats.compare_ranks(epochs(a, horizon), epochs(b, horizon))
        floor = f" ({item.note})" if item.note == stats.TOO_FEW_TO_DIFFER else ""
        rows.append({"a": labels[a], "b": labels[b], "to epoch": horizon,
                     "median epoch a (reach)": median_text(a, horizon),
                     "median epoch b (reach)": median_text(b, horizon),
                     "p": p_text(item.p_value) + floor, "Cliff's delta": cliffs_text(item)})
        p_values.append(item.p_value)
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    table.insert(len(table.columns) - 1, "q (over groups)", [p_text(q) for q in stats.over_layers(np.array(p_values))])
    return table


def reference_note(these: pd.DataFrame, labels: dict[str, str], reference: str | None) -> str | None:
    """The sentence saying why the asked `reference` group is not the one `comparison_table` compares
    with: it has no rows in `these` (an estimator or params only some of the configs list) or no
    run kept; None if it is, or none was asked."""
    live = live_groups(these, labels)
    if reference is None or reference in live or not live:
        return None
    why = ("has no run kept here (dead, diverged or unfinished)" if reference in set(these["group_id"])
           else "is not measured with these parameters on this split")
    instead = first_alive(these, live)
    first = f"the first group with {'two runs' if kept_runs(these)[instead] >= 2 else 'a run'} kept"
    return f"The reference {labels[reference]} {why}: compared with {labels[instead]}, {first}."


def schedule_note(curves: pd.DataFrame, these: pd.DataFrame, labels: dict[str, str]) -> str | None:
    """The sentence saying that the seed groups of `these` (phases rows of one estimator, params
    and split) were logged at different numbers of epochs, with those numbers (from `curves`, the
    I(X;T) curves of their runs); None if every group was logged alike."""
    group_of = dict(zip(these["run_id"], these["group_id"]))
    runs = curves[curves["run_id"].isin(group_of)]
    logged = (runs.assign(group_id=runs["run_id"].map(group_of), logged=runs["epochs"].map(len))
              .groupby("group_id")["logged"].max())
    if logged.nunique() < 2:
        return None
    counts = "; ".join(f"{labels.get(group_id, group_id)}: {count}" for group_id, count in logged.items())
    return (f"The groups are logged at different numbers of epochs ({counts}). A peak taken over more "
            "logged epochs stands higher above the end under noise alone, so their compression differs "
            "in part by how they were logged, not only by what the networks did.")


def not_compared(these: pd.DataFrame, labels: dict[str, str]) -> str | None:
    """The sentence naming the seed groups of `these` that `comparison_table` leaves out; None if none."""
    live = set(live_groups(these, labels))
    left_out = [label for group_id, label in labels.items() if group_id in set(these["group_id"]) - live]
    return f"Not compared, no run kept (dead, diverged or unfinished): {'; '.join(left_out)}." if left_out else None


def last_hidden_layer(layers) -> int:
    """The last hidden layer: the one before the output layer (the highest number; 0 where it is 0).

    >>> last_hidden_layer([0, 1, 2, 5]), last_hidden_layer([0])
    (4, 0)
    """
    return max(int(max(layers)) - 1, 0)


def last_hidden_rows(group_stats: pd.DataFrame) -> pd.DataFrame:
    """The phase_stats rows of each seed group's own last hidden layer (groups of different depths
    have theirs at different numbers: the highest number of one may be a hidden layer of another)."""
    return group_stats[group_stats["layer"] == group_stats.groupby("group_id")["layer"].transform(last_hidden_layer)]


def last_hidden_tests(group_stats: pd.DataFrame) -> pd.DataFrame:
    """The test of compression against the noise floor (the compression_over_floor_bits rows) of the
    last hidden layer, one row per seed group (`group`) of phase_stats rows in their order, with
    q_groups: p adjusted by Benjamini-Hochberg over those groups. A layer at its ceiling in every seed
    (note AT_CEILING) keeps its p in phase_stats, but is no test of the layer here: its p is NaN, as
    where no test could be made, so that no sentence counts it among the groups tested."""
    rows = last_hidden_rows(group_stats)
    rows = rows[rows["quantity"] == stats.EXCESS]
    p_values = rows["p_value"].where(rows["note"] != stats.AT_CEILING)
    return rows.assign(p_value=p_values, q_groups=stats.over_layers(p_values.to_numpy(dtype=float)))


def glance_table(group_stats: pd.DataFrame, estimator: str) -> pd.DataFrame:
    """Does the last hidden layer compress? Per seed group (`group`) of phase_stats rows: its
    compression, noise floor and compression over the floor (the tested quantity) with their
    intervals, the test (p, and q over the groups of the table: `last_hidden_tests`), the verdict
    (yes at p and q < ALPHA: which groups compress is several tests) and the runs left out, counted."""
    tests = last_hidden_tests(group_stats).set_index("group")
    rows = []
    for group, frame in last_hidden_rows(group_stats).groupby("group", sort=False):
        by = frame.set_index("quantity")
        rows.append({"estimator": estimator, "seed group": group,
                     "layer": layer_label(int(by["layer"].iloc[0]), by["layer_name"].iloc[0]),
                     "n": int(by.loc["compression_bits", "n"]),
                     "compression (bits)": estimate_cell(by.loc["compression_bits"]),
                     "noise floor (bits)": estimate_cell(by.loc["noise_floor_bits"]),
                     "compression over floor (bits)": estimate_cell(by.loc[stats.EXCESS]),
                     "p (compression > floor)": p_text(tests.loc[group, "p_value"]),
                     "q (over groups)": p_text(tests.loc[group, "q_groups"]),
                     "compresses": _compresses(by.loc[stats.EXCESS], q_value=tests.loc[group, "q_groups"]),
                     "left out": _left_out(by.loc[stats.EXCESS])})
    return pd.DataFrame(rows)


def across_estimators(glance: pd.DataFrame) -> pd.DataFrame:
    """`glance_table`s of several estimators side by side: per seed group (rows, in order) each
    estimator's verdict and compression over the floor (columns, in order), "yes: 5.90 (≥ 4.46)";
    empty for fewer than two estimators. Saxe et al. (2018) asked whether a layer's compression is
    the estimator's: a verdict that changes with the estimator is read here at a glance."""
    if glance.empty or glance["estimator"].nunique() < 2:
        return pd.DataFrame()
    cells = glance.assign(cell=glance["compresses"] + ": " + glance["compression over floor (bits)"])
    table = cells.pivot(index="seed group", columns="estimator", values="cell")
    table = table.loc[list(dict.fromkeys(glance["seed group"])), list(dict.fromkeys(glance["estimator"]))]
    return table.fillna("–").reset_index().rename_axis(columns=None)


# The `compresses` cells of a test that decided (p known): the others ("–", at ceiling, bins clip) had no test.
TESTED_CELLS = ("yes", P_ONLY_CELL, NOT_SHOWN_CELL, STILL_RISING_CELL)


def across_estimators_note(glance: pd.DataFrame) -> str | None:
    """The sentence of `across_estimators`: the groups whose last hidden layer compresses (yes) under
    every estimator, under none (each estimator tested it), under no test at all (no estimator could
    test it, or had no row), and those where the estimators disagree or only some could test, with
    which says what."""
    if glance.empty or glance["estimator"].nunique() < 2:
        return None
    every, none, untested, differ = [], [], [], []
    estimators = list(dict.fromkeys(glance["estimator"]))
    for group, rows in glance.groupby("seed group", sort=False):
        says = rows.groupby("compresses", sort=False)["estimator"].agg(list)
        missing = [estimator for estimator in estimators if estimator not in set(rows["estimator"])]
        tested = [verdict for verdict in says.index if verdict in TESTED_CELLS]
        if list(says.index) == ["yes"] and not missing:
            every.append(group)
        elif tested and "yes" not in tested and len(tested) == len(says) and not missing:
            none.append(group)
        elif not tested:
            untested.append(group)
        else:
            verdicts = [f"{verdict} under {', '.join(names)}" for verdict, names in says.items()]
            if missing:
                verdicts.append(f"no row under {', '.join(missing)}")
            differ.append(f"{group} ({'; '.join(verdicts)})")
    parts = ([f"yes under every estimator: {'; '.join(every)}"] if every else []) + \
            ([f"tested under every estimator and yes under none: {'; '.join(none)}"] if none else []) + \
            ([f"no estimator could test it (too few seeds, at a ceiling, clipped bins or no row): "
              f"{'; '.join(untested)}"] if untested else []) + \
            ([f"the estimators disagree, or only some could test it: {'; '.join(differ)}"] if differ else [])
    return (f"Across the {len(estimators)} estimators with I(X;T), does the last hidden layer compress? "
            + "; ".join(parts) + ". Estimators on a fixed scale (fixed bins, kde's fixed noise variance) can read "
            "a layer whose activations grow or saturate differently from those whose bins follow its values "
            "(adaptive, quantile): where they disagree, the fall may be the estimator's.")


def glance_note(group_stats: pd.DataFrame) -> str | None:
    """The sentence answering "in which groups does the last hidden layer compress?" from phase_stats
    rows (`group`): the groups at q over the groups below ALPHA, or that none is and, where some
    reach p < ALPHA alone, how often noise alone gives as many among so many groups (a binomial
    tail); the groups without a test. None where there is no group."""
    every = last_hidden_tests(group_stats)
    tests = every.dropna(subset=["p_value"])
    reasons: dict[str, list[str]] = {}   # why -> the groups without a test for that reason
    for row in every[every["p_value"].isna()].itertuples():
        reasons.setdefault(_untested_because(row.note), []).append(row.group)
    untested = "; and ".join(f"{'; '.join(groups)} ({why})" for why, groups in reasons.items())
    if every.empty:
        return None
    if tests.empty:
        return f"No group can be tested: {untested}."
    no_test = f" No test in {untested}." if untested else ""
    found = tests[tests["q_groups"] < stats.ALPHA]
    rising = tests.loc[tests["note"] == stats.STILL_RISING, "group"]
    still = (f" Still rising at the last logged epoch, no fall within the epochs trained (whether it falls later, "
             f"only longer training can tell): {'; '.join(rising)}."
             if len(rising) else "")
    if not found.empty:
        others = tests.loc[~tests.index.isin(found.index), "group"]
        return (f"At q (over groups) < {stats.ALPHA:g} the last hidden layer compresses in {len(found)} of the "
                f"{_groups(len(tests))} tested" + (f"; not shown in {'; '.join(others)}" if len(others) else "")
                + "." + still + no_test)
    alone = tests[tests["p_value"] < stats.ALPHA]
    sentence = (f"In no group is the last hidden layer shown to compress at q (over groups) < {stats.ALPHA:g} "
                f"({_groups(len(tests))} tested).")
    if len(alone):
        from scipy.stats import binom    # imported on first use, as ibstore.stats imports scipy.stats

        # Under noise alone each group's p < ALPHA has probability at most ALPHA, independently.
        chance = binom.sf(len(alone) - 1, len(tests), stats.ALPHA)
        verb = "reaches" if len(alone) == 1 else "reach"
        sentence += (f" {len(alone)} {verb} p < {stats.ALPHA:g} alone ({'; '.join(alone['group'])}): noise alone "
                     f"gives {len(alone)} or more of {len(tests)} in at most {100 * chance:.2g} % of cohorts.")
    return sentence + still + no_test


def _groups(count: int) -> str:
    return f"{count} group{'' if count == 1 else 's'}"


def _untested_because(note: str | None) -> str:
    """Why a group's compression has no test, from its phase_stats note."""
    return {stats.IDENTICAL_SEEDS: "every seed's I(X;T) falls alike: no noise to test against",
            stats.NO_COMMON_EPOCH: "no logged epoch at which every seed has I(X;T)",
            stats.IMPLAUSIBLE: f"an I(X;T) moves by more than {stats.MAX_DROP_BITS:g} bits from its end",
            stats.AT_CEILING: "I(X;T) ends at its ceiling in every seed: the estimator cannot show compression",
            stats.CLIPPED_BINS: "idnns' bins [-1, 1] clip its activation: its fall is the bins'"}.get(
        note, f"fewer than {stats.MIN_SEEDS_TESTED} seeds kept (not dead, diverged or unfinished) with a finite "
              "I(X;T) under this estimator; left out names any dropped, and seeds not measured with it are "
              "not in the group here: trainer estimate measures them")


def _compresses(excess: pd.Series, q_value: float | None = None) -> str:
    """The `compresses` cell of a phase_stats excess row: yes (p < ALPHA; and, given the q over the
    layers of a per-layer table, q < ALPHA too, else P_ONLY_CELL), NOT_SHOWN_CELL (p >= ALPHA), – where
    no test can decide, AT_CEILING_CELL where the layer's I(X;T) ends at its ceiling in every seed
    (ibstore.stats.AT_CEILING): its compression is 0 there whatever the layer does, so the test's "no"
    would be the estimator's; CLIPPED_CELL where idnns' fixed bins clip the layer's activation
    (ibstore.stats.CLIPPED_BINS), so a "yes" would be the bins'; STILL_RISING_CELL where the group's
    mean I(X;T) peaks at its last logged epoch (ibstore.stats.STILL_RISING): its "no" means "not yet"."""
    if excess["note"] == stats.AT_CEILING:
        return AT_CEILING_CELL
    if excess["note"] == stats.CLIPPED_BINS:
        return CLIPPED_CELL
    cell = {True: "yes", False: NOT_SHOWN_CELL}.get(excess["compresses"], "–")
    if cell == NOT_SHOWN_CELL and excess["note"] == stats.STILL_RISING:
        return STILL_RISING_CELL
    return P_ONLY_CELL if cell == "yes" and q_value is not None and not q_value < stats.ALPHA else cell


def _left_out(row: pd.Series) -> str:
    """"2 dead, 1 diverged, 1 missing": the runs of a group its statistics leave out, counted (missing:
    kept, but without a finite value of the quantity, e.g. an infinite I(X;T) at its last epoch)."""
    counts = [(int(row[f"n_{why}"]), why) for why in ("dead", "diverged", "unfinished", "missing")]
    return ", ".join(f"{count} {why}" for count, why in counts if count)
