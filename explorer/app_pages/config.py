"""Config: the selected runs side by side (keys as rows, a column per run titled by the keys that
vary), varying keys first, and the common config with <var> where the runs differ (the seed
notebook's summary). Values are text, lists inline ([10, 7, 5, 4, 3])."""

import pandas as pd
import streamlit as st

from explorer import ui
from ibstore import configdiff

store, all_runs, selection = ui.selection_page("Config")

configs = store.configs(selection)
flat = {run_id: configdiff.flatten(config) for run_id, config in configs.items()}
varying = configdiff.varying_keys(list(configs.values()))
if configdiff.varying_seed(list(configs.values())):
    varying.append(configdiff.SEED_KEY)
keys = sorted(set().union(*flat.values())) if flat else []
titles = ui.labels(store, all_runs, list(configs))
# two runs with one config and seed (two names, two roots merged) would share a title
repeated = {t for t in titles.values() if list(titles.values()).count(t) > 1}
titles = {r: f"{t} ({r})" if t in repeated else t for r, t in titles.items()}
table = pd.DataFrame({titles[run_id]: [configdiff.format_value(flat[run_id][k]) if k in flat[run_id] else "(missing)"
                                       for k in keys] for run_id in titles}, index=pd.Index(keys, name="key"))

st.subheader(f"Varying keys ({len(varying)})")
if varying:
    st.dataframe(table.loc[varying].style.set_properties(**{"background-color": "rgba(255, 200, 0, 0.18)"}))
else:
    names = ui.cohort_names(all_runs, list(configs))
    st.write(ui.plain("The selected runs share one config"
                      + (f" under {len(names)} names: {', '.join(names)}." if len(names) > 1 else ".")))
settings = [k for k in configdiff.varying_keys(list(configs.values()), with_settings=True) if k not in varying]
if settings:
    st.caption(f"Launch settings that differ (not properties of a run): {ui.plain(', '.join(settings))}.")
constant = [k for k in keys if k not in varying]
with st.expander(f"Other keys ({len(constant)}): the same in every run, or launch settings"):
    st.dataframe(table.loc[constant])

st.subheader("Common config")
st.caption("The first run's config with `<var>` in the keys that vary.")
common = configdiff.common_config_with_var(list(configs.values()))
st.dataframe(pd.DataFrame({"key": list(common), "value": [configdiff.format_value(v) for v in common.values()]}),
             hide_index=True)
