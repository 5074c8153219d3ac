"""The compiled training step alone, CPU seconds per network-epoch, variants side by side in one run.

    python bench/bench_step.py                                  # this checkout, 45 networks
    python bench/bench_step.py --before /tmp/old                # beside an older checkout (repeatable)
    python bench/bench_step.py --before /tmp/old --xla-flags=--xla_cpu_experimental_xnn_fusion_type=dot
                                      # also this checkout under other XLA flags
    python bench/bench_step.py --mixed  # each variant also with the 45 networks in blocks of the 11 activations
    python bench/bench_step.py --networks 45 1 5 10   # each stack size (the cohort's first networks), every
                                                      # checkout at each

The stack is the seed notebook cohort's (relu 12-10-7-5-4-3-2 on harmonics, batch 256, Adam,
9 initial biases x 5 seeds = 45 networks, one thread as a sweep worker runs). Each variant runs
in a fresh process: one compiled call of `--epochs` epochs (it compiles), then `--epochs` more
in one call, timed by the process's CPU clock (user + system; steadier than wall time on a
shared machine). That is the chunk a sweep runs between logged epochs: minibatch steps, the
per-epoch evaluation on train and test, the reshuffled orders copied in; no logging. Variants
alternate over `--repeats` rounds; the median is printed with the load average beside it.
An `--xla-flags` value is the XLA_FLAGS of one more variant of this checkout. `--mixed` adds to each
variant a twin with the same 45 networks given the 11 activations in turn, ordered by activation as
a sweep stacks them (11 blocks; a checkout that cannot mix activations fails there): the cost of
per-network activations, the activations' own cost (tanh, exp) included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIASES = (-1, -0.5, -0.2, 0, 0.2, 0.5, 1, 2, 5)
SEEDS = 5


def notebook_stack(epochs: int, mixed: bool, n_networks: int):
    """The compiled chunk of the cohort's first `n_networks` networks, with `epochs` epochs a call:
    (CompiledSteps, orders(first epoch) -> [epochs, N, n_train], the active mask)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from trainer import config
    from trainer.compiled import CompiledSteps
    from trainer.model import ACTIVATIONS, NetworkSettings, StackedMLP
    from trainer.optimizers import Optimizer
    from trainer.tensorflow_without_keras import tf
    from trainer.training import configure_threads, epoch_order, load_data

    configure_threads(1)
    tf.config.experimental.enable_op_determinism()
    raw = json.loads((REPO / "data" / "configs" / "reproductions" / "initial_bias_relu_notebook.json").read_text())
    experiment = config.plan({k: v for k, v in raw.items() if k not in ("grid", "cohort", "description", "source")})[0]
    cfg = experiment.config
    data = load_data(cfg)
    activations = sorted(list(ACTIVATIONS)[i % len(ACTIVATIONS)] for i in range(n_networks)) if mixed \
        else [cfg.activation_fn] * n_networks
    networks = [NetworkSettings(seed=seed, initial_bias=bias, kernel_init_stddev=None, max_norm=None,
                                learning_rate=cfg.learning_rate, activation_fn=fn)
                for (bias, seed), fn in zip([(b, s) for b in BIASES for s in range(SEEDS)][:n_networks], activations)]
    model = StackedMLP(cfg, data.train.x.shape[1], data.n_classes, networks)
    optimizer = Optimizer(cfg.optimizer, [n.learning_rate for n in networks], model.trainable)
    steps = CompiledSteps(model, optimizer, data, cfg.batch_size, None, epochs, cfg.loss)

    def orders(first: int) -> np.ndarray:
        return np.stack([np.stack([epoch_order(n.seed, e, len(data.train.y)) for n in networks])
                         for e in range(first, first + epochs)])

    return steps, orders, np.ones(len(networks), bool)


def child(epochs: int, mixed: bool, n_networks: int) -> None:
    """Train the stack of the cohort's first `n_networks` networks in this process and print
    {"cpu_per_network_epoch": seconds} as JSON."""
    steps, orders, active = notebook_stack(epochs, mixed, n_networks)
    steps.train(orders(0), active)     # compiles
    timed_orders = orders(epochs)
    start = time.process_time()
    steps.train(timed_orders, active)
    seconds = time.process_time() - start
    print(json.dumps({"cpu_per_network_epoch": seconds / (epochs * n_networks)}))


def measure(code: Path, xla_flags: str | None, epochs: int, mixed: bool = False,
            n_networks: int = len(BIASES) * SEEDS) -> float:
    env = {**os.environ, "PYTHONPATH": str(code)}
    env.pop("TF_XLA_FLAGS", None)
    env.pop("XLA_FLAGS", None)
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    result = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--epochs", str(epochs),
                             "--networks", str(n_networks), *(["--mixed"] if mixed else [])],
                            cwd=code, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])["cpu_per_network_epoch"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs in the timed call (and in the warm-up)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", type=Path, action="append",
                        help="an older checkout, timed beside this one (repeatable)")
    parser.add_argument("--xla-flags", action="append",
                        help="an XLA_FLAGS value: one more variant of this checkout (repeatable)")
    parser.add_argument("--mixed", action="store_true",
                        help="also this checkout with the networks' activations mixed (11 blocks)")
    parser.add_argument("--networks", type=int, nargs="+", default=[len(BIASES) * SEEDS],
                        help="stack sizes (the cohort's first N networks; default all 45): every checkout at each")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.epochs, args.mixed, args.networks[0])
        return
    main_size, *other_sizes = args.networks
    variants = [(f"before ({before})", before, None, False, main_size) for before in args.before or []]
    variants += [("this checkout", REPO, None, False, main_size)]
    variants += [(f"this checkout, XLA_FLAGS={flags!r}", REPO, flags, False, main_size) for flags in args.xla_flags or []]
    if args.mixed:
        variants += [(f"{name}, 11 activations mixed", code, flags, True, size)
                     for name, code, flags, _, size in variants]
    variants += [(f"{name}, a stack of {size}", code, None, False, size) for size in other_sizes
                 for name, code in [*((f"before ({before})", before) for before in args.before or []),
                                    ("this checkout", REPO)]]
    figures: dict[str, list[float]] = {name: [] for name, *_ in variants}
    loads = []
    for _ in range(args.repeats):
        for name, code, flags, mixed, size in variants:
            figures[name].append(measure(code, flags, args.epochs, mixed, size))
            loads.append(os.getloadavg()[0])
    print(f"compiled step, {main_size} networks x {args.epochs} epochs per call, median of {args.repeats}; "
          f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")
    for name, values in figures.items():
        print(f"  {name}: {np.median(values) * 1e3:.3f} ms CPU per network-epoch "
              f"(runs: {', '.join(f'{v * 1e3:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
