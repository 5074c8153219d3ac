"""Training curves: train and test accuracy and loss per epoch, per run or over seeds with a band;
overlaid on one chart (loss on a log axis) or as the seed notebook's small multiples of accuracy,
one panel per run or seed group; optionally smoothed (TensorBoard's slider). Dead and diverged
runs carry a badge in their names. Per seed group, the health counts of its runs that ended on their
own (completed or diverged) and the completed runs' final test accuracy with its interval, and every
group against a reference group (the report's tables), and the epochs each group takes to reach a test
accuracy, per seed too."""

import pandas as pd
import streamlit as st

from explorer import charts, charts_training, cohort_tables, seed_bands, smoothing, ui
from ibstore.record import Status

store, all_runs, selected = ui.page_start("Training curves")

left, middle, right, far = st.columns(4)
view = left.radio("View", ui.offered("curves", ["overlay", "small multiples"]), key="curves",
                  bind="query-params", horizontal=True)
grouping = middle.radio("Lines", ui.offered("lines", ["per run", "per seed group"]), key="lines",
                        bind="query-params", horizontal=True)
aggregate = right.radio("Over seeds", ui.offered("agg", ["median", "mean"]), key="agg",
                        bind="query-params", horizontal=True,
                        disabled=grouping != "per seed group")
columns = ui.whole_number_input(far, "Columns", 1, charts.MAX_COLUMNS, 2, key="cols",
                                disabled=view != "small multiples")
ui.offered_number("smooth", 0.0, 0.99, "Smoothing")
smooth_column, axis_column = st.columns([2, 1], vertical_alignment="bottom")
weight = smooth_column.slider("Smoothing", 0.0, 0.99, 0.0, 0.01, key="smooth", bind="query-params", width=400,
                              help=smoothing.HELP)
ui.offered("train_log_epochs", ["true", "false"], any_case=True)      # what Streamlit's binding reads
log_epochs = axis_column.toggle("Log epoch axis", False, key="train_log_epochs", bind="query-params")
# per seed group, the groups' statistics are over every selected seed: up to MAX_GROUP_RUNS runs
selection = ui.cut_selection(all_runs, selected, ui.runs_limit(grouping == "per seed group"))
with_metrics = ui.runs_with(store, "metrics", selection, "Accuracy and loss")


@st.fragment(run_every=ui.live_interval(all_runs, with_metrics))
def curves() -> None:
    """The curves; redrawn every second while a selected run is still training."""
    ui.live_caption(all_runs, with_metrics)
    by_group = grouping == "per seed group"
    frame = smoothing.smooth(store.metrics(with_metrics), ["accuracy", "loss"], ["run_id", "split"], weight)
    if by_group:
        group_of = {r: g for g, members in store.groups(with_metrics).items() for r in members}
        frame = seed_bands.centre_and_range(frame.assign(group_id=frame["run_id"].map(group_of)),
                                            ["group_id", "split", "epoch"], ["accuracy", "loss"], aggregate)
        title = f"{aggregate} over seeds, band: min to max"
        st.caption("Each point is over the group's seeds with a row at that epoch (the tooltip's seeds): a run that "
                   "diverged or stopped early leaves, and a band of no width there is one seed, not seeds agreeing.")
    else:
        title = None
    frame = ui.with_panels(store, all_runs, frame, selection, by_group=by_group)
    stride = charts.epoch_stride(frame["epoch"].max())
    drawn = charts.every_nth_epoch(frame, stride)
    if stride > 1:
        st.caption(f"The lines go through one epoch in {stride} (at most {charts.LINE_POINTS} points a line) "
                   "and the last; the CSV holds every epoch.")
    # a notebook user's deep-bottleneck curves were Keras' running means over each epoch's minibatches
    st.caption("Accuracy and loss of each split are evaluated on all its inputs after each epoch's training, not "
               "Keras' running mean over the epoch's minibatches (deep-bottleneck's training curve).")
    if view == "overlay":
        st.caption("Colour: seed group (the seeds of one config share it, the same on every page); dashes: split. "
                   "Loss on a log axis.")
        chart = charts_training.training_curves(drawn, band=by_group, title=title, color_field="group",
                                                color_domain=ui.group_domain(store, all_runs, selection),
                                                log_epochs=log_epochs)
    else:
        chart = charts_training.accuracy_grid(drawn, columns=int(columns), title=title, band=by_group,
                                              log_epochs=log_epochs)
    ui.show_chart(chart, frame, "training_curves" if view == "overlay" else "accuracy_grid")


def final_accuracy() -> None:
    """Per seed group, the health of its runs that ended on their own and its completed runs' final test
    accuracy (`cohort_tables.health_table`), and the groups compared around a reference group
    (`cohort_tables.accuracy_comparison`), as the report has them."""
    st.subheader("Final test accuracy per seed group")
    ended = all_runs[all_runs["run_id"].isin(selection) & all_runs["status"].isin(cohort_tables.ENDED)]
    completed = ended[ended["status"] == Status.COMPLETED]
    titles = ui.group_titles(store, all_runs, selection)
    titles = {group_id: title for group_id, title in titles.items() if group_id in set(ended["group_id"])}
    if not titles:
        st.caption("No selected run has ended on its own (completed or diverged): a final accuracy is one that "
                   "training ended with.")
        return
    st.caption(cohort_tables.HEALTH_CAPTION + " Runs still training, failed or interrupted are left out; the "
               "interval is cut to 0..1.")
    ui.show_table(cohort_tables.health_table(ended, titles))
    if chance := cohort_tables.majority_class_note(ended, titles):
        st.caption(ui.plain(chance))
    groups = [group_id for group_id in titles if group_id in set(completed["group_id"])]
    configs, reference = store.flat_configs(list(ended["run_id"])), None
    if len(groups) > 1:
        reference = ui.linked_selectbox(st, "Reference group", groups, "accuracy_reference", titles.get,
                                        groups.index(cohort_tables.first_alive(completed, groups)), what="seed group",
                                        width=400)
        st.caption(cohort_tables.ACCURACY_CAPTION)
        ui.show_table(cohort_tables.accuracy_comparison(completed, titles, reference, configs))
    if len(titles) > 1 and (uncompared := cohort_tables.no_accuracy_note(ended, titles)):
        st.caption(ui.plain(uncompared))
    if len(titles) > 1:   # a group whose seeds all diverged has no final accuracy, but reaches no threshold
        epochs_to_accuracy(ended, titles, reference, configs)


def epochs_to_accuracy(ended: pd.DataFrame, titles: dict[str, str], reference: str | None,
                       configs: dict[str, dict]) -> None:
    """How soon the groups reach a test accuracy (`cohort_tables.epochs_to_accuracy`), per seed too."""
    st.subheader("Epochs to a test accuracy")
    ui.offered_number("reach", 0.0, 1.0, "Test accuracy to reach")
    threshold = st.slider("Test accuracy to reach", 0.0, 1.0, cohort_tables.reach_threshold(ended), 0.01, key="reach",
                          bind="query-params", width=400)
    st.caption(cohort_tables.REACH_CAPTION)
    if note := cohort_tables.reach_note(ended, threshold):
        st.info(ui.plain(note), icon=":material/info:")
        return
    metrics = store.metrics(list(ended["run_id"]))
    ui.show_table(cohort_tables.epochs_to_accuracy(metrics, ended, titles, threshold, reference, configs))
    with st.expander("Per seed"):
        ui.show_table(cohort_tables.reach_per_seed(cohort_tables.reach_epochs(metrics, ended, threshold), titles))


curves()
if grouping == "per seed group":
    final_accuracy()
