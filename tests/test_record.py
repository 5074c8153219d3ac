"""ibstore.record: run.json round trips, and every damaged form is one RecordError."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

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
    (encode(splits={"train": {"inputs": -1, "h_y_bits": 1.0}}), ["splits.train.inputs", "0"]),
    (encode(splits={"train": {"inputs": 10, "h_y_bits": -0.5}}), ["splits.train.h_y_bits", "0"]),
    (encode(splits={"test": {"inputs": "many", "h_y_bits": 1.0}}), ["splits.test.inputs", "'many'"]),
    (encode(splits={"test": {"inputs": 10}}), ["splits.test.h_y_bits", "required"]),
    # an attacker's hand-edited H(X) of 1e300 was taken as a ceiling; counts of other inputs than the split's
    (encode(splits={"test": {"inputs": 8, "h_y_bits": 1.0, "h_x_bits": 3.5}}),
     ["splits.test", "h_x_bits 3.5 exceeds log2 of the split's 8 inputs"]),
    (encode(splits={"test": {"inputs": 8, "h_y_bits": 1.0, "class_counts": [5, 4]}}),
     ["splits.test", "class_counts add up to 9, not the split's 8 inputs"]),
    (encode(splits=[3277, 819]), ["splits", "dictionary"]),
    (encode(final_test_accuracy=1e308), ["final_test_accuracy", "[0, 1]", "1e+308"]),
    (encode(best_test_accuracy=-0.5), ["best_test_accuracy: an accuracy lies in [0, 1]", "-0.5"]),
    (encode(config={"x.y": 1, "x": {"y": 2}}), ["config", "'x.y'", "a dotted key and a nested one"]),
    (encode(config={"a": {"b": {"c": 1}}, "a.b": {"c": 2}}), ["config", "'a.b.c'"]),
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


def test_lone_surrogate_escapes_are_refused_in_any_spelling_and_look_alikes_are_text():
    """The surrogate check is skipped where no `\\uD8..`-`\\uDF..` escape occurs: every spelling
    of one is still caught, and an escaped backslash before "ud800" is plain text."""
    for escape in (b"\\ud800", b"\\uDC00", b"\\uDfFf", b"\\ud83d"):
        with pytest.raises(RecordError, match="half of a UTF-16 pair"):
            RunRecord.from_json_bytes(b'{"run_id": "r", "status": "completed", "schema_version": 2, "name": "'
                                      + escape + b'"}')
    looks_alike = RunRecord.from_json_bytes(b'{"run_id": "r", "status": "completed", "schema_version": 2, '
                                            b'"name": "\\\\ud800"}')
    assert looks_alike.name == "\\ud800"


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1])
def test_depth_limit_holds_with_many_brackets_or_few(depth):
    """Nesting of `depth` (the config's object and the record's own add 2) alone and beside
    many shallow lists: the exact count is skipped only when brackets are few."""
    nested = "[" * (depth - 2) + "]" * (depth - 2)
    for extra in ({}, {f"k{i}": [i] for i in range(2 * MAX_DEPTH)}):
        data = encode(config={"x": json.loads(nested), **extra})
        if depth <= MAX_DEPTH:
            assert RunRecord.from_json_bytes(data).config["x"] == json.loads(nested)
        else:
            with pytest.raises(RecordError, match=f"{depth} deep"):
                RunRecord.from_json_bytes(data)


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
