"""Gradients: per layer the norm of the gradient mean and std, the SNR and the weight norm against
epoch on log axes (the seed notebook's SNR plot), one chart per run; or the SNR of every seed
group on one chart per layer, over the seeds' log SNR: the geometric mean with a band (its 95% CI
or min-max). Both can be smoothed (TensorBoard's slider)."""


import streamlit as st

from explorer import charts_training, seed_bands, smoothing, ui
from ibstore import phases

store, all_runs, selected = ui.page_start("Gradients")

left, middle, right = st.columns([2, 2, 3])
view = left.radio("View", ui.offered("grad_view", ["SNR over seeds", "per run"]), key="grad_view",
                  bind="query-params", horizontal=True)
band = middle.radio("Band", ui.offered("band", seed_bands.BANDS), key="band", bind="query-params", horizontal=True,
                    disabled=view != "SNR over seeds")
ui.offered_number("smooth", 0.0, 0.99, "Smoothing")
weight = right.slider("Smoothing", 0.0, 0.99, 0.0, 0.01, key="smooth", bind="query-params",
                      help=smoothing.HELP + " Each quantity's curve is smoothed on its own, so the smoothed SNR is "
                      "not the smoothed ‖mean‖ over the smoothed ‖std‖.")
selection = ui.cut_selection(all_runs, selected, ui.runs_limit(view == "SNR over seeds"))
with_gradients = ui.runs_with(store, "gradients", selection, "Gradients")


@st.fragment(run_every=ui.live_interval(all_runs, with_gradients))
def gradient_charts() -> None:
    """The charts; redrawn every second while a selected run trains."""
    ui.live_caption(all_runs, with_gradients)
    frame = ui.with_layer_names(store, store.gradients(with_gradients))
    quantities = list(charts_training.GRADIENT_QUANTITIES)
    if view == "SNR over seeds":
        varying = store.varying_keys(selection)
        st.caption(f"Colour: {ui.plain(', '.join(varying) or 'seed group')} (the same on every page); epochs and "
                   "SNR on log axes, so over the seeds' log SNR: line, the geometric mean (one seed's outlier does "
                   f"not pull it as an arithmetic mean's would); band, {ui.plain(band)} of the log SNR (none for one "
                   "seed), cut where the axis ends, a decade beyond the lines (two seeds' interval spans many). Over "
                   "the selected seeds with an SNR above 0 at that epoch, dead ones too where they have one: a "
                   "gradient that is 0 in every minibatch has none (0/0), so its seed drops out there (the tooltip's "
                   "seeds counts those in; a group's title counts its dead seeds). The Phases page's statistics leave "
                   "dead, diverged and unfinished runs out.")
        # the vanished epochs' SNR is left out before smoothing (NaN does not enter the average), so the
        # unsmoothed norms decide and a smoothed curve holds no vanished epoch's SNR (a sceptic's reading)
        frame, vanished = charts_training.without_vanished_snr(ui.with_panels(store, all_runs, frame, selection))
        frame = smoothing.smooth(frame, ["snr"], ["run_id", "layer"], weight)
        if vanished:
            st.warning("No SNR drawn where the gradient has vanished (the norms of its mean and std both below "
                       f"{phases.VANISHED_GRADIENT_NORM:g}, Adam's epsilon): a saturated layer's SNR is one rounding "
                       "error over another, no learning signal; the Phases page's SNR drop leaves those epochs out "
                       "too, and the per-run view shows the norms. Left out at some epochs in "
                       f"{ui.plain('; '.join(vanished))}.", icon=":material/trending_down:")
        by = ["group", "layer", *(["layer_name"] if "layer_name" in frame else []), "epoch"]
        over = seed_bands.over_seeds(frame, by, "snr", band, log=True)    # a ratio of norms, on log axes
        domain = ui.group_domain(store, all_runs, selection)
        recorded = set(frame["group"])        # a group without gradients is named "not recorded" above
        if undrawn := charts_training.groups_without_snr(over, [group for group in domain if group in recorded]):
            st.caption(f"No line for {ui.plain('; '.join(undrawn))}: no SNR above 0 at any epoch. One minibatch per "
                       "epoch (full-batch training: batch_size at least the training inputs) has no spread to take a "
                       "ratio of; a gradient that is 0 in every minibatch (a dead network's) has no SNR (0/0), nor one "
                       "that vanished (above), and one whose mean is 0 an SNR of 0, which log axes cannot draw.")
        chart = charts_training.snr_bands(over, domain, title="SNR (‖mean‖ / ‖std‖ of the gradient) per layer")
        ui.show_chart(chart, over, "snr_over_seeds")
        return
    # the SNR of a vanished gradient is none here too, left out before smoothing as on the seeds' chart
    vanished = charts_training.vanished_gradient(frame)
    vanished_runs = set(frame.loc[vanished & (frame["snr"] > 0), "run_id"])
    frame = smoothing.smooth(frame.assign(snr=frame["snr"].mask(vanished)), quantities, ["run_id", "layer"], weight)
    flags = ui.run_flags(all_runs)
    for run_id, label in ui.labels(store, all_runs, selection).items():
        if run_id not in with_gradients:
            continue
        st.subheader(ui.plain(label))
        st.caption(ui.plain(run_id))
        data = frame[frame["run_id"] == run_id]
        if run_id in vanished_runs:
            st.caption("No SNR drawn where the gradient vanished (the norms of its mean and std both below "
                       f"{phases.VANISHED_GRADIENT_NORM:g}): one rounding error over another.")
        if "dead" in flags.get(run_id, []):
            st.warning(f"Dead network (flagged by the trainer): {ui.DEAD_RULE}. A zero gradient cannot be drawn on "
                       "log axes.", icon=":material/heart_broken:")
        ui.show_chart(charts_training.gradient_chart(data), data, f"gradients_{run_id}")


gradient_charts()
