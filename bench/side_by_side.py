"""One measurement of a bench script in this checkout and in an older one (`--before`), in fresh
processes, interleaved so that a change in the machine's load hits both alike.

The script measures once when given `--json` and prints a dict of label -> seconds as its last
line; `interleaved` runs it `repeats` times here and, if `before` is set, as often there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def measure_in(code: Path, script: str, args: list[str]) -> dict[str, float]:
    """`script --json *args` run with `code` on PYTHONPATH (and as its folder): its last line, parsed."""
    out = subprocess.run([sys.executable, str(Path(script).resolve()), "--json", *args], cwd=code,
                         env={**os.environ, "PYTHONPATH": str(code)}, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def interleaved(script: str, args: list[str], repeats: int, before: Path | None
                ) -> tuple[list[dict[str, float]], list[dict[str, float]], tuple[float, float]]:
    """The measurements here and before (empty without `before`), and the 1-minute load average
    at the start and at the end."""
    load_start = os.getloadavg()[0]
    after, earlier = [], []
    for _ in range(repeats):
        after.append(measure_in(HERE, script, args))
        if before:
            earlier.append(measure_in(before.resolve(), script, args))
    return after, earlier, (load_start, os.getloadavg()[0])


def add_arguments(parser) -> None:
    """`--before DIR` and the hidden `--json` (one measurement) that `interleaved` relies on."""
    parser.add_argument("--before", type=Path, help="an older checkout to time side by side (PYTHONPATH=it)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)


def medians(after: list[dict[str, float]], before: list[dict[str, float]], scale: float = 1.0):
    """(label, median before or None, median after), each times `scale`, in the script's order."""
    for label in after[0]:
        old = statistics.median(b[label] for b in before) * scale if before else None
        yield label, old, statistics.median(a[label] for a in after) * scale


def report(script: str, args: argparse.Namespace, measure, script_args: list[str], what: str, unit: str,
           scale: float = 1.0, digits: int = 3) -> None:
    """A bench script's main after its arguments: with `--json`, one `measure()` printed as JSON;
    otherwise `args.repeats` interleaved measurements here and in `args.before`, as a table of
    medians (before, after, before / after) in `unit` (seconds times `scale`), the load beside it."""
    if args.json:
        print(json.dumps(measure()))
        return
    after, before, load = interleaved(script, script_args, args.repeats, args.before)
    print(f"load average at the start / end: {load[0]:.1f} / {load[1]:.1f} (on {os.cpu_count()} cores); "
          f"{what}; {unit}, medians of {args.repeats}")
    rows = list(medians(after, before, scale))
    width = max(len(label) for label, _, _ in rows) + 1
    print(f"{'':{width}} {'before':>9} {'after':>9} {'ratio':>7}" if args.before else f"{'':{width}} {unit:>9}")
    for label, old, new in rows:
        print(f"{label:{width}} {new:9.{digits}f}" if old is None
              else f"{label:{width}} {old:9.{digits}f} {new:9.{digits}f} "
                   f"{f'{old / new:6.2f}x' if new else '      -'}")    # a part neither checkout has: 0
