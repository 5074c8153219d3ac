"""The charts a `ResultStore` draws for notebooks (explorer.results): a seed group's phases and the
seed notebook's grid of information planes, from the store's own queries."""

from __future__ import annotations

import pandas as pd

from explorer.run_rows import in_order
from ibstore.phases import DISCRETE_ESTIMATORS


class ResultCharts:
    """Chart methods of ResultStore (mixed in: they use its queries and labels)."""

    def phase_chart(self, run_ids: list[str], estimator: str, params: str, split: str = "train", band: str = "ci",
                    title: str | None = None, log_epochs: bool = True, layers: list[int] | None = None):
        """I(X;T) and I(Y;T) against epoch per layer, a line per seed group with its band over seeds
        ("ci" or "min-max"), peak and SNR-drop epochs marked, the runs the statistics leave out (dead,
        diverged, unfinished) left out and counted (explorer.phase_charts). Every seed group of `run_ids` has a
        legend entry and the colour of its place in the labels' order (the explorer's group colours), lines or
        not; its counts are of its runs with MI rows here. `layers`: those layers' panels only (default all)."""
        from explorer import phase_charts

        return phase_charts.draw(self.phase_data(run_ids, estimator, params, split, layers), band, title, log_epochs)

    def phase_data(self, run_ids: list[str], estimator: str, params: str, split: str = "train",
                   layers: list[int] | None = None, phases: pd.DataFrame | None = None):
        """What phase_chart draws before a band is chosen (explorer.phase_charts.PhaseData); `phases`:
        the `phases` rows of `run_ids` if the caller has them (the view is the costly part)."""
        from explorer import phase_charts

        labels = self.labels(run_ids, by_group=True)
        runs = self.runs()
        runs = runs.loc[runs["run_id"].isin(run_ids), ["run_id", "group_id", "dead_network", "diverged", "status"]]
        runs = in_order(runs, "group_id", labels)   # legend: by the varying keys' values
        runs = runs.assign(group=runs["group_id"].map(labels), left_out=phase_charts.left_out(runs))
        mi = self.mi(run_ids, estimator, split, params).merge(runs[["run_id", "group_id", "group", "left_out"]],
                                                              on="run_id")
        mi = in_order(mi, "group_id", labels)
        phases = self.phases(run_ids) if phases is None else phases
        phases = phases[(phases["estimator"] == estimator) & (phases["params"] == params) & (phases["split"] == split)]
        phases = phases.assign(group=phases["group_id"].map(labels))
        if layers is not None:
            mi, phases = mi[mi["layer"].isin(layers)], phases[phases["layer"].isin(layers)]
        # the legend counts what seed_bands draws, the runs with MI rows (a run without any, killed before
        # its first flush or still before it, is named by the pages); a group without one keeps its entry
        drawn = phase_charts.legend_labels(mi.drop_duplicates("run_id"))
        domain = [drawn.get(group, f"{group} (0 seeds)") for group in dict.fromkeys(runs["group"])]
        return phase_charts.PhaseData(mi, phase_charts.phase_marks(phases), domain,
                                      non_negative=estimator in DISCRETE_ESTIMATORS,
                                      ceilings=phase_charts.group_ceilings(phases))

    def infoplane_chart(self, run_ids: list[str], estimator: str | None = None, split: str = "train",
                        by_group: bool = False, aggregate: str = "median", columns: int = 2):
        """The seed notebook's grid of information planes, one panel per run (or per seed group)."""
        from explorer import charts_infoplane

        choices = self.mi_choices(run_ids)
        choices = choices[(choices["split"] == split) &
                          (choices["estimator"] == estimator if estimator else True)]
        if choices.empty:
            raise ValueError(f"no MI recorded for split {split!r}" + (f" and estimator {estimator!r}" if estimator else ""))
        estimator, params = choices.iloc[0][["estimator", "params"]]
        if by_group:
            frame = self.mi_over_seeds(run_ids, estimator, params, split, aggregate)
        else:
            frame = self.mi(run_ids, estimator, split, params)
        frame = self.with_panels(frame, run_ids, by_group)
        return charts_infoplane.infoplane_grid(frame, columns=columns, title=f"{estimator} {params}, {split} split")
