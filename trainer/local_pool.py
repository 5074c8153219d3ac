"""Sweep groups on local worker processes: N spawned workers, one TensorFlow thread each.

Workers write straight into the results root and send a GroupResult per group to the
parent. Ctrl-C or SIGTERM: every worker gets SIGTERM, marks the runs it trains
interrupted and exits; stragglers are killed after SHUTDOWN_GRACE_SECONDS. No process
is left behind, even if the parent is killed (the kernel signals the workers).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.plan import Group
from trainer.task import GroupResult, lost_group, train_group

# Seconds a worker gets to mark its runs interrupted after SIGTERM, before SIGKILL.
SHUTDOWN_GRACE_SECONDS = 30


@dataclass(eq=False)
class Worker:
    process: multiprocessing.process.BaseProcess
    conn: Any  # multiprocessing.connection.Connection to the worker


def run_local(groups: list[Group], root: Path, workers: int, report: Callable[[GroupResult], bool]) -> None:
    """Train the groups on `workers` spawned processes; `report` each result (False: start no more)."""
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")
    waiting = deque(groups)
    busy: dict[Worker, Group] = {}
    started: list[Worker] = []

    def give_work(worker: Worker | None) -> None:
        if worker is None:
            worker = _start_worker(context, root)
            started.append(worker)
        if waiting:
            busy[worker] = waiting.popleft()
            worker.conn.send(busy[worker])
        else:
            worker.conn.send(None)  # no more work: exit

    try:
        for _ in range(min(workers, len(groups))):
            give_work(None)
        while busy:
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in [w for w in busy if w.conn in ready or w.process.sentinel in ready]:
                group = busy.pop(worker)
                try:
                    result = worker.conn.recv()
                except (EOFError, OSError):
                    worker.process.join()
                    result = lost_group(group, root, f"worker process died (exit code {worker.process.exitcode})")
                if result.interrupted or not worker.process.is_alive():
                    worker.process.join()
                    worker = None  # a fresh worker takes the next group
                if not report(result):
                    waiting.clear()
                if waiting or worker is not None:
                    give_work(worker)
    except BaseException:
        _shut_down(started)
        raise
    for worker in started:
        worker.process.join()


def _start_worker(context, root: Path) -> Worker:
    parent_end, child_end = context.Pipe()
    process = context.Process(target=_worker_main, args=(child_end, str(root)), name="sweep-worker", daemon=True)
    # Started with SIGINT ignored (inherited), so a Ctrl-C while it imports prints no
    # traceback; _worker_main then installs its own handler.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    child_end.close()
    return Worker(process, parent_end)


def _worker_main(conn, root: str) -> None:
    """A worker process: one TensorFlow thread; train groups until told to stop."""
    _exit_with_parent()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt_once)
    from trainer.training import configure_threads

    configure_threads(1)  # before any TensorFlow op runs in this process
    try:
        while (group := conn.recv()) is not None:
            result = train_group(group, Path(root))
            conn.send(result)
            if result.interrupted:
                return
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass  # interrupted while idle, or the sweep is gone


def _interrupt_once(signum, frame) -> None:
    """Ctrl-C reaches a worker both from the terminal and from the parent: the first signal
    interrupts training, later ones must not interrupt the writing of `interrupted`."""
    signal.signal(signal.SIGINT, _ignore)  # not SIG_IGN: a signal already pending would raise OSError
    signal.signal(signal.SIGTERM, _ignore)
    raise KeyboardInterrupt


def _ignore(signum, frame) -> None:
    pass


def _exit_with_parent() -> None:
    """On Linux, have the kernel send SIGTERM to this worker if the sweep dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before prctl
            os.kill(os.getpid(), signal.SIGTERM)


def _shut_down(workers: list[Worker]) -> None:
    """SIGTERM every live worker (it marks its runs interrupted), wait, kill stragglers, reap all."""
    for worker in workers:
        if worker.process.is_alive():
            os.kill(worker.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
    try:
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop waiting
    for worker in workers:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
