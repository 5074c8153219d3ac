"""The training loop: networks stacked into one computation, many epochs per compiled call.

Read top to bottom: take the runs, set up the networks of a group stacked along a
leading axis (the seeds of one experiment, or several experiments of the same
shape: `run_group`), log epoch 0, then train in chunks. One compiled call
(`trainer.compiled.CompiledSteps`) trains every epoch up to the next logged one and
stops early at the first epoch where a network reaches `stop_at_accuracy`. At logged
epochs the activations of every layer on every input are pulled out and turned into
MI, histogram and per-neuron rows. Each network is written as its own run, by its own
writer (its own lock). No Keras on the hot path.

The minibatch order of a network's epoch is a function of (seed, epoch) alone
(`trainer.minibatch_orders.epoch_order`), made on the host for the whole chunk into one
reused buffer (`ChunkOrders`), so how the epochs are cut into calls, and which networks share
the stack, does not change any number."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ibstore.lifecycle import Outcome, Redo
from ibstore.lock import RunLocked
from ibstore.record import Status
from ibstore.text import terminal_text
from trainer import checkpoint, interrupts, saved, schedule, xla_cache
from trainer.datasets import DatasetError, load_data
from trainer.compiled import Chunk, CompiledSteps
from trainer.config import PER_NETWORK_KEYS, Experiment, ExperimentConfig, check_memory, shape_key
from trainer.flushing import Flushes, settle_all
from trainer.health import NetworkHealth
from trainer.minibatch_orders import ChunkOrders
from trainer.measure import StackMiRows, split_rows
from trainer.network_rows import Logging, Network, finish_all, finish_ended, record_logged, record_metrics
from trainer.model import NetworkSettings, StackedMLP
from trainer.optimizers import Optimizer
from trainer.split_facts import split_facts
from trainer.store import RunDamaged, RunExists, RunWriter, run_fields
from trainer.summaries import HistogramGrid
from trainer.tensorflow_without_keras import tf

# The minibatch orders of one chunk ([epochs, networks, rows] int32) stay below this.
ORDERS_BUDGET_BYTES = 32 * 2**20
# Longest chunk, in network-epochs (networks x epochs): a compiled call returns to Python within
# seconds on this kind of machine (progress, flushes, Ctrl-C are handled between calls; bench/RESULTS.md).
MAX_NETWORK_EPOCHS_PER_CALL = 2000


def configure_threads(threads: int | None) -> None:
    """Limit TensorFlow's thread pools (sweep workers use 1 so they do not oversubscribe)."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def run_experiment(experiment: Experiment, root: Path, seeds: list[int] | None = None,
                   progress: bool = True, resume: bool = False, flush_seconds: float = 5.0,
                   redo: Redo = Redo(), epochs_per_call: int | None = None) -> dict[str, Outcome]:
    """Train one experiment (every seed in `seeds`, default all) and write its runs.

    Returns {run_id: final status as recorded}; see `run_group`.
    """
    return run_group([(experiment, seeds or list(experiment.seeds), resume)], root, progress=progress,
                     flush_seconds=flush_seconds, redo=redo, epochs_per_call=epochs_per_call)


def run_group(members: list[tuple[Experiment, list[int], bool]], root: Path, progress: bool = True,
              flush_seconds: float = 5.0, redo: Redo = Redo(),
              epochs_per_call: int | None = None,
              on_trained: Callable[[int, int], None] | None = None,
              data_sha256: str | None = None) -> dict[str, Outcome]:
    """Train experiments of one shape (equal `trainer.config.shape_key`) stacked as one computation.

    `members`: (experiment, seeds, resume) each; with resume, an experiment continues from
    the newest checkpoint all its seeds have. Every network writes its own run and gets the
    same numbers as when trained alone. Returns {run_id: Outcome}: the final status as
    recorded; a run another process holds (RunLocked) or that may not be replaced (RunExists,
    see `redo`) is not trained, its Outcome says why (`refused`). KeyboardInterrupt marks
    the runs interrupted (everything flushed so far stays readable) and is re-raised.
    `epochs_per_call` caps how many epochs one compiled call trains (default: up to the
    next logged epoch, within memory). `on_trained` is told after every compiled call how many
    network-epochs it trained and how many networks it logged (the sweep's progress).
    `data_sha256`: the SHA-256 the planner loaded the data with (plan.Group.data_sha256): data that
    loads otherwise here (the file replaced since) is refused, DatasetError.
    """
    if len({shape_key(experiment.config) for experiment, _, _ in members}) > 1:
        raise ValueError("run_group: the experiments differ in more than "
                         f"{', '.join(PER_NETWORK_KEYS)}; group them by trainer.config.shape_key")
    by_start: dict[int, list[Network]] = {}
    for experiment, seeds, resume in members:
        run_ids = [experiment.run_id(seed) for seed in seeds]
        start = checkpoint.start_epoch(root, run_ids, resume, experiment.config.save_checkpoints)
        by_start.setdefault(start, []).extend(Network(experiment, s, r) for s, r in zip(seeds, run_ids))
    outcomes: dict[str, Outcome] = {}
    for start, networks in sorted(by_start.items()):
        outcomes.update(_train_stack(networks, Path(root), start, progress, flush_seconds, redo, epochs_per_call,
                                     on_trained, data_sha256))
    return outcomes


@dataclass
class Stack:
    """The networks trained together and what trains them; fixed once set up."""

    networks: list[Network]
    config: ExperimentConfig        # the shape; per-network settings come from each network's own
    model: StackedMLP
    optimizer: Optimizer
    steps: CompiledSteps
    log: Logging
    logged: list[int]               # the logged epochs of the schedule
    capacity: int                   # epochs per compiled call at most
    orders: ChunkOrders             # the buffer each chunk's minibatch orders are made in

    def running(self) -> list[Network]:
        return [n for n in self.networks if n.status is Status.RUNNING]


def _train_stack(networks: list[Network], root: Path, start_epoch: int, progress: bool, flush_seconds: float,
                 redo: Redo, epochs_per_call: int | None,
                 on_trained: Callable[[int, int], None] | None = None,
                 data_sha256: str | None = None) -> dict[str, Outcome]:
    tf.config.experimental.enable_op_determinism()
    xla_cache.enable(tf.__version__)   # before the process compiles its first function
    networks, skipped = _take_runs(networks, root, start_epoch, flush_seconds, redo)
    if not networks:
        return skipped
    bar = None
    flushes = Flushes()
    try:
        stack, initial = _set_up(networks, root, start_epoch, epochs_per_call, data_sha256)
        bar = _progress_bar(networks, stack.config.epochs, start_epoch) if progress else None
        if start_epoch == 0:
            _log_initial(stack, initial)
        epoch, last_checkpoint = start_epoch, time.monotonic()
        while epoch < stack.config.epochs and stack.running():
            chunk, active = _train_chunk(stack, epoch)
            epoch += chunk.n_epochs
            logged = _log_chunk(stack, epoch, chunk)
            if _checkpoint_due(stack, epoch, last_checkpoint, flush_seconds):
                _save_checkpoint(stack, epoch, flushes)
                last_checkpoint = time.monotonic()
            _show_progress(bar, chunk, active)
            if on_trained is not None:
                on_trained(chunk.n_epochs * int(active.sum()), logged)
            running = stack.running()
            flushes.start([n.writer for n in running], [n.epochs_done for n in running])
            finish_ended(networks, stack.log)
        # A failed flush fails the stack here, as in the loop, not only the run it was for.
        settle_all([n.writer for n in networks if not n.finished])
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt) or interrupts.requested():   # TensorFlow can replace it
            # a sweep's worker gets SIGTERM from the kernel when its sweep dies too (local_pool), even by SIGKILL
            finish_all(networks, Status.INTERRUPTED, "interrupted by a signal (Ctrl-C or SIGTERM, or the end of "
                                                     "the sweep that ran it)")
            if isinstance(error, KeyboardInterrupt):
                raise
            raise KeyboardInterrupt from error
        finish_all(networks, Status.FAILED, "".join(traceback.format_exception_only(error)).strip())
        raise
    finally:
        flushes.close()
        if bar is not None:
            bar.close()
    return {**skipped, **_finish_completed(stack)}


def _take_runs(networks: list[Network], root: Path, start_epoch: int, flush_seconds: float,
               redo: Redo) -> tuple[list[Network], dict[str, Outcome]]:
    """Open every network's run writer (its lock); a run held elsewhere or not to be replaced is
    skipped with its reason. Returns (the networks to train, the skipped runs' outcomes)."""
    skipped: dict[str, Outcome] = {}
    for network in networks:
        try:
            network.writer = RunWriter(root, run_fields(network.experiment, network.seed), flush_seconds,
                                       resume_epoch=start_epoch or None, redo=redo)
            # what its record says from now on: a stop during the set-up (seconds of compiling) that
            # follows records the run at the epoch it resumes from, not 0
            network.epochs_done = start_epoch
        except (RunLocked, RunExists) as refused:
            skipped[network.run_id] = Outcome(None, refused=str(refused))
            print(f"{network.run_id}: skipped: {refused}", file=sys.stderr)
        except RunDamaged as damaged:   # recorded failed; the stack's other runs go on
            skipped[network.run_id] = Outcome(Status.FAILED, refused=str(damaged))
        except BaseException:
            for taken in networks:  # release the runs taken so far (interrupted at the epoch they start from)
                if taken.writer is not None:
                    taken.writer.close()
            raise
    return [network for network in networks if network.writer is not None], skipped


def _set_up(networks: list[Network], root: Path, start_epoch: int, epochs_per_call: int | None,
            data_sha256: str | None = None) -> tuple[Stack, tuple[np.ndarray, np.ndarray, list[np.ndarray]]]:
    """Data, stacked model, optimizer, compiled steps and logging of these networks, restored
    from their checkpoint when resumed. Also returns the evaluation before any training
    (loss, accuracy, layers): its activations set the histogram grids."""
    config = networks[0].experiment.config
    data = load_data(config)
    if data_sha256 is not None and data.sha256 != data_sha256:
        raise DatasetError(f"data file {config.dataset_path!r} changed since this sweep was planned (its SHA-256 "
                           f"{data_sha256[:12]}... then, {data.sha256[:12]}... now): not trained, so that one cohort "
                           "does not hold two datasets; restore the file, or train these runs again")
    # a checkpoint continues on the data it was trained on: an attacker's resumed run went on from a
    # train loss of 1e-7 to 0.93 on a replaced file, and its record then named the new file's digest
    other = [n.run_id for n in networks if n.writer.record.data_sha256 not in (None, data.sha256)]
    if start_epoch and other:
        raise DatasetError(f"data file {config.dataset_path!r} changed since {other[0]}"
                           f"{f' and {len(other) - 1} other run(s)' if len(other) > 1 else ''} trained on it: not "
                           "resumed on other data than its checkpoint's; restore the file, or train these runs again "
                           "from the start (--force)")
    if config.dataset == "file":     # its size is known now: an attacker's 64-row file and 3 x 100,000 units
        check_memory(config.model_copy(update={"n_runs": len(networks)}), data.shape)  # tried 40 GB a layer
    model = StackedMLP(config, data.train.x.shape[1], data.n_classes,
                       [NetworkSettings.of(n.experiment.config, n.seed) for n in networks])
    optimizer = Optimizer(config.optimizer, [n.experiment.config.learning_rate for n in networks],
                          model.trainable)
    logged = schedule.logged_epochs(config.log_schedule, config.epochs)
    capacity = _capacity(logged, len(networks), len(data.train.y), epochs_per_call)
    steps = CompiledSteps(model, optimizer, data, config.batch_size, config.stop_at_accuracy, capacity,
                          config.loss)
    initial = steps.evaluate_layers()
    activation_fns = [layer.activations for layer in model.layers]
    log = Logging(
        config=config, root=root, rows=split_rows(len(data.train.y), len(data.full.y)),
        labels=data.full.y, layer_names=[layer.name for layer in model.layers], activation_fns=activation_fns,
        grids=[HistogramGrid.for_layer(fn, values, config.histogram_bins)
               for fn, values in zip(activation_fns, initial[2])],
        n_batches=steps.n_batches,
    )
    splits, sha256 = split_facts(log.rows, log.labels, data.n_classes, data.full.x), data.sha256
    for index, network in enumerate(networks):
        network.index = index
        network.writer.describe_data(splits, sha256)
        if config.save_activations and not start_epoch:
            saved.save_index(root, network.run_id, log.labels, len(data.train.y), log.layer_names, data.full.x)
    log.mi = StackMiRows([n.run_id for n in networks], config.estimators, activation_fns[0], log.labels,
                         log.rows, config.mi_splits, log.layer_names, inputs=data.full.x)
    if start_epoch:
        states = checkpoint.restore(root, [n.run_id for n in networks], start_epoch, model, optimizer)
        for network, state in zip(networks, states):
            network.health = NetworkHealth.restored(state)
    orders = ChunkOrders(capacity, len(networks), steps.n_train, steps.padded)
    return Stack(networks, config, model, optimizer, steps, log, logged, capacity, orders), initial


def _log_initial(stack: Stack, initial: tuple[np.ndarray, np.ndarray, list[np.ndarray]]) -> None:
    """Epoch 0, before any training: metrics and every logged table."""
    loss, accuracy, layers = initial
    record_metrics(stack.networks, 0, loss[None], accuracy[None], stack.config)
    record_logged(_logged_now(stack.networks, 0), 0, layers, None, stack.log)
    finish_ended(stack.networks, stack.log)


def _train_chunk(stack: Stack, epoch: int) -> tuple[Chunk, np.ndarray]:
    """Train from `epoch` up to the next logged epoch (at most `capacity` epochs) in one call.
    Returns the chunk and which networks were active in it."""
    next_logged = next(e for e in stack.logged if e > epoch)
    seeds = [network.seed for network in stack.networks]
    orders = stack.orders.fill(seeds, epoch + 1, min(next_logged, epoch + stack.capacity) - epoch)
    active = np.array([n.status is Status.RUNNING for n in stack.networks])
    return stack.steps.train(orders, active), active


def _log_chunk(stack: Stack, epoch: int, chunk: Chunk) -> int:
    """The chunk's metrics rows; at a logged epoch, or where a network stopped, the logged tables.
    Returns how many networks were logged."""
    ending = record_metrics(stack.networks, epoch - chunk.n_epochs + 1, chunk.loss, chunk.accuracy, stack.config)
    if not (epoch in stack.logged or ending):
        return 0
    chunk.kernels = [layer.kernel.numpy() for layer in stack.model.layers]
    logged = _logged_now(stack.networks, epoch)
    record_logged(logged, epoch, chunk.layers, chunk, stack.log)
    return len(logged)


def _logged_now(networks: list[Network], epoch: int) -> list[Network]:
    """The networks whose tables are logged at `epoch`: those that reached it and did not diverge
    there (a diverged network's activations may be NaN, which no table holds; at epoch 0 too: an
    initialisation can be non-finite already)."""
    return [n for n in networks if n.epochs_done == epoch and n.status in (Status.RUNNING, Status.COMPLETED)]


def _checkpoint_due(stack: Stack, epoch: int, last_checkpoint: float, flush_seconds: float) -> bool:
    """At most one checkpoint per flush interval, at a logged epoch, while a network trains on."""
    return bool(stack.config.save_checkpoints and epoch in stack.logged and stack.running()
                and time.monotonic() - last_checkpoint >= flush_seconds)


def _save_checkpoint(stack: Stack, epoch: int, flushes: Flushes) -> None:
    """Flush the running networks' tables first (a resumed run must find every epoch up to its
    checkpoint), then checkpoint them."""
    running = stack.running()
    flushes.flush_all([n.writer for n in running], [n.epochs_done for n in running])
    checkpoint.save(stack.log.root, [n.run_id for n in running], [n.index for n in running],
                    epoch, stack.model, stack.optimizer, [n.health.state() for n in running])


def _finish_completed(stack: Stack) -> dict[str, Outcome]:
    """The schedule ran out: the networks still running completed. Returns every outcome."""
    for network in stack.running():
        network.status = Status.COMPLETED
    finish_ended(stack.networks, stack.log)
    return {network.run_id: Outcome(network.status, write_error=network.writer.write_error)
            for network in stack.networks}


def _capacity(logged: list[int], n_networks: int, n_train: int, epochs_per_call: int | None) -> int:
    """Epochs per compiled call: the longest gap between logged epochs, within the orders budget
    and the time between returns to Python."""
    longest_gap = max(b - a for a, b in zip(logged, logged[1:]))
    within_budget = ORDERS_BUDGET_BYTES // (4 * n_networks * n_train)
    within_time = MAX_NETWORK_EPOCHS_PER_CALL // n_networks
    return max(1, min(longest_gap, within_budget, within_time, epochs_per_call or longest_gap))


def _progress_bar(networks: list[Network], epochs: int, start: int):
    from tqdm import tqdm
    experiments = len({id(n.experiment) for n in networks})
    name = networks[0].experiment.name if experiments == 1 else f"{experiments} experiments"
    label = name if len(networks) == 1 else f"{name} ({len(networks)} networks)"
    return tqdm(total=epochs, initial=start, desc=terminal_text(label), unit="epoch", dynamic_ncols=True,
                mininterval=0.5)


def _show_progress(bar, chunk: Chunk, active: np.ndarray) -> None:
    if bar is None:
        return
    bar.update(chunk.n_epochs)
    train, test = chunk.accuracy[-1, 0, active], chunk.accuracy[-1, 1, active]
    bar.set_postfix_str(f"train acc {np.mean(train):.3f} test acc {np.mean(test):.3f}" if active.any() else "",
                        refresh=False)
