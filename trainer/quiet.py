"""TensorFlow's start-up notices kept out of stderr (a sweep worker's, and any trainer process's
while it imports TensorFlow); warnings and errors pass.

TensorFlow and XLA log from C++ through absl, straight to file descriptor 2 and below
Python's sys.stderr. `TF_CPP_MIN_LOG_LEVEL=2` (set by `trainer`) does not reach what is
logged before absl is initialised ("WARNING: All log messages before absl::InitializeLog()
is called are written to STDERR", then `I0000 ... port.cc] oneDNN custom operations are
on ...`), nor some XLA notices ("XLA service ... initialized", "Compiled cluster using
XLA!"). Every one of these is an absl INFO line: a line that starts with `I` and the
absl prefix `I<mmdd> <hh:mm:ss.micros> <thread> <file:line>]`.

`native_info_dropped` sends descriptor 2 through a pipe; a thread passes every line on to
the real stderr except absl INFO lines and the pre-initialisation notice. Python's own
output (tracebacks, warnings) takes the same path and passes unchanged.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# absl's prefix: severity letter, month-day, time, thread id, source file:line, "]".
ABSL_INFO = re.compile(rb"^I\d{4} [\d:.]+\s+\d+ [^\]\s]+:\d+\] ")
# A child process that inherited descriptor 2 keeps the pipe open: the relay is not waited for longer.
RELAY_DRAIN_SECONDS = 1.0
BEFORE_ABSL_INIT = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def is_start_up_notice(line: bytes) -> bool:
    """True for the lines a worker drops: absl INFO lines and absl's pre-initialisation notice."""
    return bool(ABSL_INFO.match(line)) or line.rstrip(b"\r\n") == BEFORE_ABSL_INIT


@contextmanager
def native_info_dropped() -> Iterator[None]:
    """For the duration, descriptor 2 loses the start-up notices (`is_start_up_notice`); on exit
    every line written so far has been passed on and descriptor 2 is the real stderr again.
    Without a descriptor 2 (a process started with stderr closed) there is nothing to filter."""
    try:
        real = os.dup(2)
    except OSError:
        yield
        return
    if sys.stderr is not None:
        sys.stderr.flush()
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    relay = threading.Thread(target=_relay, args=(read_end, real), name="stderr filter", daemon=True)
    relay.start()
    try:
        yield
    finally:
        if sys.stderr is not None:
            sys.stderr.flush()
        os.dup2(real, 2)   # closes the pipe's last write end: the relay reads to the end and stops
        relay.join(RELAY_DRAIN_SECONDS)
        os.close(real)


def _relay(read_end: int, real: int) -> None:
    with os.fdopen(read_end, "rb") as lines, os.fdopen(os.dup(real), "wb", buffering=0) as out:
        for line in lines:
            if not is_start_up_notice(line):
                out.write(line)
