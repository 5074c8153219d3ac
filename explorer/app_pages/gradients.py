"""Gradients: per layer the norm of the gradient mean and std, the SNR and the weight norm against
epoch on log axes (the seed notebook's SNR plot), one chart per run; or the SNR of every selected
run on one chart per layer, coloured by the keys that vary between seed groups."""

import streamlit as st

from explorer import charts, ui

store, all_runs, selection = ui.selection_page("Gradients")

with_gradients = ui.runs_with(store, "gradients", selection, "Gradients")
view = st.radio("View", ["per run", "SNR of all runs"], key="grad_view", bind="query-params", horizontal=True)
frame = store.gradients(with_gradients)
if view == "SNR of all runs":
    varying = store.varying_keys(with_gradients)
    st.caption(f"Colour: {ui.plain(', '.join(varying) or 'seed group')} (the seeds of one config share it); "
               "a line per run; epochs and SNR on log axes (zero SNR cannot be drawn on them).")
    frame = ui.with_panels(store, all_runs, frame, with_gradients)
    ui.show_chart(charts.snr_overlay(frame, title="SNR (‖mean‖ / ‖std‖ of the gradient) per layer"), frame,
                  "snr_all_runs")
    st.stop()

flags = ui.run_flags(all_runs)
for run_id, label in ui.labels(store, all_runs, with_gradients).items():
    st.subheader(ui.plain(label))
    st.caption(ui.plain(run_id))
    data = frame[frame["run_id"] == run_id]
    if "dead" in flags.get(run_id, []):
        st.warning("Dead network (flagged by the trainer): the gradients are zero from some epoch to the end, "
                   "and zeros cannot be drawn on log axes.", icon=":material/heart_broken:")
    ui.show_chart(charts.gradient_chart(data), data, f"gradients_{run_id}")
