"""CPU seconds the flushes and the runs' ends take inside a real sweep: the seed notebook's cohort
(45 networks, 5 seeds; bench_sweep.py's) through `trainer sweep`, this checkout beside an older one.

    python bench/bench_sweep_flush.py --epochs 8000                       # the full cohort (minutes)
    python bench/bench_sweep_flush.py --epochs 8000 --before /tmp/old     # and an older checkout, interleaved

Each process of the sweep loads a `sitecustomize` that wraps a flush's writing (`RunWriter._write`,
in the flush threads while the run trains; `RunWriter.flush` in older code) and `RunWriter.finish` (a run's end: its last flush, the compaction of its tables, its index
entry; whichever way a version does them) and sums the CPU time of the thread that runs them
(`time.thread_time`: a flush thread's own CPU, system calls included); each worker writes its sums
after every run's end. Printed: those sums over the workers, the flushes counted (one every 5 s:
their number grows with the wall time, so with the machine's load), the CPU of one run's flush and
of one run's end, and the CPU of the whole sweep (every process), medians of `--repeats`, with the
machine's load average.
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

from side_by_side import add_arguments, report

REPO = Path(__file__).resolve().parents[1]
COHORT = REPO / "data" / "configs" / "reproductions" / "initial_bias_relu_notebook.json"
SEEDS = 5

SITECUSTOMIZE = '''
"""Sums the thread CPU of a RunWriter's flushes and of RunWriter.finish (bench_sweep_flush.py)."""
import importlib.abc, importlib.machinery, json, os, sys, threading, time

TOTALS = {"flush": 0.0, "flushes": 0, "end": 0.0, "ends": 0}
LOCK = threading.Lock()
ENDING = threading.local()   # a flush inside finish is part of the run's end, not counted twice


def timed(function, seconds, count):
    def wrapper(*args, **kwargs):
        nested = getattr(ENDING, "inside", False)
        ENDING.inside = nested or count == "ends"
        start = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            ENDING.inside = nested
            if not nested:
                with LOCK:
                    TOTALS[seconds] += time.thread_time() - start
                    TOTALS[count] += 1
                    if count == "ends":
                        with open(os.path.join(os.environ["FLUSH_CPU_DIR"], f"{os.getpid()}.json"), "w") as out:
                            json.dump(TOTALS, out)
    return wrapper


class WrapStore(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "trainer.store":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            # A flush's writing: RunWriter._write since flushes run behind the training (in the
            # flush threads, issue 18's sweep branch), RunWriter.flush in older code.
            name = "_write" if hasattr(module.RunWriter, "_write") else "flush"
            setattr(module.RunWriter, name, timed(getattr(module.RunWriter, name), "flush", "flushes"))
            module.RunWriter.finish = timed(module.RunWriter.finish, "end", "ends")
        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, WrapStore())
'''


def measure(epochs: int) -> dict[str, float]:
    """The flushes' and runs' ends' CPU seconds summed over the sweep's workers, the flushes per
    run, and the sweep's CPU seconds (every process) and wall."""
    code = Path(os.environ.get("PYTHONPATH") or REPO).resolve()
    cohort = json.loads(COHORT.read_text())
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "hooks").mkdir()
        (folder / "hooks" / "sitecustomize.py").write_text(SITECUSTOMIZE)
        (folder / "sums").mkdir()
        (folder / "cohort.json").write_text(json.dumps({**cohort, "epochs": epochs, "n_runs": SEEDS}))
        env = {**os.environ, "PYTHONPATH": f"{folder / 'hooks'}:{code}", "FLUSH_CPU_DIR": str(folder / "sums")}
        before, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run([sys.executable, "-m", "trainer", "sweep", str(folder / "cohort.json"),
                        "--results", str(folder / "results")], cwd=code, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall, after = time.perf_counter() - wall, resource.getrusage(resource.RUSAGE_CHILDREN)
        sums = [json.loads(path.read_text()) for path in (folder / "sums").iterdir()]
    runs, flushes = sum(s["ends"] for s in sums), sum(s["flushes"] for s in sums)
    flush_cpu, end_cpu = sum(s["flush"] for s in sums), sum(s["end"] for s in sums)
    return {"flushes while training, CPU": flush_cpu, "runs' ends, CPU": end_cpu, "runs ended": runs,
            "flushes per run (with the wall time)": flushes / runs,
            "one flush of a run, CPU (ms)": flush_cpu / flushes * 1e3,
            "one run's end, CPU (ms)": end_cpu / runs * 1e3,
            "sweep, CPU (every process)": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "sweep, wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args()
    report(__file__, args, lambda: measure(args.epochs), ["--epochs", str(args.epochs)],
           f"the notebook cohort ({SEEDS} seeds) through trainer sweep, {args.epochs} epochs", "seconds")


if __name__ == "__main__":
    main()
