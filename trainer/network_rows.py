"""What the training loop records per network: its run, its rows, its end.

A `Network` is one network of a stack with its writer, MI rows and health; `Logging`
what turns an epoch into rows (fixed for the stack). The loop (trainer.training) hands
each chunk's metrics and each logged epoch's activations here; a network that stops
(target reached, diverged, its rows failed) is finished at once while the others train on.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ibstore.record import Status
from trainer import saved
from trainer.activation_facts import Activations, take
from trainer.compiled import Chunk
from trainer.config import Experiment, ExperimentConfig
from trainer.health import LayerHealth, NetworkHealth, layer_health
from trainer.measure import StackMiRows, activation_rows
from trainer.stack_rows import StackRows, labels
from trainer.store import RunWriter, StoreError
from trainer.summaries import HistogramGrid, HistogramOverflow, gradient_stats


class Network:
    """One network of the stack: its run (writer, health), its position, its state."""

    def __init__(self, experiment: Experiment, seed: int, run_id: str):
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

    def diverge(self, why: str) -> None:
        """Its activations exploded though its loss stayed finite (a clipped loss is bounded): it ends
        `diverged`, the others go on."""
        self.status, self.error = Status.DIVERGED, why
        self.health.exploded = True


@dataclass
class Logging:
    """What the loop needs to turn an epoch into rows; fixed for the whole stack."""

    config: ExperimentConfig
    root: Path
    rows: dict[str, slice]
    labels: np.ndarray
    layer_names: list[str]
    activation_fns: list[Activations]   # per layer, each network's activation
    grids: list[HistogramGrid]
    n_batches: int
    mi: StackMiRows | None = None       # the stack's mi rows, network.index its position


def record_metrics(networks: list[Network], first_epoch: int, loss: np.ndarray, accuracy: np.ndarray,
                    config: ExperimentConfig) -> bool:
    """Metrics rows of epochs first_epoch, first_epoch + 1, ... (loss, accuracy: [epochs, 2, N])
    for every running network, up to the epoch where it diverges or reaches the target accuracy.
    Returns whether a network reached the target at the last of these epochs (it must be logged)."""
    target = config.stop_at_accuracy
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
            network.health.observe_metrics(float(train_loss), float(test_loss), float(train_accuracy))
        network.epochs_done = int(epochs[-1])
        if diverged[last]:
            network.status = Status.DIVERGED
            network.error = (f"loss became {own_loss[last, 0]} (train) / {own_loss[last, 1]} (test) "
                             f"at epoch {network.epochs_done}")
        elif reached[last]:
            network.status = Status.COMPLETED
            reached_at_end = reached_at_end or last == n_epochs - 1
    return reached_at_end


def record_logged(networks: list[Network], epoch: int, layers: list[np.ndarray], chunk: Chunk | None,
                   log: Logging) -> None:
    """MI, histogram, per-neuron and (after epoch 0) gradient rows of one logged epoch, for these
    networks. Each table's rows are built for all of them at once (a network whose activations no
    histogram bin can index diverges alone; any other error there fails them all, in the caller); a
    network whose MI or rows cannot be written is failed alone."""
    if not networks:
        return
    config = log.config
    index = np.array([n.index for n in networks])
    run_ids = [n.run_id for n in networks]
    everyone = np.array_equal(index, np.arange(len(layers[0])))
    stacked = layers if everyone else [values[index] for values in layers]     # a copy only when needed
    activation_fns = [take(fns, index) for fns in log.activation_fns]
    try:
        histograms, neuron_stats, saturated_counts = activation_rows(
            epoch, run_ids, stacked, log.rows, config.mi_splits, activation_fns,
            [grid.take(index) for grid in log.grids], log.layer_names)
    except HistogramOverflow as error:
        # Activations no histogram bin can index (2^63 bins from the grid's origin, or not finite): those
        # networks diverged, with no rows at this epoch (as a NaN loss's); the others are logged without them.
        exploded = [networks[s] for s in error.networks]
        for network in exploded:
            network.diverge(f"activations exploded at epoch {epoch}: not finite, or 2^63 histogram bins or "
                            f"more from the origin")
        record_logged([n for n in networks if n not in exploded], epoch, layers, chunk, log)
        return
    tables = {"activations": histograms, "activation_stats": neuron_stats}
    mi_outcomes = log.mi.at_epoch(epoch, stacked, list(index), known_finite=all_finite(neuron_stats))
    states = None
    if chunk is not None:
        gradients = [gradient_stats(g[index], g2[index], log.n_batches, kernel[index])
                     for g, g2, kernel in zip(chunk.grad_sum, chunk.grad_sq_sum, chunk.kernels)]
        # Hidden layers only (the softmax layer learns the class prior even in a dead network).
        # The saturated values the per-neuron statistics counted, when their splits cover every input.
        counted = saturated_counts or [None] * len(stacked)
        states = [layer_health(fn, values, stats["grad_mean_norm"], stats["grad_std_norm"], count)
                  for fn, values, stats, count in zip(activation_fns[:-1], stacked[:-1], gradients[:-1], counted)]
        tables["gradients"] = gradient_rows(epoch, run_ids, gradients, states, log.layer_names)
    for position, network in enumerate(networks):
        try:
            mi = mi_outcomes[position]
            if isinstance(mi, Exception):
                raise mi
            if mi:
                network.writer.add("mi", mi)
            for name, rows in tables.items():
                network.writer.add(name, rows.of(position))
            if states is not None:
                network.health.observe_layers(epoch, [layer[position] for layer in states])
            if config.save_activations:
                network.writer.folder_lost()   # its folder gone, this would fail with a bare FileNotFoundError
                saved.save_epoch(log.root, network.run_id, epoch, [values[position] for values in stacked])
        except StoreError:
            raise
        except Exception as error:
            network.fail(error)


def all_finite(neuron_stats: StackRows) -> bool:
    """Whether every value the statistics summarised is finite: each neuron's min and max of each split
    are (np.min and np.max give NaN for a row with a NaN, and an infinity is a row's min or max). They
    cover the rows the MI estimates read (log.rows, config.mi_splits: StackMiRows is built with the
    same), whose own check would be a pass more over every layer."""
    return all(np.isfinite(neuron_stats.table.column(name).to_numpy()).all() for name in ("min", "max"))


def gradient_rows(epoch: int, run_ids: list[str], gradients: list[dict[str, np.ndarray]],
                  states: list[list[LayerHealth]], layer_names: list[str]) -> StackRows:
    """The gradients rows of a stack: per layer its `gradient_stats` ([N] each) and, for the hidden
    layers, each network's health (NULL for the output layer)."""
    n_networks, n_layers = len(run_ids), len(gradients)
    network = np.repeat(np.arange(n_networks), n_layers)
    health = list(LayerHealth) + [None]
    codes = np.full((n_networks, n_layers), len(health) - 1)
    codes[:, :len(states)] = np.array([[health.index(state) for state in layer] for layer in states]).T
    return StackRows.build("gradients", {
        "run_id": labels(run_ids, network), "epoch": np.full(len(network), epoch),
        "layer": np.tile(np.arange(n_layers), n_networks), "layer_name": labels(layer_names, np.tile(
            np.arange(n_layers), n_networks)),
        **{k: np.stack([layer[k] for layer in gradients], axis=1).reshape(-1) for k in gradients[0]},
        "health": labels([None if state is None else state.value for state in health], codes.reshape(-1))},
        network, n_networks)


def finish_ended(networks: list[Network], log: Logging) -> None:
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


def finish_all(networks: list[Network], status: Status, error: str | None) -> None:
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
