"""Sweep groups as Ray tasks (one CPU each) on a Ray cluster or a local Ray instance.

Every node must see the results root at the same absolute path (a shared
filesystem); run locks are taken there, so on a network filesystem that does not
carry flock across hosts, liveness falls back to heartbeats (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from trainer.local_pool import SHUTDOWN_GRACE_SECONDS
from trainer.plan import Group, SweepError
from trainer.task import GroupResult, lost_group, train_group


def run_ray(groups: list[Group], root: Path, address: str, report: Callable[[GroupResult], bool],
            local_cpus: int | None = None) -> None:
    """Train the groups on the cluster at `address`; `report` each result (False: start no more).

    `address`: "auto", "ray://host:port", "host:port", or "local" to start a Ray
    instance on this machine with `local_cpus` CPUs. If Ray is already
    initialised in this process, that instance is used.
    """
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        try:
            if address == "local":
                ray.init(num_cpus=local_cpus, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise SweepError(f"cannot connect to the Ray cluster at {address!r}: {error}") from None
    remote = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
    pending = {remote.remote(group, str(root)): group for group in groups}
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as error:
                result = lost_group(group, root, f"Ray task failed: {str(error).splitlines()[0]}")
            if not report(result):
                for other in pending:
                    ray.cancel(other)
                pending = {}
    except BaseException:
        for ref in pending:
            ray.cancel(ref)  # KeyboardInterrupt in the task: its runs are marked interrupted
        ray.wait(list(pending), num_returns=len(pending), timeout=SHUTDOWN_GRACE_SECONDS)
        raise
    finally:
        if started:
            ray.shutdown()


def import_ray():
    try:
        import ray
    except ImportError:
        raise SweepError('Ray is not installed; install the extra: pip install -e ".[ray]"') from None
    return ray


def _ray_task(group: Group, root: str) -> GroupResult:
    _one_thread()
    return train_group(group, Path(root))


@cache
def _one_thread() -> None:
    """Once per Ray worker process (Ray reuses them), before its first TensorFlow op."""
    from trainer.training import configure_threads

    configure_threads(1)
