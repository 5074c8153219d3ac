"""Sweep groups on local worker processes: N spawned workers, one TensorFlow thread each.

Workers write straight into the results root; over their pipe they send the parent a
`Trained` after every compiled call and a GroupResult per group. TensorFlow's start-up
notices are dropped from their stderr (trainer.quiet).

Ctrl-C or SIGTERM: every worker gets SIGTERM. A worker still starting (importing
TensorFlow, before it takes any run) dies of it at once: SIGTERM keeps its default action
until then. A training worker marks its runs interrupted when its compiled call returns
and exits; one that cannot within SHUTDOWN_GRACE_SECONDS (a long compile) is killed, and
its runs read as interrupted all the same, as a killed writer's do (their lock is free),
with what was flushed so far. So the sweep exits within about SHUTDOWN_GRACE_SECONDS. No
process is left behind, even if the parent is killed (the kernel signals the workers).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.resource_tracker
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer import interrupts
from trainer.plan import Group
from trainer.progress import BAR_SECONDS, Listener, Trained, to_driver
from trainer.task import lost_group, train_group

# Seconds a worker gets to mark its runs interrupted after SIGTERM, before SIGKILL: Ctrl-C
# must end a sweep within 3 s.
SHUTDOWN_GRACE_SECONDS = 2.0


@dataclass(eq=False)
class Worker:
    process: multiprocessing.process.BaseProcess
    conn: Any  # multiprocessing.connection.Connection to the worker


def run_local(groups: list[Group], root: Path, workers: int, progress: Listener) -> None:
    """Train the groups on `workers` spawned processes; tell `progress` what they train and each
    result (its report False: start no more)."""
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")
    waiting = deque(groups)
    busy: dict[Worker, Group] = {}
    started: list[Worker] = []

    def give_work(worker: Worker | None) -> None:
        if worker is None:
            # Before the hold: the first spawn starts multiprocessing's resource tracker, and that
            # unblocks SIGINT in this thread on its way out, so the first worker inherited it
            # unblocked and printed a traceback for a Ctrl-C during its start.
            multiprocessing.resource_tracker.ensure_running()
            with _sigint_held_back():  # a Ctrl-C meanwhile lands here, once the worker is in `started`
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
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=BAR_SECONDS))
            progress.tick()
            for worker in [w for w in busy if w.conn in ready or w.process.sentinel in ready]:
                try:
                    result = worker.conn.recv()
                except (EOFError, OSError):
                    worker.process.join()
                    result = lost_group(busy[worker], root,
                                        f"worker process died (exit code {worker.process.exitcode})")
                if isinstance(result, Trained):
                    progress.trained(result)
                    continue
                busy.pop(worker)
                if result.interrupted or not worker.process.is_alive():
                    worker.process.join()
                    worker = None  # a fresh worker takes the next group
                if not progress.report(result):
                    waiting.clear()
                if waiting or worker is not None:
                    give_work(worker)
    except BaseException:
        _shut_down(started)
        raise
    for worker in started:
        worker.process.join()


@contextmanager
def _sigint_held_back() -> Iterator[None]:
    """Workers started inside keep SIGINT blocked (a child inherits the mask of the thread that
    forks it, through exec) until _worker_main drops a pending one: a Ctrl-C while they import
    prints no traceback (the parent's SIGTERM ends them then); _serve installs their handler.

    The parent keeps a Ctrl-C that arrives meanwhile and raises it on leaving, once the worker is
    registered. (Ignoring SIGINT meanwhile, as before, dropped it; with every worker still
    importing, the sweep went on. Blocking alone is no hold: the mask is per thread, and another
    thread of the process takes the signal.)
    """
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, previous)
    if received:
        signal.raise_signal(signal.SIGINT)   # as the parent's own handler takes it


def _start_worker(context, root: Path) -> Worker:
    parent_end, child_end = context.Pipe()
    process = context.Process(target=_worker_main, args=(child_end, str(root)), name="sweep-worker", daemon=True)
    process.start()
    child_end.close()
    return Worker(process, parent_end)


def _worker_main(conn, root: str) -> None:
    """A worker process: one TensorFlow thread; train groups until told to stop."""
    # SIGINT is blocked since the start (_sigint_held_back): ignored first, so that a Ctrl-C
    # pending since then is dropped (the parent has it), then unblocked until _serve's handler.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _exit_with_parent()
    _serve(conn, root)
    # Its runs are closed and its results sent: nothing is left to finalise, and TensorFlow's
    # teardown at interpreter exit would take seconds (the sweep waits for its workers).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _serve(conn, root: str) -> None:
    from trainer.quiet import native_info_dropped

    with native_info_dropped():
        from trainer.training import configure_threads

        configure_threads(1)  # before any TensorFlow op runs in this process
        # Until here SIGTERM kills at once (nothing is held); from here on it marks the runs interrupted.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _interrupt_once)
        try:
            while (group := conn.recv()) is not None:
                result = train_group(group, Path(root), on_trained=to_driver(conn.send, (OSError,)))
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
    interrupts.stop(signum, frame)


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
