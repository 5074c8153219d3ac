"""Activations: per-layer histograms over epochs, a per-neuron view, the share of zero or
saturated values, and a flag on networks the trainer found dead (ui.DEAD_RULE); and
for the whole selection, per layer, the fraction of saturated or zero values of every seed group
over epochs, the mean over seeds with a band (as the Gradients page draws the SNR)."""

import streamlit as st

from explorer import charts, charts_activations, seed_bands, ui

# the seed groups' fractions are over every selected seed (one run's panels are drawn at a time)
store, all_runs, selection = ui.selection_page("Activations", ui.MAX_GROUP_RUNS)

flags = ui.run_flags(all_runs)
dead = [r for r in selection if "dead" in flags.get(r, [])]
if dead:
    # which layers died (a sceptic found no page that said); from when: the gradients rows' health
    recorded_dead = dict(zip(all_runs["run_id"], all_runs["dead_layers"]))
    runs_said = [run_id + (f" (layers {', '.join(str(int(layer)) for layer in layers)})"
                           if (layers := recorded_dead.get(run_id)) is not None and len(layers) else "")
                 for run_id in dead]
    st.warning(f"Dead network (flagged by the trainer) in {len(dead)} of the selected runs: {ui.DEAD_RULE}. "
               f"Runs, with their dead layers: {ui.plain('; '.join(runs_said))}. From which epoch each layer is dead: "
               "the `health` column of the `gradients` view (SQL page).", icon=":material/heart_broken:")

labels = ui.labels(store, all_runs, selection)
# opens on the first run with something to show (histograms or per-neuron statistics) that the trainer
# did not flag, as the information plane over time does
recorded = set(store.recorded("activations", list(labels))) | set(store.recorded("activation_stats", list(labels)))
default = ui.first_alive_run([r for r in labels if r in recorded], flags)
run_id = ui.linked_selectbox(st, "Run", list(labels), "run", lambda r: f"{labels[r]}  ({r})" if labels[r] != r else r,
                             list(labels).index(default) if default else 0, what="run")


@st.fragment(run_every=ui.live_interval(all_runs, [run_id] if run_id else []))
def panels(run_id: str) -> None:
    ui.live_caption(all_runs, [run_id])
    splits = ui.ordered_splits(store.activation_splits([run_id]))
    histograms = store.recorded("activations", [run_id])
    if not splits and not histograms:
        ui.not_recorded("Activations", [run_id])
        return
    split = st.radio("Split", splits or ["train"], key="act_split", horizontal=True)

    st.subheader("Histograms over epochs")
    frame = store.activations([run_id], split=split)
    if frame.empty:
        ui.not_recorded("Activation histograms", [run_id])
    else:
        frame = ui.with_layer_names(store, frame)
        st.caption("Colour: how many values (inputs x units) fall in each bin, on one scale for every layer, so "
                   "a wider layer reads brighter. Each layer's bins are fixed for the whole run: a relu layer's lowest "
                   "bin holds its zeros and its smallest positive values alike (the zero share below counts exact "
                   "zeros).")
        ui.show_chart(charts_activations.activation_heatmap(frame), frame, f"activations_{run_id}")

    st.subheader("Zero and saturated values")
    fractions = ui.with_layer_names(store, store.dead_fractions([run_id], split))
    if fractions.empty:
        ui.not_recorded("Per-neuron statistics", [run_id])
        return
    st.caption("Per layer, the share of its values (inputs x units) that are exactly 0 (frac_zero) or at a bound "
               "of the activation (frac_saturated), averaged over its units: a share of values, not of units (a "
               "layer of 4 units with one dead unit and the others at 0 on some inputs reads above 1/4).")
    ui.show_chart(charts_activations.dead_fraction_chart(fractions), fractions, f"dead_units_{run_id}")

    st.subheader("Per neuron")
    labelled = charts.with_layer_label(fractions).drop_duplicates("layer").sort_values("layer")
    names = dict(zip(labelled["layer"].astype(int), labelled["layer_label"]))
    layer = st.select_slider("Layer", list(names), key="act_layer", format_func=names.__getitem__)
    neurons = store.activation_stats([run_id], split=split, layer=int(layer))
    title = f"layer {names[layer]}: mean ± std per neuron, cut to its min-max"
    ui.show_chart(charts_activations.neuron_chart(neurons, title=title), neurons, f"neurons_{run_id}_layer{layer}")


# what each unit measure is: activation_stats' per-neuron fractions, averaged over a layer's neurons
UNIT_MEASURES = {"saturated": "frac_saturated", "zero": "frac_zero"}


def group_fractions() -> None:
    """Per layer, each seed group's fraction of saturated or zero values against epoch: the mean
    over its seeds with a band (the selection's `dead_fractions`, seed_bands.over_seeds)."""
    st.subheader("Saturated and zero values per seed group")
    splits = ui.ordered_splits(store.activation_splits(selection))
    if not splits:
        ui.not_recorded("Per-neuron statistics", selection)
        return
    left, middle, right = st.columns(3)
    measure = left.radio("Values", ui.offered("unit_measure", list(UNIT_MEASURES)), key="unit_measure",
                         bind="query-params", horizontal=True)
    split = middle.radio("Split", ui.offered("group_act_split", splits, "split"), key="group_act_split",
                         bind="query-params",
                         horizontal=True)
    band = right.radio("Band over seeds", ui.offered("band", seed_bands.BANDS), key="band",
                       bind="query-params", horizontal=True)
    column = UNIT_MEASURES[measure]
    frame = ui.with_panels(store, all_runs, ui.with_layer_names(store, store.dead_fractions(selection, split)),
                           selection)
    by = ["group", "layer", *(["layer_name"] if "layer_name" in frame else []), "epoch"]
    over = seed_bands.over_seeds(frame, by, column, band, bounds=(0.0, 1.0))      # fractions
    st.caption(f"Per layer, the share of its values (inputs x units) that are {measure} "
               + ("(at a bound of the activation, where its slope is below 1 % of its largest)" if measure == "saturated"
                  else "(exactly 0)")
               + f", averaged over its units; line: the mean over each group's seeds with a row at that epoch, so a "
                 "run that stopped early or diverged leaves it there (the tooltip's seeds), band: "
                 f"{ui.plain(band)} (none for one seed). Dead networks are kept: their units are what that setting "
                 "gives."
               + (" The output layer's softmax counts as saturated where the network is confident (near 1 in a "
                  "network that fits its inputs): the trainer's dead and saturated rules read hidden layers only."
                  if measure == "saturated" else ""))
    chart = charts_activations.fraction_bands(over, column, f"fraction {measure}",
                                              ui.group_domain(store, all_runs, selection),
                                              title=f"Fraction of {measure} values per layer, {split} split")
    ui.show_chart(chart, over, f"{measure}_values_over_seeds")


if run_id:
    panels(run_id)
group_fractions()
