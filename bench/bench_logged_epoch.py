"""Where the CPU of a logged epoch of 45 stacked networks goes, part by part (CPU seconds of the
whole process, every thread: TensorFlow's and the flushes'), this checkout beside an older one.

    python bench/bench_logged_epoch.py                              # this checkout
    python bench/bench_logged_epoch.py --before /tmp/old --repeats 3   # and an older checkout, interleaved

The run is `bench_training.py`'s logged epoch: the default config (tanh 12-10-7-5-4-3-2, binning 0.07
on train and test, every table), 45 networks, every epoch logged. Each part is timed by wrapping the
loop's own functions (by name, so older code is timed the same way), from the second compiled
training call (the first compiles or loads the executable: start-up) to the end of the run: the
compiled calls, the evaluation calls (a second compiled call per logged epoch in code before issue
18 round 4; none after), histograms and per-neuron statistics, MI, layer health, all the logged
rows together, the flushes (since issue 18's sweep branch only starting them and waiting for the
ones before: they write in threads while the next compiled call runs, and that CPU counts in
whatever part runs meanwhile; "whole loop" counts it all), and the compaction at the end (layer
health's saturated values, once counted in its part, are now counted with the per-neuron
statistics when the splits cover every input). Per logged epoch = total / the epochs
timed (the compaction spread over them too). With `--before DIR` each measurement runs in a
subprocess with PYTHONPATH=DIR or this checkout, interleaved `--repeats` times; medians are printed
with the machine's load average.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import tempfile
import time
from pathlib import Path

from side_by_side import add_arguments, report

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PARTS = {   # label: (module, attribute path) of the function timed, or a list of them; older names after "|"
    "compiled calls": ("trainer.compiled", "CompiledSteps.train"),
    "evaluation calls": ("trainer.compiled", "CompiledSteps.evaluate_layers"),
    "histograms + statistics": ("trainer.network_rows", "activation_tables|activation_rows"),
    "mi": ("trainer.measure", "StackMiRows.at_epoch"),
    "layer health": ("trainer.network_rows", "layer_health"),
    "logged rows, all": ("trainer.training", "record_logged"),
    "flushes": [("trainer.flushing", "Flushes.start"), ("trainer.flushing", "Flushes.flush_all"),
                ("trainer.training", "flush_together")],
    "compaction at the end": ("trainer.training", "_finish_completed"),
}


def measure(networks: int, epochs: int) -> dict[str, float]:
    """CPU seconds per logged epoch of each part, and of the whole loop, from the second training call."""
    import importlib

    from trainer import compiled, config, training

    spent: dict[str, float] = collections.defaultdict(float)
    timing = {"on": False}

    def timed(label, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if not timing["on"]:
                return function(*args, **kwargs)
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.process_time() - start
        return wrapper

    for label, spec in PARTS.items():
        for module_name, path in spec if isinstance(spec, list) else [spec]:   # a path older code lacks is skipped
            owner = importlib.import_module(module_name)
            *outer, names = path.split(".")
            for part in outer:
                owner = getattr(owner, part, None)
            for name in names.split("|"):
                if hasattr(owner, name):
                    setattr(owner, name, timed(label, getattr(owner, name)))
    train, calls = compiled.CompiledSteps.train, [0]

    def from_the_second_call(*args, **kwargs):
        # The first call compiles (or loads the executable): start-up, as in bench_training.py.
        calls[0] += 1
        if calls[0] == 2:
            timing["on"], spent["start"] = True, time.process_time()
        return train(*args, **kwargs)

    compiled.CompiledSteps.train = from_the_second_call
    (experiment,) = config.plan({"name": "bench", "epochs": epochs, "log_schedule": {"every": 1},
                                 "n_runs": networks})
    with tempfile.TemporaryDirectory() as root:
        training.run_experiment(experiment, Path(root), progress=False)
    loop, timed_epochs = time.process_time() - spent.pop("start"), epochs - 1
    return {"whole loop": loop / timed_epochs, **{label: spent[label] / timed_epochs for label in PARTS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=45)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args()
    report(__file__, args, lambda: measure(args.networks, args.epochs),
           ["--networks", str(args.networks), "--epochs", str(args.epochs)],
           f"{args.networks} stacked networks, {args.epochs} epochs all logged", "CPU ms per logged epoch",
           scale=1e3, digits=1)


if __name__ == "__main__":
    main()
