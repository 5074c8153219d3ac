"""How often two groups' comparison, and a trend along a key, call noise a difference.

    python bench/comparison_calibration.py [--draws 2000] [--seed 11]
    python bench/comparison_calibration.py --excess [--draws 1000]    # compression over the floor
    python bench/comparison_calibration.py --censored [--draws 1000]  # SNR-drop epochs, some censored

Draws normal seeds and counts p < 0.05 by the permutation test alone (ibstore.stats.shift_test,
Welch's t permuted; ibstore.trend.hc3_test, the HC3-studentized slope permuted), by the t test
alone (Welch's; the slope over each step's own variance: ibstore.stats.welch_contrast) and by the
lab's test, the larger of the two p (ibstore.stats.welch_bounded). Rows with
equal means (or no slope) should say at most 5 %; rows with a shift, the more the better. Not a
timing: a measurement of the statistics, run by hand (tests/test_phases.py and tests/test_trend.py
check the unequal-spread rows on fewer draws). Each row draws from its own random stream (--seed and
its parameters), so a row reads the same whatever rows are added beside it; the documents quote
`--draws 4000`.

`--excess`: two groups' compression over the floor (ibstore.stats.EXCESS, each seed's fall from
its group's peak epoch to its end) from I(X;T) curves over 91 logged epochs (a sceptic's models:
flat with AR(1) noise, 0.05 bits, correlation 0.9; a mixture of seeds that rise and fall and
seeds that keep rising; and the mixture with group a's falls 0.3 bits deeper), counted three
ways: the comparison of the seeds' values alone (`stats.compare`), with the rule that a group
whose mean peaks at its last logged epoch gets no test (stats.PEAKS_AT_END), and with that rule
and the p bounded by the test that picks each group's peak epoch again (`stats.reselected_test`,
the lab's). Also counted among the pairs where a group peaks one logged epoch before its end;
then a trend along 3 values of a key, the groups alike (ibstore.trend.slope_test, bounded by
ibstore.trend.reselected_slope_test).

`--censored`: SNR-drop epochs drawn alike for both groups from one log-spaced schedule, each censored
(+inf, ranked after every drop) with a probability, compared by ranks (ibstore.stats.compare_ranks,
Mann-Whitney's U permuted: the lab's) and by the log-rank test's normal approximation
(scipy.stats.logrank), and along 3 values of a key by Spearman's rho permuted
(ibstore.trend.rank_trend_test). Rows should say at most 5 %. Then groups followed to different
last epochs (300 and 1500, the default schedule), their SNR curves drawn alike up to epoch 300
(5 e^(-epoch / tau), tau uniform from 20 to 450 or 800, 10 % noise; in 3 seeds of 10 a rise to 6 for 20 epochs
from an epoch uniform in 20-200, as real tanh curves rise again within the first 50) and half the
longer runs' rising again to 10 from epoch 800 to 1000: each seed's drop taken again within the
shared horizon (ibstore.stats.tested_drops, the lab's) against each taken over its own run. With
tau up to 450 most pairs have no seed censored at 300 (the difference of means), with 800 most do (ranks).
"""

from __future__ import annotations

import argparse

import numpy as np

from ibstore import stats, trend


def t_test_p(steps: np.ndarray, values: np.ndarray) -> float:
    """The two-sided p of the t test alone (ibstore.stats.welch_contrast; every step has 2 values or more)."""
    slope, standard_error, df = stats.welch_contrast(steps, values)
    return stats.welch_bounded(0.0, 0.0, 0.0, slope, standard_error, df)[0]

GROUPS = [   # (seeds in a, seeds in b, sd of a, sd of b, true difference of means)
    (4, 8, 3.0, 1.0, 0.0), (3, 10, 3.0, 1.0, 0.0), (2, 10, 3.0, 1.0, 0.0), (5, 10, 3.0, 1.0, 0.0), (5, 5, 3.0, 1.0, 0.0),
    (20, 40, 3.0, 1.0, 0.0), (5, 5, 1.0, 1.0, 0.0), (5, 5, 1.0, 1.0, 1.5), (10, 10, 1.0, 1.0, 1.0),
    (2, 10, 1.0, 1.0, 2.0)]
TRENDS = [   # (runs per value of the key, sd at each of its three values, true slope per step)
    (3, (0.2, 0.2, 3.0), 0.0), (5, (0.2, 0.2, 3.0), 0.0), (10, (0.2, 0.2, 3.0), 0.0), (5, (1.0, 1.0, 1.0), 0.0),
    (3, (1.0, 1.0, 1.0), 0.7), (5, (1.0, 1.0, 1.0), 0.5), (2, (0.2, 0.2, 3.0), 0.0), (2, (1.0, 1.0, 1.0), 1.0)]


def row_generator(seed: int, table: list, row: tuple) -> np.random.Generator:
    """A row's own random stream, from --seed, its table (GROUPS or TRENDS) and its parameters: adding,
    removing or reordering rows leaves every other row's draws as they were."""
    values = [value for item in row for value in np.atleast_1d(item)]
    return np.random.default_rng([seed, table is TRENDS, *(int(round(value * 1000)) for value in values)])


EPOCHS = 91
EXCESS_MODELS = ("flat noise", "rise and fall or keep rising", "the same, a's falls 0.3 bits deeper")


def excess_curves(rng: np.random.Generator, model: str, seeds: int, deeper: float = 0.0) -> np.ndarray:
    """I(X;T) curves [seeds, EPOCHS] of one group (bits)."""
    epoch = np.arange(EPOCHS)
    curves = []
    for _ in range(seeds):
        if model == "flat noise":
            noise = np.empty(EPOCHS)
            noise[0] = rng.normal(0, 0.05)
            steps = rng.normal(0, 0.05 * np.sqrt(1 - 0.9 ** 2), EPOCHS)
            for e in range(1, EPOCHS):
                noise[e] = 0.9 * noise[e - 1] + steps[e]
            curves.append(5 + noise)
        elif rng.random() < 0.5:        # rises to epoch 25, then falls
            height = rng.uniform(0.1, 0.9) + deeper
            shape = np.where(epoch < 25, np.exp(-((epoch - 25) / 15) ** 2), np.exp(-(epoch - 25) / 20))
            curves.append(5 + height * shape + rng.normal(0, 0.03, EPOCHS))
        else:                           # keeps rising
            curves.append(5 + rng.uniform(0.1, 0.6) * epoch / EPOCHS + rng.normal(0, 0.03, EPOCHS))
    return np.array(curves)


def excess_rows(draws: int, seed: int) -> None:
    print(f"compression over the floor, p < 0.05 in {draws} pairs per row: the seeds' values alone (of all pairs) | "
          "with the peak-at-end rule | and the p bounded by the reselected test (the lab's) (both of the pairs "
          "tested) | the reselected test alone (of all pairs: exact); the same among the pairs where a group peaks "
          "one logged epoch before its end; pairs without a test (a group peaks at its end)")
    for model in EXCESS_MODELS:
        for seeds in (5, 6, 10):
            rng = row_generator(seed, GROUPS, (EXCESS_MODELS.index(model), seeds, EPOCHS))
            counts, near, near_counts, untested = np.zeros(4), 0, np.zeros(4), 0
            for _ in range(draws):
                a = excess_curves(rng, model, seeds, 0.3 if model == EXCESS_MODELS[2] else 0.0)
                b = excess_curves(rng, model, seeds)
                peaks = [int(curves.mean(axis=0).argmax()) for curves in (a, b)]
                a_drops, b_drops = a - a[:, -1:], b - b[:, -1:]
                excess = [np.round(drops[:, peak], stats.DECIMALS) for drops, peak in zip((a_drops, b_drops), peaks)]
                alone = stats.compare(*excess)
                at_end = EPOCHS - 1 in peaks
                reselected = stats.reselected_test(a_drops, b_drops)
                lab = stats.bounded_by(alone.p_value, alone.ci_low, alone.ci_high, reselected)[0]
                called = np.array([alone.p_value < stats.ALPHA, not at_end and alone.p_value < stats.ALPHA,
                                   not at_end and lab < stats.ALPHA, reselected < stats.ALPHA])
                counts += called
                untested += at_end
                if EPOCHS - 2 in peaks:
                    near += 1
                    near_counts += called
            tested = draws - untested
            rates = [counts[0] / draws, counts[1] / tested, counts[2] / tested, counts[3] / draws]
            near_rates = " | ".join(f"{count / max(near, 1):.3f}" for count in near_counts)
            print(f"{model}, {seeds} seeds a side: " + " | ".join(f"{rate:.3f}" for rate in rates)
                  + f"; near the end ({near} pairs): {near_rates}; untested {untested / draws:.3f}", flush=True)


def excess_trend_rows(draws: int, seed: int) -> None:
    print(f"a trend of compression over the floor along 3 values of a key, p < 0.05 in {draws} draws per row: "
          "the runs' values alone (of all draws) | with the peak-at-end rule | and the p bounded by the reselected "
          "test (the lab's) (both of the draws tested) | the reselected test alone (of all draws: exact); draws "
          "without a test (a group peaks at its end)")
    for model in EXCESS_MODELS[:2]:
        for seeds in (3, 5):
            rng = row_generator(seed, TRENDS, (EXCESS_MODELS.index(model), seeds, EPOCHS))
            steps, groups = np.repeat([0.0, 1.0, 2.0], seeds), np.repeat([0, 1, 2], seeds)
            counts, untested = np.zeros(4), 0
            for _ in range(draws):
                curves = [excess_curves(rng, model, seeds) for _ in range(3)]
                peaks = [int(group.mean(axis=0).argmax()) for group in curves]
                drops = np.vstack([group - group[:, -1:] for group in curves])
                excess = np.round(np.concatenate([drops[groups == g, peak] for g, peak in enumerate(peaks)]),
                                  stats.DECIMALS)
                _, alone, low, high = trend.slope_test(steps, excess)
                at_end = EPOCHS - 1 in peaks
                reselected = trend.reselected_slope_test(steps, groups, drops)
                lab = stats.bounded_by(alone, low, high, reselected)[0]
                counts += [alone < stats.ALPHA, not at_end and alone < stats.ALPHA, not at_end and lab < stats.ALPHA,
                           reselected < stats.ALPHA]
                untested += at_end
            tested = draws - untested
            rates = [counts[0] / draws, counts[1] / tested, counts[2] / tested, counts[3] / draws]
            print(f"{model}, {seeds} seeds at each value: " + " | ".join(f"{rate:.3f}" for rate in rates)
                  + f"; untested {untested / draws:.3f}", flush=True)


DROP_EPOCHS = np.array([1, 2, 3, 5, 8, 13, 20, 32, 50, 80, 126, 200, 316.])   # a log-spaced schedule's
CENSORED_PAIRS = [(n_a, n_b, censored) for n_a, n_b in ((2, 5), (3, 3), (5, 5), (10, 10)) for censored in (0.2, 0.5)]


def censored_rows(draws: int, seed: int) -> None:
    from scipy import stats as scipy_stats

    def drawn(rng: np.random.Generator, n: int, censored: float) -> np.ndarray:
        return np.where(rng.random(n) < censored, np.inf, rng.choice(DROP_EPOCHS, n))

    def logrank_p(a: np.ndarray, b: np.ndarray) -> float:
        data = [scipy_stats.CensoredData(uncensored=x[np.isfinite(x)], right=np.full((~np.isfinite(x)).sum(), 400.0))
                for x in (a, b)]
        return scipy_stats.logrank(*data).pvalue

    print(f"SNR-drop epochs alike, p < 0.05 in {draws} pairs per row: ranks permuted (the lab's) | the log-rank "
          "test's normal approximation (of the pairs it could test)")
    for row in CENSORED_PAIRS:
        n_a, n_b, censored = row
        rng, counts, logrank_tested = row_generator(seed, CENSORED_PAIRS, row), np.zeros(2), 0
        for _ in range(draws):
            a, b = drawn(rng, n_a, censored), drawn(rng, n_b, censored)
            with np.errstate(invalid="ignore", divide="ignore"):
                other = logrank_p(a, b)
            counts += [stats.compare_ranks(a, b).p_value < stats.ALPHA, other < stats.ALPHA]
            logrank_tested += np.isfinite(other)
        print(f"{n_a} seeds against {n_b}, each censored with probability {censored:g}: {counts[0] / draws:.3f} | "
              f"{counts[1] / max(logrank_tested, 1):.3f}", flush=True)
    for runs in (3, 5):
        rng, called = row_generator(seed, CENSORED_PAIRS, (runs, 0.3)), 0
        for _ in range(draws):
            _, p_value = trend.rank_trend_test(np.repeat([0.0, 1.0, 2.0], runs), drawn(rng, 3 * runs, 0.3))
            called += p_value < stats.ALPHA
        print(f"trend by ranks, {runs} runs at each of 3 values, each censored with probability 0.3: "
              f"{called / draws:.3f}", flush=True)


SPAN_EPOCHS = np.r_[np.arange(50), np.arange(50, 100, 2), np.arange(100, 1501, 20)]   # the default schedule's
SPAN_PAIRS = [(n, n, tau_high) for tau_high in (450, 800) for n in (5, 10)]


def span_rows(draws: int, seed: int) -> None:
    def drawn(rng: np.random.Generator, last: int, peaks_again: bool, tau_high: float) -> tuple[np.ndarray, np.ndarray]:
        snr = 5 * np.exp(-SPAN_EPOCHS / rng.uniform(20, tau_high)) * (1 + 0.1 * rng.normal(size=len(SPAN_EPOCHS)))
        if rng.random() < 0.3:
            rise = rng.uniform(20, 200)
            snr = np.where((SPAN_EPOCHS >= rise) & (SPAN_EPOCHS < rise + 20), 6.0, snr)
        if peaks_again:
            snr = np.where((SPAN_EPOCHS >= 800) & (SPAN_EPOCHS < 1000), 10.0, snr)
        kept = SPAN_EPOCHS <= last
        return SPAN_EPOCHS[kept], snr[kept]

    print(f"SNR curves alike up to epoch 300, groups followed to 300 and 1500 epochs, p < 0.05 in {draws} pairs "
          "per row: cut at the shared horizon (the lab's) | each seed's drop over its own run, ranked")
    for row in SPAN_PAIRS:
        n_a, n_b, tau_high = row
        rng, counts, by_ranks = row_generator(seed, SPAN_PAIRS, row), np.zeros(2), 0
        for _ in range(draws):
            curves = {f"a{i}": drawn(rng, 300, False, tau_high) for i in range(n_a)}
            curves |= {f"b{i}": drawn(rng, 1500, rng.random() < 0.5, tau_high) for i in range(n_b)}
            run_ids = np.array(list(curves))
            own = np.array([stats.drops_within(curves, np.array([run_id]))[0][0] for run_id in run_ids])
            last = np.array([curves[run_id][0][-1] for run_id in run_ids], float)
            drops = stats.tested_drops(np.where(np.isinf(own), np.nan, own), np.isinf(own), last, run_ids, curves)
            test, by_ranks = (stats.compare_ranks if drops.by_ranks else stats.compare), by_ranks + drops.by_ranks
            counts += [test(drops.values[:n_a], drops.values[n_a:]).p_value < stats.ALPHA,
                       stats.compare_ranks(own[:n_a], own[n_a:]).p_value < stats.ALPHA]
        print(f"{n_a} seeds to epoch 300 against {n_b} to 1500, tau up to {tau_high}: {counts[0] / draws:.3f} | "
              f"{counts[1] / draws:.3f} ({by_ranks / draws:.2f} of the pairs by ranks)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2000, help="draws per row (default 2000)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--excess", action="store_true", help="compare compression over the floor instead")
    parser.add_argument("--censored", action="store_true", help="compare SNR-drop epochs, some censored, instead")
    args = parser.parse_args()
    if args.censored:
        censored_rows(args.draws, args.seed)
        span_rows(args.draws, args.seed)
        return
    if args.excess:
        excess_rows(args.draws, args.seed)
        excess_trend_rows(args.draws, args.seed)
        return
    print(f"p < 0.05 in {args.draws} draws per row: the permutation test alone | the t test alone | the larger p")
    for row in GROUPS:
        n_a, n_b, sd_a, sd_b, difference = row
        steps, counts, rng = np.repeat([1.0, 0.0], [n_a, n_b]), np.zeros(3), row_generator(args.seed, GROUPS, row)
        for _ in range(args.draws):
            a, b = rng.normal(difference, sd_a, n_a), rng.normal(0.0, sd_b, n_b)
            counts += np.array([stats.shift_test(a, b)[0], t_test_p(steps, np.concatenate([a, b])),
                                stats.compare(a, b).p_value]) < stats.ALPHA
        print(f"two groups, {n_a} seeds of sd {sd_a:g} against {n_b} of sd {sd_b:g}, difference {difference:g}: "
              + " | ".join(f"{count / args.draws:.3f}" for count in counts), flush=True)
    for row in TRENDS:
        runs, spreads, slope = row
        steps, counts, rng = np.repeat([0.0, 1.0, 2.0], runs), np.zeros(3), row_generator(args.seed, TRENDS, row)
        for _ in range(args.draws):
            values = slope * steps + rng.normal(0.0, np.repeat(spreads, runs))
            counts += np.array([trend.hc3_test(steps, values).p(0.0), t_test_p(steps, values),
                                trend.slope_test(steps, values)[1]]) < stats.ALPHA
        print(f"trend, {runs} runs at each of 3 values, sd {', '.join(f'{s:g}' for s in spreads)}, slope {slope:g}: "
              + " | ".join(f"{count / args.draws:.3f}" for count in counts), flush=True)


if __name__ == "__main__":
    main()
