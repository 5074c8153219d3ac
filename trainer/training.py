"""The training loop: networks stacked into one computation, many epochs per compiled call.

Read top to bottom: load the data, build the networks of a group stacked along a
leading axis (the seeds of one experiment, or several experiments of the same
shape: `run_group`), then train in chunks. One compiled call (a
graph loop over epochs and, inside it, over minibatches, the last one padded and
masked) trains every epoch up to the next logged one, evaluates loss and
accuracy on train and test after each epoch and sums the kernel gradients of the
last epoch's minibatches. It stops early at the first epoch where a network
reaches `stop_at_accuracy`. At logged epochs the activations of every layer on
every input are pulled out and turned into MI, histogram and per-neuron rows.
Each network is written as its own run, by its own writer (its own lock). No
Keras on the hot path.

The minibatch order of a network's epoch is a function of (seed, epoch) alone
(`epoch_order`), computed on the host for the whole chunk, so how the epochs are
cut into calls, and which networks share the stack, does not change any number.
"""

from __future__ import annotations

import math
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from ibstore.lock import RunLocked
from ibstore.record import Status
from trainer import checkpoint, config as config_module, datasets, plan, saved, schedule, xla_cache
from trainer.health import NetworkHealth, layer_health
from trainer.measure import StackMiRows, activation_rows, split_rows
from trainer.model import NetworkSettings, StackedMLP, cross_entropy
from trainer.optimizers import Optimizer
from trainer.store import REPLACEABLE_BY_DEFAULT, RunExists, RunWriter, StoreError
from trainer.summaries import HistogramGrid, gradient_stats

# The minibatch orders of one chunk ([epochs, networks, rows] int32) stay below this.
ORDERS_BUDGET_BYTES = 32 * 2**20
# Longest chunk, in network-epochs (networks x epochs): a compiled call returns to Python within
# about 2 s of training on this kind of machine (progress, flushes, Ctrl-C are handled between calls).
MAX_NETWORK_EPOCHS_PER_CALL = 2000


def configure_threads(threads: int | None) -> None:
    """Limit TensorFlow's thread pools (sweep workers use 1 so they do not oversubscribe)."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def load_data(config: dict[str, Any]) -> datasets.Dataset:
    options = {"test_fraction": config["test_fraction"], "split_seed": config["split_seed"]}
    if config["dataset_path"]:
        options["path"] = config["dataset_path"]
    if config["dataset"] == "file":
        options["label_column"] = config["label_column"]
    return datasets.load(config["dataset"], **options)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The minibatch order of one network's epoch: a function of (seed, epoch) alone, so a
    resumed run shuffles exactly as an uninterrupted one."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


@dataclass
class Chunk:
    """What one compiled call returns, for the epochs it trained."""

    n_epochs: int
    loss: np.ndarray        # [epochs, 2 (train, test), N]
    accuracy: np.ndarray    # [epochs, 2 (train, test), N]
    grad_sum: list[np.ndarray]      # per layer [N, fan_in, units]: the last epoch's minibatch gradients summed
    grad_sq_sum: list[np.ndarray]   # ... and their squares summed
    kernels: list[np.ndarray] | None = None     # per layer [N, fan_in, units], set at logged epochs


class CompiledSteps:
    """The compiled functions of the loop: train a chunk of epochs; evaluate with every layer.

    Both are XLA-compiled: the chunk with XLA trained the default network at 5.5 ms per epoch
    where the same graph without XLA took 20.6 ms (measured side by side on 2 busy cores)."""

    def __init__(self, model: StackedMLP, optimizer: Optimizer, data: datasets.Dataset,
                 batch_size: int | str, stop_at_accuracy: float | None, capacity: int, loss: str):
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.n_networks = model.layers[0].kernel.shape[0]
        self.x_train = tf.constant(data.train.x)
        self.y_train = tf.constant(data.train.y.astype(np.int32))
        self.x_all = tf.constant(data.full.x)
        self.y_all = tf.constant(data.full.y.astype(np.int32))
        self.n_train, self.n_all = len(data.train.y), len(data.full.y)
        self.batch_size = self.n_train if batch_size == "full" else min(int(batch_size), self.n_train)
        self.n_batches = math.ceil(self.n_train / self.batch_size)
        self.padded = self.n_batches * self.batch_size
        self.capacity = capacity
        # A network that reaches this test accuracy ends the call at that epoch (2: never).
        self.target = tf.constant(2.0 if stop_at_accuracy is None else stop_at_accuracy, tf.float64)
        # The chunk's minibatch orders live in a variable of fixed shape, so every chunk length
        # runs the same compiled program (one XLA compilation per run).
        self.orders = tf.Variable(tf.zeros([capacity, self.n_networks, self.padded], tf.int32), trainable=False)
        # autograph=False: the loops are explicit tf.while_loops, and converting the code costs seconds.
        self.train_chunk = xla_cache.first_call_quiet(
            tf.function(self._train_chunk, jit_compile=True, autograph=False))
        self.evaluate = xla_cache.first_call_quiet(tf.function(self._metrics, jit_compile=True, autograph=False))

    def train(self, orders: np.ndarray, active: np.ndarray) -> Chunk:
        """Train up to len(orders) epochs (orders: [epochs, N, n_train]); stop after an epoch
        where an `active` network reaches the target accuracy."""
        k = len(orders)
        padded = np.zeros((k, self.n_networks, self.padded), np.int32)
        padded[:, :, :self.n_train] = orders
        self.orders[:k].assign(padded)
        n_epochs, loss, correct, grad_sum, grad_sq_sum = self.train_chunk(tf.constant(k), tf.constant(active))
        n_epochs = int(n_epochs)
        return Chunk(n_epochs, loss.numpy()[:n_epochs].astype(np.float64), self._accuracy(correct.numpy()[:n_epochs]),
                     [g.numpy() for g in grad_sum], [g.numpy() for g in grad_sq_sum])

    def evaluate_layers(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """(loss [2, N], accuracy [2, N], per layer activations [N, n_all, units]) of the current networks."""
        weights, moving = self.model.read()
        loss, correct, layers = self.evaluate(weights, moving)
        return loss.numpy().astype(np.float64), self._accuracy(correct.numpy()), [v.numpy() for v in layers]

    def _accuracy(self, correct: np.ndarray) -> np.ndarray:
        sizes = np.array([self.n_train, self.n_all - self.n_train], np.float64)[:, None]
        return correct.astype(np.float64) / sizes

    def _metrics(self, weights, moving) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        """Loss [2, N] (mean over the split) and number correct [2, N] on train and test, and
        every layer's activations [N, n_all, units]."""
        layers, logits, _ = self.model.forward(weights, moving, self.x_all)
        labels = tf.broadcast_to(self.y_all, tf.shape(logits)[:2])
        per_example = cross_entropy(self.loss, logits, labels)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.int32)
        n = self.n_train
        loss = tf.stack([tf.reduce_mean(per_example[:, :n], axis=1), tf.reduce_mean(per_example[:, n:], axis=1)])
        count = tf.stack([tf.reduce_sum(correct[:, :n], axis=1), tf.reduce_sum(correct[:, n:], axis=1)])
        return loss, count, layers

    def _train_chunk(self, n_epochs: tf.Tensor, active: tf.Tensor):
        """Train up to n_epochs epochs (orders from self.orders) as one graph: per epoch a loop
        over the minibatches, then loss and number correct on train and test; stop after an
        epoch where an `active` network reaches the target. Returns (epochs trained, loss and
        correct [capacity, 2, N] (rows past the epochs trained are 0), the last epoch's
        per-layer sums of the minibatch kernel gradients and of their squares)."""
        model, optimizer = self.model, self.optimizer
        kernel_positions = model.kernel_positions
        n_test = tf.constant(self.n_all - self.n_train, tf.float64)
        kernel_shapes = [model.trainable[i].shape for i in kernel_positions]

        def train_batch(batch, order, weights, moving, slots, step, grad_sum, grad_sq_sum):
            start = batch * self.batch_size
            index = tf.slice(order, [0, start], [self.n_networks, self.batch_size])
            # Padding rows (past the end of the data) weigh 0: the last batch is a smaller one.
            row_weights = tf.cast(start + tf.range(self.batch_size) < self.n_train, tf.float32)
            x, y = tf.gather(self.x_train, index), tf.gather(self.y_train, index)
            with tf.GradientTape() as tape:
                tape.watch(weights)
                _, logits, new_moving = model.forward(weights, moving, x, row_weights)
                per_example = cross_entropy(self.loss, logits, y)
                # Summing the networks' mean losses keeps each network's gradient its own.
                loss = tf.reduce_sum(tf.reduce_sum(per_example * row_weights, axis=1) / tf.reduce_sum(row_weights))
            gradients = tape.gradient(loss, weights)
            step = step + 1
            weights, slots = optimizer.update(weights, slots, gradients, step)
            weights = model.constrain(weights)
            kernel_grads = [gradients[i] for i in kernel_positions]
            grad_sum = [s + g for s, g in zip(grad_sum, kernel_grads)]
            grad_sq_sum = [s + g * g for s, g in zip(grad_sq_sum, kernel_grads)]
            return batch + 1, order, weights, new_moving, slots, step, grad_sum, grad_sq_sum

        def train_epoch(epoch, weights, moving, slots, step, grad_sum, grad_sq_sum, loss, correct, stop):
            # The gradient sums restart at every epoch; the loop carries them out of the last one.
            # Zeros made here, not captured from outside the loop: a captured constant gets a name
            # that differs from process to process, and so would the HLO that keys the XLA cache.
            zero_grads = [tf.zeros(shape) for shape in kernel_shapes]
            _, _, weights, moving, slots, step, grad_sum, grad_sq_sum = tf.while_loop(
                lambda batch, *_: batch < self.n_batches, train_batch,
                (tf.constant(0), self.orders[epoch], weights, moving, slots, step, zero_grads, zero_grads))
            epoch_loss, epoch_correct, _ = self._metrics(weights, moving)
            loss = tf.tensor_scatter_nd_update(loss, [[epoch]], epoch_loss[None])
            correct = tf.tensor_scatter_nd_update(correct, [[epoch]], epoch_correct[None])
            test_accuracy = tf.cast(epoch_correct[1], tf.float64) / n_test
            finite = tf.reduce_all(tf.math.is_finite(epoch_loss), axis=0)
            stop = tf.reduce_any(active & finite & (test_accuracy >= self.target))
            return epoch + 1, weights, moving, slots, step, grad_sum, grad_sq_sum, loss, correct, stop

        weights, moving = model.read()
        state = (tf.constant(0), weights, moving, optimizer.read_slots(), optimizer.iterations.read_value(),
                 [tf.zeros(shape) for shape in kernel_shapes], [tf.zeros(shape) for shape in kernel_shapes],
                 tf.zeros([self.capacity, 2, self.n_networks]),
                 tf.zeros([self.capacity, 2, self.n_networks], tf.int32), tf.constant(False))
        epoch, weights, moving, slots, step, grad_sum, grad_sq_sum, loss, correct, _ = tf.while_loop(
            lambda epoch, *rest: (epoch < n_epochs) & tf.logical_not(rest[-1]), train_epoch, state)
        model.write(weights, moving)
        optimizer.write(step, slots)
        return epoch, loss, correct, grad_sum, grad_sq_sum


class Network:
    """One network of the stack: its run (writer, mi rows, health), its position, its state."""

    def __init__(self, experiment: dict[str, Any], seed: int, run_id: str):
        self.experiment, self.seed, self.run_id = experiment, seed, run_id
        self.index = -1                  # position on the network axis, once stacked
        self.writer: RunWriter | None = None
        self.health = NetworkHealth()
        self.status = Status.RUNNING
        self.error: str | None = None
        self.epochs_done = 0
        self.finished = False            # its writer recorded the final status and let the run go

    def fail(self, error: BaseException) -> None:
        """This network's rows could not be made or written: it ends `failed`, the others go on."""
        self.status = Status.FAILED
        self.error = "".join(traceback.format_exception_only(error)).strip()


@dataclass
class Logging:
    """What the loop needs to turn an epoch into rows; fixed for the whole stack."""

    config: dict[str, Any]
    root: Path
    rows: dict[str, slice]
    labels: np.ndarray
    layer_names: list[str]
    activation_fns: list[str]
    grids: list[HistogramGrid]
    n_batches: int
    mi: StackMiRows | None = None       # the stack's mi rows, network.index its position


def run_experiment(experiment: dict[str, Any], root: Path, seeds: list[int] | None = None,
                   progress: bool = True, resume: bool = False, flush_seconds: float = 5.0,
                   replace: Iterable[Status] = REPLACEABLE_BY_DEFAULT,
                   epochs_per_call: int | None = None) -> dict[str, str]:
    """Train one experiment (every seed in `seeds`, default all) and write its runs.

    Returns {run_id: final status as recorded}; see `run_group`.
    """
    return run_group([(experiment, seeds or experiment["seeds"], resume)], root, progress=progress,
                     flush_seconds=flush_seconds, replace=replace, epochs_per_call=epochs_per_call)


def run_group(members: list[tuple[dict[str, Any], list[int], bool]], root: Path, progress: bool = True,
              flush_seconds: float = 5.0, replace: Iterable[Status] = REPLACEABLE_BY_DEFAULT,
              epochs_per_call: int | None = None) -> dict[str, str]:
    """Train experiments of one shape (equal `trainer.plan.shape_key`) stacked as one computation.

    `members`: (experiment, seeds, resume) each; with resume, an experiment continues from
    the newest checkpoint all its seeds have. Every network writes its own run and gets the
    same numbers as when trained alone. Returns {run_id: final status as recorded}; a run
    another process holds (RunLocked) or that may not be replaced (RunExists, see
    `replace`) is not trained and reported as "skipped: <why>". KeyboardInterrupt marks
    the runs interrupted (everything flushed so far stays readable) and is re-raised.
    `epochs_per_call` caps how many epochs one compiled call trains (default: up to the
    next logged epoch, within memory).
    """
    if len({plan.shape_key(experiment) for experiment, _, _ in members}) > 1:
        raise ValueError("run_group: the experiments differ in more than "
                         f"{', '.join(plan.PER_NETWORK_KEYS)}; group them by trainer.plan.shape_key")
    by_start: dict[int, list[Network]] = {}
    for experiment, seeds, resume in members:
        run_ids = [config_module.run_id(experiment["name"], experiment["config"], seed) for seed in seeds]
        start = checkpoint.latest_common_epoch(root, run_ids) \
            if resume and experiment["config"]["save_checkpoints"] else 0
        by_start.setdefault(start, []).extend(Network(experiment, s, r) for s, r in zip(seeds, run_ids))
    statuses: dict[str, str] = {}
    for start, networks in sorted(by_start.items()):
        statuses.update(_train_stack(networks, Path(root), start, progress, flush_seconds, replace, epochs_per_call))
    return statuses


def _train_stack(networks: list[Network], root: Path, start_epoch: int, progress: bool, flush_seconds: float,
                 replace: Iterable[Status], epochs_per_call: int | None) -> dict[str, str]:
    tf.config.experimental.enable_op_determinism()
    xla_cache.enable(tf.__version__)   # before the process compiles its first function
    config = networks[0].experiment["config"]     # the shape; per-network settings come from each network's own
    skipped = {}
    for network in networks:
        try:
            network.writer = _open_writer(network, root, start_epoch, flush_seconds, replace)
        except (RunLocked, RunExists) as refused:
            skipped[network.run_id] = f"skipped: {refused}"
            print(f"{network.run_id}: skipped: {refused}", file=sys.stderr)
        except BaseException:
            for taken in networks:  # release the runs taken so far (they read as interrupted at epoch 0)
                if taken.writer is not None:
                    taken.writer.close()
            raise
    networks = [network for network in networks if network.writer is not None]
    if not networks:
        return skipped
    bar = None
    try:
        data = load_data(config)
        model = StackedMLP(config, data.train.x.shape[1], data.n_classes,
                           [NetworkSettings.of(n.experiment["config"], n.seed) for n in networks])
        optimizer = Optimizer(config["optimizer"], [n.experiment["config"]["learning_rate"] for n in networks],
                              model.trainable)
        logged = schedule.logged_epochs(config["log_schedule"], config["epochs"])
        is_logged = set(logged)
        capacity = _capacity(logged, len(networks), len(data.train.y), epochs_per_call)
        steps = CompiledSteps(model, optimizer, data, config["batch_size"], config["stop_at_accuracy"], capacity,
                              config["loss"])

        initial_loss, initial_accuracy, initial_layers = steps.evaluate_layers()
        activation_fns = [layer.activation for layer in model.layers]
        log = Logging(
            config=config, root=root, rows=split_rows(len(data.train.y), len(data.full.y)),
            labels=data.full.y, layer_names=[layer.name for layer in model.layers], activation_fns=activation_fns,
            grids=[HistogramGrid.for_layer(fn, values, config["histogram_bins"])
                   for fn, values in zip(activation_fns, initial_layers)],
            n_batches=steps.n_batches,
        )
        for index, network in enumerate(networks):
            network.index, network.epochs_done = index, start_epoch
            if config["save_activations"] and not start_epoch:
                saved.save_index(root, network.run_id, log.labels, len(data.train.y), log.layer_names)
        log.mi = StackMiRows([n.run_id for n in networks], config["estimators"], config["activation_fn"],
                             log.labels, log.rows, config["mi_splits"], log.layer_names)
        if start_epoch:
            checkpoint.restore(root, [n.run_id for n in networks], start_epoch, model, optimizer)

        experiments = len({id(n.experiment) for n in networks})
        name = networks[0].experiment["name"] if experiments == 1 else f"{experiments} experiments"
        bar = _progress_bar(name, config["epochs"], start_epoch, len(networks)) if progress else None
        last_checkpoint = time.monotonic()
        seeds = [network.seed for network in networks]
        if start_epoch == 0:
            _record_metrics(networks, 0, initial_loss[None], initial_accuracy[None], config)
            _record_logged(networks, 0, initial_layers, None, log)
            _finish_ended(networks, log)
        epoch = start_epoch
        while epoch < config["epochs"] and any(n.status is Status.RUNNING for n in networks):
            next_logged = next(e for e in logged if e > epoch)
            orders = np.stack([np.stack([epoch_order(seed, e, steps.n_train) for seed in seeds])
                               for e in range(epoch + 1, min(next_logged, epoch + capacity) + 1)])
            active = np.array([n.status is Status.RUNNING for n in networks])
            chunk = steps.train(orders, active)
            epoch += chunk.n_epochs
            ending = _record_metrics(networks, epoch - chunk.n_epochs + 1, chunk.loss, chunk.accuracy, config)
            if epoch in is_logged or ending:
                _, _, layers = steps.evaluate_layers()
                chunk.kernels = [layer.kernel.numpy() for layer in model.layers]
                logged_now = [n for n in networks
                              if n.epochs_done == epoch and n.status in (Status.RUNNING, Status.COMPLETED)]
                _record_logged(logged_now, epoch, layers, chunk, log)
            running = [n for n in networks if n.status is Status.RUNNING]
            # At most one checkpoint per flush interval, after a flush (tables first: a resumed
            # run must find every epoch up to its checkpoint).
            if config["save_checkpoints"] and epoch in is_logged and running \
                    and time.monotonic() - last_checkpoint >= flush_seconds:
                for network in running:
                    network.writer.flush(network.epochs_done)
                checkpoint.save(root, [n.run_id for n in running], [n.index for n in running],
                                epoch, model, optimizer)
                last_checkpoint = time.monotonic()
            if bar is not None:
                bar.update(chunk.n_epochs)
                bar.set_postfix_str(_progress_text(chunk, active), refresh=False)
            for network in running:
                network.writer.maybe_flush(network.epochs_done)
            _finish_ended(networks, log)
    except KeyboardInterrupt:
        _finish_all(networks, Status.INTERRUPTED, "interrupted by the user (Ctrl-C or SIGTERM)")
        raise
    except BaseException as error:
        _finish_all(networks, Status.FAILED, "".join(traceback.format_exception_only(error)).strip())
        raise
    finally:
        if bar is not None:
            bar.close()
    for network in networks:
        if network.status is Status.RUNNING:
            network.status = Status.COMPLETED
    _finish_ended(networks, log)
    return {**skipped, **{network.run_id: network.status.value for network in networks}}


def _open_writer(network: Network, root: Path, start_epoch: int, flush_seconds: float,
                 replace: Iterable[Status]) -> RunWriter:
    experiment, config = network.experiment, network.experiment["config"]
    fields = {"run_id": network.run_id, "group_id": config_module.group_id(experiment["name"], config),
              "name": experiment["name"], "cohort": experiment.get("cohort"), "config": {**config, "seed": network.seed},
              "seed": network.seed, "epochs_total": config["epochs"], "split_seed": config["split_seed"],
              "ignored_keys": sorted(experiment.get("ignored", {}))}
    return RunWriter(root, fields, flush_seconds, resume_epoch=start_epoch or None, replace=replace)


def _capacity(logged: list[int], n_networks: int, n_train: int, epochs_per_call: int | None) -> int:
    """Epochs per compiled call: the longest gap between logged epochs, within the orders budget
    and the time between returns to Python."""
    longest_gap = max(b - a for a, b in zip(logged, logged[1:]))
    within_budget = ORDERS_BUDGET_BYTES // (4 * n_networks * n_train)
    within_time = MAX_NETWORK_EPOCHS_PER_CALL // n_networks
    return max(1, min(longest_gap, within_budget, within_time, epochs_per_call or longest_gap))


def _record_metrics(networks: list[Network], first_epoch: int, loss: np.ndarray, accuracy: np.ndarray,
                    config: dict[str, Any]) -> bool:
    """Metrics rows of epochs first_epoch, first_epoch + 1, ... (loss, accuracy: [epochs, 2, N])
    for every running network, up to the epoch where it diverges or reaches the target accuracy.
    Returns whether a network reached the target at the last of these epochs (it must be logged)."""
    target = config["stop_at_accuracy"]
    n_epochs = len(loss)
    reached_at_end = False
    for network in networks:
        if network.status is not Status.RUNNING:
            continue
        s = network.index
        own_loss, own_accuracy = loss[:, :, s], accuracy[:, :, s]
        diverged = ~np.all(np.isfinite(own_loss), axis=1)
        reached = ~diverged & (own_accuracy[:, 1] >= target) if target is not None else np.zeros(n_epochs, bool)
        ends = np.flatnonzero(diverged | reached)
        last = ends[0] if len(ends) else n_epochs - 1
        epochs = first_epoch + np.arange(last + 1)
        network.writer.add("metrics", {
            "run_id": network.run_id, "epoch": np.repeat(epochs, 2), "split": ["train", "test"] * (last + 1),
            "loss": own_loss[:last + 1].ravel(), "accuracy": own_accuracy[:last + 1].ravel()})
        for epoch, (train_loss, test_loss), train_accuracy in zip(epochs, own_loss[:last + 1],
                                                                  own_accuracy[:last + 1, 0]):
            network.health.observe_metrics(int(epoch), float(train_loss), float(test_loss), float(train_accuracy))
        network.epochs_done = int(epochs[-1])
        if diverged[last]:
            network.status = Status.DIVERGED
            network.error = (f"loss became {own_loss[last, 0]} (train) / {own_loss[last, 1]} (test) "
                             f"at epoch {network.epochs_done}")
        elif reached[last]:
            network.status = Status.COMPLETED
            reached_at_end = reached_at_end or last == n_epochs - 1
    return reached_at_end


def _record_logged(networks: list[Network], epoch: int, layers: list[np.ndarray], chunk: Chunk | None,
                   log: Logging) -> None:
    """MI, histogram, per-neuron and (after epoch 0) gradient rows of one logged epoch, for these
    networks. Summaries are computed for all of them at once; a network whose rows fail is failed alone."""
    if not networks:
        return
    config = log.config
    index = np.array([n.index for n in networks])
    stacked = [values[index] for values in layers]
    summaries = activation_rows(epoch, stacked, log.rows, config["mi_splits"], log.activation_fns,
                                [grid.take(index) for grid in log.grids])
    mi_outcomes = log.mi.at_epoch(epoch, stacked, list(index))
    gradients = None if chunk is None else [
        gradient_stats(g[index], g2[index], log.n_batches, kernel[index])
        for g, g2, kernel in zip(chunk.grad_sum, chunk.grad_sq_sum, chunk.kernels)]
    # Hidden layers only (the softmax layer learns the class prior even in a dead network).
    states = None if gradients is None else [
        layer_health(fn, values, stats["grad_mean_norm"], stats["grad_std_norm"])
        for fn, values, stats in zip(log.activation_fns[:-1], stacked[:-1], gradients[:-1])]
    for position, network in enumerate(networks):
        try:
            own = [values[position] for values in stacked]
            mi = mi_outcomes[position]
            if isinstance(mi, Exception):
                raise mi
            if mi:
                network.writer.add("mi", mi)
            histogram, stats = summaries[position]
            network.writer.add("activations", {"run_id": network.run_id, **histogram})
            network.writer.add("activation_stats", {"run_id": network.run_id, **stats})
            if gradients is not None:
                columns = {k: np.array([layer[k][position] for layer in gradients]) for k in gradients[0]}
                own_states = [layer[position] for layer in states]
                network.writer.add("gradients", {"run_id": network.run_id, "epoch": epoch,
                                                 "layer": np.arange(len(gradients)), **columns,
                                                 "health": [state.value for state in own_states] + [None]})
                network.health.observe_layers(epoch, own_states)
            if config["save_activations"]:
                saved.save_epoch(log.root, network.run_id, epoch, own)
        except StoreError:
            raise
        except Exception as error:
            network.fail(error)


def _finish_ended(networks: list[Network], log: Logging) -> None:
    """Record the end of every network that stopped (completed, diverged, or failed alone): its
    deferred MI rows (for all those ending now at once), its final status. Its run is let go at
    once while the others train on."""
    ending = [n for n in networks if n.status is not Status.RUNNING and not n.finished]
    estimated = [n for n in ending if n.status is not Status.FAILED]
    for network, deferred in zip(estimated, log.mi.at_end([n.index for n in estimated])):
        try:
            if isinstance(deferred, Exception):
                raise deferred
            if deferred:
                network.writer.add("mi", deferred)
        except StoreError:
            raise
        except Exception as error:
            network.fail(error)
    for network in ending:
        _finish(network)


def _finish_all(networks: list[Network], status: Status, error: str | None) -> None:
    """The whole stack stops (interrupted, or a failure of the shared computation)."""
    for network in networks:
        if network.finished:
            continue
        if network.status is Status.RUNNING:
            network.status, network.error = status, error
        _finish(network)


def _finish(network: Network) -> None:
    network.finished = True
    network.status = network.writer.finish(network.status, network.epochs_done, network.error,
                                           **network.health.flags())


def _progress_bar(name: str, epochs: int, start: int, n_networks: int):
    from tqdm import tqdm
    label = name if n_networks == 1 else f"{name} ({n_networks} networks)"
    return tqdm(total=epochs, initial=start, desc=label, unit="epoch", dynamic_ncols=True, mininterval=0.5)


def _progress_text(chunk: Chunk, active: np.ndarray) -> str:
    train, test = chunk.accuracy[-1, 0, active], chunk.accuracy[-1, 1, active]
    return f"train acc {np.mean(train):.3f} test acc {np.mean(test):.3f}" if active.any() else ""
