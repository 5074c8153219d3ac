"""The training loop: one experiment, all its seeds trained together.

Read top to bottom: load the data, build the stacked network, then for every
epoch one compiled call trains a full pass over the training data (minibatch
gradient statistics accumulated in the graph) and one evaluates the network.
At logged epochs the activations of every layer on every input are pulled out
and turned into MI, histogram and per-neuron rows. Each seed is written as its
own run. No Keras callbacks on the hot path.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable
from typing import Any

import numpy as np
import tensorflow as tf

from trainer import checkpoint, config as config_module, datasets, saved, schedule
from trainer.health import NetworkHealth
from trainer.measure import MiRows, activation_rows, split_rows
from trainer.model import StackedMLP
from trainer.optimizers import Optimizer
from ibstore.record import Status
from trainer.store import REPLACEABLE_BY_DEFAULT, RunWriter
from trainer.summaries import HistogramGrid, gradient_stats

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


@dataclass
class EpochResult:
    loss: dict[str, np.ndarray]        # split -> [S]
    accuracy: dict[str, np.ndarray]    # split -> [S]
    layers: list[np.ndarray] | None    # per layer [S, n_inputs, units], at logged epochs
    gradients: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None  # per layer: sum, sum sq, kernel
    n_batches: int = 0


class CompiledSteps:
    """The two compiled functions of the loop: one training epoch, one evaluation."""

    def __init__(self, model: StackedMLP, optimizer: Optimizer,
                 data: datasets.Dataset, batch_size: int | str):
        self.model, self.optimizer = model, optimizer
        self.x_train = tf.constant(data.train.x)
        self.y_train = tf.constant(data.train.y.astype(np.int32))
        self.x_all = tf.constant(data.full.x)
        self.y_all = tf.constant(data.full.y.astype(np.int32))
        self.n_train = len(data.train.y)
        self.batch_size = self.n_train if batch_size == "full" else int(batch_size)
        self.n_batches = math.ceil(self.n_train / self.batch_size)
        self.train_epoch = tf.function(self._train_epoch)
        self.evaluate = tf.function(self._evaluate, jit_compile=True)

    def _train_epoch(self, order: tf.Tensor):
        """One pass over the training data in the order `order` [S, n_train].

        Returns the per-layer sums of the kernel gradients and of their squares over
        the minibatches (for gradient_stats)."""
        model = self.model
        grad_sum = [tf.zeros_like(layer.kernel) for layer in model.layers]
        grad_sq_sum = [tf.zeros_like(layer.kernel) for layer in model.layers]
        # Unrolled for the few minibatches of small data (faster); a graph loop for many.
        for batch in (range(self.n_batches) if self.n_batches <= 32 else tf.range(self.n_batches)):
            index = order[:, batch * self.batch_size:(batch + 1) * self.batch_size]
            x, y = tf.gather(self.x_train, index), tf.gather(self.y_train, index)
            with tf.GradientTape() as tape:
                _, logits = model.forward(x, training=True)
                per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
                # Summing the seeds' mean losses keeps each seed's gradient its own.
                loss = tf.reduce_sum(tf.reduce_mean(per_example, axis=1))
            gradients = tape.gradient(loss, model.trainable)
            self.optimizer.apply(gradients)
            model.apply_constraints()
            kernel_grads = [gradients[i] for i in model.kernel_positions]
            grad_sum = [s + g for s, g in zip(grad_sum, kernel_grads)]
            grad_sq_sum = [s + g * g for s, g in zip(grad_sq_sum, kernel_grads)]
        return grad_sum, grad_sq_sum

    def _evaluate(self, with_layers: bool):
        """Loss and accuracy per seed on train and test; all layers' activations if asked."""
        layers, logits = self.model.forward(self.x_all)
        labels = tf.broadcast_to(self.y_all, tf.shape(logits)[:2])
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float64)
        n = self.n_train
        result = {
            "train_loss": tf.reduce_mean(per_example[:, :n], axis=1),
            "test_loss": tf.reduce_mean(per_example[:, n:], axis=1),
            "train_accuracy": tf.reduce_mean(correct[:, :n], axis=1),
            "test_accuracy": tf.reduce_mean(correct[:, n:], axis=1),
        }
        return result, (layers if with_layers else [])

    def run_evaluation(self, with_layers: bool) -> EpochResult:
        values, layers = self.evaluate(with_layers)  # a Python bool: one trace per value
        values = {k: v.numpy().astype(np.float64) for k, v in values.items()}
        return EpochResult(
            loss={"train": values["train_loss"], "test": values["test_loss"]},
            accuracy={"train": values["train_accuracy"], "test": values["test_accuracy"]},
            layers=[layer.numpy() for layer in layers] if with_layers else None,
        )


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The minibatch order of one seed's epoch: a function of (seed, epoch) alone, so a
    resumed run shuffles exactly as an uninterrupted one."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


class SeedRun:
    """One seed's run: its writer, its position on the seed axis, its state."""

    def __init__(self, writer: RunWriter, index: int, epochs_done: int):
        self.writer, self.index = writer, index
        self.status = "running"
        self.error: str | None = None
        self.epochs_done = epochs_done
        self.mi: MiRows | None = None  # set by run_experiment
        self.health = NetworkHealth()

    @property
    def run_id(self) -> str:
        return self.writer.run_id


@dataclass
class Logging:
    """What the loop needs to turn an epoch into rows; fixed for the whole run."""

    config: dict[str, Any]
    root: Path
    rows: dict[str, slice]
    labels: np.ndarray
    layer_names: list[str]
    activation_fns: list[str]
    grids: list[HistogramGrid]


def run_experiment(experiment: dict[str, Any], root: Path, seeds: list[int] | None = None,
                   progress: bool = True, resume: bool = False, flush_seconds: float = 5.0,
                   replace: Iterable[Status] = REPLACEABLE_BY_DEFAULT) -> dict[str, str]:
    """Train one experiment (every seed in `seeds`, default all) and write its runs.

    Returns {run_id: final status as recorded}. KeyboardInterrupt marks the runs interrupted
    (everything flushed so far stays readable) and is re-raised. `replace`: statuses of
    earlier runs with these ids that may be overwritten (RunWriter); RunLocked / RunExists
    if a run is held by another process or may not be replaced.
    """
    tf.config.experimental.enable_op_determinism()
    config, name = experiment["config"], experiment["name"]
    seeds = seeds or experiment["seeds"]
    data = load_data(config)
    model = StackedMLP(config, data.train.x.shape[1], data.n_classes, seeds)
    optimizer = Optimizer(config["optimizer"], config["learning_rate"], model.trainable)
    steps = CompiledSteps(model, optimizer, data, config["batch_size"])
    logged = set(schedule.logged_epochs(config["log_schedule"], config["epochs"]))

    initial = steps.run_evaluation(with_layers=True)
    activation_fns = [layer.activation for layer in model.layers]
    log = Logging(
        config=config, root=Path(root), rows=split_rows(len(data.train.y), len(data.full.y)),
        labels=data.full.y, layer_names=[layer.name for layer in model.layers], activation_fns=activation_fns,
        grids=[HistogramGrid.for_layer(fn, values, config["histogram_bins"])
               for fn, values in zip(activation_fns, initial.layers)],
    )
    run_ids = [config_module.run_id(name, config, seed) for seed in seeds]
    start_epoch = checkpoint.latest_common_epoch(root, run_ids) if resume and config["save_checkpoints"] else 0
    runs = []
    for index, (seed, run_id) in enumerate(zip(seeds, run_ids)):
        meta = {"run_id": run_id, "group_id": config_module.group_id(name, config), "name": name,
                "cohort": experiment.get("cohort"), "config": {**config, "seed": seed}, "seed": seed,
                "epochs_total": config["epochs"], "split_seed": config["split_seed"],
                "ignored_keys": sorted(experiment.get("ignored", {})), "epochs_done": start_epoch}
        try:
            writer = RunWriter(root, meta, flush_seconds, resume_epoch=start_epoch or None, replace=replace)
        except BaseException:
            for run in runs:  # release the runs taken so far (they read as interrupted at epoch 0)
                run.writer.close()
            raise
        runs.append(SeedRun(writer, index, start_epoch))
        runs[-1].mi = MiRows(run_id, config["estimators"], config["activation_fn"], log.labels, log.rows,
                             config["mi_splits"], log.layer_names)
        if config["save_activations"] and not start_epoch:
            saved.save_index(root, run_id, log.labels, len(data.train.y), log.layer_names)
    if start_epoch:
        checkpoint.restore(root, run_ids, start_epoch, model, optimizer)

    bar = _progress_bar(name, config["epochs"], start_epoch, len(seeds)) if progress else None
    last_checkpoint = time.monotonic()
    try:
        if start_epoch == 0:
            _record(runs, 0, initial, log)
        for epoch in range(start_epoch + 1, config["epochs"] + 1):
            order = np.stack([epoch_order(seed, epoch, steps.n_train) for seed in seeds])
            grad_sum, grad_sq_sum = steps.train_epoch(tf.constant(order))
            result = steps.run_evaluation(with_layers=epoch in logged)
            if result.layers is None and _any_run_ends(runs, result, config):
                result = steps.run_evaluation(with_layers=True)
            if result.layers is not None:
                kernels = [layer.kernel.numpy() for layer in model.layers]
                result.gradients = [
                    (g.numpy(), g2.numpy(), k) for g, g2, k in zip(grad_sum, grad_sq_sum, kernels)]
                result.n_batches = steps.n_batches
            _record(runs, epoch, result, log)
            running = [run for run in runs if run.status == "running"]
            # At most one checkpoint per flush interval, after a flush (tables first: a resumed
            # run must find every epoch up to its checkpoint).
            if config["save_checkpoints"] and epoch in logged and running \
                    and time.monotonic() - last_checkpoint >= flush_seconds:
                for run in running:
                    run.writer.flush(run.epochs_done)
                checkpoint.save(root, [r.run_id for r in running], [r.index for r in running],
                                epoch, model, optimizer)
                last_checkpoint = time.monotonic()
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(_progress_text(result), refresh=False)
            if not running:
                break
            for run in running:
                run.writer.maybe_flush(run.epochs_done)
    except KeyboardInterrupt:
        _finish_all(runs, "interrupted", "interrupted by the user (Ctrl-C or SIGTERM)")
        raise
    except BaseException as error:
        _finish_all(runs, "failed", "".join(traceback.format_exception_only(error)).strip())
        raise
    finally:
        if bar is not None:
            bar.close()
    for run in runs:
        if run.status == "running":
            run.status = "completed"
        deferred = run.mi.at_end()
        if deferred:
            run.writer.add("mi", deferred)
        run.status = run.writer.finish(run.status, run.epochs_done, run.error, **run.health.flags()).value
    return {run.run_id: run.status for run in runs}


def _any_run_ends(runs: list[SeedRun], result: EpochResult, config: dict[str, Any]) -> bool:
    """Whether a running seed reaches the target accuracy now, so this epoch must be logged."""
    target = config["stop_at_accuracy"]
    return target is not None and any(
        run.status == "running" and result.accuracy["test"][run.index] >= target for run in runs)


def _record(runs: list[SeedRun], epoch: int, result: EpochResult, log: Logging) -> None:
    """Write one epoch's rows for every seed that is still running."""
    config = log.config
    for run in runs:
        if run.status != "running":
            continue
        s = run.index
        run.writer.add("metrics", {
            "run_id": run.run_id, "epoch": epoch, "split": ["train", "test"],
            "loss": [result.loss[split][s] for split in ("train", "test")],
            "accuracy": [result.accuracy[split][s] for split in ("train", "test")]})
        run.epochs_done = epoch
        losses = [result.loss[split][s] for split in ("train", "test")]
        run.health.observe_losses(epoch, *losses)
        if not np.all(np.isfinite(losses)):
            run.status = "diverged"
            run.error = f"loss became {losses[0]} (train) / {losses[1]} (test) at epoch {epoch}"
            continue
        target = config["stop_at_accuracy"]
        if target is not None and result.accuracy["test"][s] >= target:
            run.status = "completed"
        if result.layers is None:
            continue
        layers = [values[s] for values in result.layers]
        mi = run.mi.at_epoch(epoch, layers)
        if mi:
            run.writer.add("mi", mi)
        histogram, stats = activation_rows(run.run_id, epoch, layers, log.rows, config["mi_splits"],
                                           log.activation_fns, log.grids)
        run.writer.add("activations", histogram)
        run.writer.add("activation_stats", stats)
        if result.gradients is not None:
            per_layer = [gradient_stats(g[s], g2[s], result.n_batches, kernel[s])
                         for g, g2, kernel in result.gradients]
            run.writer.add("gradients", {"run_id": run.run_id, "epoch": epoch, "layer": range(len(per_layer)),
                                         **{k: [row[k] for row in per_layer] for k in per_layer[0]}})
            run.health.observe_gradients(epoch, [row["grad_mean_norm"] for row in per_layer],
                                         [row["grad_std_norm"] for row in per_layer])
        if config["save_activations"]:
            saved.save_epoch(log.root, run.run_id, epoch, layers)


def _finish_all(runs: list[SeedRun], status: str, error: str) -> None:
    for run in runs:
        if run.status == "running":
            run.status, run.error = status, error
        run.status = run.writer.finish(run.status, run.epochs_done, run.error, **run.health.flags()).value


def _progress_bar(name: str, epochs: int, start: int, n_seeds: int):
    from tqdm import tqdm
    label = name if n_seeds == 1 else f"{name} ({n_seeds} seeds)"
    return tqdm(total=epochs, initial=start, desc=label, unit="epoch", dynamic_ncols=True, mininterval=0.5)


def _progress_text(result: EpochResult) -> str:
    train, test = result.accuracy["train"], result.accuracy["test"]
    return f"train acc {np.mean(train):.3f} test acc {np.mean(test):.3f}"
