"""Config: the selected runs side by side (keys as rows), varying keys first, and the common
config with <var> where the runs differ (the seed notebook's summary)."""

import pandas as pd
import streamlit as st

from explorer import configdiff, ui

store, _, selection = ui.selection_page("Config")

configs = store.configs(selection)
flat = {run_id: configdiff.flatten(config) for run_id, config in configs.items()}
varying = configdiff.varying_keys(list(configs.values()))
if configdiff.varying_seed(list(configs.values())):
    varying.append(configdiff.SEED_KEY)
keys = sorted(set().union(*flat.values())) if flat else []
table = pd.DataFrame({run_id: [configdiff.format_value(values[k]) if k in values else "(missing)" for k in keys]
                      for run_id, values in flat.items()}, index=pd.Index(keys, name="key"))

st.subheader(f"Varying keys ({len(varying)})")
if varying:
    st.dataframe(table.loc[varying].style.set_properties(**{"background-color": "rgba(255, 200, 0, 0.18)"}))
else:
    st.write("The selected runs share one config.")
constant = [k for k in keys if k not in varying]
with st.expander(f"Constant keys ({len(constant)})"):
    st.dataframe(table.loc[constant])

st.subheader("Common config")
st.caption("The first run's config with `<var>` in the keys that vary.")
st.json(configdiff.common_config_with_var(list(configs.values())))
