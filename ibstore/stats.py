"""Statistics over seeds of the `phases` view (ibstore.phases): the seed is the unit.

A seed group is the runs that differ only in seed (`group_id`). Per group, layer, estimator,
params, split and phase quantity: n, mean, standard deviation s (ddof 1) and the 95 % Student t
interval of the mean, mean +- t(0.975, n - 1) s / sqrt(n) (Student 1908). Between two groups: the
difference of means a - b; a two-sided p, the larger of two tests' (`welch_bounded`), and the 95 %
interval of the two together, the span of their intervals, so that 0 lies outside it exactly when
p < 0.05:
- a studentized permutation test, Welch's t, (mean_a - mean_b) / sqrt(s_a^2 / n_a + s_b^2 / n_b),
  over the arrangements of the seeds (exact when they are at most N_RESAMPLES, else N_RESAMPLES
  random ones; `shift_test`: Janssen 1997, Statistics & Probability Letters 36; Chung and Romano
  2013, Ann. Statist. 41(2)), and its interval from the same test (from the estimate out to the
  nearest shifts of a that it rejects; with a group of 2 or 3 seeds, where the studentized p need
  not fall steadily with the shift, a shift inside can be rejected, or one beyond an end not: 3 of
  720 simulated comparisons). It is exact where the condition makes no difference to the seeds'
  values, and valid for "equal means" alone, whatever the two spreads, as the groups grow;
- Welch's t test (Welch 1947; `welch_contrast`), near 5 % for normal seeds unless the wider group
  has 3 (sd 3 against 1, 3 seeds against 10: 6.2 %), and its t interval. A group of 2 seeds takes
  Hsu's degrees of freedom, 2 - 1 = 1, which hold the level whatever the spreads: Welch's estimate
  of them called equal means different 12.7 % of the time with 2 seeds of sd 3 against 10 of sd 1
  (2000 draws, measured before the rule).
Each guards where the other errs. With few seeds in the wider group the permutation test calls
equal means different: normal seeds, sd 3 against 1, p < 0.05 12.1 % of the time with 4 seeds
against 8, 16.4 % with 3 against 10, 17.0 % with 2 against 10 and 11.5 % with 5 against 10;
bounded by Welch's t test, 5.7, 5.4, 0.6 and 5.2 % (`python bench/comparison_calibration.py
--draws 4000`, each row its own random stream; the 2 seeds' bound was 9.2 % with Welch's degrees
of freedom); the raw difference of
means permuted before it, which tests equal distributions, 13.7 % even with 20 seeds against 40.
Hsu's degrees of freedom cost what a pair of seeds cannot give, and the note HSU_PAIR says so:
means 2 sd apart, 2 seeds against 10, were found different 1.0 % of the time (by the permutation
test alone, which does not hold the level there, 41.9 %); against fewer than 8 seeds no p of the
permutation test reaches 0.05 anyway (`smallest_p`). Welch's t test assumes a normal mean: five
seeds each wholly above five others (permutation p = 2/252 = 0.008) with one far value get a t
interval reaching past 0, and the comparison says what that interval says (no difference of means
shown; Cliff's delta, 1, says every seed of a lies above every seed of b). The
bound costs some power where both tests are apt: normal seeds of sd 1, means 1.5 apart, 5 seeds
each, found different 54.4 % of the time by the permutation test alone and 51.0 % bounded; 1
apart, 10 each, 56.0 and 55.0 %.
Beside them, Cliff's delta as effect size, delta = P(a > b) - P(a < b) (Cliff 1993, Psychological
Bulletin 114(3)), in [-1, 1] and free of the estimator's units, with its own 95 % interval
(`cliffs_delta`: Feng and Cliff's asymmetric interval, as R's effsize computes it). That interval
is not the test's, nor adjusted over layers or groups as q is, and can disagree with p either way:
it can hold 0 where p < 0.05 (4, 6, 7, 8 and 9 against 1, 2, 3, 5 and 6.5: p 0.048, delta 0.76
[-0.15, 0.97]), and leave 0 out where p >= 0.05 (a sceptic's 7 rows of 5 seeds a side, p 0.057 to
0.154). Over 4000 draws of normal seeds
(`python bench/interval_coverage.py`) it held the true delta 98.2 % of the time with 5 seeds a
side and no difference, 92.0 % with means 1 sd apart (93.9 % with the values censored at a common
bound, as SNR drops are) and 96.5-97.9 % with 10 a side. With 3 a side it held it only 89.5-90.3 %
of the time, and no test can give p < 0.05 there either: such seeds get no interval.

Why t intervals and not the bootstrap: a cohort has a handful of seeds, and a percentile bootstrap
interval of a mean is far too narrow there. On normal data (`python bench/interval_coverage.py`),
its "95 %" interval holds the mean 50 % of the time with 2 seeds (it is their range), 75 % with 3,
83 % with 5 and 91 % with 10; the t interval 94-96 % at every n (tests/test_phases.py checks it),
and on skewed (lognormal) data more often than the bootstrap's (82-89 % against 43-86 %, 2 to 20
seeds: the t interval 89, 84, 82, 84 and 87 % with 2, 3, 5, 10 and 20 seeds, over 200,000 cohorts
each). An interval is cut to the range its quantity can take (`quantity_bounds`): at 0 for
quantities that cannot be negative, an epoch at the runs' last logged epoch, and at the ceilings
the `phases` view gives: H(X) (log2 n where no two inputs are alike) for I(X;T) of a discrete estimator, the kde bounds and EDGE, H(Y)
for a discrete estimator's I(Y;T); the mean lies in that range, so the cut interval holds
it whenever the whole one does, with the same coverage and no impossible values.

Compression (peak - final I(X;T)) is positive under noise alone, so it is tested against a
noise floor measured from the data, not against 0. Per run the excess compression_bits -
noise_floor_bits is its fall from the epoch where its group's mean I(X;T) peaks to its end
(ibstore.phases); their mean is the mean curve's peak minus its end, still a maximum over the
logged epochs, and `drop_test` weighs it against the same maximum over the seeds' own noise, read
from the I(X;T) curves: a one-sided p and a 95 % lower bound of the compression. `compresses` is
p < ALPHA, and NULL where no test can decide it: fewer than MIN_SEEDS_TESTED seeds, too few to
measure the noise (the note says UNTESTABLE; a "no" there would be the test's, not a finding).
The excess's interval is that one-sided bound, [ci_low, inf), so that `compresses` is exactly
ci_low > 0: a two-sided t interval beside a one-sided test had reached below 0 for a group whose
five seeds all compress (a tanh cohort's last hidden layer, 1.99 [-0.06, 4.05] with p = 1/32).

Several layers are tested together (a group's compression per layer, two groups compared per layer),
so each row also carries q_value, its p adjusted by Benjamini-Hochberg over the layers tested with it
(one group, or one pair of groups, estimator, params, split and quantity; `over_layers`). Among the
layers with q < 0.05 the expected share of false findings is at most 5 % (Benjamini and Hochberg
1995). A single p < 0.05 among six layers is what noise alone gives one time in four (1 - 0.95^6);
a question asked of one layer chosen in advance (the last hidden layer) needs p alone.

Two groups' permutation test has a floor too: with 3 seeds each its smallest p is 0.10
(`smallest_p`), and the comparison's note says TOO_FEW_TO_DIFFER wherever p cannot reach 0.05.

The quantities are compared at 12 decimals (DECIMALS): beyond that, bits are the float64 rounding
of an estimator's sums, which a permutation test would otherwise order (a layer at H(Y) in every
run once "differed" by 6.7e-16 bits, p = 0.048).

n = 1 gets no interval and no test (NO_INTERVAL), never a fake one. Runs left out of a group's statistics
are counted and named: dead networks, diverged runs, and runs that did not complete; so are runs
kept whose value of a quantity is missing (NaN: e.g. an SNR that never drops). The permutation
tests use a fixed seed (SEED) where they sample, so the same root gives the same numbers.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from ibstore.phases import DISCRETE_ESTIMATORS, I_XT_BOUNDED_ESTIMATORS
from ibstore.record import Status

ALPHA = 0.05
CONFIDENCE = 1 - ALPHA     # 0 lies outside an interval exactly where its test's p < ALPHA
N_RESAMPLES = 9999
SEED = 0
NO_INTERVAL = "n = 1: no interval"
NO_VALUE = "no value"
MIN_SEEDS_TESTED = 5
# A studentized null statistic this close to the observed one (relative, and absolute below 1) ties
# with it: two groups holding the same values (11.7 and 12, as at a ceiling) once gave p = 0.67, not 1,
# their t's 1e-16 apart by the rounding of the means subtracted.
STUDENTIZED_TIES = 1e-12
# I(X;T) in bits is at most log2 of the inputs (12 for the harmonics data); a drop past this is no
# estimate, and its squares (the noise's degrees of freedom) would overflow float64
MAX_DROP_BITS = 1e6
NO_COMMON_EPOCH = "no logged epoch at which every seed has I(X;T): no test"
IMPLAUSIBLE = f"an I(X;T) moves by more than {MAX_DROP_BITS:g} bits from its end, which no estimate does: no test"
IMPLAUSIBLE_BITS = f"a value beyond {MAX_DROP_BITS:g} bits, which no estimate gives (a hand-made file's): no test"
# How compression is tested (`drop_test`), said beside every table and page that shows the test.
COMPRESSION_TEST = ("compression is tested against the noise floor: one-sided p that the seeds' mean I(X;T) falls "
                    "from its peak to its end by more than the seeds' own noise makes the maximum of such a mean "
                    "curve stand above its end (a multiplier bootstrap over the seeds)")
UNTESTABLE = f"n < {MIN_SEEDS_TESTED}: too few seeds to measure the noise the compression test needs"
IDENTICAL_SEEDS = ("every seed's I(X;T) falls alike, epoch by epoch: no noise to test against (are the seeds "
                   "applied?)")
AT_CEILING = ("I(X;T) ends at its ceiling (H(X), log2 n where no two inputs are alike, or EDGE's cap U_xt) in every "
              "seed: this estimator cannot show "
              "compression here")
CLIPPED_BINS = ("idnns bins [-1, 1] (IDNNs' code, made for tanh) and this layer's activation is not bounded by 1: its "
                "values above 1 share the top bin, so its MI moves as they grow, whatever the layer does; no test")
AT_CEILING_COMPARED = ("a group's I(X;T) ends at its ceiling in every seed: this estimator cannot show that "
                       "group's compression, so a difference in it would be the estimator's; no test")
AT_CEILING_ALL = ("every group's I(X;T) ends at its ceiling in every seed: each MI quantity there is the estimator's "
                  "(I(X;T) at H(X), I(Y;T) at I(X;Y)), alike by construction; no test")
PEAKS_AT_END = ("a group's mean I(X;T) peaks at its last logged epoch: its compression over the floor is 0 in every "
                "seed by construction, no measurement to compare (each group's own compression test says whether "
                "it compresses); no test")
STILL_RISING = ("the group's mean I(X;T) peaks at its last logged epoch: it has not fallen yet, so its compression "
                "over the floor is 0 in every seed and the test cannot show compression: no fall within the epochs "
                "trained (p stays; whether it falls later, only longer training can tell)")
NO_SHARED_EPOCH = ("the runs share no logged epoch with a finite I(X;T) (or a run's curve is missing): the test "
                   "that picks each group's peak epoch again cannot run, and the seeds' values alone are not "
                   "independent; no test")
# A seed whose SNR never fell below half its peak has not ended its drift phase by its last epoch: its
# drop epoch is censored there, not missing at random, and leaving it out moves its group's mean earlier,
# the very direction "does the drift phase end earlier?" asks about (a reviewer's). Where every seed was
# followed to the same epoch it is kept, ranked after every drop (CENSORED_RANKS; `drop_ranks`).
CENSORED_DROP = ("a kept seed's SNR never fell below half its peak, and these rows do not say until which epoch it "
                 "was followed (no snr_last_epoch): leaving it out would move its group's mean earlier: no test")
CENSORED_RANKS = ("a kept seed's SNR never fell below half its peak by its end, which every seed shares: its drop "
                  "epoch is censored, ranked after every drop, and the groups are compared by ranks (Mann-Whitney, "
                  "or Spearman's rho along a key; permuted), with no difference of means or slope")
CENSORED_AT_HORIZON = ("seeds followed to different last epochs are compared on the epochs all of them logged up to "
                       "the end of the seed followed the shortest (horizon_epoch, the last of them), where a kept "
                       "seed's SNR did not fall below half its peak by then: its drop epoch is censored there, "
                       "ranked after every drop, and the groups are compared by ranks (Mann-Whitney, or Spearman's "
                       "rho along a key; permuted), with no difference of means or slope")
NO_DROP = ("no kept seed's SNR fell below half its peak in the epochs compared (up to the horizon, where the seeds "
           "were followed to different last epochs): their ranks all tie, and no test can tell the groups apart")
UNEQUAL_SPANS = ("the seeds' SNR was followed to different last epochs (runs of different lengths, or stopped early): "
                 "a drop is taken from the whole run's peak, so their drop epochs are not one quantity, and these "
                 "rows come without the SNR curves that would cut them at one epoch (`drops_within`): no test")
CENSORED_MEAN = ("a kept seed's SNR never fell below half its peak by its end: its drop epoch is censored, and the "
                 "group's mean is at least the one given (each censored seed at its last epoch with an SNR); "
                 "no interval")
TOO_FEW_TO_DIFFER = "too few seeds for p < 0.05"
HSU_PAIR = ("2 seeds in a group: the t test on Hsu's 1 degree of freedom, which holds 5 % whatever the spreads "
            "but finds little")
KEYS = ("layer", "estimator", "params", "split")
# The tests adjusted together (q_value): every layer of one group (or pair of groups), estimator,
# params and split.
FAMILY = ("estimator", "params", "split")
EXCESS = "compression_over_floor_bits"
QUANTITIES = ("peak_i_xt_epoch", "peak_i_xt", "final_i_xt", "compression_bits", "noise_floor_bits", EXCESS,
              "peak_i_yt_epoch", "peak_i_yt", "snr_drop_epoch")
# The quantities that are >= 0 whatever the estimator: epochs, and peak - final and max - min of a
# curve. Their intervals are cut at 0: the mean is >= 0, so the cut interval holds it whenever the
# whole one does (the same coverage), and reads without impossible values.
# The quantities that measure compression: 0 by construction where I(X;T) ends at its ceiling.
COMPRESSION = ("compression_bits", EXCESS)
BITS = tuple(quantity for quantity in QUANTITIES if not quantity.endswith("_epoch"))   # the quantities in bits
NON_NEGATIVE = ("peak_i_xt_epoch", "compression_bits", "noise_floor_bits", "peak_i_yt_epoch", "snr_drop_epoch")
# For a discrete estimator (ibstore.phases.DISCRETE_ESTIMATORS) I(X;T) and I(Y;T) lie in [0, their
# ceiling] on every run: the quantities made of them, and the ceiling that bounds each. For the kde
# bounds and EDGE (I_XT_BOUNDED_ESTIMATORS) I(X;T) alone does.
CEILING_OF = {"peak_i_xt": "i_xt_ceiling_bits", "final_i_xt": "i_xt_ceiling_bits",
              "compression_bits": "i_xt_ceiling_bits", "noise_floor_bits": "i_xt_ceiling_bits",
              "peak_i_yt": "i_yt_ceiling_bits"}
CEILINGS_OF_ESTIMATOR = {
    **dict.fromkeys(DISCRETE_ESTIMATORS, CEILING_OF),
    **dict.fromkeys(I_XT_BOUNDED_ESTIMATORS, {q: c for q, c in CEILING_OF.items() if c == "i_xt_ceiling_bits"})}
# Logged epochs, whatever the estimator: none comes after the run's last logged one (final_epoch).
CEILING_OF_EPOCH = {quantity: "final_epoch" for quantity in ("peak_i_xt_epoch", "peak_i_yt_epoch", "snr_drop_epoch")}


@dataclass(frozen=True)
class Summary:
    """One quantity over the seeds of one group (NaN where there is no value or no interval)."""
    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    note: str | None


@dataclass(frozen=True)
class Comparison:
    """Group a against group b on one quantity: the difference of means a - b."""
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    cliffs_delta: float
    cliffs_low: float      # Cliff's delta's 95 % interval (`cliffs_delta`): NaN with too few seeds, or untested
    cliffs_high: float
    note: str | None


def scipy_stats():
    """scipy.stats, imported on first use: it is a large part of the explorer's first load
    (bench/RESULTS.md, issue 20 branch warm100k), and the Runs page, which imports this module
    through explorer.cohort_tables, needs none of it."""
    from scipy import stats
    return stats


def t_critical(dof: np.ndarray | float) -> np.ndarray:
    """Student's (1908) t(1 - ALPHA / 2, dof): the two-sided t test's critical value at ALPHA, and the
    half width of the CONFIDENCE interval in standard errors; NaN where dof is NaN. A ufunc
    (scipy.special.stdtrit, what scipy.stats.t.ppf computes), without importing scipy.stats.

    >>> round(float(t_critical(4)), 3)
    2.776
    """
    from scipy import special

    return special.stdtrit(dof, 1 - ALPHA / 2)


def t_half_width(sd: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Half the width of the 95 % Student t interval of a mean, t(0.975, n - 1) * sd / sqrt(n), per
    element (NaN where n < 2: no interval)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return t_critical(np.where(n > 1, n - 1, np.nan)) * np.asarray(sd, dtype=float) / np.sqrt(n)


@functools.lru_cache(maxsize=64)
def _arrangements(n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The arrangements of n_a + n_b pooled values (a's first) into a group of n_a and one of n_b
    that scipy.stats.permutation_test (permutation_type "independent") weighs: (positions of the
    first group [K, n_a], of the second [K, n_b], exact). Every one of the C(n_a + n_b, n_a) when
    they are at most N_RESAMPLES (the observed one among them), else N_RESAMPLES random ones (seed
    SEED) besides the observed one."""
    n = n_a + n_b
    if math.comb(n, n_a) <= N_RESAMPLES:
        firsts = np.array(list(itertools.combinations(range(n), n_a)), dtype=np.intp).reshape(-1, n_a)
        exact = True
    else:
        firsts = np.sort(np.random.default_rng(SEED).random((N_RESAMPLES, n)).argsort(axis=1)[:, :n_a], axis=1)
        exact = False
    chosen = np.zeros((len(firsts), n), dtype=bool)
    np.put_along_axis(chosen, firsts, True, axis=1)
    seconds = np.nonzero(~chosen)[1].reshape(len(firsts), n_b)
    for array in (firsts, seconds):
        array.flags.writeable = False
    return firsts, seconds, exact


class ShiftedTest:
    """A permutation test of a statistic of values shifted by d, for every d at once. Each
    arrangement's statistic is `level + slope * d` (a straight line in d, since the shift moves
    only some of the values it is made of), the observed one `observed - d`. Studentized (with
    `variance`, for `shift_test` and ibstore.trend), each line is divided by the arrangement's
    standard error, sqrt(a + 2 b e + c e^2) with e = d - observed: a shift moves the spread of the
    values an arrangement mixes as well as their difference (or slope), and the variance of shifted
    values is a quadratic in the shift; row 0 of level, slope and a, b, c is then the observed
    arrangement, computed as the null's rows are (so that an exact test's identity arrangement
    equals it), the rest the null's. A zero variance gives +-inf with the sign of the numerator,
    0 / 0 gives 0. p(d) is scipy.stats.permutation_test's p of the shifted values: a null value
    within 100 machine epsilons of the observed one counts as equal to it (studentized, within
    STUDENTIZED_TIES), and random arrangements count the observed one (p = (count + 1) / (K + 1)).
    Inverting it gives the interval that agrees with p (Lehmann 1975, Nonparametrics, ch. 2; Ernst
    2004, Statistical Science 19(4), section 3.3): the shifts the test does not reject (studentized,
    as `end` finds them). `observed` is also the estimate: the shift that makes the observed
    statistic 0."""

    def __init__(self, level: np.ndarray, slope: np.ndarray, observed: float, exact: bool, two_sided: bool,
                 variance: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None):
        self.level, self.slope, self.observed, self.two_sided = level, slope, observed, two_sided
        self.adjustment = 0 if exact else 1
        self.variance = None if variance is None else (variance[0], 2 * variance[1], variance[2])
        self.buffers = None if variance is None else np.empty((2, len(level)))

    def statistics(self, shift: float) -> tuple[np.ndarray, float]:
        """The null statistics and the observed one of the values shifted by `shift`."""
        if self.variance is None:
            return self.level + self.slope * shift, self.observed - shift
        beyond = shift - self.observed
        squares, cross, shifted = self.variance
        t, variance = self.buffers
        np.multiply(shifted, beyond, out=variance)              # a + e (2 b + c e)
        variance += cross
        variance *= beyond
        variance += squares
        np.multiply(self.slope, beyond, out=t)                  # level + slope e
        t += self.level
        with np.errstate(divide="ignore", invalid="ignore"):
            np.maximum(variance, 0.0, out=variance)
            np.sqrt(variance, out=variance)
            np.divide(t, variance, out=t)
        if np.isnan(t).any():                                   # 0 / 0: no difference
            np.nan_to_num(t, copy=False, nan=0.0, posinf=math.inf, neginf=-math.inf)
        return t[1:], float(t[0])

    def p(self, shift: float) -> float:
        null, observed = self.statistics(shift)
        if not math.isfinite(observed):
            gamma = 0.0
        elif self.variance is None:
            gamma = abs(observed) * np.finfo(float).eps * 100
        else:   # a t (unitless), from values moved by means: ties of the values tie within rounding only
            gamma = STUDENTIZED_TIES * max(1.0, abs(observed))
        total = len(null) + self.adjustment
        above = (np.count_nonzero(null >= observed - gamma) + self.adjustment) / total
        if not self.two_sided:
            return float(above)
        below = (np.count_nonzero(null <= observed + gamma) + self.adjustment) / total
        return float(min(1.0, 2 * min(below, above)))

    def end(self, direction: float, scale: float, through: float | None = None) -> float:
        """The end of the interval towards `direction` (-1 or 1) from the estimate (`observed`): a
        shift the test does not reject at ALPHA beside one it rejects. The bracket doubles from
        the estimate until p < ALPHA, then is halved to the last bit; +-inf where no shift is
        rejected. Where `through` (0 for a difference or a slope) lies on that side, it is tried
        first: rejected, the end is sought between the estimate and it; not rejected, the doubling
        starts from it. So `through` lies outside the interval exactly when its p < ALPHA, whether
        or not p is monotone in the shift. Unstudentized it is: a shift moves every null value the
        same way against the observed one, so the count of null values beyond the observed one on
        that side only falls, the shifts not rejected make one interval, and its end is the test's
        own. A studentized p need not be monotone (each arrangement's statistic is a line over a
        square root of a quadratic in the shift): the end is then where p first crosses ALPHA in
        that search, which is not rejected just inside and rejected just outside, and a rejected
        stretch the doubling steps over is not looked for."""
        start = self.observed
        if scale == 0:                      # every value equal: any shift d != 0 is rejected
            return start
        if through is not None and (through - start) * direction > 0:
            if self.p(through) < ALPHA:
                return self._bisect(start, through)
            start = through
        inside, step = start, scale
        while self.p(start + direction * step) >= ALPHA:
            inside, step = start + direction * step, 2 * step
            if not math.isfinite(step):
                return direction * math.inf
        return self._bisect(inside, start + direction * step)

    def _bisect(self, inside: float, outside: float) -> float:
        """Halve [inside, outside] (p(outside) < ALPHA) to the last bit, keeping p(inside) >= ALPHA."""
        while (middle := (inside + outside) / 2) not in (inside, outside):
            inside, outside = (middle, outside) if self.p(middle) >= ALPHA else (inside, middle)
        return float(inside)


def shift_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(p, low, high) for mean(a) - mean(b), from at least 2 values each: p of the two-sided
    studentized permutation test of it (Janssen 1997, Statistics & Probability Letters 36; Chung
    and Romano 2013, Ann. Statist. 41(2)): per arrangement of the values into groups of n_a and n_b
    (scipy.stats.permutation_test's, `_arrangements`), Welch's t, (mean_1 - mean_2) /
    sqrt(s_1^2 / n_a + s_2^2 / n_b), s^2 each side's variance (ddof 1). Its 95 % interval: from the
    estimate outwards to the nearest shifts d for which the same test of (a - d, b) gives
    p < ALPHA (`ShiftedTest.end`; not every shift inside need be accepted where p is not monotone
    in d): 0 lies outside the interval exactly when p < ALPHA.
    Where no shift can give p < ALPHA (an exact test with `smallest_p` >= ALPHA) the interval is
    the whole line.

    Exact where the two groups' values are exchangeable (the condition makes no difference to
    them); for "equal means" alone, with different spreads and sizes, valid as the groups grow
    (the raw difference of means is not: it tests equal distributions, the module's docstring).
    An arrangement's sums, sums of squares and counts of a's values are fixed; shifting a's values
    by d moves a side's mean by -d c / n and its sum of squared deviations by -2d (the sum of its
    a-values' deviations) + d^2 c (n - c) / n, c its count of a-values, so each p(d) is a few
    vector operations (the values centred per group, d counted from the estimate, for accuracy).

    >>> p, low, high = shift_test(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([0.0, 0.5, 1.0, 1.5, 2.0]))
    >>> round(p, 4), low < 0 < high
    (0.0556, True)
    >>> p, low, high = shift_test(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([-1.0, -0.5, 0.0, 0.5, 1.0]))
    >>> round(p, 4), 0 < low < 3 < high
    (0.0159, True)
    """
    n_a, n_b = len(a), len(b)
    firsts, seconds, exact = _arrangements(n_a, n_b)
    identity = np.arange(n_a + n_b)
    firsts, seconds = np.vstack([identity[:n_a], firsts]), np.vstack([identity[n_a:], seconds])   # row 0: observed
    centred, of_a = np.concatenate([a - a.mean(), b - b.mean()]), identity < n_a
    level, slope = np.zeros(len(firsts)), np.zeros(len(firsts))
    variance = np.zeros((3, len(firsts)))      # a, b, c of the variance of the difference, a + 2 b e + c e^2
    for side, n, sign in ((firsts, n_a, 1.0), (seconds, n_b, -1.0)):
        values, shifted = centred[side], of_a[side]
        mean, count = values.mean(axis=1), shifted.sum(axis=1)
        deviations = values - mean[:, None]
        level += sign * mean
        slope -= sign * count / n
        scale = n * (n - 1)         # the variance of a mean: the sum of squared deviations / (n (n - 1))
        variance[0] += (deviations ** 2).sum(axis=1) / scale
        variance[1] -= (deviations * shifted).sum(axis=1) / scale
        variance[2] += count * (n - count) / n / scale
    test = ShiftedTest(level, slope, float(a.mean() - b.mean()), exact, two_sided=True, variance=tuple(variance))
    if exact and smallest_p(n_a, n_b) >= ALPHA:
        return test.p(0.0), -math.inf, math.inf
    scale = max(float(np.ptp(np.concatenate([a, b]))), abs(test.observed))
    return test.p(0.0), test.end(-1.0, scale, through=0.0), test.end(1.0, scale, through=0.0)


def welch_contrast(steps: np.ndarray, values: np.ndarray) -> tuple[float, float, float]:
    """(slope, standard error, degrees of freedom) of the least-squares slope of `values` on
    `steps`, read as a contrast of the means at each step, each step with its own variance: slope =
    sum_j c_j ybar_j with c_j = m_j (x_j - xbar) / Sxx, variance sum_j v_j with v_j = c_j^2 s_j^2 / m_j,
    and Satterthwaite's degrees of freedom (sum_j v_j)^2 / sum_j v_j^2 / (m_j - 1) (Welch 1947,
    Biometrika 34; Satterthwaite 1946, Biometrics Bulletin 2(6)). At two steps 1 apart it is
    Welch's t of their difference of means (scipy.stats.ttest_ind, equal_var=False). Where a step
    in the contrast has 2 values its variance rests on one degree of freedom, and Satterthwaite's
    estimate of the whole's is too large: normal seeds of equal means, sd 3 in 2 seeds against 1 in
    10, were called different 12.7 % of the time on it (2000 draws of bench/comparison_calibration.py,
    before this rule).
    The degrees of freedom are then Hsu's, the smallest count less one (1) of the steps in the
    contrast, which hold the level whatever the spreads (Hsu 1938, Statistical Research Memoirs 2;
    Mickey and Brown 1966, Ann. Math. Statist. 37(3)): 0.6 % there. A step at the mean step (the
    middle of three whose outer two have as many values) weighs 0 and does not count. The degrees
    of freedom are NaN where a step has fewer than 2 values (its variance is unknown), and where
    every step's values are equal (no variance at all).

    >>> slope, error, df = welch_contrast(np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]),
    ...                                   np.array([3.0, 4.0, 5.0, 1.0, 2.0, 4.0]))
    >>> round(slope, 6), round(error, 4), round(df, 3)
    (1.666667, 1.0541, 3.448)
    >>> welch_contrast(np.array([1.0, 1.0, 1.0, 0.0, 0.0]), np.array([3.0, 4.0, 5.0, 1.0, 2.0]))[2]
    1.0
    """
    levels, step_of, counts = np.unique(steps, return_inverse=True, return_counts=True)
    centred = levels - steps.mean()
    weights = counts * centred / (counts @ centred ** 2)
    means = np.bincount(step_of, values) / counts
    with np.errstate(invalid="ignore", divide="ignore"):
        variances = np.bincount(step_of, (values - means[step_of]) ** 2) / (counts - 1)
        parts = weights ** 2 * variances / counts
        df = parts.sum() ** 2 / (parts ** 2 / (counts - 1)).sum()
    if counts.min() < 2:
        df = math.nan
    elif pair_in_contrast(steps) and math.isfinite(df):     # Hsu's (the docstring)
        df = 1.0
    return float(weights @ means), math.sqrt(parts.sum()), float(df)


def pair_in_contrast(steps: np.ndarray) -> bool:
    """Whether `welch_contrast` of these steps takes Hsu's 1 degree of freedom: every step has 2
    values or more, and one of exactly 2 enters the contrast (its step is not the mean step, where
    its weight is 0). The note HSU_PAIR says so beside the test."""
    levels, counts = np.unique(steps, return_counts=True)
    return bool(counts.min() >= 2 and counts[levels != steps.mean()].min() == 2)


def welch_bounded(p_value: float, low: float, high: float, estimate: float, standard_error: float,
                  df: float) -> tuple[float, float, float]:
    """(p, low, high) of a permutation test (p_value and its interval [low, high]) bounded by the
    t test of the same estimate with its own standard error and degrees of freedom (Welch's,
    `welch_contrast`): the larger p, and the hull of the two intervals. Each guards where the other
    fails. The studentized permutation test is exact where the condition makes no difference to
    the seeds, but with a handful of seeds in the wider group it calls unequal spreads different
    (equal means, sd 3 against 1, 4 seeds against 8: 12.1 % at p < 0.05); Welch's t, near 5 % there
    on normal seeds, assumes a normal mean. Each interval holds the estimate, so the hull is one
    interval, and 0 lies outside it exactly when both p are below ALPHA: when the larger is. Where
    every value equals its step's mean the t test is +-inf (p = 0, interval the estimate alone),
    or 0 / 0 at an estimate of 0 (p = 1)."""
    if standard_error == 0:
        t_p, half_width = (1.0 if estimate == 0 else 0.0), 0.0
    elif standard_error > 0 and df > 0:
        from scipy import special     # Student's t cdf and its inverse as ufuncs: cheaper than a frozen scipy.stats.t

        t_p = float(2 * special.stdtr(df, -abs(estimate) / standard_error))
        half_width = float(t_critical(df)) * standard_error
    else:       # a NaN would drop the bound silently (max(p, nan) is p)
        raise ValueError(f"no t test: standard error {standard_error}, degrees of freedom {df}")
    return max(p_value, t_p), min(low, estimate - half_width), max(high, estimate + half_width)


@functools.lru_cache(maxsize=64)
def _multipliers(n: int) -> np.ndarray:
    """For `drop_test` (seed SEED): N_RESAMPLES standard normal weights per seed [N_RESAMPLES, n]."""
    weights = np.random.default_rng(SEED).standard_normal((N_RESAMPLES, n))
    weights.flags.writeable = False
    return weights


def _chi_squared_draws(dof: float) -> np.ndarray:
    """N_RESAMPLES draws of chi-squared(dof) for `drop_test`, from their own generator (seed [SEED, 1]):
    the same for the same dof. Drawn, not the quantiles at fixed probabilities: scipy's inverse took
    many times as long as the draws (bench/RESULTS.md)."""
    return np.random.default_rng([SEED, 1]).chisquare(dof, N_RESAMPLES)


@functools.lru_cache(maxsize=64)
def slack(n: int) -> float:
    """How many standard errors below the end the mean of n seeds must lie at an epoch for
    `drop_test` to leave that epoch out of its null: Student's t(1 - ALPHA / 2, n - 1), 2.78 with 5
    seeds, 2.26 with 10, 2.09 with 20.

    Where every seed departs from its end along one curve of both signs (above it in one stretch,
    below in another; seed i by a_i, mean 0), the mean curve is that curve times mean(a), whose t
    statistic is t_a. With both stretches in the null the test is exact, at ALPHA, whatever their
    heights; a stretch is left out only when |t_a| > slack, and the test then rejects. For equal
    heights the exact test rejects when |t_a| > t(1 - ALPHA / 2, n - 1) = slack, so the test calls
    such seeds compressing exactly when the two-sided t test rejects, at ALPHA. For unequal heights
    the exact test rejects beyond a smaller |t| on the higher stretch's side and a larger one on the
    other, and leaving a stretch out adds the other side's tail beyond slack: up to ALPHA + ALPHA / 2
    = 7.5 % where one stretch is much higher than the other (a reviewer's exact computation: 6.3 %
    at 1.5 times, 7.0 % at twice, 7.35 % at three times, with 5 seeds). The fixed 2 standard errors
    this replaced (z's 97.7 % point) left a stretch out whenever t_a > 2, so with 5 seeds the
    one-sided test ran on whichever stretch the mean fell on: 2 P(t(4) > 2.13) = 10 %. A cut that
    keeps more in the null holds the level closer at a price in power (bench/RESULTS.md, stop 56).

    >>> round(slack(5), 2), round(slack(10), 2)
    (2.78, 2.26)
    """
    return float(t_critical(n - 1))


def noise_dof(residuals: np.ndarray) -> float:
    """Effective degrees of freedom of the scale of seed residual curves [n, epochs] that sum to 0
    over the seeds: (n - 1) times their participation ratio (tr G)^2 / tr(G^2), G = residuals
    residuals^T, which is 1 when every seed departs from the mean along one curve (each its own
    slope, or step) and at most n - 1 when they depart along n - 1 equally strong ones. It is
    Satterthwaite's (1946, Biometrics Bulletin 2(6)) formula for a sum of variances lambda_j each
    known to n - 1 degrees of freedom, (sum lambda_j)^2 / sum (lambda_j^2 / (n - 1)), with the
    sample's principal variances plugged in: a heuristic for the total variance's uncertainty, not
    the exact law of the maximum's scale (exact only for one curve; biased low for noise spread over
    many epochs, whose sample principal variances are more unequal than the true ones).

    >>> round(noise_dof(np.outer([1.0, -1.0, 2.0, -2.0, 0.0], np.linspace(0, 1, 50))), 6)   # one curve
    4.0
    """
    gram = residuals @ residuals.T
    squares = float(np.sum(gram ** 2))
    return (len(residuals) - 1) * (float(np.trace(gram)) ** 2 / squares if squares > 0 else 1.0)


def drop_test(drops: np.ndarray) -> tuple[float, float]:
    """(p, lower) for the compression of a group's mean I(X;T) curve, from its seeds' drops
    [n seeds, epochs]: drops[i, e] = I(X;T) of seed i at logged epoch e minus its final I(X;T),
    over the epochs every seed has a value at.

    The statistic is C = max_e D(e), D(e) = mean_i drops[i, e]: the mean curve's peak minus its
    end (the mean of the `phases` rows' compression_bits - noise_floor_bits). A maximum over the
    logged epochs is positive under noise alone, the more so the more epochs are logged and the
    more the noise wanders from one epoch to the next. So the null is the same maximum over the
    seeds' own noise, a Gaussian multiplier bootstrap of the maximum of a mean curve
    (Chernozhukov, Chetverikov and Kato 2013, Ann. Statist. 41(6)): the residual curves
    r_i = (drops_i - D) sqrt(n / (n - 1)) (each seed's departure from the group's mean, scaled to
    the noise's variance), each weighted by one standard normal draw w_i, max_e mean_i w_i r_i(e),
    N_RESAMPLES times (seed SEED). A seed's whole curve takes one weight, which keeps its noise's
    correlation from epoch to epoch.
    The residuals give the noise's scale from n seeds, known only to a chi-squared factor, so each
    draw is also multiplied by sqrt(nu / V), V ~ chi-squared(nu), nu = `noise_dof` (n - 1 where the
    seeds depart from their mean along one curve). With one epoch, or seeds that each drift along
    one curve of one sign, the null is then the one-sided one-sample t test's (Student 1908). The
    Gaussian draws alone give z's critical value there (1.645 against t's 2.13 with 5 seeds): flat
    seeds that each drifted along their own slope (mean 0) were called compressing in 7.6-9.3 % of
    groups of 5 to 10 seeds (a reviewer's simulations, 1000 groups a cell), and flat groups over 2
    to 7 logged epochs in 6-9 %.
    The null leaves out the epochs whose mean lies more than `slack` (Student's t(0.975, n - 1))
    standard errors below the end (moment selection: Chernozhukov, Chetverikov and Kato 2019, Rev.
    Econ. Stud. 86(5), "Testing many moment inequalities"), where the seeds still fit, each at its
    own pace. Seeds that each drift along one curve of both signs (above the end in one stretch,
    below in another, mean 0) are then called compressing exactly where the two-sided t test
    rejects if the two stretches are equally high, and in up to 7.5 % of groups if one is much
    higher (`slack`); with the fixed 2 standard errors before, the one-sided test ran on whichever
    stretch the mean fell on, 8-12 % of groups of 5 seeds.
    p = (null values >= C, + 1) / (N_RESAMPLES + 1), one-sided;
    `lower`, the 95 % lower bound of the compression, is C minus the null's critical value
    (`ShiftedTest`, whose null does not move with the shift), so p < ALPHA exactly when lower > 0.
    Epochs at which the mean is still rising only lower C. In simulation
    (`python bench/compression_calibration.py`, 300 groups a cell) a flat I(X;T) plus noise,
    independent or correlated from one epoch to the next, or with each seed drifting along its own
    slope or step, over 230 to 2001 logged epochs, is called compressing in at most 3.0 % of groups,
    and with each seed drifting along its own curve of both signs (equal heights) in 3.7-5.3 % (20
    seeds, 1000 groups: 4.2 %) (`--few-epochs`, over 2 to 16 epochs: at most 5.1 %); the per-run
    floor this replaced (the range of each run's last 10 logged epochs) called it in up to 99.7 %. The factor
    and the t cut cost power: a 0.1-bit fall under correlated noise is found in 8 % of groups of 5
    seeds (19 % with neither), 34 % of 10 (47 %) and 86 % of 20 (88 %); a 0.05-bit fall in 0.3-1.0 %
    of groups of 5 seeds (2.7-4.0 % with neither), less often than a flat end is called compressing
    at 5 %: with 5 seeds the test cannot see a fall that small.
    (NaN, NaN) with fewer than MIN_SEEDS_TESTED seeds or no epoch: the noise of fewer seeds is
    too poorly known for the null; and for seeds that fall alike (`identical`): their null is 0,
    so any fall had the smallest p, though identical seeds replicate nothing. (1, -inf) where the
    mean lies more than `slack` standard errors below the end at every epoch.

    >>> rng = np.random.default_rng(0)
    >>> curve = np.r_[np.linspace(0, 2, 50), np.linspace(2, 1, 50)]     # rises 2 bits, falls 1
    >>> seeds = curve + rng.normal(0, 0.05, (8, 100))
    >>> p, lower = drop_test(seeds - seeds[:, -1:])
    >>> p < 0.05, 0.8 < lower < 1
    (True, True)
    """
    drops = np.asarray(drops, dtype=float)
    if not (np.abs(drops) <= MAX_DROP_BITS).all():    # a NaN kept `end` halving its bracket for ever
        raise ValueError(f"drop_test takes finite drops of at most {MAX_DROP_BITS:g} bits: the epochs at "
                         "which every seed has a finite I(X;T)")
    drops = np.round(drops, DECIMALS)   # a flat curve's float64 rounding is no drop
    n = len(drops)
    if n < MIN_SEEDS_TESTED or drops.ndim != 2 or drops.shape[1] == 0 or identical(drops):
        return math.nan, math.nan
    mean_curve = drops.mean(axis=0)
    residuals = (drops - mean_curve) * math.sqrt(n / (n - 1))
    # Moment selection: an epoch whose mean lies more than `slack` standard errors below the end cannot
    # be where a flat curve peaks, and the seeds' disagreement there (while they still fit, each at its
    # own pace) would drown the null in noise that says nothing of the end of training.
    standard_error = drops.std(axis=0, ddof=1) / math.sqrt(n)
    residuals = residuals[:, mean_curve >= -slack(n) * standard_error]
    if not residuals.shape[1]:
        # Every epoch's mean lies that far below the end (seeds stopped at different epochs, at
        # stop_at_accuracy, share no end epoch: a sceptic's `phase_stats` failed on an empty maximum):
        # no epoch where a fall could be, no evidence of one, and no bound
        return 1.0, -math.inf
    weights = _multipliers(n)
    blocks = np.array_split(weights, max(1, len(weights) * residuals.shape[1] // 2**22))   # at most 32 MB at a time
    null = np.concatenate([(block @ residuals).max(axis=1) / n for block in blocks])
    dof = noise_dof(residuals)
    null *= np.sqrt(dof / _chi_squared_draws(dof))
    test = ShiftedTest(level=null, slope=np.zeros_like(null), observed=float(mean_curve.max()), exact=False,
                        two_sided=False)
    return test.p(0.0), test.end(-1.0, max(float(np.ptp(null)), abs(test.observed)))


def identical(drops: np.ndarray) -> bool:
    """Whether every seed's curve of `drops` [seeds, epochs] (rounded to DECIMALS) is the same, and not
    flat: seeds that never fall give the test's "no" (p = 1), seeds that fall alike give it nothing."""
    drops = np.round(np.asarray(drops, dtype=float), DECIMALS)
    return (len(drops) > 1 and drops.ndim == 2 and drops.shape[1] > 0 and bool((drops == drops[0]).all())
            and bool(drops.any()))


def summarize(values: np.ndarray, bounds: tuple[float, float] = (-math.inf, math.inf)) -> Summary:
    """n, mean, sd and 95 % t interval of the mean of the finite `values` (one per seed), cut to
    `bounds`, the range the quantity can take (e.g. (0, 1) for an accuracy)."""
    return summarize_columns(_finite(values)[:, None], [bounds])[0]


def summarize_columns(values: np.ndarray, bounds: list[tuple[float, float]] | None = None) -> list[Summary]:
    """`summarize` of each column of `values` [seeds, quantities] (NaN: no value for that seed),
    column c's interval cut to bounds[c] (default: not cut)."""
    summaries = []
    for column, (lowest, highest) in zip(np.asarray(values, dtype=float).T,
                                         bounds or [(-math.inf, math.inf)] * np.shape(values)[1]):
        column = column[np.isfinite(column)]
        n = len(column)
        if n == 0:
            summaries.append(Summary(0, math.nan, math.nan, math.nan, math.nan, NO_VALUE))
        elif n == 1:
            summaries.append(Summary(1, float(column[0]), math.nan, math.nan, math.nan, NO_INTERVAL))
        else:
            with np.errstate(over="ignore", invalid="ignore"):     # a hand-made 1e300: sd inf, interval unbounded
                mean, sd = float(column.mean()), float(column.std(ddof=1))
                half = float(t_half_width(sd, n))
            # Never cut past the mean: a mean at a ceiling can exceed it by a rounding error.
            summaries.append(Summary(n, mean, sd, min(max(mean - half, lowest), mean),
                                     max(min(mean + half, highest), mean), None))
    return summaries


def _described(a: np.ndarray, b: np.ndarray) -> Comparison:
    """Group a against group b without a test (its note set by the caller): counts and means alone."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean_a, mean_b = _mean(a), _mean(b)
        return Comparison(len(a), len(b), mean_a, mean_b, mean_a - mean_b, math.nan, math.nan, math.nan, math.nan,
                          math.nan, math.nan, None)


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Cliff's delta of a over b, d = P(a > b) - P(a < b) = the mean over pairs of sign(a_i - b_j)
    (Cliff 1993, Psychological Bulletin 114(3)), and its 95 % interval, as R's effsize computes it
    with `cliff.delta(a, b, use.unbiased = FALSE)`: Cliff's consistent variance
        s2 = ((n_b - 1) s2_i + (n_a - 1) s2_j + s2_ij) / (n_a n_b),
    s2_i and s2_j the variances of the row and column means of the pairs' signs about d, s2_ij
    their sum of squares about d over (n_a - 1)(n_b - 1), and Feng and Cliff's (2004, JMASM 3(2))
    asymmetric interval, which stays within [-1, 1],
        (d - d^3 -+ t sqrt(s2) sqrt((1 - d^2)^2 + t^2 s2)) / (1 - d^2 + t^2 s2),
    t Student's t(0.975) on n_a + n_b - 2 degrees of freedom. Where |d| = 1 the interval is taken at
    d (n_a n_b - 1) / (n_a n_b) and its far end is d itself. Values may be +inf (censored drops,
    `drop_ranks`): they tie with each other. NaN interval where the seeds are too few for any test
    to give p < ALPHA (`smallest_p`: 3 and 3 seeds, 3 and 4, 2 and 7, one a side; at 3 and 3 the
    interval held the true delta in only 90 % of draws, and a sceptic read "1 [0.268, 1]" beside
    "p 0.1, too few seeds"), and where every pair ties (effsize's [0, 0] would claim a certainty the
    seeds do not give).

    >>> [round(value, 4) for value in cliffs_delta(np.array([5., 6, 7, 8, 9]), np.array([1., 2, 3, 4, 8.5]))]
    [0.68, -0.3452, 0.9653]
    """
    n_a, n_b = len(a), len(b)
    signs = np.sign(np.subtract.outer(a, b, where=~np.equal.outer(a, b), out=np.zeros((n_a, n_b))))
    delta = float(signs.mean())
    if min(n_a, n_b) < 2 or smallest_p(n_a, n_b) >= ALPHA:
        return delta, math.nan, math.nan
    centre = delta * (n_a * n_b - 1) / (n_a * n_b) if abs(delta) == 1 else delta
    def squares(values: np.ndarray) -> float:     # about the centre, as effsize sums them
        return float(((values - centre) ** 2).sum())

    rows, columns = squares(signs.mean(axis=1)) / (n_a - 1), squares(signs.mean(axis=0)) / (n_b - 1)
    variance = ((n_b - 1) * rows + (n_a - 1) * columns + squares(signs) / ((n_a - 1) * (n_b - 1))) / (n_a * n_b)
    if variance == 0:       # every pair ties: d = 0
        return delta, math.nan, math.nan
    t = float(t_critical(n_a + n_b - 2))
    reach = t * math.sqrt(variance) * math.sqrt((1 - centre ** 2) ** 2 + t ** 2 * variance)
    scale = 1 - centre ** 2 + t ** 2 * variance
    low, high = (centre - centre ** 3 - reach) / scale, (centre - centre ** 3 + reach) / scale
    return delta, (-1.0 if delta == -1 else float(low)), (1.0 if delta == 1 else float(high))


def compare(a: np.ndarray, b: np.ndarray) -> Comparison:
    """Group a against group b (finite values, one per seed): the difference of means, its p and
    interval (`shift_test`, Welch's t permuted, bounded by Welch's t test: `welch_bounded`), Cliff's
    delta."""
    a, b = _finite(a), _finite(b)
    if len(a) == 0 or len(b) == 0:
        return Comparison(len(a), len(b), _mean(a), _mean(b), math.nan, math.nan, math.nan, math.nan, math.nan,
                          math.nan, math.nan, NO_VALUE)
    # Relative to one value, so that equal values in groups of different sizes differ by exactly 0
    # (their means can differ in the last bit); a difference of means does not change.
    shifted_a, shifted_b = a - a[0], b - a[0]
    difference = float(shifted_a.mean() - shifted_b.mean())
    effect = cliffs_delta(a, b)
    if min(len(a), len(b)) < 2:   # neither an interval nor a test
        return Comparison(len(a), len(b), _mean(a), _mean(b), difference, math.nan, math.nan, math.nan,
                          *effect, NO_INTERVAL)
    steps, values = np.repeat([1.0, 0.0], [len(a), len(b)]), np.concatenate([shifted_a, shifted_b])
    p_value, low, high = welch_bounded(*shift_test(shifted_a, shifted_b), *welch_contrast(steps, values))
    note = (TOO_FEW_TO_DIFFER if smallest_p(len(a), len(b)) >= ALPHA else
            HSU_PAIR if pair_in_contrast(steps) else None)
    return Comparison(len(a), len(b), _mean(a), _mean(b), difference, low, high, p_value, *effect, note)


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p the exact permutation test of two groups (`shift_test`) can give
    groups of n_a and n_b values: 2 / C(n_a + n_b, n_a), when the observed arrangement's statistic
    is the most extreme of all, as when the groups lie far apart with like spreads (0.33 for 2 and
    2 seeds, 0.10 for 3 and 3, 0.057 for 3 and 4, 0.029 for 4 and 4): the observed arrangement
    counts on either side. Where it is 0.05 or more, a p says nothing of the difference
    (TOO_FEW_TO_DIFFER)."""
    return min(1.0, 2 / math.comb(n_a + n_b, n_a))


def over_layers(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q) of one family of tests: q_(i) = min over j >= i of
    min(1, p_(j) m / j), p sorted ascending, m the number of tests (NaN p: no test, left out of m
    and kept NaN; scipy.stats.false_discovery_control)."""
    p_values = np.asarray(p_values, dtype=float)
    q_values = np.full(p_values.shape, math.nan)
    tested = np.isfinite(p_values)
    if tested.any():
        q_values[tested] = scipy_stats().false_discovery_control(p_values[tested], method="bh")
    return q_values


def with_q(frame: pd.DataFrame, family: list[str]) -> pd.DataFrame:
    """`frame` with q_value: `over_layers` of its p_value within each family of rows; a row noted
    AT_CEILING keeps its p but is no test (`compresses` NULL), so it is out of the family."""
    q_values = np.full(len(frame), math.nan)
    p_values = frame["p_value"].where(frame["note"] != AT_CEILING).to_numpy(dtype=float)
    for index in frame.groupby(family, sort=False, dropna=False).indices.values():
        q_values[index] = over_layers(p_values[index])
    return frame.assign(q_value=q_values)


def _finite(values) -> np.ndarray:
    values = np.asarray(pd.to_numeric(pd.Series(values, dtype=object), errors="coerce"), dtype=float)
    return values[np.isfinite(values)]


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


# Over the phases view


def with_excess(phases: pd.DataFrame) -> pd.DataFrame:
    """`phases` with the column compression_over_floor_bits = compression_bits - noise_floor_bits."""
    return phases.assign(**{EXCESS: phases["compression_bits"].astype(float) - phases["noise_floor_bits"].astype(float)})


def exclusions(phases: pd.DataFrame) -> np.ndarray:
    """Per row, why its run is left out of its group's statistics, or None: dead (the trainer's
    dead_network), diverged, or not completed (its status). NULL flags (runs written before the
    flag existed, or still running) are not set."""
    dead = _flagged(phases["dead_network"])
    diverged = _flagged(phases["diverged"]) | (phases["status"].astype(object) == Status.DIVERGED).to_numpy(bool)
    status = phases["status"].astype(object).to_numpy()
    return np.where(dead, "dead", np.where(diverged, "diverged",
                                           np.where(status == Status.COMPLETED, None, status))).astype(object)


def at_ceiling(phases: pd.DataFrame) -> pd.DataFrame:
    """The layers whose I(X;T) ends at its ceiling, H(X), in every seed kept in the statistics: a
    binning (or EDGE's hashing) so fine that every input still has a bin of its own there, or a kde
    noise so small that every input's Gaussian stands apart, cannot show the layer's compression
    (Saxe et al. 2018), so its "compresses: no" is about the estimator, not the layer. "At" is
    within 1/n bits: a plug-in estimate below H(X) has two distinct inputs in one bin at least,
    which costs at least 2/n bits ((a + b) H2(a / (a + b)) / n for rows of multiplicities a and
    b), so for the binning family this is the ceiling itself (EDGE's mean over hashes can come
    closer); a kde bound's I(X;T) only approaches it (every other input's kernel weight
    vanishing), and within 1/n bits it leaves less room for compression than any binning could
    show. One row per group, estimator, params, split and layer: group_id, estimator, params,
    split, layer, layer_name, ceiling_bits."""
    ends = ceiling_counts(phases)
    return ends.loc[ends["at_ceiling"] == ends["seeds"], CEILING_COLUMNS].reset_index(drop=True)


CEILING_COLUMNS = ["group_id", "estimator", "params", "split", "layer", "layer_name", "ceiling_bits"]


def ceiling_counts(phases: pd.DataFrame) -> pd.DataFrame:
    """Per group, estimator, params, split and layer (CEILING_COLUMNS): `seeds`, the seeds kept in
    the statistics, and `at_ceiling`, how many of them end at their I(X;T) ceiling (`at_ceiling`'s
    rule). A layer where some seeds do and others not has a test, but those seeds cannot show
    compression: the group's mean fall is the other seeds' alone."""
    columns = [*CEILING_COLUMNS, "seeds", "at_ceiling"]
    if "i_xt_ceiling_bits" not in phases:
        return pd.DataFrame(columns=columns)
    kept = phases[np.equal(exclusions(phases), None)]
    ceiling = pd.to_numeric(kept["i_xt_ceiling_bits"], errors="coerce")
    rows = kept.assign(at=rows_at_ceiling(kept), ceiling_bits=ceiling).groupby(CEILING_COLUMNS[:-1], sort=True,
                                                                              dropna=False)
    return rows.agg(ceiling_bits=("ceiling_bits", "max"), seeds=("at", "size"),
                    at_ceiling=("at", "sum")).reset_index()[columns]


def rows_at_ceiling(phases: pd.DataFrame) -> np.ndarray:
    """Per row: its run's I(X;T) ends at its ceiling (`_ends_at_ceiling`); False without a ceiling."""
    if "i_xt_ceiling_bits" not in phases:
        return np.zeros(len(phases), bool)
    final = pd.to_numeric(phases["final_i_xt"], errors="coerce").to_numpy(float)
    ceiling = pd.to_numeric(phases["i_xt_ceiling_bits"], errors="coerce").to_numpy(float)
    return _ends_at_ceiling(final, ceiling, _split_inputs(phases))


def _ends_at_ceiling(final_i_xt: np.ndarray, ceiling_bits: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Per run: its final I(X;T) within 1/n bits of its ceiling H(X) (`at_ceiling`), n the split's
    `inputs` (2^-H(X), which is 1/n where no two inputs are alike, in views without them: with
    repeated inputs that was 7.5 times 1/n, and a sceptic's fall of 2/n read "at ceiling"); False
    where either is unknown."""
    with np.errstate(invalid="ignore", divide="ignore"):
        tolerance = np.where(inputs > 0, 1.0 / inputs, 2.0 ** -ceiling_bits)
        return final_i_xt >= ceiling_bits - tolerance


def _split_inputs(phases: pd.DataFrame) -> np.ndarray:
    """Per row: its split's n (ibstore.phases' `split_inputs`; NaN without the column or the value)."""
    if "split_inputs" not in phases:
        return np.full(len(phases), np.nan)
    return pd.to_numeric(phases["split_inputs"], errors="coerce").to_numpy(float)


def _flagged(column: pd.Series) -> np.ndarray:
    return column.astype("boolean").fillna(False).to_numpy(bool)


def rows_with_clipped_bins(phases: pd.DataFrame) -> np.ndarray:
    """Per row: idnns' fixed bins clip its layer (ibstore.phases' `bins_clip`; False without the column)."""
    return _flagged(phases["bins_clip"]) if "bins_clip" in phases else np.zeros(len(phases), bool)


def rows_censoring_the_drop(phases: pd.DataFrame) -> np.ndarray:
    """Per row: its layer's SNR drop epoch is censored (ibstore.phases' `snr_drop_censored`; False
    without the column)."""
    return _flagged(phases["snr_drop_censored"]) if "snr_drop_censored" in phases else np.zeros(len(phases), bool)


def censoring_epochs(phases: pd.DataFrame) -> np.ndarray:
    """Per row: its layer's last logged epoch with a finite SNR (ibstore.phases' `snr_last_epoch`,
    where a censored drop epoch is censored; NaN without the column: no censored seed can be ranked)."""
    return (numeric_columns(phases, ["snr_last_epoch"])[:, 0] if "snr_last_epoch" in phases else
            np.full(len(phases), math.nan))


def _followed(drop_epochs: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """Per seed: it has a drop epoch or a censored one (a seed without any finite SNR has neither)."""
    return censored | np.isfinite(drop_epochs)


def drop_ranks(drop_epochs: np.ndarray, censored: np.ndarray,
               last_epochs: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """How seeds' SNR drop epochs are compared: (the epochs with each censored one +inf, later than
    every drop, where a seed is censored (`rows_censoring_the_drop`) and every seed's SNR was followed
    to the same last epoch (`snr_last_epoch`); else None) and the note of no test, or None:
    - UNEQUAL_SPANS where the seeds were followed to different epochs: a drop is taken from the peak
      of the whole run, so a run trained longer can peak again later and drop later, and one stopped
      early is censored earlier: their drop epochs are not one quantity (a sceptic's: the same five
      networks trained 300 and 1500 epochs, compared, differed; a reviewer's: censored each at its
      own end, 60 against 300 epochs gave p < 0.05 in 10.5 % of null pairs);
    - CENSORED_DROP where a censored seed's last epoch is not known (a view before snr_last_epoch).
    A seed with no finite SNR at all is missing: NaN, left out.

    >>> drop_ranks(np.array([10., np.nan, np.nan]), np.array([False, True, False]), np.array([90., 90., np.nan]))
    (array([10., inf, nan]), None)
    >>> drop_ranks(np.array([10., 20.]), np.array([False, False]), np.array([90., 300.]))[1] == UNEQUAL_SPANS
    True
    """
    drop_epochs, censored = np.asarray(drop_epochs, float), np.asarray(censored, bool)
    followed = _followed(drop_epochs, censored)
    last = np.asarray(last_epochs, float)[followed]
    if not np.isfinite(last).all():
        return None, CENSORED_DROP if censored.any() else None
    if last.size and np.ptp(last) > 0:
        return None, UNEQUAL_SPANS
    if not censored.any():
        return None, None
    return np.where(censored, math.inf, np.where(followed, drop_epochs, math.nan)), None


def compare_ranks(a: np.ndarray, b: np.ndarray) -> Comparison:
    """Group a against group b by ranks, where some values are censored (+inf, `drop_ranks`):
    Mann and Whitney's (1947) U test, exact over the arrangements of the pooled ranks, ties at the
    censoring included (scipy.stats.mannwhitneyu with PermutationMethod; N_RESAMPLES random ones
    beyond that many), and Cliff's delta with its interval (`cliffs_delta`); no mean, difference
    of means or its interval (a censored mean is not known). Note CENSORED_RANKS, or
    TOO_FEW_TO_DIFFER where no arrangement of these seeds can give p < ALPHA (as for `compare`).
    NaN values are missing, left out."""
    a, b = (values[~np.isnan(values)] for values in (np.asarray(a, float), np.asarray(b, float)))
    if len(a) == 0 or len(b) == 0:
        return Comparison(len(a), len(b), math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan,
                          math.nan, math.nan, NO_VALUE)
    tested = min(len(a), len(b)) >= 2     # else neither a test nor an interval, as `compare`
    method = scipy_stats().PermutationMethod(n_resamples=N_RESAMPLES, rng=SEED) if tested else "asymptotic"
    result = scipy_stats().mannwhitneyu(a, b, method=method)
    note = (NO_INTERVAL if not tested else TOO_FEW_TO_DIFFER if smallest_p(len(a), len(b)) >= ALPHA else
            CENSORED_RANKS)
    return Comparison(len(a), len(b), math.nan, math.nan, math.nan, math.nan, math.nan,
                      float(result.pvalue) if tested else math.nan, *cliffs_delta(a, b), note)


def rows_peaking_at_end(phases: pd.DataFrame) -> np.ndarray:
    """Per row: its group's mean I(X;T) peaks at the run's last logged epoch, so its EXCESS is 0 by
    construction. Its group's seeds all read 0 there, and a comparison or trend would weigh another
    group's EXCESS, a maximum over epochs, positive under noise alone, against a zero with no spread
    (the t test's p of noise alone: 0.0085 in a sceptic's control; 15.6 % of such null pairs at p <
    0.05 in its simulation); where every group does, it gave "0 [0, 0], p 1" (PEAKS_AT_END)."""
    if not {"group_peak_epoch", "final_epoch"} <= set(phases):
        return np.zeros(len(phases), bool)
    return (phases["group_peak_epoch"] == phases["final_epoch"]).astype("boolean").fillna(False).to_numpy(bool)


@dataclass(frozen=True)
class Health:
    """A group's runs and those left out of its statistics, named."""
    runs: int
    n_dead: int
    n_diverged: int
    n_unfinished: int
    excluded_runs: str | None


def health(run_ids: np.ndarray, reasons: np.ndarray) -> Health:
    """The health of one group's rows (one per run) from their `exclusions`."""
    left_out = sorted((run_id, why) for run_id, why in zip(run_ids, reasons) if why is not None)
    whys = [why for _, why in left_out]
    return Health(len(run_ids), whys.count("dead"), whys.count("diverged"),
                  sum(why not in ("dead", "diverged") for why in whys),
                  ", ".join(f"{run_id} ({why})" for run_id, why in left_out) or None)


def _ceilings(phases: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every ceiling column of CEILING_OF and CEILING_OF_EPOCH as numbers per row (NaN: none known,
    as in rows without the column)."""
    columns = sorted(set(CEILING_OF.values()) | set(CEILING_OF_EPOCH.values()))
    return {column: (numeric_columns(phases, [column])[:, 0] if column in phases else np.full(len(phases), np.nan))
            for column in columns}


# Bits beyond the 12th decimal are the float64 rounding of an estimator's sums, not differences: a
# layer at H(Y) in every run read 0.99916... give or take 4e-16, and a permutation test ordered those
# (a - b = -6.7e-16, p = 0.048). The statistics compare values at this resolution.
DECIMALS = 12


def numeric_columns(phases: pd.DataFrame, columns) -> np.ndarray:
    values = phases[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(over="ignore", invalid="ignore"):     # round() scales by 10^12: a hand-made 1e300 overflows
        rounded = np.round(values, DECIMALS)
    return np.where(np.isfinite(rounded) | ~np.isfinite(values), rounded, values)


PHASE_STATS_SCHEMA = pa.schema([
    ("group_id", pa.string()), ("layer", pa.int64()), ("layer_name", pa.string()), ("estimator", pa.string()),
    ("params", pa.string()), ("split", pa.string()), ("quantity", pa.string()),
    ("runs", pa.int64()), ("n_dead", pa.int64()), ("n_diverged", pa.int64()), ("n_unfinished", pa.int64()),
    ("excluded_runs", pa.string()), ("n", pa.int64()), ("n_missing", pa.int64()), ("missing_runs", pa.string()),
    ("mean", pa.float64()), ("sd", pa.float64()), ("ci_low", pa.float64()), ("ci_high", pa.float64()),
    ("p_value", pa.float64()), ("compresses", pa.bool_()), ("note", pa.string()),
    ("q_value", pa.float64()),      # added last: a view's columns only ever grow at the end
])


def quantity_bounds(ceilings_of_rows: dict[str, np.ndarray], rows: np.ndarray,
                    estimator: str) -> list[tuple[float, float]]:
    """Per QUANTITY the range its values can take on these rows (one group, layer, estimator, params
    and split): >= 0 for NON_NEGATIVE ones, an epoch at most the rows' last logged epoch
    (CEILING_OF_EPOCH), and each quantity the estimator bounds (CEILINGS_OF_ESTIMATOR) in [0, the
    largest ceiling of the rows] (no upper bound where no row has one: runs written before run.json
    recorded its splits). `ceilings_of_rows`: the ceiling columns of every row, as numbers
    (`_ceilings`)."""
    def largest(column: str) -> float:
        values = ceilings_of_rows[column][rows]
        values = values[np.isfinite(values)]
        return float(values.max()) if len(values) else math.inf

    bounds = {quantity: (0.0 if quantity in NON_NEGATIVE else -math.inf, math.inf) for quantity in QUANTITIES}
    ceilings = {**CEILING_OF_EPOCH, **CEILINGS_OF_ESTIMATOR.get(estimator, {})}
    for quantity, ceiling in ceilings.items():
        bounds[quantity] = (0.0, largest(ceiling))
    return [bounds[quantity] for quantity in QUANTITIES]


def phase_stats(phases: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Per group, layer, estimator, params, split and quantity (QUANTITIES): the statistics of
    PHASE_STATS_SCHEMA. `p_value`, `q_value` (over the group's layers) and `compresses` (p < ALPHA)
    are set only for compression_over_floor_bits, whose test (`drop_test`) reads the I(X;T) curves
    `curves` (ibstore.phases.CURVES_SQL's rows of these runs); `compresses` is NULL where no test
    can decide (note UNTESTABLE), the layer's I(X;T) ends at its ceiling in every kept seed
    (note AT_CEILING, `at_ceiling`; its p stays, but out of q over the layers), or idnns' fixed bins
    clip its activation in a kept run (phases' `bins_clip`, note CLIPPED_BINS; p NULL too, and out of q).
    A group whose mean I(X;T) peaks at its last logged epoch keeps its test (p 1: not shown) with the
    note STILL_RISING, since its "no" means "not yet"."""
    phases = with_excess(phases).sort_values(["group_id", *KEYS, "run_id"]).reset_index(drop=True)
    values, reasons = numeric_columns(phases, QUANTITIES), exclusions(phases)
    run_ids, layer_names = phases["run_id"].astype(object).to_numpy(), phases["layer_name"].astype(object).to_numpy()
    ceilings = _ceilings(phases)
    final_i_xt, i_xt_ceiling = values[:, QUANTITIES.index("final_i_xt")], ceilings["i_xt_ceiling_bits"]
    inputs = _split_inputs(phases)
    clipped, peaks_at_end = rows_with_clipped_bins(phases), rows_peaking_at_end(phases)
    censored, at_least = rows_censoring_the_drop(phases), censoring_epochs(phases)
    curves_of = curves_by_key(curves)
    rows = []
    for (group_id, *keys), index in phases.groupby(["group_id", *KEYS], sort=True, dropna=False).indices.items():
        group_health = health(run_ids[index], reasons[index])
        kept = index[np.equal(reasons[index], None)]
        bounds = quantity_bounds(ceilings, kept, dict(zip(KEYS, keys))["estimator"])
        for column, (quantity, summary) in enumerate(zip(QUANTITIES, summarize_columns(values[kept], bounds))):
            missing = sorted(run_ids[kept][~np.isfinite(values[kept, column])])
            p_value = math.nan
            if quantity == "snr_drop_epoch" and censored[kept].any():    # a mean of the others would be earlier
                bound = np.where(censored[kept], at_least[kept], values[kept, column])
                known = bound[np.isfinite(bound) | censored[kept]]       # missing: no finite SNR at all
                missing = sorted(run_ids[kept][~np.isfinite(bound) & ~censored[kept]])
                summary = Summary(len(known), float(known.mean()), math.nan, math.nan, math.nan, CENSORED_MEAN)
            if quantity == EXCESS:          # the one-sided question: its bound, not a two-sided t interval
                tested = kept[np.isfinite(values[kept, column])]
                drops = drop_curves(curves_of.get(tuple(keys)), run_ids[tested], final_i_xt[tested])
                implausible = not (np.abs(drops) <= MAX_DROP_BITS).all()    # a hand-made file's, no estimate's
                p_value, lower = (math.nan, math.nan) if implausible else drop_test(drops)
                if not math.isnan(p_value):
                    summary = replace(summary, ci_low=lower, ci_high=math.inf)
                elif summary.n > 1:
                    note = (UNTESTABLE if summary.n < MIN_SEEDS_TESTED else IMPLAUSIBLE if implausible else
                            IDENTICAL_SEEDS if identical(drops) else NO_COMMON_EPOCH)
                    summary = replace(summary, ci_low=-math.inf, ci_high=math.inf, note=note)
            decidable = not math.isnan(p_value)
            if quantity == EXCESS and clipped[kept].any():         # a "yes" would be the bins': no test
                summary, decidable, p_value = replace(summary, note=CLIPPED_BINS), False, math.nan
            elif (quantity == EXCESS and len(kept)
                  and _ends_at_ceiling(final_i_xt[kept], i_xt_ceiling[kept], inputs[kept]).all()):
                summary, decidable = replace(summary, note=AT_CEILING), False    # a "no" would be the estimator's
            elif quantity == EXCESS and decidable and peaks_at_end[kept].all():   # its "no" says: not yet
                summary = replace(summary, note=STILL_RISING)
            rows.append({"group_id": group_id, **dict(zip(KEYS, keys)), "layer_name": layer_names[index[0]],
                         "quantity": quantity, **asdict(group_health), "n_missing": len(missing),
                         "missing_runs": ", ".join(missing) or None, **asdict(summary),
                         "p_value": p_value, "compresses": bool(p_value < ALPHA) if decidable else None})
    frame = pd.DataFrame(rows, columns=[name for name in PHASE_STATS_SCHEMA.names if name != "q_value"])
    return with_q(frame, ["group_id", *FAMILY, "quantity"])       # q_value: the schema's last column


Curve = tuple[np.ndarray, np.ndarray]   # a run's logged epochs and its I(X;T) at them


def curves_by_key(curves: pd.DataFrame) -> dict[tuple, dict[str, Curve]]:
    """CURVES_SQL's rows by (layer, estimator, params, split), then run_id."""
    by_key: dict[tuple, dict[str, Curve]] = {}
    for row in curves.itertuples(index=False):
        key = tuple(getattr(row, name) for name in KEYS)
        epochs, order = np.asarray(row.epochs), np.argsort(row.epochs, kind="stable")
        by_key.setdefault(key, {})[row.run_id] = (epochs[order], np.asarray(row.i_xt, dtype=float)[order])
    return by_key


def drop_curves(curves: dict[str, Curve] | None, run_ids: np.ndarray, final_i_xt: np.ndarray) -> np.ndarray:
    """`drop_test`'s drops [runs, epochs]: each run's I(X;T) minus its final one, at the epochs
    every one of `run_ids` has a finite value at (none if `curves` lacks a run)."""
    if curves is None or not len(run_ids) or not set(run_ids) <= set(curves):
        return np.empty((len(run_ids), 0))
    common = functools.reduce(np.intersect1d, [curves[run_id][0] for run_id in run_ids])
    values = [curves[run_id][1][np.searchsorted(curves[run_id][0], common)] for run_id in run_ids]
    return np.array(values, dtype=float).reshape(len(run_ids), len(common)) - np.asarray(final_i_xt, float)[:, None]


def snr_curves_by_layer(curves: pd.DataFrame) -> dict[int, dict[str, Curve]]:
    """CURVES_SQL's SNR curves (snr_epochs, snr) by layer, then run_id: a layer's SNR is the run's,
    whatever the estimator (none from rows without them)."""
    by_layer: dict[int, dict[str, Curve]] = {}
    if "snr_epochs" not in curves:
        return by_layer
    for run_id, layer, epochs, snr in zip(curves["run_id"], curves["layer"], curves["snr_epochs"], curves["snr"]):
        if not isinstance(epochs, (list, np.ndarray)):      # NULL (None, NaN or pd.NA): no finite SNR
            continue
        epochs, order = np.asarray(epochs), np.argsort(epochs, kind="stable")
        by_layer.setdefault(layer, {})[run_id] = (epochs[order], np.asarray(snr, dtype=float)[order])
    return by_layer


def drops_within(snr_curves: dict[str, Curve] | None, run_ids: np.ndarray) -> tuple[np.ndarray, float, int] | None:
    """Each run's SNR drop epoch over the epochs every one of `run_ids` logged a finite SNR at, up to
    the earliest last epoch among them (the run followed the shortest), by ibstore.phases.SNR_DROP_SQL's
    rule: the first of those epochs after the SNR's peak there (its first epoch at that peak; the
    SQL's arg_max takes any of tied ones, which floats rarely give) with an SNR below half of it;
    +inf where there is none (censored at the horizon, the last of those epochs); the horizon; and
    how many epochs were shared. None where `snr_curves` lacks a run or the runs share no epoch.

    Why: a drop taken over a whole run is not one quantity across runs of different lengths: a
    longer run can peak again later and drop later (a sceptic's: the same five networks trained 300
    and 1500 epochs compared as different, p 0.722, Cliff's delta 0.24), and a run stopped early is
    censored earlier. Only shared epochs: read on its own logged epochs, the same network logged on
    a log-spaced schedule of 300 and of 1500 epochs dropped at 4 and at 36, and groups of the same
    networks differed at p 0.029 by their schedules alone (a sceptic's). Runs on log-spaced
    schedules of different lengths share few epochs (300 and 1500 epochs with 40 logged: none
    after 28), so such a horizon can be early and coarse; where no seed drops by then there is no
    test (`tested_drops`). The peak is the window's: a seed whose SNR halved early and then rose
    above its first peak is read from the higher one, so the cut drop answers "where did the drift
    phase end, looking at the first H epochs?".

    >>> curves = {"long": (np.array([0, 10, 15, 20, 30]), np.array([1., 4., 1.5, 1., 9.])),
    ...           "short": (np.array([0, 10, 20]), np.array([1., 2., 3.]))}
    >>> drops_within(curves, np.array(["long", "short"]))
    (array([20., inf]), 20.0, 3)
    """
    if snr_curves is None or not len(run_ids) or not set(run_ids) <= set(snr_curves):
        return None
    common = functools.reduce(np.intersect1d, [snr_curves[run_id][0] for run_id in run_ids])
    common = common[common <= min(snr_curves[run_id][0][-1] for run_id in run_ids)]
    if not common.size:
        return None
    drops = []
    for run_id in run_ids:
        epochs, snr = snr_curves[run_id]
        shared = snr[np.searchsorted(epochs, common)]
        peak = int(np.argmax(shared))
        below = np.flatnonzero(shared[peak + 1:] < shared[peak] / 2)
        drops.append(float(common[peak + 1 + below[0]]) if below.size else math.inf)
    return np.array(drops), float(common[-1]), len(common)


@dataclass(frozen=True)
class TestedDrops:
    """How a comparison or trend tests seeds' SNR drop epochs (`tested_drops`)."""
    values: np.ndarray | None   # the epochs tested, +inf where censored (NaN: no SNR); None: the rows' own
    by_ranks: bool              # a seed is censored: compared by ranks, with no mean
    note: str | None            # why there is no test (UNEQUAL_SPANS, CENSORED_DROP, NO_DROP), else None
    horizon_epoch: float        # the epoch the drops were cut at (`drops_within`); NaN where they were not
    horizon_run: str | None = None   # the seed followed the shortest, which bounds the horizon
    censored_by_cut: int = 0    # seeds censored at the horizon that have a drop over their own whole run
    shared_epochs: int = 0      # the epochs every seed logged up to the horizon, which the drops are read at

    @property
    def ranks_note(self) -> str:
        """The note of a comparison or trend by ranks: censored at each seed's shared end, or at the horizon."""
        return CENSORED_RANKS if math.isnan(self.horizon_epoch) else CENSORED_AT_HORIZON


def tested_drops(drop_epochs: np.ndarray, censored: np.ndarray, last_epochs: np.ndarray, run_ids: np.ndarray,
                 snr_curves: dict[str, Curve] | None) -> TestedDrops:
    """The seeds' SNR drop epochs as a test reads them: as `drop_ranks` gives them where every seed
    was followed to the same last epoch; where they were followed to different ones, taken again
    from their SNR curves within their shared horizon (`drops_within`), ranked if one is censored
    there; without the curves no test (UNEQUAL_SPANS), nor where every seed is censored (NO_DROP)."""
    drop_epochs, censored = np.asarray(drop_epochs, float), np.asarray(censored, bool)
    ranked, note = drop_ranks(drop_epochs, censored, last_epochs)
    if note != UNEQUAL_SPANS:
        return _unless_none_dropped(TestedDrops(ranked, ranked is not None, note, math.nan))
    followed = _followed(drop_epochs, censored)
    run_ids = np.asarray(run_ids, object)
    cut = drops_within(snr_curves, run_ids[followed])
    if cut is None:
        return TestedDrops(None, False, UNEQUAL_SPANS, math.nan)
    values = np.full(len(drop_epochs), math.nan)
    values[followed] = cut[0]
    shortest = run_ids[followed][int(np.argmin(np.asarray(last_epochs, float)[followed]))]
    censored_by_cut = int((np.isinf(values) & np.isfinite(drop_epochs)).sum())
    return _unless_none_dropped(TestedDrops(values, bool(np.isinf(values).any()), None, cut[1], str(shortest),
                                            censored_by_cut, cut[2]))


def _unless_none_dropped(drops: TestedDrops) -> TestedDrops:
    """`drops`, or no test (NO_DROP) where every seed with an SNR is censored: their ranks all tie,
    and a p of 1 said nothing yet counted in the q over the layers (an attacker's: one seed stopped
    at epoch 3 cut every seed before its drop)."""
    if drops.values is None or not drops.by_ranks or not np.isinf(drops.values[~np.isnan(drops.values)]).all():
        return drops
    return replace(drops, note=NO_DROP)     # its values still count the seeds compared


UNCUT = TestedDrops(None, False, None, math.nan)   # a quantity other than the SNR drop epoch
HORIZON_COLUMNS = ("horizon_epoch", "horizon_run", "censored_by_cut", "shared_epochs")   # a row's TestedDrops


def phase_stats_table(phases: pd.DataFrame, curves: pd.DataFrame) -> pa.Table:
    """`phase_stats(phases, curves)` as the Arrow table of the SQL view `phase_stats`."""
    frame = phase_stats(phases, curves)
    return pa.Table.from_pandas(frame.astype(object).where(frame.notna(), None), schema=PHASE_STATS_SCHEMA,
                                preserve_index=False)


def compare_groups(phases: pd.DataFrame, group_a: str, group_b: str,
                   quantities: tuple[str, ...] = QUANTITIES, curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """Group a against group b per layer, estimator, params, split and quantity (the keys both
    groups have, a layer only where its name is the same in both: of networks of different depths
    the highest number of one, its output layer, may be a hidden layer of the other): Comparison's
    columns, q_value (over the layers) and each group's runs left out, named. Where idnns' bins clip
    the layer in a kept run of either group (`bins_clip`), its MI quantities get no test: note
    CLIPPED_BINS, no p or interval; nor its COMPRESSION where either group's I(X;T) ends at its
    ceiling in every kept seed (AT_CEILING_COMPARED: a new user's relu layer at its ceiling read
    3.6 bits less compression than tanh's, p 0.008), nor any MI quantity where both groups' do
    (AT_CEILING_ALL: "0 [0, 0], p 1" counted in q), nor its EXCESS where either group's mean I(X;T)
    peaks at its last logged epoch (PEAKS_AT_END, `rows_peaking_at_end`). With the `curves` (CURVES_SQL's rows),
    EXCESS's p is also bounded by `reselected_test`, which picks each group's peak epoch again in
    every arrangement of the seeds (`reselection_bounded`), and the SNR drop epochs of seeds followed
    to different epochs are cut at their shared horizon, `horizon_epoch` (`tested_drops`); the
    product's callers all pass them."""
    phases = with_excess(phases[phases["group_id"].isin([group_a, group_b])]).reset_index(drop=True)
    values, reasons, clipped = numeric_columns(phases, quantities), exclusions(phases), rows_with_clipped_bins(phases)
    peaks_at_end, censored = rows_peaking_at_end(phases), rows_censoring_the_drop(phases)
    at_ceiling = rows_at_ceiling(phases)
    final_i_xt, snr_last_epoch = numeric_columns(phases, ["final_i_xt"])[:, 0], censoring_epochs(phases)
    curves_of = curves_by_key(curves) if curves is not None else None
    snr_of = snr_curves_by_layer(curves) if curves is not None else {}
    run_ids, layer_names = phases["run_id"].astype(object).to_numpy(), phases["layer_name"].astype(object).to_numpy()
    by_keys = phases.groupby(["group_id", *KEYS], sort=True, dropna=False).indices
    rows = []
    for (group_id, *keys), a_index in by_keys.items():
        b_index = by_keys.get((group_b, *keys))
        if group_id != group_a or b_index is None or set(layer_names[a_index]) != set(layer_names[b_index]):
            continue
        a_kept, b_kept = (index[np.equal(reasons[index], None)] for index in (a_index, b_index))
        either_clipped = clipped[a_kept].any() or clipped[b_kept].any()
        either_peaks_at_end = any(len(kept) and peaks_at_end[kept].all() for kept in (a_kept, b_kept))
        at_ceiling_each = [bool(len(kept)) and at_ceiling[kept].all() for kept in (a_kept, b_kept)]
        either_at_ceiling, both_at_ceiling = any(at_ceiling_each), all(at_ceiling_each)
        for column, quantity in enumerate(quantities):
            a_tested, b_tested = (kept[np.isfinite(values[kept, column])] for kept in (a_kept, b_kept))
            both = np.concatenate([a_tested, b_tested])
            i_xt_drops = (drop_curves(curves_of.get(tuple(keys)), run_ids[both], final_i_xt[both])
                          if quantity == EXCESS and curves_of is not None else np.empty((len(both), 0)))
            measured = np.r_[values[both, column], i_xt_drops.ravel()]
            implausible = quantity in BITS and not (np.abs(measured) <= MAX_DROP_BITS).all()
            both_kept = np.r_[a_kept, b_kept]
            drops = (tested_drops(values[both_kept, column], censored[both_kept], snr_last_epoch[both_kept],
                                  run_ids[both_kept], snr_of.get(keys[0])) if quantity == "snr_drop_epoch" else UNCUT)
            untested = (CLIPPED_BINS if either_clipped and quantity != "snr_drop_epoch" else   # the bins' difference
                        drops.note if drops.note else
                        AT_CEILING_ALL if both_at_ceiling and quantity != "snr_drop_epoch" else
                        AT_CEILING_COMPARED if either_at_ceiling and quantity in COMPRESSION else
                        PEAKS_AT_END if either_peaks_at_end and quantity == EXCESS else
                        IMPLAUSIBLE_BITS if implausible else
                        NO_SHARED_EPOCH if curves_of is not None and quantity == EXCESS and len(both)
                        and not i_xt_drops.size else None)
            compared = values[both_kept, column] if drops.values is None else drops.values
            a_values, b_values = compared[:len(a_kept)], compared[len(a_kept):]
            comparison = (_described(values[a_tested, column], values[b_tested, column]) if implausible else
                          compare_ranks(a_values, b_values) if drops.by_ranks else compare(a_values, b_values))
            if comparison.note == CENSORED_RANKS:
                comparison = replace(comparison, note=drops.ranks_note)
            if untested:
                comparison = replace(comparison, ci_low=math.nan, ci_high=math.nan, p_value=math.nan, note=untested)
                # the shift would be the censoring's, or, where a group peaks at its end or ends at its
                # ceiling, zeros' by construction
                if untested in (CENSORED_DROP, UNEQUAL_SPANS, NO_DROP, PEAKS_AT_END, AT_CEILING_COMPARED,
                                AT_CEILING_ALL):
                    comparison = replace(comparison, difference=math.nan, cliffs_delta=math.nan)
                comparison = replace(comparison, cliffs_low=math.nan, cliffs_high=math.nan)
            elif i_xt_drops.size:
                comparison = reselection_bounded(comparison, i_xt_drops[:len(a_tested)], i_xt_drops[len(a_tested):])
            rows.append({**dict(zip(KEYS, keys)), "quantity": quantity, **asdict(comparison),
                         "horizon_epoch": drops.horizon_epoch, "horizon_run": drops.horizon_run,
                         "censored_by_cut": drops.censored_by_cut, "shared_epochs": drops.shared_epochs,
                         "excluded_a": health(run_ids[a_index], reasons[a_index]).excluded_runs,
                         "excluded_b": health(run_ids[b_index], reasons[b_index]).excluded_runs})
    columns = [*KEYS, "quantity", *Comparison.__dataclass_fields__, *HORIZON_COLUMNS, "excluded_a", "excluded_b"]
    return with_q(pd.DataFrame(rows, columns=columns), [*FAMILY, "quantity"])


def reselected_test(a_drops: np.ndarray, b_drops: np.ndarray) -> float:
    """Two-sided p of the difference of two groups' compression over the floor from their seeds'
    drop curves (`drop_test`'s drops [seeds, epochs], on epochs both groups' seeds share): the
    statistic max_e D_a(e) - max_e D_b(e), D a group's mean drop curve, whose maximum is at its
    peak epoch (the mean of the seeds' EXCESS there), over the arrangements of the pooled seeds'
    curves into groups of n_a and n_b (`_arrangements`), each group's peak epoch picked again in each
    arrangement. Exact where the condition makes no difference to the seeds' curves, as a
    permutation test is for any statistic of the pooled values, one that selects among them too
    (Lehmann and Romano 2005, Testing Statistical Hypotheses, section 15.2). NaN without an epoch.

    Why: a seed's EXCESS is taken at its group's peak epoch, which the group's seeds pick together,
    so the seeds' values are not independent draws, and the t tests of `compare` read their spread
    as the noise of their mean. Where a group's mean peaks at or near its end its seeds' values all
    lie near 0: in a sceptic's null simulation (groups alike; `python bench/comparison_calibration.py
    --excess`) pairs where a group peaked one logged epoch before its end were called different at
    p < 0.05 in 2.9-20.0 %, with the t tests alone, and 1.0-16.7 % with this test's bound. This test
    is exact over all pairs (4.5-6.0 % of 1000 null pairs a row, its own rejections), not given where
    the peaks fall; the bounded p, the larger of three, called 1.3-2.6 % of the pairs tested. NaN
    where a group has no seed's curve (an attacker's hand-moved epochs left one group none).

    >>> rng = np.random.default_rng(0)
    >>> alike = rng.normal(0, 0.05, (10, 40)); alike -= alike[:, -1:]
    >>> reselected_test(alike[:5], alike[5:]) > 0.05
    True
    """
    a_drops, b_drops = np.asarray(a_drops, float), np.asarray(b_drops, float)
    if a_drops.shape[1] == 0 or not len(a_drops) or not len(b_drops):
        return math.nan
    n_a, n_b = len(a_drops), len(b_drops)
    pooled = np.vstack([a_drops, b_drops])
    firsts, seconds, exact = _arrangements(n_a, n_b)
    peaks = np.zeros(len(firsts))
    for sides, n, sign in ((firsts, n_a, 1.0), (seconds, n_b, -1.0)):
        weights = np.zeros((len(sides), n_a + n_b))
        np.put_along_axis(weights, sides, 1.0 / n, axis=1)
        blocks = np.array_split(np.arange(len(sides)), max(1, len(sides) * pooled.shape[1] // 2**22))   # <= 32 MB
        for block in blocks:
            peaks[block] += sign * (weights[block] @ pooled).max(axis=1)
    observed = float(a_drops.mean(axis=0).max() - b_drops.mean(axis=0).max())
    return ShiftedTest(peaks, np.zeros_like(peaks), observed, exact, two_sided=True).p(0.0)


def reselection_bounded(comparison: Comparison, a_drops: np.ndarray, b_drops: np.ndarray) -> Comparison:
    """`comparison` of two groups' EXCESS bounded by `reselected_test` (`bounded_by`)."""
    p_value, low, high = bounded_by(comparison.p_value, comparison.ci_low, comparison.ci_high,
                                    reselected_test(a_drops, b_drops))
    return replace(comparison, p_value=p_value, ci_low=low, ci_high=high)


def bounded_by(p_value: float, low: float, high: float, other_p: float) -> tuple[float, float, float]:
    """(p, low, high) of a test with interval [low, high] bounded by another test of the same null
    whose interval is not computed (`reselected_test`: its statistic is no straight line in a shift):
    the larger p, and 0 added to the interval where the other test does not reject it, so that 0
    lies outside the interval exactly when p < ALPHA, as for every comparison. Unchanged where
    either p is NaN (no test to bound; no epoch to test on: the callers say so in a note)."""
    if math.isnan(p_value) or math.isnan(other_p) or other_p <= p_value:
        return p_value, low, high
    if other_p >= ALPHA:
        low, high = min(low, 0.0), max(high, 0.0)
    return other_p, low, high


def over_groups(comparisons: pd.DataFrame) -> np.ndarray:
    """q of `compare_groups` rows of several pairs of groups (each against one reference, or a grid's
    pairs): Benjamini-Hochberg over every pair and layer compared, per estimator, params, split and
    quantity, the family of the question "which groups differ, and at which layers"."""
    return with_q(comparisons, [*FAMILY, "quantity"])["q_value"].to_numpy()
