"""Information plane over time: an epoch slider with a play control (and its speed) moving every
layer's point, with the accuracy curve below (the seed notebook's infoplane movie)."""

import streamlit as st

from explorer import charts, ui

SPEEDS = {"0.5×": 2.0, "1×": 1.0, "2×": 0.5, "4×": 0.25}   # seconds per frame

store, all_runs, selection = ui.selection_page("Information plane over time")

labels = ui.labels(store, all_runs, selection)
run_id = st.selectbox("Run", list(labels), key="run", bind="query-params",
                      format_func=lambda r: f"{labels[r]}  ({r})" if labels[r] != r else r)
choices = store.mi_choices([run_id]) if run_id else None
if choices is None or choices.empty:
    ui.not_recorded("Mutual information", [run_id])
    st.stop()

left, middle, colour, speed_column, play_column = st.columns([3, 2, 2, 2, 1])
estimator = left.selectbox("Estimator", list(dict.fromkeys(choices["estimator"] + " " + choices["params"])),
                           key="estimator", bind="query-params")
name, params = estimator.split(" ", 1)
split = middle.radio("Split", ui.ordered_splits(choices.loc[choices["estimator"] == name, "split"]),
                     key="split", bind="query-params", horizontal=True)
color_by = colour.radio("Trajectories", ["layer", "epoch"], key="trail", bind="query-params", horizontal=True,
                        help="colour of the paths behind the points: by layer, or by epoch (viridis)")
speed = speed_column.select_slider("Speed", list(SPEEDS), value="1×", key="speed", bind="query-params",
                                   help="frames per second: 0.5×, 1×, 2× or 4× one frame a second")
playing = play_column.toggle("Play", key="playing")

frame = store.mi([run_id], name, split, params)
metrics = store.metrics([run_id])
metrics = charts.every_nth_epoch(metrics, charts.epoch_stride(metrics["epoch"].max())) if not metrics.empty else metrics
epochs = sorted(int(e) for e in frame["epoch"].unique())


@st.fragment(run_every=SPEEDS[speed] if playing else None)
def movie() -> None:
    if playing:
        current = st.session_state.get("movie_epoch", epochs[0])
        position = epochs.index(current) if current in epochs else -1
        st.session_state["movie_epoch"] = epochs[(position + 1) % len(epochs)]
    epoch = st.select_slider("Epoch", epochs, key="movie_epoch")
    chart = charts.infoplane_at_epoch(frame, epoch, title=f"{labels[run_id]}: epoch {epoch}", color_by=color_by)
    if metrics.empty:
        ui.show_chart(chart, frame, f"infoplane_{run_id}_epoch{epoch}")
        ui.not_recorded("Accuracy", [run_id])
    else:
        ui.show_chart(chart & charts.accuracy_with_marker(metrics, epoch), frame,
                      f"infoplane_{run_id}_epoch{epoch}")


movie()
