"""Logging schedules: reference tiers, endpoints, parametrised schedules, errors."""

import math

import numpy as np
import pytest

from trainer.schedule import ScheduleError, logged_epochs, validate_schedule


def test_default_is_the_stated_deep_bottleneck_schedule_for_8000_epochs():
    expected = [*range(0, 50), *range(50, 100, 2), *range(100, 2000, 20), *range(2000, 8001, 100)]
    logged = logged_epochs("default", 8000)
    assert logged == expected
    assert len(logged) == 50 + 25 + 95 + 61 == 231
    assert logged[49:52] == [49, 50, 52] and logged[73:76] == [96, 98, 100]


def test_deep_bottleneck_is_its_do_report_before_add4d85_for_8000_epochs():
    expected = [*range(0, 50), *range(50, 100, 2), *range(100, 500, 5), *range(500, 2000, 20),
                *range(2000, 8001, 100)]
    logged = logged_epochs("deep_bottleneck", 8000)
    assert logged == expected
    assert len(logged) == 50 + 25 + 80 + 75 + 61 == 291


def test_ibsgd_for_8000_epochs():
    expected = [*range(0, 20), *range(20, 100, 5), *range(100, 2000, 20), *range(2000, 8001, 100)]
    assert logged_epochs("ibsgd", 8000) == expected
    assert len(expected) == 192


@pytest.mark.parametrize("schedule", ["default", "ibsgd", {"every": 7}, {"log_spaced": 50}])
@pytest.mark.parametrize("epochs", [1, 2, 137, 2345])
def test_always_initial_and_last_epoch_sorted_unique(schedule, epochs):
    logged = logged_epochs(schedule, epochs)
    assert logged[0] == 0 and logged[-1] == epochs
    assert logged == sorted(set(logged))
    assert all(0 <= e <= epochs for e in logged)


def test_zero_epochs_logs_only_the_initial_network():
    assert logged_epochs("default", 0) == [0]


def test_every_k():
    assert logged_epochs({"every": 7}, 20) == [0, 7, 14, 20]
    assert logged_epochs({"every": 5}, 20) == [0, 5, 10, 15, 20]
    assert logged_epochs({"every": 1}, 4) == [0, 1, 2, 3, 4]


def test_log_spaced_is_geometric_and_at_most_n():
    logged = logged_epochs({"log_spaced": 400}, 8000)
    assert 250 < len(logged) <= 400
    assert logged[:10] == list(range(10))  # the dense start merges duplicates
    late = np.array([e for e in logged if e >= 1000]) + 1
    ratios = late[1:] / late[:-1]
    assert np.allclose(ratios, 8001 ** (1 / 399), rtol=2e-3)
    # Dense early, sparse late.
    assert sum(e < 100 for e in logged) > sum(e > 4000 for e in logged)


def test_log_spaced_small_n():
    assert logged_epochs({"log_spaced": 2}, 100) == [0, 100]
    assert logged_epochs({"log_spaced": 3}, 99) == [0, 9, 99]  # rint(sqrt(100)) - 1 = 9


def test_validate_normalises():
    assert validate_schedule("default") == "default"
    normalised = validate_schedule({"every": np.int64(5)})
    assert normalised == {"every": 5} and type(normalised["every"]) is int


@pytest.mark.parametrize("value, fragment", [
    ("weekly", "'weekly'"),
    ({"every": 0}, "every must be an integer from 1 to 1000000"),
    ({"every": 2.5}, "every must be an integer from 1 to 1000000"),
    ({"every": True}, "every must be an integer from 1 to 1000000"),
    ({"log_spaced": 1}, "log_spaced must be an integer from 2 to 1000001"),
    ({"hourly": 3}, "{'hourly': 3}"),
    ({"every": 2, "log_spaced": 3}, "not allowed"),
    (None, "None"),
])
def test_validate_errors_name_value_and_allowed(value, fragment):
    with pytest.raises(ScheduleError) as error:
        validate_schedule(value)
    message = str(error.value)
    assert fragment in message
    assert "'default'" in message and "'ibsgd'" in message and "log_spaced" in message
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("epochs", [-1, 2.0, True, math.nan])
def test_bad_epochs(epochs):
    with pytest.raises(ScheduleError, match="epochs="):
        logged_epochs("default", epochs)
