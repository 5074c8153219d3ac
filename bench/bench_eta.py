"""How far the sweep's ETA is from the time the sweep then took, along the way.

    python bench/bench_eta.py                     # this checkout
    python bench/bench_eta.py --before /tmp/old   # and an older checkout (PYTHONPATH), one after the other

Two sweeps as a user runs them, without a terminal (`--progress-seconds 5`, the plain lines):
- the tanh initial-bias cohort (data/configs/cohorts/initial_bias_tanh.json) at 3000 epochs:
  45 networks, binning on train and test, the default schedule (every epoch logged below 50);
- the estimators cohort (data/configs/cohorts/estimators.json) at 1500 epochs, 2 seeds per
  activation, raw activations not kept: nine estimators at every logged epoch, where a logged
  network-epoch costs about fifty trained ones.
Per progress line: the seconds elapsed, the ETA the line gave, the seconds the sweep then took to
end (to its closing line), and their ratio. The ETA is the line's "ETA mm:ss", or tqdm's "<mm:ss" in code before it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COHORTS = {"initial_bias_tanh": {"epochs": 3000},
           "estimators": {"epochs": 1500, "n_runs": 2, "save_activations": False}}
LINE = re.compile(r"^sweep: .*\[(\d+):(\d+)(?:<(\d+):(\d+)|, .*ETA (?:(\d+):(\d+)|\?))")


def seconds(minutes: str | None, secs: str | None) -> float | None:
    return None if minutes is None else 60 * int(minutes) + int(secs)


def sweep(code: Path, config: Path, scratch: Path) -> tuple[float, list[tuple[float, float | None]]]:
    """The sweep's wall seconds and (elapsed, ETA) of each of its progress lines."""
    results = Path(tempfile.mkdtemp(dir=scratch))
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "trainer", "sweep", str(config), "--results", str(results),
                          "--progress-seconds", "5"], env={**os.environ, "PYTHONPATH": str(code)},
                         capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    lines = []
    for line in out.stderr.splitlines() + out.stdout.splitlines():
        if (match := LINE.match(line)) is not None:
            old_eta, new_eta = seconds(*match.group(3, 4)), seconds(*match.group(5, 6))
            lines.append((seconds(*match.group(1, 2)), old_eta if old_eta is not None else new_eta))
    return wall, sorted(set(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="an older checkout to run the same sweeps with")
    args = parser.parse_args()
    codes = {"this checkout": REPO, **({"before": args.before.resolve()} if args.before else {})}
    with tempfile.TemporaryDirectory() as scratch:
        for cohort, overrides in COHORTS.items():
            config = {**json.loads((REPO / "data/configs/cohorts" / f"{cohort}.json").read_text()), **overrides,
                      "cohort": f"eta_{cohort}"}
            path = Path(scratch) / f"{cohort}.json"
            path.write_text(json.dumps(config))
            for name, code in codes.items():
                wall, lines = sweep(code, path, Path(scratch))
                print(f"{cohort} ({overrides}), {name}: {wall:.0f} s, load {os.getloadavg()[0]:.1f}")
                print("  elapsed  ETA said  took  said/took")
                end = lines[-1][0]                  # the closing line's elapsed: the bar's whole life
                for elapsed, eta in lines[:-1]:
                    took = max(end - elapsed, 1.0)
                    said = "?" if eta is None else f"{eta:.0f}"
                    ratio = "" if eta is None else f"{eta / took:.2f}"
                    print(f"  {elapsed:7.0f}  {said:>8}  {took:4.0f}  {ratio:>9}")


if __name__ == "__main__":
    main()
