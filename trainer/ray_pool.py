"""Sweep groups as Ray tasks (one CPU each) on a Ray cluster or a local Ray instance.

Two ways for results to reach the root (`mode`):

- "shared": every node sees the results root at the same absolute path (a shared
  filesystem); workers write into it and take the run locks there, as local workers do
  (on a network filesystem that does not carry flock across hosts, liveness falls back
  to heartbeats, DESIGN.md).
- "ship": workers train into node-local scratch and stream every file they write to
  this process, which writes the root and holds the locks (trainer.shipping).

"auto" (the default) writes a random nonce into the root and asks a task on every
live node to read it back: "shared" only if every node can.
"""

from __future__ import annotations

import secrets
import socket
import time
import urllib.parse
from collections import deque
from dataclasses import replace as changed
from functools import cache
from pathlib import Path

from trainer.arguments import RAY_MODES
from trainer.local_pool import SHUTDOWN_GRACE_SECONDS
from trainer.plan import Group, SweepError
from trainer.progress import BAR_SECONDS, Listener, Trained, to_driver
from trainer.shipping import RunChanges, ShipError, ShippedRuns, train_shipped
from trainer.store import unwritable
from trainer.task import GroupResult, lost_group, train_group

AUTO, SHARED, SHIP = RAY_MODES
CONNECT_SECONDS = 5
RAY_CLIENT_PORT = 10001      # Ray Client's default port (ray://host without one)


def run_ray(groups: list[Group], root: Path, address: str, progress: Listener,
            local_cpus: int | None = None, mode: str = AUTO) -> None:
    """Train the groups on the cluster at `address`; tell `progress` each result (its report
    False: start no more) and, while a group trains, its progress.

    `address`: "auto", "ray://host:port", "host:port", or "local" to start a Ray
    instance on this machine with `local_cpus` CPUs. If Ray is already
    initialised in this process, that instance is used. `mode`: one of trainer.arguments.RAY_MODES; `progress` is
    told which mode runs, and why.
    """
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        _ensure_answers(address)
        try:
            if address == "local":
                ray.init(num_cpus=local_cpus, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise SweepError(f"cannot connect to the Ray cluster at {address!r}: {' '.join(str(error).split())}") \
                from None
    try:
        if mode == AUTO:
            mode = SHARED if workers_see_root(ray, root) else SHIP
            progress.note(f"Ray workers {'see' if mode == SHARED else 'cannot see'} the results root: "
                     f"{'they write it' if mode == SHARED else 'they ship their files to this process'}")
        (_run_shared if mode == SHARED else _run_shipped)(ray, groups, root, progress)
    finally:
        if started:
            ray.shutdown()


def _ensure_answers(address: str) -> None:
    """SweepError unless something accepts a TCP connection at a "host:port" or "ray://host:port"
    address within CONNECT_SECONDS: ray.init retries an address where nothing listens for ever,
    printing only its own warnings. Other addresses are Ray's to judge."""
    target = urllib.parse.urlsplit(address if "://" in address else f"//{address}")
    try:
        host, port = target.hostname, target.port or (RAY_CLIENT_PORT if target.scheme == "ray" else None)
    except ValueError:              # a port that is no number: ray.init names it
        return
    if target.scheme not in ("", "ray") or not host or port is None:
        return
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
    except socket.gaierror as error:
        raise SweepError(f"cannot connect to the Ray cluster at {address!r}: the host {host!r} is not known "
                         f"({error.strerror or error})") from None
    except OSError as error:
        raise SweepError(f"cannot connect to the Ray cluster at {address!r}: nothing answers at {where} "
                         f"({error.strerror or error}); is its head node started (`ray start --head`) and "
                         f"is the port right?") from None


def _run_shared(ray, groups: list[Group], root: Path, progress: Listener) -> None:
    from ray.util.queue import Queue

    # The tasks' progress comes through a queue actor: a task's main thread must be the one that
    # trains (ray.cancel interrupts it there, and its runs are then marked interrupted).
    reports = Queue(actor_options={"num_cpus": 0})
    remote = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
    pending = {remote.remote(group, str(root), reports): group for group in groups}
    try:
        while pending:
            ref = _next_ready(ray, pending, progress, reports)
            group = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as error:
                result = lost_group(group, root, f"Ray task failed: {_why(error)}")
            if not progress.report(result):
                for other in pending:
                    ray.cancel(other)
                pending = {}
    except BaseException:
        for ref in pending:
            ray.cancel(ref)  # KeyboardInterrupt in the task: its runs are marked interrupted
        ray.wait(list(pending), num_returns=len(pending), timeout=SHUTDOWN_GRACE_SECONDS)
        raise
    finally:
        reports.shutdown(force=True)


def _run_shipped(ray, groups: list[Group], root: Path, progress: Listener) -> None:
    """At most one group per cluster CPU is in flight: a group's runs are locked (and show as
    running) from when it is handed to Ray until its last file is written."""
    # The three ways a stream's item ends a group (task failed, files refused, result) each release
    # the runs' locks before reading them back, in this order; one loop keeps that order visible.
    remote = ray.remote(num_cpus=1, max_retries=0)(_shipped_task)
    slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
    waiting = deque(groups)
    pending: dict = {}  # stream -> (ShippedRuns, start time)

    def start_next() -> None:
        while waiting and len(pending) < slots:
            group = waiting.popleft()
            runs = ShippedRuns.claim(root, group)
            if runs.to_train is None:
                if not progress.report(runs.result(GroupResult([], 0.0))):
                    waiting.clear()
                continue
            pending[remote.remote(runs.to_train, runs.seeds)] = (runs, time.monotonic())

    def stop(stream) -> None:
        ray.cancel(stream, force=True)  # the driver holds the truth: the worker need not clean up
        pending.pop(stream)[0].release()

    try:
        start_next()
        while pending:
            stream, item = _next_item(ray, pending, progress)
            runs, started = pending[stream]
            if isinstance(item, BaseException):
                # The task ended (never cancel it now: its worker process may already run another);
                # what it shipped stays, its runs read as interrupted once free.
                pending.pop(stream)
                runs.release()
                result = lost_group(runs.to_train, root, f"Ray task failed: {_why(item)}")
            else:
                if isinstance(item, RunChanges):
                    try:
                        runs.write(item)
                        continue
                    except ShipError as error:
                        stop(stream)
                        result = lost_group(runs.to_train, root, str(error))
                    except OSError as error:
                        stop(stream)
                        result = changed(lost_group(runs.to_train, root, "its results could not be written"),
                                         seconds=time.monotonic() - started, store_error=str(unwritable(root, error)))
                else:
                    pending.pop(stream)
                    runs.release()
                    result = item
            if not progress.report(runs.result(result)):
                waiting.clear()
                for other in list(pending):
                    stop(other)
            start_next()
    except BaseException:
        for stream in list(pending):
            stop(stream)
        raise


def _next_ready(ray, pending: dict, progress: Listener, reports=None):
    """The first of `pending` (object refs or streams) that is ready; the progress line ticks
    meanwhile, with what the tasks put into `reports` (a ray.util.queue.Queue). A task puts its
    last report before it returns, so every report of a group is passed on before its result."""
    while True:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=BAR_SECONDS)
        if reports is not None:
            for report in reports.get_nowait_batch(reports.qsize()):
                progress.trained(report)
        progress.tick()
        if ready:
            return ready[0]


def _next_item(ray, pending: dict, progress: Listener):
    """(stream, its next item) of the first pending stream with one; the error instead if the
    stream's task failed or ended. Progress reports are passed to `progress` on the way."""
    while True:
        stream = _next_ready(ray, pending, progress)
        try:
            item = ray.get(next(stream))
        except (ray.exceptions.RayError, StopIteration) as error:
            return stream, error
        if not isinstance(item, Trained):
            return stream, item
        progress.trained(item)


def workers_see_root(ray, root: Path) -> bool:
    """True if a task on every live node reads back the nonce this process writes into the root."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nonce = secrets.token_hex(16)
    probe = Path(root) / f".ray-probe-{nonce}"
    try:
        probe.write_text(nonce)
    except OSError as error:
        raise unwritable(root, error) from None
    try:
        nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"] and node["Resources"].get("CPU")]
        # num_cpus=0: the probe runs even while the cluster's CPUs are busy
        reads = ray.remote(num_cpus=0, max_retries=0)(_reads_nonce)
        return all(ray.get([reads.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
                            .remote(str(probe), nonce) for node in nodes]))
    finally:
        probe.unlink(missing_ok=True)


def _reads_nonce(path: str, nonce: str) -> bool:
    try:
        return Path(path).read_text() == nonce
    except OSError:
        return False


def _why(error: BaseException) -> str:
    """One line: the exception raised in the task, else the last line of Ray's message."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def import_ray():
    try:
        import ray
    except ImportError:
        raise SweepError('Ray is not installed; install the extra: pip install -e ".[ray]"') from None
    return ray


def _ray_task(group: Group, root: str, reports) -> GroupResult:
    _one_thread()
    import ray

    return train_group(group, Path(root), on_trained=to_driver(reports.put_nowait, (ray.exceptions.RayError,)))


def _shipped_task(group: Group, seeds):
    _one_thread()
    yield from train_shipped(group, seeds)


@cache
def _one_thread() -> None:
    """Once per Ray worker process (Ray reuses them), before its first TensorFlow op."""
    from trainer.training import configure_threads

    configure_threads(1)
