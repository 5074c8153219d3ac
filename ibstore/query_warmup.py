"""Imported by the query fork server only (ibstore.query_process preloads it): one statement on a
sandbox connection, closed again, so that every worker forked from the server starts with
DuckDB's and its Arrow bridge's one-time set-up done (the first statement of a process costs
more than the next; bench/RESULTS.md). The connection's threads end with it: the server forks from
the same threads as before."""

from ibstore import sandbox

_connection = sandbox.connection_of({}, sandbox.Limits())
_connection.sql("SELECT 1 AS warm").to_arrow_reader(sandbox.BATCH_ROWS).read_all()
_connection.close()
del _connection
