"""ibstore.lifecycle: what each command does with a run, by its status as shown, and what a
fresh writer may replace (the table of DESIGN.md, "Runs, locks and sweeps")."""

from __future__ import annotations

import socket

import pytest

from ibstore.lifecycle import (Action, Existing, Redo, action, current_status, existing, holder_text, may_replace,
                               read_record)
from ibstore.lock import RunLock
from ibstore.record import SCHEMA_VERSION, RunRecord, Status, utc_now
from trainer.store import write_record

SWEEP = Redo()
RETRY_FAILED = Redo(failed=True)
RESUME = Redo(interrupted=True)
RUN = Redo(interrupted=True, failed=True)                    # `trainer run`
FORCE = Redo(interrupted=True, failed=True, completed=True)  # --force (run or sweep)

# status as shown -> action, for each command; written out from DESIGN.md, not derived from the code.
EXPECTED = {
    None: {SWEEP: Action.TRAIN, RETRY_FAILED: Action.TRAIN, RESUME: Action.TRAIN, RUN: Action.TRAIN,
           FORCE: Action.TRAIN},
    Status.RUNNING: {SWEEP: Action.HELD, RETRY_FAILED: Action.HELD, RESUME: Action.HELD, RUN: Action.HELD,
                     FORCE: Action.HELD},
    Status.COMPLETED: {SWEEP: Action.KEEP, RETRY_FAILED: Action.KEEP, RESUME: Action.KEEP, RUN: Action.KEEP,
                       FORCE: Action.TRAIN},
    Status.FAILED: {SWEEP: Action.KEEP, RETRY_FAILED: Action.TRAIN, RESUME: Action.KEEP, RUN: Action.TRAIN,
                    FORCE: Action.TRAIN},
    Status.DIVERGED: {SWEEP: Action.KEEP, RETRY_FAILED: Action.TRAIN, RESUME: Action.KEEP, RUN: Action.TRAIN,
                      FORCE: Action.TRAIN},
    Status.INTERRUPTED: {SWEEP: Action.KEEP, RETRY_FAILED: Action.KEEP, RESUME: Action.CONTINUE,
                         RUN: Action.CONTINUE, FORCE: Action.CONTINUE},
}


@pytest.mark.parametrize("shown", list(EXPECTED))
def test_each_command_trains_keeps_continues_or_waits_as_documented(shown):
    for redo, expected in EXPECTED[shown].items():
        assert action(shown, redo) is expected, (shown, redo)


def test_a_fresh_writer_replaces_dead_and_interrupted_runs_and_what_its_command_redoes():
    def record(status: Status) -> RunRecord:
        return RunRecord(run_id="r", status=status, schema_version=SCHEMA_VERSION)
    for redo in (SWEEP, RETRY_FAILED, RESUME, RUN, FORCE):
        assert may_replace(None, redo)
        # Under the writer's lock a `running` record is a dead writer's.
        assert may_replace(record(Status.RUNNING), redo) and may_replace(record(Status.INTERRUPTED), redo)
        assert may_replace(record(Status.COMPLETED), redo) is (redo is FORCE)
        for status in (Status.FAILED, Status.DIVERGED):
            assert may_replace(record(status), redo) is (redo in (RETRY_FAILED, RUN, FORCE))


def test_a_running_record_is_live_while_its_lock_is_held_and_says_who_holds_it(tmp_path):
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    assert current_status(tmp_path, "r") is None and existing(tmp_path, "r").status is None
    record = RunRecord(run_id="r", status=Status.RUNNING, host=socket.gethostname(), heartbeat_at=utc_now(),
                       schema_version=SCHEMA_VERSION)
    write_record(run_dir / "run.json", record)
    with RunLock.acquire(run_dir):
        found = existing(tmp_path, "r")
        assert found.status is Status.RUNNING and found.note.startswith("held by pid ")
        assert found.note == holder_text(tmp_path, read_record(tmp_path, "r"))
    assert current_status(tmp_path, "r") is Status.INTERRUPTED    # its writer is gone
    write_record(run_dir / "run.json", record.model_copy(update={"status": Status.FAILED, "error": "boom\nmore"}))
    assert existing(tmp_path, "r") == Existing(Status.FAILED, "boom")
