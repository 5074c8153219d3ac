"""How much memory an experiment needs, checked against this machine's before anything runs."""

from __future__ import annotations

from ibstore.text import cut
from trainer.config.schema import ConfigError, ExperimentConfig
from trainer.machine import physical_memory

# Inputs (train + test), features and classes of the built-in datasets, for the memory
# estimate before anything is loaded ("file" datasets are only known once read).
DATASET_SHAPES = {"harmonics": (4096, 12, 2), "harmonics_zero_mean": (4096, 12, 2),
                  "mnist": (70000, 784, 10), "fashion_mnist": (70000, 784, 10)}
OPTIMIZER_SLOTS = {"adam": 2, "rmsprop": 1, "sgd": 0}  # per-weight state kept by each optimizer

# Measured, not derived: the peak RSS of `trainer run data/configs/basic.json --set architecture=[W]
# --set epochs=1` for W = 25,000, 50,000 and 100,000 units (bench/RESULTS.md) grows by about
# 53 bytes per activation value (input x unit) of one network. The terms of memory_estimate
# below the constant count 25 of them; the rest are the temporaries of a logged epoch's
# histograms, per-neuron statistics and MI (float64 copies, masks, bin codes; seen with
# tracemalloc) and TensorFlow's buffers for the evaluation with every layer.
LOGGED_EPOCH_BYTES_PER_VALUE = 28
TENSORFLOW_RUNTIME_BYTES = 800 * 2**20     # the process with TensorFlow loaded, before any model
# Measured, not derived: compiling the training step grows with the depth, whatever the widths. Peak RSS
# of `trainer run data/configs/basic.json --set architecture=[2]*L --set epochs=1`: 1.88 GB at L = 50,
# 3.70 GB at L = 100 (36 MB a layer); an attacker's 20,000 layers of one unit reached 14.8 GB, still
# compiling, against an estimate of 1.45 GiB that left them to fill the machine.
COMPILE_BYTES_PER_LAYER = 40 * 2**20
# An experiment may plan on this share of physical memory: the system, the explorer, other
# workers and the allocator's slack need the rest.
MEMORY_SHARE = 0.8


def memory_estimate(config: ExperimentConfig, shape: tuple[int, int, int] | None = None) -> int | None:
    """Bytes one experiment needs (all its seeds trained stacked), or None if its dataset's
    size is unknown before loading (dataset "file"; `shape`, its (inputs, features, classes) once
    loaded, gives it).

    Per network, float32: the weights W (P values) with their gradient, the two gradient
    sums of the gradient statistics (float64: 4 P) and a host copy at logged epochs (7 P), plus the
    optimizer's per-weight state (Adam 2 P, RMSprop P); every layer's activations on all
    N inputs at logged epochs, on the device and as a host copy (2 N U, U = units of all
    layers); a minibatch's activations for the forward and backward pass (3 B U); and the
    temporaries of a logged epoch's summaries, which are computed for every network at once
    (LOGGED_EPOCH_BYTES_PER_VALUE x N x the widest layer, measured). Once per experiment:
    one layer's activations in float64 plus their bin codes for the MI estimate
    (16 N max-units), TensorFlow itself and the compiled step, COMPILE_BYTES_PER_LAYER a layer.
    Close to the measured peaks above (bench/RESULTS.md).
    """
    shape = shape or DATASET_SHAPES.get(config.dataset)
    if shape is None:
        return None
    n_inputs, n_features, n_classes = shape
    widths = [n_features, *config.architecture, n_classes]
    params = sum(a * b + b for a, b in zip(widths, widths[1:]))
    units, widest = sum(widths[1:]), max(widths[1:])
    n_train = n_inputs - int(n_inputs * config.test_fraction)
    batch = n_train if config.batch_size == "full" else min(config.batch_size, n_train)
    per_network = (4 * ((7 + OPTIMIZER_SLOTS[config.optimizer]) * params + 2 * n_inputs * units
                        + 3 * batch * units)
                   + LOGGED_EPOCH_BYTES_PER_VALUE * n_inputs * widest)
    return (config.n_runs * per_network + 16 * n_inputs * widest + TENSORFLOW_RUNTIME_BYTES
            + COMPILE_BYTES_PER_LAYER * (len(widths) - 1))


def check_memory(config: ExperimentConfig, shape: tuple[int, int, int] | None = None) -> None:
    """Refuse, before anything is written, an experiment that cannot fit in this machine's memory
    (a "file" dataset's once loaded: `shape` as memory_estimate's)."""
    needed, physical = memory_estimate(config, shape), physical_memory()
    if needed is not None and physical is not None and needed > MEMORY_SHARE * physical:
        raise ConfigError(
            f"config key 'architecture' = {cut(str(config.architecture))}, {config.n_runs} network(s) trained "
            f"stacked, on "
            f"{config.dataset} needs about {needed / 2**30:.1f} GiB of memory (weights, optimizer state, "
            f"every layer's activations on all inputs, and about {COMPILE_BYTES_PER_LAYER // 2**20} MiB a layer to "
            f"compile), more than this machine's {MEMORY_SHARE:.0%} of {physical / 2**30:.1f} GiB; use fewer or "
            f"narrower layers, or fewer seeds (n_runs) or configs of this shape at once")
