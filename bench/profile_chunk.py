"""Where the compiled chunk's time goes, XLA operation by operation (TensorFlow's profiler).

    python bench/profile_chunk.py                      # 45 networks, 20 epochs in the profiled call
    python bench/profile_chunk.py --networks 10 --epochs 40 --top 15

The stack and the chunk are bench/bench_step.py's (the seed notebook cohort, one thread). One
call compiles, the next is profiled with XLA's per-operation trace events on
(`--xla_cpu_enable_xprof_traceme=true`; perf shows XLA's code only as unnamed `[JIT]` frames).
Each operation is put in the part of the chunk its number of runs gives away: the minibatch steps
(epochs x batches runs), the evaluation after every epoch but the last (epochs - 1 runs; the
last epoch's is the evaluation with every layer after the loop), once per call (1 run). The trace
can miss an operation's first runs (seen at load 6-8: 208 to 229 of a step's 260, 15 to 17 of the
evaluation's 19), so the parts are told apart by ranges of runs, not exact counts. Printed:
each part's milliseconds per epoch and share of the profiled operations, and its dearest
operations. The trace costs time of its own (a few microseconds an operation), so the shares,
not the absolute figures, are what compares with bench_step's.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import tempfile
import time

from bench_step import notebook_stack

# trainer.xla_flags adds the trainer's own flag to these when the trainer imports TensorFlow.
TRACE_FLAGS = "--xla_cpu_enable_xprof_traceme=true"


def operation_times(trace_folder: str) -> tuple[collections.Counter, collections.Counter]:
    """(microseconds, runs) of every XLA operation in the profile written to trace_folder."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    (path,) = glob.glob(os.path.join(trace_folder, "**", "*.xplane.pb"), recursive=True)
    space = xplane_pb2.XSpace()
    with open(path, "rb") as file:
        space.ParseFromString(file.read())
    micros, runs = collections.Counter(), collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if line.name == "python":       # TensorFlow's own events around the call
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                # The loops and conditionals enclose operations counted on their own; the
                # executor's and the thread pool's events are not operations.
                if name.startswith(("end:", "while", "cond", "ThunkExecutor", "Threadpool")):
                    continue
                micros[name] += event.duration_ps / 1e6
                runs[name] += 1
    return micros, runs


def part_of_chunk(runs: int, epochs: int) -> str:
    """The part of a call of `epochs` epochs that an operation run `runs` times belongs to: the
    minibatch steps run at least once an epoch, the evaluation fewer times than there are epochs."""
    if runs == 1:
        return "once per call (the last evaluation, with every layer)"
    return "minibatch steps" if runs >= epochs else "evaluation after each epoch"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=45, help="the cohort's first N networks (default all 45)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs in the profiled call")
    parser.add_argument("--top", type=int, default=8, help="operations listed per part")
    args = parser.parse_args()
    os.environ["XLA_FLAGS"] = TRACE_FLAGS      # before TensorFlow is imported
    os.environ.setdefault("IB_XLA_CACHE", "off")
    steps, orders, active = notebook_stack(args.epochs, False, args.networks)
    from trainer.tensorflow_without_keras import tf

    steps.train(orders(0, args.epochs), active)     # compiles
    timed_orders = orders(args.epochs, args.epochs)
    with tempfile.TemporaryDirectory() as trace_folder:
        tf.profiler.experimental.start(trace_folder)
        start = time.process_time()
        steps.train(timed_orders, active)
        seconds = time.process_time() - start
        tf.profiler.experimental.stop()
        micros, runs = operation_times(trace_folder)
    grouped: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
    for name, total in micros.items():
        grouped[part_of_chunk(runs[name], args.epochs)].append((total, name))
    profiled = sum(micros.values())
    print(f"{args.networks} networks x {args.epochs} epochs, one profiled call: {seconds * 1e3 / args.epochs:.2f} ms "
          f"CPU per epoch, {profiled / 1e3 / args.epochs:.2f} ms per epoch in XLA operations; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for part, operations in sorted(grouped.items(), key=lambda item: -sum(t for t, _ in item[1])):
        total = sum(t for t, _ in operations)
        print(f"  {part}: {total / 1e3 / args.epochs:.3f} ms per epoch, {100 * total / profiled:.1f} %")
        for micro, name in sorted(operations, reverse=True)[:args.top]:
            print(f"    {micro / 1e3 / args.epochs:7.3f}  {name} ({runs[name]} runs)")


if __name__ == "__main__":
    main()
