"""`trainer sweep`: train a whole cohort, skipping what is done, on local worker processes or Ray.

Read top to bottom: find and validate every config under PATH (nothing runs if
one is bad), decide per run whether it is still to do (complete runs are
skipped by run_id), group what is to do into tasks, and hand the tasks to a
backend. The unit of work is one experiment: its seeds still to do train
together in one `run_experiment` call, as one stacked computation.

Backends: `run_local` keeps N spawned worker processes, each with TensorFlow
limited to one thread; `run_ray` submits the same tasks as Ray tasks. Both run
`train_task` and report a `TaskResult` per task to the parent, which shows the
overall progress. Workers write straight into the results root (shared by all).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ibstore import layout
from ibstore.scan import scan
from trainer import checkpoint, config, estimators
from trainer.store import StoreError, read_record, unwritable

# Seconds a worker gets to mark its runs interrupted after SIGTERM, before SIGKILL.
SHUTDOWN_GRACE_SECONDS = 30


class SweepError(ValueError):
    """Bad sweep input (no configs, Ray missing or unreachable, ...): one line, exit status 2."""


@dataclass(frozen=True)
class Task:
    """Seeds of one experiment to train together; `resume`: continue from their common checkpoint."""

    experiment: dict[str, Any]
    seeds: list[int]
    resume: bool = False

    @property
    def run_ids(self) -> list[str]:
        return [config.run_id(self.experiment["name"], self.experiment["config"], s) for s in self.seeds]


@dataclass(frozen=True)
class RunResult:
    run_id: str
    name: str
    seed: int
    status: str
    test_accuracy: float | None
    error: str | None = None


@dataclass(frozen=True)
class TaskResult:
    runs: list[RunResult]
    seconds: float
    store_error: str | None = None  # the results root cannot be written: the sweep stops
    interrupted: bool = False       # the worker got SIGINT/SIGTERM: its runs are marked interrupted, it stops


@dataclass
class Plan:
    tasks: list[Task]
    planned: int                                                    # runs under PATH
    skipped: dict[str, list[str]] = field(default_factory=dict)     # status -> run ids not redone

    @property
    def to_do(self) -> int:
        return sum(len(task.seeds) for task in self.tasks)


# ---------------------------------------------------------------- planning

def config_files(path: str | Path) -> list[Path]:
    """PATH itself if it is a file, else every *.json under it (recursive, sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SweepError(f"{str(path)!r} is neither a config file nor a folder of configs")
    files = sorted(p for p in path.rglob("*.json") if p.is_file())
    if not files:
        raise SweepError(f"no config files (*.json) under {str(path)!r}")
    return files


def load_experiments(path: str | Path) -> list[dict[str, Any]]:
    """Every experiment under PATH (grids expanded, seeds listed), all validated before any runs."""
    experiments = []
    for file in config_files(path):
        try:
            planned = config.plan(config.load_file(file))
        except config.ConfigError as error:
            raise config.ConfigError(f"{file}: {error}") from None
        ignored = sorted({key for experiment in planned for key in experiment["ignored"]})
        if ignored:
            print(f"note: {file}: ignoring keys with no meaning here: {', '.join(ignored)}", file=sys.stderr)
        experiments += planned
    return experiments


def plan_sweep(experiments: list[dict[str, Any]], root: Path, retry_failed: bool = False,
               resume: bool = False, now: float | None = None) -> Plan:
    """Which runs are still to do, grouped into tasks.

    Never started: to do. Completed: skipped. Failed or diverged: redone with
    `retry_failed`. Interrupted (or `running` with a stale heartbeat): with
    `resume`, continued from their newest checkpoint, or restarted if they have
    none. Running (fresh heartbeat): another process is on it, skipped.
    """
    statuses = {run.run_id: run.status.value for run in scan(root, now=now).runs}
    plan = Plan(tasks=[], planned=0)
    seen: set[str] = set()
    for experiment in experiments:
        fresh, resumed = [], {}  # resumed: checkpoint epoch -> seeds
        for seed in experiment["seeds"]:
            run_id = config.run_id(experiment["name"], experiment["config"], seed)
            if run_id in seen:  # the same experiment in two files
                continue
            seen.add(run_id)
            plan.planned += 1
            status = statuses.get(run_id)
            if status is None or (status in ("failed", "diverged") and retry_failed):
                fresh.append(seed)
            elif status == "interrupted" and resume:
                epoch = checkpoint.latest_common_epoch(root, [run_id]) if resumable(experiment["config"]) else 0
                (resumed.setdefault(epoch, []) if epoch else fresh).append(seed)
            else:
                plan.skipped.setdefault(status, []).append(run_id)
        if fresh:
            plan.tasks.append(Task(experiment, fresh))
        plan.tasks += [Task(experiment, seeds, resume=True) for seeds in resumed.values()]
    return plan


def resumable(run_config: dict[str, Any]) -> bool:
    """Checkpoints are kept, and no estimator bins over the whole run's range: those rows are
    computed when a run ends, from every logged epoch, which a resumed process has not seen."""
    return run_config["save_checkpoints"] and not any(
        estimators.needs_run_range(e["name"], e["params"]) for e in run_config["estimators"])


# ---------------------------------------------------------------- one task, in a worker

def train_task(task: Task, root: Path) -> TaskResult:
    """Train one task and read back what it wrote (run.json is the truth about each run)."""
    from trainer.training import run_experiment

    start = time.monotonic()
    error = store_error = None
    interrupted = False
    try:
        run_experiment(task.experiment, root, seeds=task.seeds, progress=False, resume=task.resume)
    except KeyboardInterrupt:
        interrupted = True
    except StoreError as failure:
        error = store_error = str(failure)
    except Exception as failure:  # its runs are marked failed; the sweep goes on
        traceback.print_exc()
        error = f"{type(failure).__name__}: {failure}"
    runs = [_run_result(task, seed, run_id, root, error) for seed, run_id in zip(task.seeds, task.run_ids)]
    return TaskResult(runs, time.monotonic() - start, store_error, interrupted)


def _run_result(task: Task, seed: int, run_id: str, root: Path, error: str | None) -> RunResult:
    """The run's final state as its run.json records it."""
    record = read_record(root, run_id)
    status = record.status.value if record else None
    if status in (None, "running"):  # run.json could not be finished
        status = "failed"
    return RunResult(run_id, task.experiment["name"], seed, status, record and record.final_test_accuracy,
                     (record and record.error) or error)


def final_test_accuracy(root: Path, run_id: str) -> float | None:
    try:
        metrics = pq.read_table(layout.table_path(root, run_id, "metrics"),
                                columns=["epoch", "split", "accuracy"]).to_pandas()
    except (OSError, pa.ArrowException):
        return None
    test = metrics[metrics.split == "test"]
    return float(test.loc[test.epoch.idxmax(), "accuracy"]) if len(test) else None


def lost_task(task: Task, reason: str) -> TaskResult:
    """A task whose worker vanished: its runs stay `running` until the heartbeat is stale,
    then read as interrupted (and --resume continues them)."""
    return TaskResult([RunResult(run_id, task.experiment["name"], seed, "interrupted", None, reason)
                       for seed, run_id in zip(task.seeds, task.run_ids)], 0.0)


# ---------------------------------------------------------------- local worker processes

@dataclass(eq=False)
class Worker:
    process: multiprocessing.process.BaseProcess
    conn: Any  # multiprocessing.connection.Connection to the worker


def run_local(tasks: list[Task], root: Path, workers: int, report: Callable[[TaskResult], bool]) -> None:
    """Run the tasks on `workers` spawned processes; `report` each result (False: start no more).

    Ctrl-C or SIGTERM: every worker gets SIGTERM, marks its runs interrupted and
    exits; stragglers are killed after SHUTDOWN_GRACE_SECONDS. No process is left behind.
    """
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")
    waiting = deque(tasks)
    busy: dict[Worker, Task] = {}
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
        for _ in range(min(workers, len(tasks))):
            give_work(None)
        while busy:
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in [w for w in busy if w.conn in ready or w.process.sentinel in ready]:
                task = busy.pop(worker)
                try:
                    result = worker.conn.recv()
                except (EOFError, OSError):
                    worker.process.join()
                    result = lost_task(task, f"worker process died (exit code {worker.process.exitcode})")
                if result.interrupted or not worker.process.is_alive():
                    worker.process.join()
                    worker = None  # a fresh worker takes the next task
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
    """A worker process: one TensorFlow thread; train tasks until told to stop."""
    _exit_with_parent()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt_once)
    from trainer.training import configure_threads

    configure_threads(1)  # before any TensorFlow op runs in this process
    try:
        while (task := conn.recv()) is not None:
            result = train_task(task, Path(root))
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


# ---------------------------------------------------------------- Ray

def run_ray(tasks: list[Task], root: Path, address: str, report: Callable[[TaskResult], bool],
            local_cpus: int | None = None) -> None:
    """Run the tasks as Ray tasks (one CPU each) on the cluster at `address`.

    `address`: "auto", "ray://host:port", "host:port", or "local" to start a Ray
    instance on this machine with `local_cpus` CPUs. If Ray is already
    initialised in this process, that instance is used. Every node must see
    `root` at the same absolute path (a shared filesystem).
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
    pending = {remote.remote(task, str(root)): task for task in tasks}
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as error:
                result = lost_task(task, f"Ray task failed: {str(error).splitlines()[0]}")
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


def _ray_task(task: Task, root: str) -> TaskResult:
    _one_thread()
    return train_task(task, Path(root))


@cache
def _one_thread() -> None:
    """Once per Ray worker process (Ray reuses them), before its first TensorFlow op."""
    from trainer.training import configure_threads

    configure_threads(1)


# ---------------------------------------------------------------- the command

class Progress:
    """The parent's view: an overall bar (runs done / to do, ETA), a line per finished run, a tally."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self.tqdm = tqdm
        self.bar = tqdm(total=total, desc="sweep", unit="run", dynamic_ncols=True, disable=None)
        self.tally: Counter[str] = Counter()
        self.store_error: str | None = None

    def report(self, result: TaskResult) -> bool:
        """Show one finished task; False once the results root cannot be written (start no more)."""
        for run in result.runs:
            accuracy = "-" if run.test_accuracy is None else f"{run.test_accuracy:.3f}"
            line = f"{run.status:11} {run.name} seed {run.seed}  test acc {accuracy}  {result.seconds:.0f} s"
            if run.status != "completed" and run.error:
                line += f"  ({run.error.splitlines()[0]})"
            self.tqdm.write(line)
            self.tally[run.status] += 1
        self.bar.update(len(result.runs))
        self.store_error = self.store_error or result.store_error
        return self.store_error is None

    def close(self) -> None:
        self.bar.close()


def sweep(path: str | Path, root: Path, workers: int | None = None, ray_address: str | None = None,
          retry_failed: bool = False, resume: bool = False) -> bool:
    """The `trainer sweep` command. True if every planned run ends completed.

    Raises ConfigError (a bad config: nothing was written), SweepError, StoreError.
    """
    if ray_address not in (None, "local") and workers is not None:
        raise SweepError("--workers applies to local workers and --ray local; a Ray cluster uses its own CPUs")
    experiments = load_experiments(path)
    root = Path(root).resolve()
    plan = plan_sweep(experiments, root, retry_failed=retry_failed, resume=resume)
    workers = workers or os.cpu_count() or 1
    print(f"sweep {path}: {plan.planned} runs planned, {len(plan.skipped.get('completed', []))} already "
          f"complete (skipped), {plan.to_do} to do; results in {root}")
    for status, hint in (("failed", "--retry-failed reruns them"), ("diverged", "--retry-failed reruns them"),
                         ("interrupted", "--resume continues them"), ("running", "another process is on them")):
        if plan.skipped.get(status):
            print(f"  {len(plan.skipped[status])} {status} (skipped; {hint})")
    resumed = sum(len(task.seeds) for task in plan.tasks if task.resume)
    if resumed:
        print(f"  {resumed} interrupted run(s) continue from their last checkpoint")
    tally: Counter[str] = Counter()
    if plan.tasks:
        check_writable(root)
        backend = f"Ray ({ray_address})" if ray_address else f"{min(workers, len(plan.tasks))} local worker(s)"
        print(f"training {len(plan.tasks)} experiment(s) on {backend}")
        progress = Progress(plan.to_do)
        try:
            if ray_address:
                run_ray(plan.tasks, root, ray_address, progress.report, local_cpus=workers)
            else:
                run_local(plan.tasks, root, workers, progress.report)
        finally:
            progress.close()
        if progress.store_error:
            raise StoreError(progress.store_error)
        tally = progress.tally
        print("done: " + ", ".join(f"{n} {status}" for status, n in sorted(tally.items())))
    left_unfinished = any(status not in ("completed", "running") for status in plan.skipped)
    return not left_unfinished and set(tally) <= {"completed"}


def check_writable(root: Path) -> None:
    """Fail before training, with a clear message, if runs cannot be written under `root`."""
    runs = layout.runs_dir(root)
    try:
        runs.mkdir(parents=True, exist_ok=True)
        probe = runs / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise unwritable(root, error) from None
