"""ibstore.read_retry: a store read that loses a file N times waits, rescans and tries again,
with growing, jittered and bounded waits (issue 20). The waits are recorded, never slept."""

from __future__ import annotations

import pytest

from ibstore import read_retry
from explorer.results import ResultStore
from ibstore import sandbox


@pytest.fixture
def events(monkeypatch):
    """("wait", seconds) for each sleep of the retry, ("rescan",) for each refresh of a store."""
    seen: list[tuple] = []
    monkeypatch.setattr(read_retry.time, "sleep", lambda seconds: seen.append(("wait", seconds)))
    refresh = ResultStore.refresh
    monkeypatch.setattr(ResultStore, "refresh", lambda store, wait=True: seen.append(("rescan",)) or refresh(store, wait))
    return seen


def waits_of(events: list[tuple]) -> list[float]:
    return [event[1] for event in events if event[0] == "wait"]


def losing_read(times: int):
    """A read that loses a file its first `times` calls, then answers with the snapshots it saw."""
    seen = []

    def read(snapshot):
        seen.append(snapshot)
        if len(seen) <= times:
            raise sandbox.FileVanished(f"metrics.part-{len(seen):06d}.parquet is gone")
        return seen
    return read


def bounds(attempt: int) -> tuple[float, float]:
    """The wait before try `attempt` lies in [low, high): written out from the formula."""
    base = read_retry.FIRST_WAIT_S * 2 ** (attempt - 2)
    return base * (1 - read_retry.JITTER), base * (1 + read_retry.JITTER)


@pytest.mark.parametrize("losses", range(read_retry.READ_ATTEMPTS))
def test_a_read_losing_a_file_fewer_times_than_the_attempts_answers_on_a_new_scan_each_time(
        losses, events, tmp_path, private_index):
    store = ResultStore(tmp_path / "results", max_age_s=3600)   # only the retry rescans
    store.snapshot()
    events.clear()
    seen = store._retried(losing_read(losses))
    assert len(seen) == losses + 1
    # every loss: a wait, then a new scan, then the next try
    assert [event[0] for event in events] == ["wait", "rescan"] * losses
    for attempt, waited in enumerate(waits_of(events), start=2):
        low, high = bounds(attempt)
        assert low <= waited < high


def test_a_read_losing_every_attempt_raises_the_last_loss_after_bounded_waits(events, tmp_path, private_index):
    store = ResultStore(tmp_path / "results", max_age_s=3600)
    with pytest.raises(sandbox.FileVanished, match=f"part-{read_retry.READ_ATTEMPTS:06d}"):
        store._retried(losing_read(read_retry.READ_ATTEMPTS + 3))
    assert len(waits_of(events)) == read_retry.READ_ATTEMPTS - 1
    assert sum(waits_of(events)) < read_retry.max_total_wait_s()


def test_other_errors_are_not_retried(events, tmp_path, private_index):
    store = ResultStore(tmp_path / "results", max_age_s=3600)

    def broken(snapshot):
        raise sandbox.SqlError("syntax error")
    with pytest.raises(sandbox.SqlError, match="syntax error"):
        store._retried(broken)
    assert waits_of(events) == []


def test_the_waits_double_and_the_jitter_spans_its_range():
    assert read_retry.wait_s(2, lambda: 0.0) == pytest.approx(read_retry.FIRST_WAIT_S * (1 - read_retry.JITTER))
    assert read_retry.wait_s(3, lambda: 0.5) == pytest.approx(2 * read_retry.FIRST_WAIT_S)
    assert read_retry.wait_s(5, lambda: 1.0) == pytest.approx(8 * read_retry.FIRST_WAIT_S * (1 + read_retry.JITTER))
    # 0.025 * (1 + 2 + 4 + 8) * 1.5: the bound a reader can wait in all
    assert read_retry.max_total_wait_s() == pytest.approx(0.5625)
