"""SQL: read-only queries over the views, with the views and their columns listed."""

import streamlit as st

from explorer import ui
from ibstore.sandbox import SqlError, view_columns

store = ui.store()
st.title("SQL")
st.caption("Read-only: SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN over the views below; "
           "the same as `trainer sql \"QUERY\"`.")

left, right = st.columns([3, 1])
with right:
    st.subheader("Views")
    columns = view_columns(store.connection())
    for view, group in columns.groupby("view", sort=False):
        with st.expander(view):
            st.dataframe(group[["column", "type"]], hide_index=True)

with left:
    query = st.text_area("Query", key="q", bind="query-params", height=140,
                         value="SELECT run_id, layer, max(i_xt) AS max_i_xt, max(i_yt) AS max_i_yt\n"
                               "FROM mi WHERE split = 'train'\nGROUP BY ALL ORDER BY run_id, layer")
    if query.strip():
        try:
            result = store.sql(query)
        except SqlError as error:
            st.error(str(error), icon=":material/error:")
        else:
            st.caption(f"{len(result)} rows")
            st.dataframe(result, hide_index=True)
            csv_button, parquet_button = st.columns(2, width=300)
            csv_button.download_button("CSV", data=lambda: result.to_csv(index=False), file_name="query.csv",
                                       mime="text/csv", on_click="ignore", icon=":material/table:")
            parquet_button.download_button("Parquet", data=lambda: result.to_parquet(index=False),
                                           file_name="query.parquet", mime="application/vnd.apache.parquet",
                                           on_click="ignore", icon=":material/database:")
