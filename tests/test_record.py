"""ibstore.record: run.json round trips, and every damaged form is one RecordError."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ibstore import schema
from ibstore.record import MAX_DEPTH, MAX_RECORD_BYTES, SCHEMA_VERSION, RecordError, RunRecord, Status

BASE = {"run_id": "r1", "status": "completed", "schema_version": SCHEMA_VERSION}


def encode(**fields) -> bytes:
    return json.dumps({**BASE, **fields}).encode()


def test_schema_version_is_one_number():
    assert schema.SCHEMA_VERSION == SCHEMA_VERSION == 2


def test_round_trip_keeps_every_field_and_unknown_keys():
    record = RunRecord(
        run_id="bias=-1-s3", group_id="bias=-1", name="tanh", cohort="c", config={"a": {"b": [1, 2]}},
        seed=3, split_seed=0, status=Status.DIVERGED, error=None,
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), epochs_done=7, epochs_total=10,
        versions={"python": "3.11", "tensorflow": None}, host="h", pid=12, ignored_keys=["x"],
        schema_version=SCHEMA_VERSION, dead_network=False, diverged=True,
        final_train_accuracy=0.5, final_test_accuracy=0.25, best_test_accuracy=0.75, later_key={"k": 1})
    again = RunRecord.from_json_bytes(record.to_json_bytes())
    assert again == record
    assert again.later_key == {"k": 1}
    assert again.status is Status.DIVERGED and f"{again.status}" == "diverged"


def test_non_finite_losses_are_stored_as_null():
    record = RunRecord(**BASE, final_train_loss=float("nan"), final_test_loss=float("inf"))
    assert json.loads(record.to_json_bytes())["final_train_loss"] is None
    assert RunRecord.from_json_bytes(record.to_json_bytes()).final_test_loss is None


def test_older_record_without_new_fields_reads_with_nulls():
    old = encode(schema_version=1, started_at="2026-01-01T00:00:00", config={"epochs": 3})
    record = RunRecord.from_json_bytes(old)
    assert record.schema_version == 1
    assert record.final_test_accuracy is None and record.dead_network is None


def test_naive_times_are_utc_and_compare_with_aware_ones():
    record = RunRecord.from_json_bytes(encode(started_at="2026-01-01T10:00:00+02:00",
                                              finished_at="2026-01-01T09:30:00"))
    assert record.finished_at.tzinfo is not None
    assert record.finished_at - record.started_at == timedelta(hours=1, minutes=30)


@pytest.mark.parametrize("data, words", [
    (b"[" * 100_000 + b"]" * 100_000, ["100000 deep", str(MAX_DEPTH)]),
    (encode(config={"x": json.loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))}), ["deep"]),
    (encode(seed=10**30), ["integer", "64-bit"]),
    (encode(epochs_done=-(2**63) - 1), ["64-bit"]),
    (b'{"run_id": "r", "status": "completed", "schema_version": 2, "x": ' + b"9" * 100_000 + b"}",
     ["100000 digits", "64-bit"]),
    (b'{"run_id": "r", "status": "completed", "schema_version": 2, "x": 1e999}', ["1e999"]),
    (b'{"run_id": "r", "status": "completed", "schema_version": 2, "x": NaN}', ["NaN"]),
    (b'{"run_id": "r", "status": "completed", "schema_version": 2, "x": -Infinity}', ["-Infinity"]),
    (b"[1, 2]", ["object", "array"]),
    (b'"completed"', ["object", "string"]),
    (b"{not json", ["not valid JSON"]),
    (b'{"run_id": "\xff"}', ["UTF-8"]),
    (encode(status=["completed"]), ["status", "'running'", "['completed']"]),
    (encode(status=None), ["status", "None"]),
    (encode(status="done"), ["status", "'done'"]),
    (encode(config=[1, 2]), ["config", "dictionary"]),
    (encode(seed=2**32), ["seed", "4294967295"]),
    (encode(epochs_done=-1), ["epochs_done", "0"]),
    (encode(started_at="yesterday"), ["started_at", "'yesterday'"]),
    (encode(started_at="0001-01-01T00:00:00+05:00"), ["started_at", "UTC"]),
    (encode(run_id=5), ["run_id", "string"]),
    (encode(name="\ud800"), ["\\ud800", "UTF-16"]),
    (encode(config={"\udc00": 1}), ["\\udc00"]),
    (json.dumps({"status": "completed"}).encode(), ["run_id", "schema_version", "required"]),
])
def test_damaged_record_is_one_record_error_naming_the_problem(data, words):
    with pytest.raises(RecordError) as caught:
        RunRecord.from_json_bytes(data)
    for word in words:
        assert word in str(caught.value)


def test_surrogate_pairs_are_text_and_lone_halves_cannot_be_written():
    assert RunRecord.from_json_bytes(b'{"run_id": "r", "status": "completed", "schema_version": 2, '
                                     b'"name": "\\ud83d\\ude00"}').name == "\U0001F600"
    with pytest.raises(RecordError, match="cannot be written"):
        RunRecord(**BASE, name="\ud800").to_json_bytes()


def test_size_limit_is_checked_before_parsing():
    huge = encode(error="x" * MAX_RECORD_BYTES)
    with pytest.raises(RecordError, match=f"at most {MAX_RECORD_BYTES}"):
        RunRecord.from_json_bytes(huge)
    with pytest.raises(RecordError, match="bytes"):
        RunRecord(**BASE, error="x" * MAX_RECORD_BYTES).to_json_bytes()


def test_brackets_inside_strings_do_not_count_as_depth():
    deep_text = "[" * 1000 + '\\"{'
    record = RunRecord.from_json_bytes(encode(error=deep_text, name='a"]]]'))
    assert record.error == deep_text


# ---------------------------------------------------------------- the runs view's rows

def runs_view(records: list[RunRecord]):
    import duckdb

    from ibstore.views import runs_table

    con = duckdb.connect()
    con.register("runs", runs_table(records))
    return con


def test_runs_view_has_one_typed_column_per_flattened_config_key():
    configs = [
        {"initial_bias": 0, "epochs": 5, "activation_fn": "relu", "max_norm_weights": True,
         "architecture": [10, 7], "optimizer": {"name": "adam", "lr": 0.001}, "mixed": "a",
         "seed": 99, "empty": {}, "unset": None},
        {"initial_bias": 0.5, "epochs": 6, "activation_fn": "tanh", "max_norm_weights": False,
         "architecture": [3], "optimizer": {"name": "sgd", "lr": 1}, "mixed": 1, "Seed": 5},
    ]
    records = [RunRecord(**{**BASE, "run_id": f"r{i}"}, seed=i, config=c) for i, c in enumerate(configs)]
    con = runs_view(records)
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE runs)").fetchall())
    assert {key: types[key] for key in ("initial_bias", "epochs", "activation_fn", "max_norm_weights",
                                        "architecture", "optimizer.name", "optimizer.lr", "mixed",
                                        "seed", "empty", "unset")} == {
        "initial_bias": "DOUBLE", "epochs": "BIGINT", "activation_fn": "VARCHAR",
        "max_norm_weights": "BOOLEAN", "architecture": "VARCHAR", "optimizer.name": "VARCHAR",
        "optimizer.lr": "DOUBLE", "mixed": "VARCHAR", "seed": "BIGINT", "empty": "VARCHAR", "unset": "VARCHAR"}
    assert "Seed" not in types     # DuckDB names ignore case: the record's seed wins
    rows = con.execute('SELECT run_id, seed, initial_bias, architecture, "optimizer.lr", mixed, empty, unset '
                       "FROM runs ORDER BY run_id").fetchall()
    assert rows == [("r0", 0, 0.0, "[10, 7]", 0.001, '"a"', "{}", None),
                    ("r1", 1, 0.5, "[3]", 1.0, "1", None, None)]


def test_runs_view_record_columns_and_older_records():
    new = RunRecord(**BASE, final_train_accuracy=0.9, final_test_accuracy=0.8, final_train_loss=0.1,
                    final_test_loss=0.2, best_test_accuracy=0.85, epochs_done=4, dead_network=True,
                    diverged=False, started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:01:00Z")
    old = RunRecord.from_json_bytes(encode(run_id="old", schema_version=1, epochs_done=3))
    con = runs_view([new, old])
    columns = ("final_train_accuracy, final_test_accuracy, final_train_loss, final_test_loss, "
               "best_test_accuracy, epochs_done, dead_network, diverged, status, duration_s")
    assert con.execute(f"SELECT {columns} FROM runs ORDER BY run_id").fetchall() == [
        (None, None, None, None, None, 3, None, None, "completed", None),
        (0.9, 0.8, 0.1, 0.2, 0.85, 4, True, False, "completed", 60.0)]
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE runs)").fetchall())
    assert types["dead_network"] == "BOOLEAN" and types["final_test_accuracy"] == "DOUBLE"


def test_accuracy_per_initial_bias_is_one_line_of_sql(tmp_path, capsys):
    """The researcher's first question, answered by `trainer sql`, checked against the metrics files."""
    import pyarrow.parquet as pq

    from tests.conftest import BIASES, write_cohort
    from trainer import cli

    ids = write_cohort(tmp_path)
    assert cli.main(["sql", "SELECT initial_bias, avg(final_test_accuracy) AS acc FROM runs GROUP BY 1",
                     "--format", "json", "--results", str(tmp_path)]) == 0
    answer = {row["initial_bias"]: row["acc"] for row in json.loads(capsys.readouterr().out)}
    expected: dict[float, list[float]] = {}
    for run_id in ids:
        metrics = pq.read_table(tmp_path / "runs" / run_id / "metrics.parquet").to_pandas()
        config = json.loads((tmp_path / "runs" / run_id / "run.json").read_text())["config"]
        test = metrics[metrics.split == "test"]
        expected.setdefault(config["initial_bias"], []).append(test.loc[test.epoch.idxmax(), "accuracy"])
    assert sorted(answer) == sorted(BIASES)
    for bias, accuracies in expected.items():
        assert answer[bias] == pytest.approx(sum(accuracies) / len(accuracies))
    assert answer[-1.0] < 0.6 < min(answer[b] for b in BIASES if b >= 0)   # the dead relu networks


# ---------------------------------------------------------------- trainer ls

def test_ls_sorts_numbers_in_run_ids_by_value():
    from trainer.listing import natural_key

    ids = ["bias-2-0-3fa1c2d0-s0", "bias-0-2-3fa1c2d0-s0", "bias-m1-0-3fa1c2d0-s0", "bias-0-0-3fa1c2d0-s0",
           "bias-10-0-3fa1c2d0-s0", "bias-0-0-3fa1c2d0-s10", "bias-0-0-3fa1c2d0-s2", "m0-5", "0", "0-2", "m1"]
    assert sorted(ids, key=natural_key) == [
        "m1", "m0-5", "0", "0-2",
        "bias-m1-0-3fa1c2d0-s0", "bias-0-0-3fa1c2d0-s0", "bias-0-0-3fa1c2d0-s2", "bias-0-0-3fa1c2d0-s10",
        "bias-0-2-3fa1c2d0-s0", "bias-2-0-3fa1c2d0-s0", "bias-10-0-3fa1c2d0-s0"]


def test_ls_table_is_aligned_escaped_and_has_a_header_when_empty():
    from ibstore.text import terminal_text as escape
    from trainer.listing import COLUMNS, table

    assert table([]).split() == list(COLUMNS)
    records = [RunRecord(**{**BASE, "run_id": "b\nfake  completed"}, name="x\x1b[2J\u202ey", epochs_done=3,
                         epochs_total=10, final_test_accuracy=0.91234, dead_network=True, diverged=True),
               RunRecord(**{**BASE, "run_id": "a", "status": "running"})]
    lines = table(records).splitlines()
    assert len(lines) == 3
    assert lines[1].split() == ["a", "running", "?/?", "-", "-"]
    assert lines[2].split() == ["b\\nfake", "completed", "completed", "3/10", "0.912", "dead,diverged",
                                "x\\x1b[2J\\u202ey"]
    shown_id = "b\\nfake  completed"
    assert lines[0].index("status") == lines[1].index("running") == lines[2].index("completed", len(shown_id))
    assert lines[0].index("test_acc") + len("test_acc") == lines[2].index("0.912") + len("0.912")  # right-aligned
    assert escape("plain é 名前") == "plain é 名前" and escape("\ud800") == "\\ud800"


def test_ls_where_filters_through_the_read_only_sandbox(tmp_path, capsys):
    from tests.conftest import write_cohort
    from trainer import cli

    write_cohort(tmp_path)
    before = {path: path.read_bytes() for path in (tmp_path / "runs").rglob("*") if path.is_file()}
    assert cli.main(["ls", "--results", str(tmp_path), "--where", "initial_bias < 0"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert len(rows) == 2 and all(row.split()[4] == "dead" for row in rows)
    for hostile in ("1=1; DROP TABLE runs", "run_id IN (SELECT 1 FROM (COPY runs TO 'x.csv'))", "nope >"):
        assert cli.main(["ls", "--results", str(tmp_path), "--where", hostile]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --where: ") and len(err.strip().splitlines()) == 1
    after = {path: path.read_bytes() for path in (tmp_path / "runs").rglob("*") if path.is_file()}
    assert after == before and not Path("x.csv").exists()


def test_ls_of_an_empty_root_names_a_config_that_exists(tmp_path, capsys, monkeypatch):
    from trainer import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["ls", "--results", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["run_id", "status", "epochs", "test_acc", "flags", "name"]
    config = out[2].split("trainer run ")[1].split()[0]
    assert Path(config).is_absolute() and Path(config).is_file()


def test_a_config_with_thousands_of_keys_cannot_make_runs_unusably_wide():
    from ibstore.views import MAX_CONFIG_COLUMNS, RUNS_SCHEMA

    many = {f"k{i:05}": i for i in range(MAX_CONFIG_COLUMNS + 500)}
    wide = RunRecord(**{**BASE, "run_id": "wide"}, config={"initial_bias": 1.0, **many})
    plain = RunRecord(**BASE, config={"initial_bias": 0.5})
    con = runs_view([wide, plain])
    columns = [name for (name,) in con.execute("SELECT column_name FROM (DESCRIBE runs)").fetchall()]
    assert len(columns) == len(RUNS_SCHEMA) + MAX_CONFIG_COLUMNS
    assert con.execute("SELECT initial_bias FROM runs ORDER BY run_id").fetchall() == [(0.5,), (1.0,)]


def test_mutated_run_json_is_a_record_or_a_record_error_never_another_exception():
    """1,000 seeded byte mutations of a real record: each either validates (and then
    makes a runs row and writes back) or raises RecordError."""
    import random

    from ibstore.views import config_table, runs_table

    original = RunRecord(**BASE, name="n", config={"initial_bias": 0.2, "architecture": [10, 7], "o": {"lr": 1}},
                         seed=3, started_at="2026-01-01T00:00:00+02:00", epochs_done=4, final_test_accuracy=0.5)
    data = original.to_json_bytes()
    rng = random.Random(0)
    inserts = [b"[", b"{", b'"', b"\\", b"\\ud800", b"1e999", b"-", b"9" * 25, b"\x00", b"NaN", b"null", b"[]"]
    accepted = 0
    for _ in range(1000):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(mutated))
            choice = rng.random()
            if choice < 0.4:
                mutated[at] = rng.randrange(256)
            elif choice < 0.7:
                del mutated[at:at + rng.randint(1, 20)]
            else:
                mutated[at:at] = rng.choice(inserts)
        try:
            record = RunRecord.from_json_bytes(bytes(mutated))
        except RecordError:
            continue
        runs_table([record, original])
        config_table([record])
        assert RunRecord.from_json_bytes(record.to_json_bytes()) == record
        accepted += 1
    assert 0 < accepted < 1000
