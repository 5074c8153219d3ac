"""How often a store read loses a file to a concurrent compaction, with and without the waits
between its tries (issue 20, ibstore.read_retry).

    python bench/bench_read_retry.py [--reads 600] [--pause 0.15]

A writer process (tests/test_compaction_readers.py's WRITER: one run after another, three part
files a table, compacted as each finishes, then --pause seconds) runs on a fresh root while this
process refreshes a `ResultStore` and reads the metrics of the 8 newest runs, --reads times,
first with the waits (read_retry as it is), then without (FIRST_WAIT_S = 0: the rescan at once,
as before issue 20), each against its own writer. Printed per way: the reads, how many needed
1, 2, ... tries, how many lost all READ_ATTEMPTS, and the load average.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def measure(reads: int, pause: float, first_wait_s: float) -> tuple[collections.Counter, int]:
    """Tries each read needed (Counter: tries -> reads) and the reads that lost every try."""
    from test_compaction_readers import WRITER

    from ibstore import read_retry
    from explorer.results import ResultStore
    from ibstore import index, sandbox

    tries: collections.Counter = collections.Counter()
    lost = 0
    waits: list[int] = []
    wait_before = read_retry.wait_before
    read_retry.FIRST_WAIT_S = first_wait_s
    read_retry.wait_before = lambda attempt: (waits.append(attempt), wait_before(attempt))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "results"
        os.environ["XDG_CACHE_HOME"] = str(Path(folder) / "cache")
        index.forget()
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(pause)], cwd=REPO, text=True,
                                  stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            if writer.stdout.readline() != "ready\n":
                raise SystemExit("the writer did not start")
            store = ResultStore(root, max_age_s=0)
            for _ in range(reads):
                waits.clear()
                store.refresh()
                try:
                    store.metrics(store.runs()["run_id"].tolist()[-8:])
                except sandbox.FileVanished:
                    lost += 1
                except Exception as error:   # DuckDB's lost stream, raised after the last try
                    if "reading the stream registered as" not in str(error):
                        raise
                    lost += 1
                tries[len(waits) + 1] += 1
        finally:
            writer.terminate()
            writer.communicate(timeout=60)
            read_retry.wait_before = wait_before
    return tries, lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=600)
    parser.add_argument("--pause", type=float, default=0.15, help="the writer's pause after each run, seconds")
    args = parser.parse_args()
    from ibstore import read_retry

    load_before = os.getloadavg()
    for label, first_wait_s in (("with waits", read_retry.FIRST_WAIT_S), ("no waits", 0.0)):
        tries, lost = measure(args.reads, args.pause, first_wait_s)
        shown = ", ".join(f"{n} tries: {count}" for n, count in sorted(tries.items()))
        print(f"{label:10} {args.reads} reads; reads by tries needed: {shown}; lost all "
              f"{read_retry.READ_ATTEMPTS}: {lost}")
    print(f"load average (1, 5, 15 min) before {load_before} after {os.getloadavg()}")


if __name__ == "__main__":
    main()
