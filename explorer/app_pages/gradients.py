"""Gradients: per layer the norm of the gradient mean and std, the SNR and the weight norm against
epoch on log-log axes (the seed notebook's SNR plot), one chart per run."""

import streamlit as st

from explorer import charts, ui

store, _, selection = ui.selection_page("Gradients")

labels = store.labels(selection)
with_gradients = store.recorded("gradients", selection)
frame = store.gradients(with_gradients)
dead = set(store.dead_runs(with_gradients))
for run_id in labels:
    st.subheader(labels[run_id] if labels[run_id] != run_id else run_id)
    st.caption(run_id)
    data = frame[frame["run_id"] == run_id]
    if data.empty:
        ui.not_recorded("Gradients", [run_id])
        continue
    if run_id in dead:
        st.warning("The gradients stay zero through training (a dead network); zeros cannot be drawn on "
                   "log axes, so only the weight norm shows.", icon=":material/heart_broken:")
    ui.show_chart(charts.gradient_chart(data), data, f"gradients_{run_id}")
