"""numpy's row sort, ns of CPU per value, as this machine dispatches it beside the AVX2 sort, in one run.

    python bench/bench_sort.py [--repeats 3]

The MI estimators sort rows: the binning family's keys, int32 once they pass 2^16
(`stacked_plugin_mi_bits`: a row per network of a split's inputs, 819 or 3277 in the default
config), and the adaptive and quantile estimators' float32 values (a row of every value of a
layer, 4096 x units). numpy picks its sort by the CPU when it is imported: on a CPU with AVX-512
that is x86-simd-sort's AVX-512 quicksort, whose partition step stores through `vpcompressd` to
memory, microcoded and slow on AMD Zen 4 (numpy/x86-simd-sort issue 6). Short rows go to a
sorting network instead, without that step (here rows of 512 values were the fast side of the
cliff). So each length is timed here and, interleaved, in a process started with AVX-512 dispatch
disabled (NPY_DISABLE_CPU_FEATURES), which sorts with AVX2. The choice is per process and applies
to every numpy function, so the trainer cannot take the faster sort alone (bench/RESULTS.md, stop 36).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

LENGTHS = (512, 819, 1024, 3277, 4096, 49152)     # 49152: the adaptive estimator's 12-unit layer
DTYPES = ("int32", "float32")
VALUES_PER_CALL = 45 * 4096                         # values per call: 45 networks x 4096 inputs
WITHOUT_AVX512 = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}


def measure() -> dict[str, float]:
    """CPU ns per value of np.sort(rows, axis=1) per 'dtype length', best of 5 calls."""
    rng = np.random.default_rng(0)
    result = {}
    for dtype in DTYPES:
        for length in LENGTHS:
            rows = rng.integers(0, 2**30, (max(1, VALUES_PER_CALL // length), length)).astype(dtype)
            best = np.inf
            for _ in range(5):
                start = time.process_time()
                np.sort(rows, axis=1)
                best = min(best, time.process_time() - start)
            result[f"{dtype} {length}"] = best / rows.size * 1e9
    return result


def measured_in_process(env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--json"], env={**os.environ, **env}, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure()))
        return
    default, avx2 = [], []
    load = os.getloadavg()[0]
    for _ in range(args.repeats):
        default.append(measured_in_process({}))
        avx2.append(measured_in_process(WITHOUT_AVX512))
    print(f"numpy {np.__version__}; load {load:.1f} / {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores); "
          f"CPU ns per value, medians of {args.repeats} processes each")
    print(f"{'dtype, row length':20s} {'as dispatched':>14s} {'AVX2':>8s} {'ratio':>7s}")
    for label in default[0]:
        here, there = (statistics.median(run[label] for run in runs) for runs in (default, avx2))
        print(f"{label:20s} {here:14.2f} {there:8.2f} {here / there:6.2f}x")


if __name__ == "__main__":
    main()
