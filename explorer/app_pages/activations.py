"""Activations: per-layer histograms over epochs, a per-neuron view, the fraction of dead or
saturated units, and a flag on networks the trainer found dead (gradients zero to the end)."""

import streamlit as st

from explorer import charts, charts_activations, ui

store, all_runs, selection = ui.selection_page("Activations")

flags = ui.run_flags(all_runs)
dead = [r for r in selection if "dead" in flags.get(r, [])]
if dead:
    st.warning(f"Dead network: the gradients are zero from some epoch to the end of training in {len(dead)} of "
               f"the selected runs, so their weights stop changing: {ui.plain(', '.join(dead))}.",
               icon=":material/heart_broken:")

labels = ui.labels(store, all_runs, selection)
run_id = st.selectbox("Run", list(labels), key="run", bind="query-params",
                      format_func=lambda r: f"{labels[r]}  ({r})" if labels[r] != r else r)


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
        ui.show_chart(charts_activations.activation_heatmap(frame), frame, f"activations_{run_id}")

    st.subheader("Dead and saturated units")
    fractions = ui.with_layer_names(store, store.dead_fractions([run_id], split))
    if fractions.empty:
        ui.not_recorded("Per-neuron statistics", [run_id])
        return
    ui.show_chart(charts_activations.dead_fraction_chart(fractions), fractions, f"dead_units_{run_id}")

    st.subheader("Per neuron")
    labelled = charts.with_layer_label(fractions).drop_duplicates("layer").sort_values("layer")
    names = dict(zip(labelled["layer"].astype(int), labelled["layer_label"]))
    layer = st.select_slider("Layer", list(names), key="act_layer", format_func=names.__getitem__)
    neurons = store.activation_stats([run_id], split=split, layer=int(layer))
    ui.show_chart(charts_activations.neuron_chart(neurons, title=f"layer {names[layer]}: mean ± std per neuron"),
                  neurons, f"neurons_{run_id}_layer{layer}")


if run_id:
    panels(run_id)
