"""The `phases` view: the phases of training as data, one row per run x layer x estimator x params
x split, computed in SQL from the stored `mi`, `gradients`, `activation_stats`, `runs` and `config` (no
retraining).

Columns: run_id, group_id, layer, layer_name, estimator, params, split,
- peak_i_xt, peak_i_xt_epoch: the largest finite I(X;T) and the first logged epoch that has it;
- final_epoch, final_i_xt: the last logged epoch and I(X;T) there (NULL if it has none, or not a
  finite one: the run's compression is then missing, and named as such by phase_stats);
- compression_bits = peak_i_xt - final_i_xt (never negative, and positive under noise alone: each
  run's peak is picked where its noise is high);
- group_peak_epoch: the first logged epoch at which the mean I(X;T) of the run's seed group peaks,
  over the group's kept runs whose last I(X;T) is finite, the runs the compression test reads
  (kept: completed, not dead, not diverged; the kept runs if none has such a last value, all its
  runs if none is kept; those of the connection, so the explorer's selection), and the epochs
  every one of them has a finite value at. A kept run
  whose last value is missing once moved the peak, so that the tested runs' mean fall was taken
  from another epoch than their test's, and could lie below the test's own lower bound;
- noise_floor_bits = peak_i_xt - the run's I(X;T) at group_peak_epoch (>= 0; NULL where it has
  none): the part of peak - final that picking the run's own maximum adds. So compression_bits -
  noise_floor_bits is the run's fall from its group's peak epoch to its end, and its mean over the
  kept seeds is the group's mean curve's peak minus its end, which ibstore.stats.drop_test tests
  against the seeds' own noise. The floor this replaced, the range of each run's last 10 logged
  epochs, fell short of what noise adds to a maximum over hundreds of logged epochs, the more so
  when the noise is correlated from one epoch to the next: pure noise "compressed" in up to 99.7 %
  of groups (bench/compression_calibration.py);
- peak_i_yt, peak_i_yt_epoch: likewise for I(Y;T);
- snr_drop_epoch: the first logged epoch after the gradient SNR's peak with SNR below half the
  peak (SNR_DROP_SQL, the project's one definition, also a research one-liner); NULL if the SNR
  never drops so or has no value (HAS_SNR: finite, of a gradient that has not vanished);
- i_xt_ceiling_bits, i_yt_ceiling_bits: for a discrete estimator (DISCRETE_ESTIMATORS) the most its
  values can be on this split, H(X) and H(Y) (the plug-in entropies of the split's input rows and
  labels, recorded in run.json's `splits`; H(X) is log2 n where no two inputs are alike, and
  log2 n for runs recorded before it); for the kde bounds and EDGE (I_XT_BOUNDED_ESTIMATORS) H(X)
  for I(X;T) alone (EDGE's the smaller of that and its cap U_xt); NULL for the other estimators and for runs
  written before `splits` existed. split_inputs: the split's n (NULL likewise), whose 1/n bits is how
  near its ceiling an I(X;T) counts as at it (ibstore.stats.at_ceiling). A layer whose
  I(X;T) is at its ceiling has every input in a bin (or bucket) of its own, or its own Gaussian apart
  from every other: bins that fine, or a noise that small, cannot show compression (Saxe et al. 2018);
- bins_clip: an idnns row of a hidden layer whose activation (`config`'s activation_fn) is not
  bounded by [-1, 1]: its fixed bins clip the values above 1, so its fall in I(X;T) is the bins'
  (ibstore.stats gives it no test); NULL where the activation is unknown;
- dead_network, diverged, status: the run's health from `runs` (trainer.health);
- snr_drop_censored: the layer has an SNR but no drop (it never fell below half its peak by
  the last logged epoch): its drop epoch is censored there, not missing (a layer without any finite
  SNR, e.g. full-batch training's one minibatch, has no spread to take a ratio of: NULL drop, false);
- snr_last_epoch: the layer's last logged epoch with an SNR: a censored drop epoch is later
  than it (ibstore.stats ranks such a seed after every drop at or before it);
- units_died: how many of the layer's units varied over the split's inputs at some logged epoch
  from group_peak_epoch on and are constant on them at final_epoch (`activation_stats`' min = max
  on that split, within UNIT_ROUNDING: a relu unit 0 on every input of it, a saturated tanh unit,
  or any unit fed by constant ones), so carry nothing
  of the split's I(X;T) at the end that they carried after the peak (a unit constant on the test
  inputs may still fire on training inputs: the count is the split's, as its MI is); a unit
  constant since before the peak is no part of the fall. NULL where the layer's per-neuron
  statistics do not reach final_epoch, hold a bound that is not finite or min > max (a damaged
  file), or the run ends before the group's peak (still
  training). A unit that dies takes its share of I(X;T) with it: the run's fall is then partly
  a lost unit, not the live units' compression.
"""

from __future__ import annotations

import json

# Estimators of a discrete T (binned): plug-in I(X;T) = H(T) of the split's n equally likely inputs and
# plug-in I(Y;T) = H(T) + H(Y) - H(T,Y), so 0 <= I(X;T) <= H(X) <= log2 n (inputs alike share their T)
# and 0 <= I(Y;T) <= H(Y) on every split. Their bands and intervals are cut to that range (ibstore.stats, explorer.phase_charts).
DISCRETE_ESTIMATORS = ("binning", "idnns", "adaptive", "quantile")
# Estimators whose I(X;T) alone lies in [0, H(X)] over n equally likely inputs, H(X) = log2 n where
# no two are alike (their I(Y;T) has no proven floor, so it gets no ceiling):
# - Saxe et al.'s Gaussian-mixture bounds (trainer/estimators/kde.py, ibsgd's kde.py): I(X;T) =
#   ln n - mean_i ln sum_j exp(-|t_i - t_j|^2 / (2 s)) nats, s the noise variance (4 times it for the
#   lower bound); each sum lies between the input's multiplicity (its own term and its copies') and n;
#   H(X) once every input's Gaussian stands apart from all but its copies'.
# - EDGE (trainer/estimators/edge.py): the mean over its hashes of sum_j (M_j / n) min(log2(n / M_j), U),
#   M_j the inputs in bucket j, each term between 0 and (M_j / n) log2(n / M_j): a plug-in entropy of
#   the buckets, H(X) once every input (with its copies) has a bucket of its own in every hash. Its I(Y;T) can fall
#   below 0 where the cap U binds.
MIXTURE_ESTIMATORS = ("kde_upper", "kde_lower")
I_XT_BOUNDED_ESTIMATORS = (*MIXTURE_ESTIMATORS, "edge")
# EDGE's I(X;T) is also at most its cap U_xt (a mean of terms min(log2(n / M_j), U_xt) weighted by
# M_j / n): deep-bottleneck's 12 is log2 n for the harmonics' 4096 inputs, below it for more.
EDGE_CAP_SQL = "TRY_CAST(CASE WHEN json_valid(p.params) THEN json_extract_string(p.params, '$.U_xt') END AS DOUBLE)"
# The hidden activations whose values lie in [-1, 1] (trainer.activation_facts.BOUNDS), where idnns'
# fixed bins [-1, 1] (IDNNs' code, made for tanh) see every value; others clip at 1 (relu: every
# value above 1 shares the top bin, and I(X;T) falls as they grow, whatever the layer does).
IN_UNIT_RANGE_ACTIVATIONS = ("tanh", "softsign", "sigmoid", "hard_sigmoid")
_IN_UNIT_RANGE = ", ".join(f"'{json.dumps(name)}'" for name in IN_UNIT_RANGE_ACTIVATIONS)   # `config` values: JSON

# A gradient whose mean and spread over the minibatches both have norms below this has vanished:
# below Adam's and RMSprop's epsilon (Keras's 1e-7, as trainer.optimizers) their steps shrink with
# it. Its SNR is one rounding error over another (a saturated tanh layer's 1e-16 over 1e-17 read 10,
# a sceptic's), neither drift nor diffusion, so such an epoch has no SNR, as an all-zero gradient's
# 0/0 has none. A mean that vanishes beside a spread that does not is a low SNR, and is kept.
VANISHED_GRADIENT_NORM = 1e-7
# The gradients rows with an SNR: finite, of a gradient that has not vanished.
HAS_SNR = f"isfinite(snr) AND greatest(grad_mean_norm, grad_std_norm) >= {VANISHED_GRADIENT_NORM!r}"

# Per run and layer (the SNR's peak and the first epoch after it below half the peak, and the
# last epoch with an SNR, where a drop not seen yet is censored; epochs without one, HAS_SNR, are
# left out). Shared with the one-liner "Epoch of the SNR drop" of explorer.sql_examples, so both
# say the same thing.
SNR_DROP_SQL = (
    "SELECT run_id, layer, min(epoch) FILTER (epoch > peak_epoch AND snr < peak_snr / 2) AS snr_drop_epoch, "
    "max(epoch) AS snr_last_epoch "
    "FROM (SELECT run_id, layer, epoch, snr, max(snr) OVER w AS peak_snr, arg_max(epoch, snr) OVER w AS peak_epoch "
    f"FROM gradients WHERE {HAS_SNR} WINDOW w AS (PARTITION BY run_id, layer)) "
    "GROUP BY run_id, layer")

# A unit whose values over the inputs lie within 8 * 2^-23 of their size of each other (8 to 16 float32
# steps) is constant: saturated tanh units near 1 flicker between a range of up to 4 steps (2^-24 each
# there, 2.4e-7) and none from epoch to epoch, and that flicker was counted as units dying (a sceptic's);
# on stop 67's machine (an AMD EPYC) the same units flickered by 8 steps, 4.8e-7, which 4 * 2^-23 of a
# size just below 1 counted as varying, and a unit "died".
UNIT_ROUNDING = 8 * 2.0 ** -23

_DISCRETE = ", ".join(f"'{name}'" for name in DISCRETE_ESTIMATORS)
_I_XT_BOUNDED = ", ".join(f"'{name}'" for name in (*DISCRETE_ESTIMATORS, *I_XT_BOUNDED_ESTIMATORS))


def _split_fact(field: str) -> str:
    """The row's split's `field` of the run's `splits` (RunRecord.splits; `full` is an SQL keyword)."""
    return (f"CASE p.split WHEN 'train' THEN r.splits.train.{field} WHEN 'test' THEN r.splits.test.{field} "
            f"WHEN 'full' THEN r.splits['full'].{field} END")

# The ceiling of I(X;T) on the row's split: the entropy of its input rows, log2 n where the run's
# record predates it (every harmonics input is distinct: the same).
_H_X = f'coalesce({_split_fact("h_x_bits")}, log2(nullif({_split_fact("inputs")}, 0)))'

# A run is kept in its group's statistics (ibstore.stats.exclusions) when it completed and is neither
# dead nor diverged; the group's peak epoch is taken over the kept runs with a finite last I(X;T).
_KEPT = "r.status = 'completed' AND r.dead_network IS NOT TRUE AND r.diverged IS NOT TRUE"
KEYS_SQL = "group_id, layer, estimator, params, split"
# ksg's first value is the differential entropy h(T), not I(X;T) (trainer.estimators.first_value_column):
# it is stored in h_t_bits with i_xt NULL, but files written before h_t_bits existed hold it in i_xt,
# where peak - final would read as compression
_I_XT = "CASE WHEN mi.estimator = 'ksg' THEN NULL ELSE mi.i_xt END"

PHASES_SQL = f"""
WITH base AS NOT MATERIALIZED (
    SELECT mi.run_id, r.group_id, {_KEPT} AS kept, mi.layer, mi.layer_name, mi.estimator, mi.params, mi.split,
           mi.epoch, {_I_XT} AS i_xt, mi.i_yt
    FROM mi JOIN runs r USING (run_id)     -- qualified: `runs` has a column per config key (a hand-made "layer")
), m AS (
    SELECT *, max(i_xt) FILTER (isfinite(i_xt)) OVER w AS peak_i_xt, max(i_yt) FILTER (isfinite(i_yt)) OVER w AS peak_i_yt
    FROM base WINDOW w AS (PARTITION BY run_id, layer, estimator, params, split)
), tested AS (          -- kept runs whose last I(X;T) is finite: those the compression test reads
    SELECT run_id, layer, estimator, params, split, true AS tested
    FROM base GROUP BY ALL HAVING bool_and(kept) AND max(epoch) FILTER (isfinite(i_xt)) = max(epoch)
), marked AS NOT MATERIALIZED (
    SELECT * EXCLUDE (tested), coalesce(tested, false) AS in_mean
    FROM base LEFT JOIN tested USING (run_id, layer, estimator, params, split)
), counted AS (          -- the runs the group's mean is over: those tested, else the kept, else all
    SELECT {KEYS_SQL}, count(DISTINCT run_id) FILTER (in_mean) AS mean_runs,
           count(DISTINCT run_id) FILTER (kept) AS kept_runs, count(DISTINCT run_id) AS all_runs
    FROM marked GROUP BY ALL
), group_mean AS (       -- their mean I(X;T) at each epoch every one of them has a finite value at
    SELECT {KEYS_SQL}, epoch, avg(i_xt) AS mean_i_xt
    FROM marked JOIN counted USING (group_id, layer, estimator, params, split)
    WHERE CASE WHEN mean_runs > 0 THEN in_mean WHEN kept_runs > 0 THEN kept ELSE true END AND isfinite(i_xt)
    GROUP BY ALL
    HAVING count(*) = any_value(CASE WHEN mean_runs > 0 THEN mean_runs WHEN kept_runs > 0 THEN kept_runs
                                     ELSE all_runs END)
), group_peak AS (
    SELECT {KEYS_SQL}, min(epoch) AS group_peak_epoch
    FROM (SELECT *, max(mean_i_xt) OVER (PARTITION BY {KEYS_SQL}) AS top FROM group_mean)
    WHERE mean_i_xt = top GROUP BY ALL
), at_group_peak AS (    -- each run's I(X;T) there
    SELECT b.run_id, b.layer, b.estimator, b.params, b.split, b.i_xt AS group_peak_run_i_xt
    FROM base b JOIN group_peak g ON b.group_id = g.group_id AND b.layer = g.layer AND b.estimator = g.estimator
         AND b.params = g.params AND b.split = g.split AND b.epoch = g.group_peak_epoch
    WHERE isfinite(b.i_xt)
), p AS (
    SELECT run_id, layer, estimator, params, split,
           arg_max(layer_name, epoch) AS layer_name,
           min(epoch) FILTER (i_xt = peak_i_xt) AS peak_i_xt_epoch,
           any_value(peak_i_xt) AS peak_i_xt,
           max(epoch) AS final_epoch,
           first(CASE WHEN isfinite(i_xt) THEN i_xt END ORDER BY epoch DESC) AS final_i_xt,   -- NULL if the last
                                            -- epoch has none, or NaN or infinity (arg_max skips NULL)
           min(epoch) FILTER (i_yt = peak_i_yt) AS peak_i_yt_epoch,
           any_value(peak_i_yt) AS peak_i_yt
    FROM m GROUP BY run_id, layer, estimator, params, split
), phase_rows AS MATERIALIZED (   -- read twice, by `died` and by the final SELECT
SELECT p.run_id, r.group_id, p.layer, p.layer_name, p.estimator, p.params, p.split,
       p.peak_i_xt_epoch, p.peak_i_xt, p.final_epoch, p.final_i_xt,
       p.peak_i_xt - p.final_i_xt AS compression_bits, g.group_peak_epoch,
       p.peak_i_xt - a.group_peak_run_i_xt AS noise_floor_bits,
       p.peak_i_yt_epoch, p.peak_i_yt, s.snr_drop_epoch,
       r.dead_network, r.diverged, r.status,
       CASE WHEN p.estimator = 'edge' THEN least({_H_X}, {EDGE_CAP_SQL})
            WHEN p.estimator IN ({_I_XT_BOUNDED}) THEN {_H_X}
            END AS i_xt_ceiling_bits,
       CASE WHEN p.estimator IN ({_DISCRETE}) THEN {_split_fact("h_y_bits")} END AS i_yt_ceiling_bits,
       {_split_fact("inputs")} AS split_inputs,
       p.estimator = 'idnns' AND p.layer < max(p.layer) OVER (PARTITION BY p.run_id)   -- a hidden layer
           AND c.value NOT IN ({_IN_UNIT_RANGE}) AS bins_clip,
       s.run_id IS NOT NULL AND s.snr_drop_epoch IS NULL AS snr_drop_censored, s.snr_last_epoch
FROM p JOIN runs r USING (run_id)
     LEFT JOIN config c ON c.run_id = p.run_id AND c.key = 'activation_fn'
     LEFT JOIN group_peak g ON g.group_id = r.group_id AND g.layer = p.layer AND g.estimator = p.estimator
          AND g.params = p.params AND g.split = p.split
     LEFT JOIN at_group_peak a ON a.run_id = p.run_id AND a.layer = p.layer AND a.estimator = p.estimator
          AND a.params = p.params AND a.split = p.split
     LEFT JOIN ({SNR_DROP_SQL}) s ON s.run_id = p.run_id AND s.layer = p.layer
), units AS (            -- per unit: the last logged epoch at which it varied over the split's inputs, and its last
    -- (a range within UNIT_ROUNDING of the unit's size is rounding: a saturated tanh unit flickers)
    SELECT run_id, layer, split, neuron,
           max(epoch) FILTER ("max" - "min" > {UNIT_ROUNDING} * greatest(abs("min"), abs("max"))) AS last_varying_epoch,
           max(epoch) AS last_epoch,
           -- a NULL, NaN or infinite bound, or min > max (a damaged file's) leaves the unit unknown
           bool_and(coalesce(isfinite("min") AND isfinite("max") AND "min" <= "max", false)) AS sound
    FROM activation_stats GROUP BY ALL
), died AS (             -- units that varied at some epoch from the group's peak on and are constant at the end
    SELECT e.run_id, e.layer, e.estimator, e.params, e.split,
           count(*) FILTER (u.last_varying_epoch >= e.group_peak_epoch AND u.last_varying_epoch < e.final_epoch)
               AS units_died
    FROM phase_rows e JOIN units u ON u.run_id = e.run_id AND u.layer = e.layer AND u.split = e.split
    WHERE e.group_peak_epoch <= e.final_epoch    -- a run still training short of the peak: not known, NULL
    GROUP BY ALL HAVING bool_and(u.last_epoch = e.final_epoch   -- else not known at its end: NULL
                                 AND u.sound)
)
SELECT phase_rows.*, d.units_died
FROM phase_rows LEFT JOIN died d USING (run_id, layer, estimator, params, split)
"""

# The curves the statistics read, one row per run, layer, estimator, params and split: the I(X;T)
# curve the compression test reads (ibstore.stats.drop_test), its logged epochs with a finite value
# and the values there, and the layer's gradient SNR likewise (snr_epochs, snr, HAS_SNR; NULL without
# one), from which ibstore.stats.drops_within takes the SNR drop of runs of different lengths at one
# horizon. Each pair of lists in the same (any) order (lists: a row per epoch was 720,000 rows of
# repeated text for 200 runs; ordered lists cost a sort the statistics do not need).
CURVES_SQL = ("SELECT * FROM (SELECT run_id, layer, estimator, params, split, list(epoch) AS epochs, "
              "list(i_xt) AS i_xt FROM mi WHERE isfinite(i_xt) AND estimator <> 'ksg' GROUP BY ALL) "
              "LEFT JOIN (SELECT run_id, layer, list(epoch) AS snr_epochs, list(snr) AS snr "
              f"FROM gradients WHERE {HAS_SNR} GROUP BY ALL) USING (run_id, layer)")
