"""`trainer sql`'s text formats and DuckDB's infinite dates and timestamps: Arrow's CSV writer
printed "<value out of range: 9223372036854775807>" (exit 0), and an infinite TIMESTAMPTZ as the
year 32103; the table and JSON failed."""

from __future__ import annotations

import datetime
import io
import json

import duckdb
import pyarrow as pa
import pytest

from trainer import sql_output

INFINITE = ("SELECT 'infinity'::TIMESTAMP AS t, '-infinity'::TIMESTAMP AS t_neg, 'infinity'::DATE AS d, "
            "'-infinity'::DATE AS d_neg, 'infinity'::TIMESTAMPTZ AS tz, TIMESTAMP '2024-01-02 03:04:05.5' AS t_ok, "
            "NULL::TIMESTAMP AS t_null")


def arrow(query: str) -> pa.Table:
    result = duckdb.sql(query).arrow()
    return result.read_all() if hasattr(result, "read_all") else result


def written(fmt: str, table: pa.Table) -> bytes:
    sink = io.BytesIO()
    assert sql_output.write_rows(fmt, iter(table.to_batches()), table.schema, sink) == table.num_rows
    return sink.getvalue()


def test_csv_writes_infinity_as_duckdb_does_and_reads_back_as_it(tmp_path):
    text = written("csv", arrow(INFINITE)).decode()
    assert "out of range" not in text and "32103" not in text
    path = tmp_path / "out.csv"
    path.write_text(text)
    again = duckdb.sql(f"SELECT t::TIMESTAMP = 'infinity'::TIMESTAMP, t_neg::TIMESTAMP = '-infinity'::TIMESTAMP, "
                       f"d::DATE = 'infinity'::DATE, d_neg::DATE = '-infinity'::DATE, "
                       f"tz::TIMESTAMPTZ = 'infinity'::TIMESTAMPTZ, t_ok::TIMESTAMP, t_null "
                       f"FROM read_csv('{path}', all_varchar = true)").fetchall()
    assert again == [(True, True, True, True, True, datetime.datetime(2024, 1, 2, 3, 4, 5, 500000), None)]


def test_json_and_the_table_show_infinity():
    assert json.loads(written("json", arrow(INFINITE))) == [
        {"t": "infinity", "t_neg": "-infinity", "d": "infinity", "d_neg": "-infinity", "tz": "infinity",
         "t_ok": "2024-01-02T03:04:05.500000", "t_null": None}]
    table = sql_output.format_table(arrow(INFINITE), 1, 10).splitlines()
    assert table[2].split() == ["infinity", "-infinity", "infinity", "-infinity", "infinity", "2024-01-02",
                                "03:04:05.500000", "NULL"]


def test_a_column_with_infinity_keeps_its_finite_values_as_arrow_writes_them():
    table = arrow("SELECT * FROM (VALUES ('infinity'::TIMESTAMP), (TIMESTAMP '2024-01-02 03:04:05')) v(t)")
    assert written("csv", table).decode().splitlines() == ["t", '"infinity"', '"2024-01-02 03:04:05.000000"']
    plain = arrow("SELECT TIMESTAMP '2024-01-02 03:04:05' AS t")    # no infinity: Arrow's own column, unquoted
    assert written("csv", plain).decode().splitlines() == ["t", "2024-01-02 03:04:05.000000"]


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("query", ["SELECT '12000-01-01'::DATE AS d", "SELECT '294246-01-01'::TIMESTAMP AS d",
                                   "SELECT '0044-03-15 (BC)'::TIMESTAMPTZ AS d"])
def test_a_date_no_text_format_can_write_is_refused_by_name(fmt, query):
    with pytest.raises(ValueError, match="column d: .* value outside years 1 to 9999"):
        written(fmt, arrow(query))
