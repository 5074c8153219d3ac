"""Training speed, side by side in one process: Keras `fit` with a per-epoch logging callback,
ours, and a numpy forward/backward floor of the same network.

    python bench/bench_training.py                  # about 10 minutes on 2 busy cores
    python bench/bench_training.py --repeats 1      # quicker, noisier
    python bench/bench_training.py --full           # also the full 8000-epoch default run (subprocess)
    python bench/bench_training.py --seeds-epochs 300 8000   # 10 seeds vs 1 at more epochs (issue 18: 8000)
    python bench/bench_training.py --seeds --seeds-epochs 8000 --before /tmp/old   # only 10 seeds vs 1 (and old)
    python bench/bench_training.py --epoch-rows --before /tmp/old   # only the logged vs training epoch rows
                                                    # (1 and 45 networks), this checkout beside an older one
    python bench/bench_training.py --epoch-rows --cpu --before /tmp/old   # the same in CPU time (every thread
                                                    # of the process): steadier on a shared machine
    python bench/bench_training.py --epoch-rows --cpu --one-thread --before /tmp/old   # with one TensorFlow
                                                    # thread, as a sweep's workers train: no idle threads' CPU
    python bench/bench_training.py --one-epoch --before /tmp/old    # only the one-epoch `trainer run` rows
                                                    # (first and second run, wall and CPU), beside an older one

The sweep's rows (cohort vs one network, vs JAX, per shipped cohort) are bench/bench_sweep.py's.

The baseline is the deep-bottleneck way: one `model.fit` with a Keras callback that
pulls the activations of every layer on all inputs after every epoch. Ours is
`run_experiment` end to end (binning MI on train and test, histograms, per-neuron
statistics, gradients, every table written), per epoch after start-up (tracing and
XLA compilation end with the first compiled call, which is timed apart): a training
epoch from a 3000-epoch run with nothing logged in between, a logged epoch from 300
epochs all logged (both up to the last compiled call), the whole run from epochs 300 to
1500 under the default schedule up to its end, final compaction included (the issue's
T(1500) - T(300), without the noise of two compilations). The floor is the same network (12-10-7-5-4-3-2 tanh, Adam, batch
256, 3277 training rows, loss and accuracy on all 4096 inputs after each epoch) in
plain numpy. Also: a one-epoch `trainer run` as a user starts it, with an empty and with a
filled XLA compilation cache (trainer.xla_cache), beside the import of TensorFlow alone; 10 seeds
against 1 of data/configs/basic.json as a user trains them (`trainer run` processes, the same
command, wall and CPU of the process and its workers); and bench/bench_flops.py's row (the stacked step's FLOP rate beside the single-core peak). Each
figure is the median of `--repeats` interleaved repetitions; the machine's load average is
printed, since the figures depend on it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from trainer import config, datasets  # noqa: E402
from trainer import compiled  # noqa: E402
from trainer.training import run_experiment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NEVER = {"every": 1_000_000}   # the largest step allowed: only epoch 0 and the last are logged


def keras_fit_with_logging_callback(epochs: int) -> float:
    """Median seconds per epoch of the deep-bottleneck-style baseline: `model.fit` with a
    callback that pulls the activations of every layer on all inputs after every epoch."""
    data = datasets.load("harmonics")
    (experiment,) = config.plan({"epochs": epochs})
    keras.utils.set_random_seed(0)   # fit shuffles with random ops, which op determinism (ours) requires seeded
    layers = [keras.layers.Dense(n, activation="tanh",
                                 kernel_initializer=keras.initializers.TruncatedNormal(stddev=1 / np.sqrt(n)))
              for n in experiment.config.architecture]
    model = keras.Sequential([keras.Input((12,)), *layers, keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(4e-4), "sparse_categorical_crossentropy", metrics=["accuracy"])
    probe = keras.Model(model.inputs, [layer.output for layer in model.layers])
    ends = []

    class ActivityLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            [np.asarray(a) for a in probe(data.full.x, training=False)]
            ends.append(time.perf_counter())

    model.fit(data.train.x, data.train.y, batch_size=256, epochs=epochs, verbose=0,
              validation_data=(data.test.x, data.test.y), callbacks=[ActivityLogger()])
    return float(np.median(np.diff(ends)))


def numpy_floor(epochs: int) -> float:
    """Median seconds per epoch of the same network trained in plain numpy (float32): forward,
    backward and Adam per minibatch of 256, then loss and accuracy on all 4096 inputs."""
    data = datasets.load("harmonics")
    rng = np.random.default_rng(0)
    sizes = [12, 10, 7, 5, 4, 3, 2]
    weights = [rng.normal(0, 1 / np.sqrt(b), (a, b)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    biases = [np.zeros(b, np.float32) for b in sizes[1:]]
    params = weights + biases
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    x_train, y_train = data.train.x, data.train.y
    onehot = np.eye(2, dtype=np.float32)
    step = 0

    def forward(x):
        hs = [x]
        for i, (w, b) in enumerate(zip(weights, biases)):
            pre = hs[-1] @ w + b
            hs.append(np.tanh(pre) if i < len(weights) - 1 else pre)
        logits = hs[-1] - hs[-1].max(axis=1, keepdims=True)
        p = np.exp(logits)
        return hs, p / p.sum(axis=1, keepdims=True)

    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(y_train))
        for batch in range(0, len(order), 256):
            index = order[batch:batch + 256]
            hs, p = forward(x_train[index])
            delta = (p - onehot[y_train[index]]) / len(index)
            grads_w, grads_b = [None] * len(weights), [None] * len(weights)
            for i in range(len(weights) - 1, -1, -1):
                grads_w[i], grads_b[i] = hs[i].T @ delta, delta.sum(axis=0)
                if i:
                    delta = (delta @ weights[i].T) * (1 - hs[i] ** 2)
            step += 1
            alpha = 4e-4 * np.sqrt(1 - 0.999 ** step) / (1 - 0.9 ** step)
            for k, (param, g) in enumerate(zip(params, grads_w + grads_b)):
                m[k] += (g - m[k]) * 0.1
                v[k] += (g * g - v[k]) * 0.001
                param -= alpha * m[k] / (np.sqrt(v[k]) + 1e-7)
        _, p = forward(data.full.x)
        _loss, _accuracy = -np.log(p[np.arange(len(p)), data.full.y] + 1e-12).mean(), (p.argmax(1) == data.full.y).mean()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def ours(epochs: int, log_schedule, n_runs: int = 1, from_epoch: int = 0,
         to_end: bool = False, clock=time.perf_counter) -> tuple[float, float]:
    """(seconds of `run_experiment`, seconds per epoch after start-up), by `clock` (wall time,
    or time.process_time: CPU time, steadier on a shared machine). Start-up is
    everything up to the end of the first compiled call (which compiles), or of the call
    that reaches `from_epoch`. Per epoch: from there to the end of the last compiled call
    (training, the rows of logged epochs, flushes), or with `to_end` to the end of the run
    (its final flush and compaction too)."""
    (experiment,) = config.plan({"name": "bench", "epochs": epochs, "log_schedule": log_schedule, "n_runs": n_runs})
    chunks = []   # (end time, epochs trained) of every compiled call
    plain_train = compiled.CompiledSteps.train

    def timed_train(steps, orders, active):
        chunk = plain_train(steps, orders, active)
        chunks.append((clock(), chunk.n_epochs))
        return chunk

    compiled.CompiledSteps.train = timed_train
    try:
        with tempfile.TemporaryDirectory() as root:
            start = clock()
            run_experiment(experiment, Path(root), progress=False)
            end = clock()
    finally:
        compiled.CompiledSteps.train = plain_train
    ends, done = [t for t, _ in chunks], np.cumsum([n for _, n in chunks])
    # From the first call that reaches `from_epoch` (at least the first call: start-up) to the end.
    first = max(0, int(np.searchsorted(done, from_epoch)))
    if first >= len(chunks) or done[first] >= epochs:
        return end - start, float("nan")
    last, last_done = (end, epochs) if to_end else (ends[-1], done[-1])
    return end - start, (last - ends[first]) / (last_done - done[first])


def full_default_run() -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of `trainer run data/configs/basic.json`.

    Measured through a small wrapper process: a child forked from this (large) process
    would count this process's pages in its peak until it execs."""
    peak_rss = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
                "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", peak_rss, sys.executable, "-m", "trainer", "run",
                                 "data/configs/basic.json", "--quiet", "--results", root],
                                cwd=REPO, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    return seconds, int(result.stdout.split()[-1]) / 1024


def timed_process(command: list[str], code: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of a command run in `code`'s folder (Python puts the working directory
    ahead of PYTHONPATH, so elsewhere the checkout there would be timed). CPU is user + system time
    of the process, its threads and the processes it waited for (a `trainer run`'s workers)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} in {code} exited with {result.returncode}:\n{result.stderr[-2000:]}")
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (now.ru_utime - used.ru_utime) + (now.ru_stime - used.ru_stime)


def one_epoch_runs(code: Path = REPO) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of `trainer run data/configs/basic.json --set epochs=1` with an empty XLA
    cache (it compiles and fills the cache) and again (it loads from it), of importing the training
    loop (TensorFlow as the trainer imports it) and of importing TensorFlow alone; all in fresh
    processes of the checkout `code` (`timed_process`; CPU time is steadier than wall time on a
    shared machine)."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PYTHONPATH": str(code), "IB_XLA_CACHE": str(Path(folder) / "xla")}
        env.pop("TF_XLA_FLAGS", None)   # this process's own cache flag would win over IB_XLA_CACHE
        run = [sys.executable, "-m", "trainer", "run", "data/configs/basic.json", "--set", "epochs=1", "--quiet",
               "--force", "--results", str(Path(folder) / "results")]
        return {"first run": timed_process(run, code, env), "second run": timed_process(run, code, env),
                "import trainer.training": timed_process([sys.executable, "-c", "import trainer.training"], code, env),
                "import tensorflow": timed_process([sys.executable, "-c", "import tensorflow"], code, env)}


def compare_one_epoch_runs(repeats: int, before: Path | None) -> None:
    """`one_epoch_runs` of this checkout and, interleaved, of `before`: medians of `repeats`, with the
    load average."""
    load_before = os.getloadavg()
    results: dict[str, list[dict[str, tuple[float, float]]]] = {"after": [], "before": []}
    for _ in range(repeats):
        results["after"].append(one_epoch_runs(REPO))
        if before is not None:
            results["before"].append(one_epoch_runs(before.resolve()))
    print(f"load average before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} (on {os.cpu_count()} "
          f"cores); one-epoch trainer run (data/configs/basic.json --set epochs=1), seconds wall / CPU, "
          f"medians of {repeats} interleaved runs")
    for name in ("before", "after") if before is not None else ("after",):
        rows = results[name]
        print(f"{name if before is not None else 'this checkout'}: " + "; ".join(
            f"{label} {np.median([r[label][0] for r in rows]):.1f} / {np.median([r[label][1] for r in rows]):.1f}"
            for label in rows[0]))


def seeds_run(code: Path, epochs: int, seeds: int, extra: tuple[str, ...] = ()) -> tuple[float, float]:
    """(wall, CPU) seconds of `trainer run data/configs/basic.json` with `seeds` seeds of `epochs`
    epochs (and `extra` arguments), as a user runs it (a fresh process; CPU of the process and of its
    worker processes), with the checkout `code`'s trainer and a filled XLA cache."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    env.pop("TF_XLA_FLAGS", None)   # this process's cache flag: each checkout keeps its own cache
    with tempfile.TemporaryDirectory() as root:
        return timed_process([sys.executable, "-m", "trainer", "run", "data/configs/basic.json", "--set",
                              f"epochs={epochs}", "--set", f"n_runs={seeds}", "--quiet", "--results", root, *extra],
                             code, env)


def compare_seeds(epochs: int, repeats: int, before: Path | None) -> None:
    """10 seeds against 1 of data/configs/basic.json through `trainer run`: this checkout (one worker
    per core), this checkout with `--workers 1` (everything in one process) and `before`, interleaved:
    medians of `repeats`, wall and CPU seconds, the load beside them."""
    variants = [("before", before.resolve(), ())] if before is not None else []
    variants += [("this checkout, --workers 1", REPO, ("--workers", "1")), ("this checkout", REPO, ())]
    for _, code, extra in variants:   # fill the XLA caches with every shape: no compilation is timed
        seeds_run(code, 1, 1, extra), seeds_run(code, 1, 10, extra)
    load_before, figures = os.getloadavg(), {}
    for _ in range(repeats):
        for name, code, extra in variants:
            for seeds in (1, 10):
                figures.setdefault((name, seeds), []).append(seeds_run(code, epochs, seeds, extra))
    print(f"load average before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} (on {os.cpu_count()} "
          f"cores); trainer run data/configs/basic.json --set epochs={epochs} --set n_runs=1 or 10, whole "
          f"processes, seconds wall (CPU), medians of {repeats} interleaved runs")
    for name, _, _ in variants:
        (one, one_cpu), (ten, ten_cpu) = (tuple(np.median(figures[name, seeds], axis=0)) for seeds in (1, 10))
        print(f"{name}: 10 seeds vs 1 at {epochs} epochs: {ten:.1f} s ({ten_cpu:.1f}) / {one:.1f} s ({one_cpu:.1f}) "
              f"= {ten / one:.2f}x wall, {ten_cpu / one_cpu:.2f}x CPU (target <= 3x wall: "
              f"{'met' if ten / one <= 3 else 'missed'})")


def flop_row() -> str:
    """bench_flops.py's row (in its own process: one TensorFlow thread)."""
    result = subprocess.run([sys.executable, str(REPO / "bench" / "bench_flops.py")], cwd=REPO, check=True,
                            capture_output=True, text=True)
    return result.stdout.strip().splitlines()[-1]


def epoch_rows(repeats: int, clock=time.perf_counter) -> dict[str, float]:
    """Seconds (by `clock`) per training epoch and per logged epoch (every epoch logged) of one network
    and of 45 stacked (the notebook cohort's stack size), medians of `repeats` interleaved runs."""
    rows: dict[str, list[float]] = {}
    for _ in range(repeats):
        # Training epochs span more than one compiled call (2000 network-epochs each), since the first is start-up.
        for networks, training_epochs, logged_epochs in ((1, 2400, 100), (45, 220, 30)):
            rows.setdefault(f"training epoch, {networks} network(s)", []).append(
                ours(training_epochs, NEVER, n_runs=networks, clock=clock)[1])
            rows.setdefault(f"logged epoch, {networks} network(s)", []).append(
                ours(logged_epochs, {"every": 1}, n_runs=networks, clock=clock)[1])
    return {label: float(np.median(values)) for label, values in rows.items()}


def compare_epoch_rows(repeats: int, before: Path | None, cpu: bool = False, one_thread: bool = False) -> None:
    """`epoch_rows` of this checkout and, interleaved, of `before` (a checkout of older code; both
    in subprocesses, PYTHONPATH=the checkout), side by side with the load average; with `cpu` in
    CPU time of the process (all its threads: TensorFlow's, the flushes') instead of wall time."""
    def run(code: Path) -> dict[str, float]:
        env = {**os.environ, "PYTHONPATH": str(code)}
        flags = [*(["--cpu"] if cpu else []), *(["--one-thread"] if one_thread else [])]
        out = subprocess.run([sys.executable, __file__, "--epoch-rows-json", *flags], env=env,
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    load_before = os.getloadavg()
    after, older = [], []
    for _ in range(repeats):
        after.append(run(REPO))
        if before is not None:
            older.append(run(before.resolve()))
    print(f"load average before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} (on {os.cpu_count()} "
          f"cores); {'CPU' if cpu else 'wall'} ms per epoch after start-up, medians of {repeats} interleaved runs"
          f"{', one TensorFlow thread' if one_thread else ''}")
    codes = [("before", older), ("after", after)] if before is not None else [("this checkout", after)]
    for name, results in codes:
        median = {label: float(np.median([r[label] for r in results])) for label in results[0]}
        print(f"{name}: " + "; ".join(
            f"{networks} network(s): training {median[f'training epoch, {networks} network(s)'] * 1e3:.2f}, logged "
            f"{median[f'logged epoch, {networks} network(s)'] * 1e3:.2f} "
            f"({median[f'logged epoch, {networks} network(s)'] / median[f'training epoch, {networks} network(s)']:.1f}x)"
            for networks in (1, 45)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs of the Keras baseline and the numpy floor")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of each of our measurements")
    parser.add_argument("--seeds-epochs", type=int, nargs="*", default=[300],
                        help="epochs at which 10 seeds are timed against 1")
    parser.add_argument("--full", action="store_true", help="also time the full 8000-epoch default run")
    parser.add_argument("--skip-flops", action="store_true", help="leave out the FLOP-rate row (about a minute)")
    parser.add_argument("--epoch-rows", action="store_true",
                        help="only the logged vs training epoch rows, 1 and 45 networks (see --before)")
    parser.add_argument("--one-epoch", action="store_true",
                        help="only the one-epoch trainer run rows, first and second run (see --before)")
    parser.add_argument("--seeds", action="store_true",
                        help="only the 10 seeds vs 1 rows, at each --seeds-epochs (see --before)")
    parser.add_argument("--before", type=Path,
                        help="with --epoch-rows, --one-epoch or --seeds: an older checkout timed side by side")
    parser.add_argument("--cpu", action="store_true", help="with --epoch-rows: CPU time instead of wall time")
    parser.add_argument("--one-thread", action="store_true",
                        help="with --epoch-rows: one TensorFlow thread, as a sweep's workers train")
    parser.add_argument("--epoch-rows-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epoch_rows_json:
        if args.one_thread:
            from trainer.training import configure_threads
            configure_threads(1)    # before any TensorFlow op runs in this process
        ours(2, NEVER)   # process-wide TensorFlow/XLA start-up, paid once
        print(json.dumps(epoch_rows(1, time.process_time if args.cpu else time.perf_counter)))
        return
    if args.epoch_rows:
        compare_epoch_rows(args.repeats, args.before, args.cpu, args.one_thread)
        return
    if args.one_epoch:
        compare_one_epoch_runs(args.repeats, args.before)
        return
    if args.seeds:
        for epochs in args.seeds_epochs:
            compare_seeds(epochs, args.repeats, args.before)
        return
    load_before = os.getloadavg()
    ours(2, NEVER)   # process-wide TensorFlow/XLA start-up, paid once
    baseline = float(np.median([keras_fit_with_logging_callback(args.epochs) for _ in range(args.repeats)]))
    floor = float(np.median([numpy_floor(args.epochs) for _ in range(args.repeats)]))
    training_epoch, logged_epoch, whole_run, start_up = [], [], [], []
    for _ in range(args.repeats):   # interleaved, so a change in load hits every figure alike
        wall, per_epoch = ours(3000, NEVER)            # chunks of 2000 and 1000 epochs, nothing logged between
        training_epoch.append(per_epoch)
        start_up.append(wall - 3000 * per_epoch)
        logged_epoch.append(ours(300, {"every": 1})[1])
        whole_run.append(ours(1500, "default", from_epoch=300, to_end=True)[1])   # the T(1500) - T(300)
    training_epoch, logged_epoch, whole_run = (float(np.median(x)) for x in (training_epoch, logged_epoch, whole_run))

    print(f"load average before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} (2 cores), "
          f"medians of {args.repeats}")
    print(f"{'':62} {'ms/epoch':>9} {'vs Keras':>9} {'vs floor':>9}")

    def row(label: str, seconds: float) -> None:
        print(f"{label:62} {seconds * 1e3:9.2f} {baseline / seconds:8.1f}x {seconds / floor:8.2f}x")

    row("Keras fit + callback pulling all activations every epoch", baseline)
    row("numpy forward/backward/Adam + evaluation (floor)", floor)
    row("trainer, training epoch (train + evaluate + metrics rows)", training_epoch)
    row("trainer, logged epoch (+ activations, MI, summaries, rows)", logged_epoch)
    row("trainer, whole run per epoch (epochs 300-1500, default schedule)", whole_run)
    print(f"targets: training epoch >= 60x Keras ({'met' if baseline / training_epoch >= 60 else 'missed'}), "
          f"whole run >= 40x ({'met' if baseline / whole_run >= 40 else 'missed'}), "
          f"logged epoch <= 3x a training epoch ({logged_epoch / training_epoch:.1f}x: "
          f"{'met' if logged_epoch <= 3 * training_epoch else 'missed'}); "
          f"start-up (tracing + XLA compilation, first call) {np.median(start_up):.1f} s")
    for epochs in args.seeds_epochs:
        compare_seeds(epochs, args.repeats, args.before)
    runs = [one_epoch_runs() for _ in range(args.repeats)]
    (first, first_cpu), (second, second_cpu), (tensorflow, _) = (
        tuple(np.median([r[label] for r in runs], axis=0)) for label in ("first run", "second run", "import tensorflow"))
    print(f"one-epoch trainer run (data/configs/basic.json --set epochs=1), wall (CPU): first {first:.1f} s "
          f"({first_cpu:.1f}; compiles, empty XLA cache), second {second:.1f} s ({second_cpu:.1f}; target <= 5 s "
          f"wall: {'met' if second <= 5 else 'missed'}); importing TensorFlow alone {tensorflow:.1f} s")
    if not args.skip_flops:
        print(flop_row())
    if args.full:
        seconds, peak_mb = full_default_run()
        print(f"full default run (trainer run data/configs/basic.json: 8000 epochs, default schedule, binning on "
              f"train+test, all summaries): {seconds:.1f} s, peak memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
