"""SQL: read-only queries over the views, with research one-liners to start from and the views
and their columns listed; a `selected` view holds the sidebar's selected runs, and a result with
two numeric columns can be drawn (explorer.sql_chart; a one-liner's chart starts as its entry of
explorer.sql_examples.PLOTS says). Each query runs on its own sandbox connection (ibstore.sandbox) that
a server-side timer interrupts when the time limit is up, whatever the visitor does meanwhile, and a
newer query of the same visitor stops."""

import threading

import numpy as np
import pandas as pd
import streamlit as st

from explorer import sql_selection, ui
from explorer.sql_chart import query_chart
from explorer.sql_examples import EXAMPLES, Plot, plot_of, title_of
from ibstore import sandbox
from ibstore.temporal_text import with_temporal_text

MAX_SHOWN_ROWS = 10_000          # rows kept for the table and the downloads; the rest are counted
MAX_TIMEOUT_S = 120              # a visitor may raise the limit, not remove it
QUERY, EXAMPLE, TIMEOUT = "q", "sql_example", "sql_timeout"
EXAMPLE_SET = "sql_example_set"   # a one-liner was just written into the query box
RUNNING = "sql_running"           # session: the Limits.superseded event of its latest statement
PLOT_X, PLOT_Y, PLOT_COLOUR = "sql_x", "sql_y", "sql_colour"
OWN_QUERY = "(your own query)"
NO_COLOUR = "(none)"   # an option of its own: a selectbox whose session state is None shows no choice at all
DEFAULT_QUERY = ("SELECT run_id, estimator, params, split, layer, max(i_xt) AS max_i_xt, max(i_yt) AS max_i_yt\n"
                 "FROM mi WHERE split IN ('train', 'full')\nGROUP BY ALL ORDER BY ALL")

store = ui.store()
st.title("SQL")
st.caption("Read-only: SELECT, WITH, FROM, PIVOT, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN over the views "
           "listed on the right; the same as `trainer sql \"QUERY\"`. Nothing a query does can change the "
           "results or what anyone else sees. `selected` is the `runs` rows of the sidebar's selection: "
           "`SELECT ... FROM mi JOIN selected USING (run_id)` restricts a query to it.")

with st.sidebar:
    st.subheader("SQL settings")
    timeout = st.number_input("Time limit per query (s)", min_value=1, max_value=MAX_TIMEOUT_S,
                              value=int(sandbox.APP_TIMEOUT_S), step=1, key=TIMEOUT,
                              help="The query is stopped on the server when this is up.")


def use_example() -> None:
    """Fill the query box with the chosen one-liner, and forget the chart's choices of the last
    query, so that the chart starts as the one-liner's PLOTS entry says."""
    title = st.session_state[EXAMPLE]
    if title in EXAMPLES:
        st.session_state[QUERY] = EXAMPLES[title]
        st.session_state[EXAMPLE_SET] = True
        for key in (PLOT_X, PLOT_Y, PLOT_COLOUR):
            st.session_state.pop(key, None)


left, right = st.columns([3, 1])
snapshot = store.snapshot()
with right:
    st.subheader("Views")
    columns = sandbox.view_columns(snapshot)
    for view, group in columns.groupby("view", sort=False):
        with st.expander(view):
            st.dataframe(group[["column", "type"]], hide_index=True)

with left:
    question = st.empty()   # drawn once the box's query is known, above it
    # The default query is the widget's own: the browser's Back to a link without ?q= restores it.
    # In the run after a one-liner was written into the box it is left out, since Streamlit warns
    # of a widget given a value both ways (and the box holds the one-liner).
    default = None if st.session_state.pop(EXAMPLE_SET, False) else DEFAULT_QUERY
    if ui.from_link(QUERY):      # an attacker's q=...&q=...: the last ran without a word
        ui.warn_given_twice(QUERY)
    query = st.text_area("Query", default, key=QUERY, bind="query-params", height=140) or ""
    # The question names the box's query, whether it was chosen, opened from a link or edited.
    st.session_state[EXAMPLE] = title_of(query) or OWN_QUERY
    question.selectbox("Start from a research question", [OWN_QUERY, *EXAMPLES], key=EXAMPLE, on_change=use_example)
    if query.strip():
        # this visitor's previous statement, if it still runs (a rerun does not wait for the last), stops
        superseded = threading.Event()
        previous = st.session_state.get(RUNNING)
        if previous is not None:
            previous.set()
        st.session_state[RUNNING] = superseded
        limits = sandbox.Limits(timeout_s=float(timeout), superseded=superseded)
        try:
            statement = sql_selection.with_selected(query, ui.selection()) if sql_selection.names_selected(query) \
                else query
            table, total = store.sql_head(statement, MAX_SHOWN_ROWS, limits)
        except sandbox.QuerySuperseded:
            st.stop()           # this run is being replaced by the one that superseded it
        except sandbox.NoPlace as error:
            st.error(ui.plain(error), icon=":material/hourglass_top:")
        except sandbox.QueryStopped as error:
            st.error(f"query stopped after {error.seconds:g} s (the time limit in the sidebar's SQL settings"
                     f"{error.waited_text})", icon=":material/timer_off:")
        except sandbox.SqlError as error:
            st.error(ui.plain(error), icon=":material/error:")
        else:
            repeated = sorted({name for name in table.column_names if table.column_names.count(name) > 1})
            if repeated:   # a table, its downloads and the chart need each column by name
                st.error(ui.plain(f"columns named twice: {', '.join(repeated)}; name them apart with AS"),
                         icon=":material/error:")
                st.stop()
            try:
                result = with_temporal_text(table).to_pandas()
            except ValueError as error:   # a date beyond year 9999: pandas and Python hold none
                st.error(ui.plain(error), icon=":material/error:")
                st.stop()
            if total > len(result):
                st.caption(f"{total:,} rows; the first {len(result):,} are shown and downloadable (at most "
                           f"{MAX_SHOWN_ROWS:,} rows and {sandbox.MAX_HEAD_BYTES // 10**6} MB). For every row: "
                           f"`trainer sql \"QUERY\" --output FILE.parquet`")
            else:
                st.caption(f"{total:,} row{'s' if total != 1 else ''}")
            st.dataframe(result, hide_index=True)
            csv_button, parquet_button = st.columns(2, width=300)
            csv_button.download_button("CSV", data=lambda: result.to_csv(index=False), file_name="query.csv",
                                       mime="text/csv", on_click="ignore", icon=":material/table:")
            parquet_button.download_button("Parquet", data=lambda: result.to_parquet(index=False),
                                           file_name="query.parquet", mime="application/vnd.apache.parquet",
                                           on_click="ignore", icon=":material/database:")
            numeric = [c for c in result.columns if pd.api.types.is_numeric_dtype(result[c])
                       and not pd.api.types.is_bool_dtype(result[c])]
            if len(numeric) >= 2:
                # The chart starts as the query's plot says, through the session state (the browser
                # shows what is set there, not a changed index=); a visitor's choice then stays. A
                # choice no longer among the options falls back to the first.
                plot = plot_of(query) or Plot(*numeric[:2])
                for key, column in ((PLOT_X, plot.x), (PLOT_Y, plot.y), (PLOT_COLOUR, plot.colour or NO_COLOUR)):
                    st.session_state.setdefault(key, column)
                x_column, y_column, colour_column = st.columns(3)
                x = x_column.selectbox("x", numeric, key=PLOT_X)
                y = y_column.selectbox("y", [c for c in numeric if c != x], key=PLOT_Y)
                colour = colour_column.selectbox("Colour", [NO_COLOUR, *(c for c in result.columns if c not in (x, y))],
                                                 key=PLOT_COLOUR)
                # group_id: the selection's seed groups keep the colours every other page gives them
                first = list(ui.group_titles(store, store.runs(), ui.selection())) if colour == "group_id" else []
                ui.show_chart(query_chart(result, x, y, None if colour == NO_COLOUR else colour, first), result,
                              "query")
                undrawn = int((~np.isfinite(result[[x, y]].astype(float))).any(axis=1).sum())
                if undrawn:     # NULL (a layer whose SNR never halved), NaN or infinite: no point to draw
                    st.caption(f"{undrawn:,} of {len(result):,} rows have no finite {x} or {y} and are not drawn.")
