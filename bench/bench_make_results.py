"""The synthetic-root generator (bench/make_results.py) timed as a command, here and in an older
checkout side by side: wall seconds, the CPU seconds of the generator and its worker processes
(user and system), the load average beside each, and what the root took on disk.

    python bench/bench_make_results.py --runs 10000 --before /tmp/gen-before [--repeats 2]

Each repeat times both checkouts, the order alternating between repeats; every root is written
under a fresh folder in --tmp and all are removed at the end (not between measurements: ext4
without a journal skips inodes freed within the last minutes when it allocates new ones, which
makes the files created just after a large deletion several times costlier in the kernel).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def disk_bytes(folder: Path) -> int:
    """Bytes allocated to the files under `folder` (du's figure)."""
    return sum(entry.stat().st_blocks * 512 for entry in folder.rglob("*"))


def timed_generation(code: Path, out: Path, args: argparse.Namespace) -> dict[str, float]:
    """One `make_results.py` command of `code`: wall, user and system seconds of it and its
    children, the 1-minute load average at its start and end, and the root's size."""
    command = [sys.executable, str(code / "bench" / "make_results.py"), str(out), "--runs", str(args.runs),
               "--epochs", str(args.epochs), "--logged", str(args.logged), "--processes", str(args.processes)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_start, started = os.getloadavg()[0], time.perf_counter()
    subprocess.run(command, cwd=code, env={**os.environ, "PYTHONPATH": str(code)}, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "user": after.ru_utime - before.ru_utime, "system": after.ru_stime - before.ru_stime,
            "load start": load_start, "load end": os.getloadavg()[0], "GB": disk_bytes(out) / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--logged", type=int, default=30)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--before", type=Path, help="an older checkout to time side by side")
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    codes = {"now": HERE, **({"before": args.before.resolve()} if args.before else {})}
    work = Path(tempfile.mkdtemp(prefix="gen-bench-", dir=args.tmp))
    print(f"{args.runs} runs, {args.epochs} epochs, {args.logged} logged, {args.processes} processes, "
          f"{os.cpu_count()} cores (shared)")
    print(f"{'code':7} {'wall s':>7} {'CPU s':>7} {'user':>7} {'system':>7} {'load':>10} {'GB':>6}")
    try:
        for repeat in range(args.repeats):
            order = list(codes.items()) if repeat % 2 == 0 else list(codes.items())[::-1]
            for label, code in order:
                m = timed_generation(code, work / f"{label}-{repeat}", args)
                print(f"{label:7} {m['wall']:7.1f} {m['user'] + m['system']:7.1f} {m['user']:7.1f} {m['system']:7.1f} "
                      f"{m['load start']:4.1f}-{m['load end']:<4.1f} {m['GB']:6.2f}", flush=True)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
