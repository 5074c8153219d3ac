"""Research questions as one line of SQL each, over the views of ibstore.views: offered on the
SQL page, printed in README ("Questions in one line of SQL"), checked against a root with known
answers in tests/test_sql_oneliners.py.

Peak and final I(X;T) are per run, estimator (with its parameters) and layer on the training
split; "final" is the value at the last logged epoch. The SNR drop is defined, per run and layer,
as the first logged epoch after the SNR's peak at which the SNR is below half that peak
(Shwartz-Ziv & Tishby 2017 describe a high-SNR drift phase followed by a low-SNR diffusion
phase; this marks the change). A layer whose SNR never drops so gets NULL; epochs with a
non-finite SNR (all-zero gradients) are left out, so a layer without a finite SNR has no row.
The `phases` view (ibstore.phases) carries these per run and layer as columns, and the last
question asks `phase_stats` (ibstore.stats), which answers the third honestly: peak - final is
positive under noise alone, so it is tested over seeds against each run's noise floor.
Compression leaves out the networks the trainer flagged dead (their I(X;T) stands still: a
zero there is no answer to "does it compress?"); the accuracy per bias keeps them, since a dead
network's accuracy is the outcome of its bias. An average is over one seed group (the accuracy:
runs that differ only in seed; two cohorts at one initial bias are two rows) or over one layer of
one name (networks of two depths number their layers alike, and 3 is the output of one and a
hidden layer of the other).

PLOTS says how the page first draws each answer: the quantity its question asks about against
what it varies, not whichever two numeric columns come first (for these answers `seeds` or `n`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ibstore.phases import SNR_DROP_SQL   # the one definition, also a column of the phases view

EXAMPLES: dict[str, str] = {
    "Final test accuracy per initial bias and seed group, over seeds":
        "SELECT initial_bias, cohort, group_id, count(*) AS seeds, avg(final_test_accuracy) AS mean_test_accuracy, "
        "min(final_test_accuracy) AS worst, max(final_test_accuracy) AS best "
        "FROM runs WHERE status = 'completed' GROUP BY ALL ORDER BY ALL",
    "Peak and final I(X;T) per layer":
        "SELECT run_id, estimator, params, split, layer, max(i_xt) AS peak_i_xt, arg_max(i_xt, epoch) AS final_i_xt "
        "FROM mi WHERE split IN ('train', 'full') GROUP BY ALL ORDER BY ALL",
    "Compression (peak - final I(X;T)) per layer and cohort, completed runs, dead networks left out":
        "SELECT r.cohort, m.estimator, m.params, m.split, m.layer, m.layer_name, avg(m.peak - m.final) AS "
        "compression_bits, count(*) AS runs FROM (SELECT run_id, estimator, params, split, layer, layer_name, "
        "max(i_xt) AS peak, "
        "arg_max(i_xt, epoch) AS final FROM mi WHERE split IN ('train', 'full') GROUP BY ALL) m "
        "JOIN runs r USING (run_id) WHERE r.status = 'completed' AND r.dead_network IS NOT TRUE GROUP BY ALL "
        "ORDER BY ALL",
    "First epoch with test accuracy above 0.9":
        "SELECT run_id, min(epoch) FILTER (accuracy > 0.9) AS first_epoch_above_0_9 "
        "FROM metrics WHERE split = 'test' GROUP BY run_id ORDER BY run_id",
    "Epoch of the SNR drop (first epoch after the peak with SNR below half the peak)":
        SNR_DROP_SQL + " ORDER BY run_id, layer",
    "Does a layer compress? Compression over its noise floor per seed group, with interval and test":
        "SELECT group_id, estimator, params, split, layer, n, mean AS excess_bits, ci_low AS lower_bound_bits, "
        "p_value, q_value, compresses, note, excluded_runs FROM phase_stats "
        "WHERE quantity = 'compression_over_floor_bits' "
        "AND split IN ('train', 'full') ORDER BY ALL",
}


@dataclass(frozen=True)
class Plot:
    """A result's chart on the SQL page: `y` against `x`, the rows told apart by `colour`."""
    x: str
    y: str
    colour: str | None = None


# "First epoch with test accuracy above 0.9" has none: its answer has one numeric column.
PLOTS: dict[str, Plot] = {
    "Final test accuracy per initial bias and seed group, over seeds":
        Plot("initial_bias", "mean_test_accuracy", colour="cohort"),
    # a point below final = peak: a layer that lost information after its peak
    "Peak and final I(X;T) per layer": Plot("peak_i_xt", "final_i_xt", colour="layer"),
    "Compression (peak - final I(X;T)) per layer and cohort, completed runs, dead networks left out":
        Plot("layer", "compression_bits", colour="cohort"),
    "Epoch of the SNR drop (first epoch after the peak with SNR below half the peak)": Plot("layer", "snr_drop_epoch"),
    "Does a layer compress? Compression over its noise floor per seed group, with interval and test":
        Plot("layer", "excess_bits", colour="group_id"),
}


def title_of(query: str) -> str | None:
    """The title of the one-liner whose SQL `query` is, if any (chosen on the page or opened from a link)."""
    return next((title for title, sql in EXAMPLES.items() if sql == query.strip()), None)


def plot_of(query: str) -> Plot | None:
    """The Plot of the one-liner whose SQL `query` is, if any."""
    return PLOTS.get(title_of(query))
