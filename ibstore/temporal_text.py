"""Dates and timestamps of a query's result made fit for text (`trainer sql`'s table, CSV and
JSON; the explorer's SQL page, through pandas).

DuckDB keeps a date's or timestamp's infinity as the largest (smallest) value of its integer.
Arrow's CSV writer prints those as "<value out of range: 9223372036854775807>", or, with a time
zone, as a wrong date (the year 32103); pandas shows the year 294247; Python's datetime, which the
table and JSON go through, holds years 1 to 9999 only and fails.

>>> import duckdb
>>> table = duckdb.sql("SELECT 'infinity'::TIMESTAMP AS t").to_arrow_table()
>>> with_temporal_text(table).column("t").to_pylist()
['infinity']
"""

from __future__ import annotations

import datetime

import pyarrow as pa
import pyarrow.compute as pc

_YEARS = (datetime.datetime(1, 1, 1), datetime.datetime(9999, 12, 31, 23, 59, 59, 999999))


def temporal_text(field: pa.Field, column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A date or timestamp column as it is, or, if it holds an infinity, as text with "infinity" and
    "-infinity" (as DuckDB writes them) and the other values as Arrow formats them. A value outside
    years 1 to 9999 is a ValueError naming the column: no text here can show it."""
    kind = field.type
    if not (pa.types.is_date32(kind) or pa.types.is_timestamp(kind)):
        return column
    whole = pa.int32() if pa.types.is_date32(kind) else pa.int64()
    top = 2 ** (whole.bit_width - 1) - 1
    integers = column.cast(whole)
    infinite, negative = pc.equal(integers, top), pc.equal(integers, -top)
    finite = pc.if_else(pc.or_(infinite, negative), pa.scalar(None, kind), column)
    if not (pa.types.is_timestamp(kind) and kind.unit == "ns"):    # nanoseconds span 1677 to 2262 only
        low, high = (pa.scalar(moment.date() if whole == pa.int32() else
                               moment.replace(tzinfo=datetime.timezone.utc if kind.tz else None), kind)
                     for moment in _YEARS)
        if pc.any(pc.or_(pc.less(finite, low), pc.greater(finite, high))).as_py():
            raise ValueError(f"column {field.name}: a {kind} value outside years 1 to 9999 cannot be shown as "
                             "text; cast it to VARCHAR in the query (a Parquet file from trainer sql holds it)")
    if not pc.any(pc.or_(infinite, negative)).as_py():
        return column
    return pc.if_else(infinite, "infinity", pc.if_else(negative, "-infinity", pc.cast(finite, pa.string())))


def with_temporal_text(data: pa.RecordBatch | pa.Table) -> pa.RecordBatch | pa.Table:
    """`data` with every date and timestamp column through `temporal_text`."""
    columns = [temporal_text(field, column) for field, column in zip(data.schema, data.columns)]
    return type(data).from_arrays(columns, names=data.schema.names)
