"""Information plane over time: an epoch slider (its epoch in the URL) with a play control (and its
speed) moving every layer's point, with the accuracy curve below (the seed notebook's infoplane
movie). It opens on the first selected run with MI that the trainer did not flag dead or diverged
(else the first with MI)."""

import math

import streamlit as st

from explorer import charts, charts_infoplane, charts_training, cohort_tables, ui

FRAME_SECONDS = 0.5              # one redraw per half second while playing
RUN_SECONDS = 20                 # at 1× a whole run plays in this long, whatever its logged epochs
SPEEDS = {"0.5×": 0.5, "1×": 1.0, "2×": 2.0, "4×": 4.0}

store, all_runs, selection = ui.selection_page("Information plane over time")

labels = ui.labels(store, all_runs, selection)
flags = ui.run_flags(all_runs)
# the first run with MI that is neither dead (its plane stands still) nor diverged (it ends in NaN)
default = ui.first_alive_run(store.recorded("mi", list(labels)), flags)
run_id = ui.linked_selectbox(st, "Run", list(labels), "run", lambda r: f"{labels[r]}  ({r})" if labels[r] != r else r,
                             list(labels).index(default) if default else 0, what="run")
choices = store.mi_choices([run_id]) if run_id else None
if choices is None or choices.empty:
    ui.not_recorded("Mutual information", [run_id])
    st.stop()

left, middle, colour, speed_column, play_column = st.columns([3, 2, 2, 2, 1])
estimator = left.selectbox("Estimator", ui.offered("estimator", list(dict.fromkeys(choices["estimator"] + " " +
                                                                                   choices["params"])), "estimator"),
                           key="estimator", bind="query-params")
name, params = estimator.split(" ", 1)
split = middle.radio("Split", ui.offered("split", ui.ordered_splits(choices.loc[choices["estimator"] == name, "split"]),
                                          "split"), key="split", bind="query-params", horizontal=True)
color_by = colour.radio("Trajectories", ui.offered("trail", ["layer", "epoch"]), key="trail",
                        bind="query-params", horizontal=True,
                        help="colour of the paths behind the points: by layer, or by epoch (viridis)")
speed = speed_column.select_slider("Speed", ui.offered("speed", list(SPEEDS), read_last=False), value="1×",
                                   key="speed", bind="query-params",
                                   help=f"1×: the whole run in {RUN_SECONDS} s; 2× in half that, ...")
playing = play_column.toggle("Play", key="playing")


@st.fragment(run_every=FRAME_SECONDS if playing else ui.live_interval(all_runs, [run_id]))
def movie() -> None:
    """One frame; while playing the next one every FRAME_SECONDS, while the run trains its
    latest flushed epochs every second."""
    if not playing:
        ui.live_caption(all_runs, [run_id])
    frame = store.mi([run_id], name, split, params)
    if len(frame) and not frame["i_xt"].notna().any():
        st.info(ui.plain(cohort_tables.no_i_xt_note(name, cohort_tables.NO_PLANE)), icon=":material/info:")
        return
    if name == "ksg":   # rows written before ksg left i_xt NULL hold h(T) there (Compare says the same)
        st.caption(cohort_tables.LEGACY_KSG)
    ui.plane_captions(store, [run_id], name, params, split,
                      {group: labels[run_id] for group in all_runs.loc[all_runs["run_id"] == run_id, "group_id"]})
    metrics = store.metrics([run_id])
    if not metrics.empty:
        metrics = charts.every_nth_epoch(metrics, charts.epoch_stride(metrics["epoch"].max()))
    epochs = sorted(int(e) for e in frame["epoch"].unique())
    # logged epochs advanced per frame: a run of any length plays in RUN_SECONDS / speed
    step = max(1, math.ceil(len(epochs) * FRAME_SECONDS * SPEEDS[speed] / RUN_SECONDS))
    if playing:
        current = st.session_state.get("movie_epoch", epochs[0])
        position = epochs.index(current) if current in epochs else -step
        st.session_state["movie_epoch"] = epochs[(position + step) % len(epochs)]
    elif (current := st.session_state.get("movie_epoch")) not in (None, *epochs):
        # an epoch another run logged (the run was changed): this run's nearest, not its first
        st.session_state["movie_epoch"] = min(epochs, key=lambda logged: (abs(logged - current), logged))
    ui.offered("movie_epoch", epochs, "logged epoch", read_last=False)
    epoch = st.select_slider("Epoch", epochs, key="movie_epoch", bind="query-params")
    title = f"{labels[run_id]}: epoch {epoch} ({name} {params}, {split} split)"   # kept in downloads
    chart = charts_infoplane.infoplane_at_epoch(frame, epoch, title=title, color_by=color_by)
    if metrics.empty:
        ui.show_chart(chart, frame, f"infoplane_{run_id}_epoch{epoch}")
        ui.not_recorded("Accuracy", [run_id])
    else:
        ui.show_chart(chart & charts_training.accuracy_with_marker(metrics, epoch), frame,
                      f"infoplane_{run_id}_epoch{epoch}")


movie()
