"""PNG export of the Compare page's 10-panel information-plane grid: the explorer's export
(ui.png: at most ~60 epochs per panel, scale 1.5) against every logged point at scale 2 (the
export before), side by side in one run. 10 relu runs, 8000 epochs, 300 logged, 6 layers.

    python bench/bench_png_export.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vl_convert as vlc  # noqa: E402

from bench.make_results import write_run  # noqa: E402
from explorer import charts, ui  # noqa: E402
from explorer.results import ResultStore  # noqa: E402


def best_of(repeat: int, render) -> tuple[float, int]:
    """Fastest wall time of `repeat` renders (the machine's other load only adds), and the PNG size."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        png = render()
        times.append(time.perf_counter() - started)
    return min(times), len(png)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for bias in (-1.0, 0.0, 0.2, 0.5, 1.0):
            for seed in (0, 1):
                write_run(root, "relu-bias", {"activation_fn": "relu", "initial_bias": bias, "epochs": 8000},
                          seed=seed, logged=300)
        store = ResultStore(root)
        ids = list(store.runs()["run_id"])
        frame = store.with_panels(store.mi(ids, "binning", "train", '{"bin_size": 0.07}'), ids)
        chart = charts.infoplane_grid(frame, columns=2, title="binning, train split")
        vlc.vegalite_to_png(charts.infoplane_grid(frame.head(60)).to_dict())   # start the converter once
        thinned, thinned_bytes = best_of(args.repeat, lambda: ui.png(chart))
        full, full_bytes = best_of(args.repeat, lambda: vlc.vegalite_to_png(chart.to_json(), scale=2))
    print(f"10 panels, {len(frame)} points; best of {args.repeat}")
    print(f"{'export':<42}{'seconds':>9}{'PNG kB':>9}")
    print(f"{'explorer (<= ~60 epochs/panel, scale 1.5)':<42}{thinned:>9.2f}{thinned_bytes / 1e3:>9.0f}")
    print(f"{'every point, scale 2 (before)':<42}{full:>9.2f}{full_bytes / 1e3:>9.0f}")
    print(f"ratio: {full / thinned:.1f}x faster")


if __name__ == "__main__":
    main()
