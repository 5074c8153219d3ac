"""A sweep's progress file read back (ibstore.progress.read_progress): a sweep killed without
writing its end reads `gone`, not `running` for ever. No process is started: a pid above the
kernel's pid_max is one no process has."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ibstore.progress import SweepProgress, SweepState, progress_path, read_progress

PID_MAX = Path("/proc/sys/kernel/pid_max")


@pytest.mark.skipif(not PID_MAX.exists(), reason="needs Linux's /proc/sys/kernel/pid_max for a pid no process has")
def test_a_sweep_whose_process_is_gone_reads_gone(tmp_path):
    gone = int(PID_MAX.read_text()) + 1
    here = socket.gethostname()

    def read_back(pid: int, host: str, state: str) -> str:
        path = progress_path(tmp_path, "sweep")
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(SweepProgress("sweep", "configs", pid, host, "t0", "t1", state, {"a": "running"}).to_json_bytes())
        return read_progress(tmp_path, "sweep").state

    assert read_back(gone, here, SweepState.RUNNING) == read_back(gone, here, SweepState.WAITING) == SweepState.GONE
    assert read_back(os.getpid(), here, SweepState.RUNNING) == SweepState.RUNNING    # this process lives
    assert read_back(gone, "another-host", SweepState.RUNNING) == SweepState.RUNNING  # not this host's to judge
    assert read_back(gone, here, SweepState.FINISHED) == SweepState.FINISHED          # it wrote its end


def test_a_sweep_id_that_is_not_allowed_is_refused_saying_what_is():
    # '.' and '..' were refused with a message that listed '.' among the allowed characters
    for sweep_id in (".", "..", "-x", "a/b", "x" * 101, ""):
        with pytest.raises(ValueError, match="starting with a letter or digit"):
            progress_path(Path("/tmp"), sweep_id)
    assert progress_path(Path("/tmp"), "2026.12_run-1").name == "2026.12_run-1.json"
