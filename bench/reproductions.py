"""Train the shipped reproductions and write docs/reproductions.md, sections 2 and 3 through
`trainer report` (reports, figures and LaTeX tables in docs/reproductions/COHORT/).

    python bench/reproductions.py [--results DIR] [--out docs/reproductions.md] [--epochs 10000] [--seeds 50]
        [--epoch0-seeds 50] [--bias-epochs 8000] [--bias-seeds 5]

The defaults are the published scale (about 15 minutes of training on 2 cores); a small run builds the machinery:
`--epochs 30 --seeds 3 --epoch0-seeds 3 --bias-epochs 30 --bias-seeds 2 --out /tmp/r/reproductions.md`.
Four measurements, each beside the published numbers (see the configs in
data/configs/reproductions/ for where every setting comes from):

1. Epoch-0 I(X;T) per layer, tanh, binning with bin size 0.07, full data, as a
   distribution over seeds (ibsgd's table is one seed).
2. Saxe et al. 2018 Fig. 1 / Chelombiev et al. 2019: the compression of the last
   hidden layer under tanh and relu, with ibsgd's binning, Saxe's whole-run range,
   IDNNs' bins and Chelombiev's adaptive bins; every verdict a test against the
   measured noise floor, and tanh - relu with its interval and test.
3. The seed notebook's initial-bias cohort (data/configs/reproductions/
   initial_bias_relu_notebook.json): health flags and compression per bias.
4. KSG's I(Y;T) on the raw inputs.
A section of the previous file titled "Large positive initial bias" (written by hand
from the trainer's runs) is kept, after section 3.

Everything is trained here by the trainer itself (trainer.training.run_experiment)
into a results root, and read back from its Parquet files and run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np

from explorer.cohort_tables import (AT_CEILING_CELL, CLIPPED_CELL, difference_interval, estimate_cell, number_text,
                                    p_text)
from explorer.results import ResultStore
from ibstore.lifecycle import current_status
from ibstore.record import Status
from ibstore.stats import AT_CEILING, CLIPPED_BINS, EXCESS, MIN_SEEDS_TESTED
from trainer import cli
from trainer import config as config_module
from trainer.estimators import canonical, estimate
from trainer.datasets import harmonics
from trainer.training import run_experiment

IBSGD_EPOCH0 = [12.00, 12.00, 11.89, 11.42, 9.38, 2.35]  # IBnet_ComputeMI.ipynb output, tanh, bin 0.07, one seed
SAXE_BASE = {"architecture": [10, 7, 5, 4, 3], "optimizer": "adam", "learning_rate": 0.0004, "batch_size": 256,
             "initial_bias": 0.0, "max_norm_weights": False, "test_fraction": 0.2, "mi_splits": ["full"]}
ESTIMATORS = [
    {"name": "binning", "params": {"bin_size": 0.07}},
    {"name": "binning", "params": {"n_bins": 100, "range": "run"}},
    {"name": "idnns", "params": {"n_edges": 30}},
    {"name": "adaptive", "params": {"n_bins": 30}},
]
SAXE_COHORT = "saxe2018_fig1"
BIAS_CONFIG = Path(__file__).resolve().parents[1] / "data/configs/reproductions/initial_bias_relu_notebook.json"


def train(root: Path, raw: dict) -> tuple[list[str], float]:
    """Run every experiment of a raw config whose runs are not all complete in `root` already
    (so the report can be rewritten from an earlier --results root without retraining);
    (run ids, seconds of training: per experiment, first start to last finish in run.json)."""
    run_ids, seconds = [], 0.0
    for experiment in config_module.plan(raw):
        ids = experiment.run_ids
        done = all(current_status(root, i) is Status.COMPLETED for i in ids)
        if not done:
            run_experiment(experiment, root, progress=False)
        records = [record(root, i) for i in ids]
        started = min(datetime.fromisoformat(r["started_at"]) for r in records)
        seconds += (max(datetime.fromisoformat(r["finished_at"]) for r in records) - started).total_seconds()
        run_ids += ids
    return run_ids, seconds


def mi_frame(root: Path, run_ids: list[str]):
    files = [str(f) for run_id in run_ids for f in (root / "runs" / run_id).glob("mi*.parquet")]
    return duckdb.sql(f"SELECT * FROM read_parquet({files!r})").df()


def record(root: Path, run_id: str) -> dict:
    return json.loads((root / "runs" / run_id / "run.json").read_text())


def summary(values) -> str:
    values = np.asarray(values, dtype=float)
    return (f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0:.2f} "
            f"[{values.min():.2f}, {np.median(values):.2f}, {values.max():.2f}]")


def epoch_zero(root: Path, seeds: int) -> tuple[list[str], float]:
    raw = {**SAXE_BASE, "name": "epoch0-tanh", "activation_fn": "tanh", "epochs": 1, "n_runs": seeds,
           "log_schedule": {"every": 1}, "estimators": [ESTIMATORS[0]]}
    run_ids, seconds = train(root, raw)
    frame = mi_frame(root, run_ids)
    lines = [f"### 1. Epoch-0 I(X;T) per layer, tanh, bin size 0.07, full data ({seeds} seeds, {seconds:.0f} s)", "",
             "ibsgd's table (IBnet_ComputeMI.ipynb, one seed) is logged at Keras' epoch 0, i.e. after one pass "
             "over the training data: our epoch 1. Our epoch 0 is the untrained network. Values: mean ± sd "
             "[min, median, max] over seeds 0..{} (bits).".format(seeds - 1), "",
             "| layer | ibsgd (one seed) | ours, epoch 1 | ours, epoch 0 |", "|---|---|---|---|"]
    for layer, published in enumerate(IBSGD_EPOCH0):
        cells = [summary(frame[(frame.layer == layer) & (frame.epoch == epoch)].i_xt) for epoch in (1, 0)]
        name = "output" if layer == len(IBSGD_EPOCH0) - 1 else f"hidden {layer + 1}"
        lines.append(f"| {layer} ({name}) | {published:.2f} | {cells[0]} | {cells[1]} |")
    within = []
    for layer, published in enumerate(IBSGD_EPOCH0):
        values = frame[(frame.layer == layer) & (frame.epoch == 1)].i_xt
        within.append(f"layer {layer}: {np.mean(np.abs(values - published) <= 0.5) * 100:.0f} %")
    inside = []
    for layer, published in enumerate(IBSGD_EPOCH0):
        values = frame[(frame.layer == layer) & (frame.epoch == 1)].i_xt.round(2)  # ibsgd prints 2 decimals
        if values.min() <= published <= values.max():
            inside.append(layer)
    outside = [layer for layer in range(len(IBSGD_EPOCH0)) if layer not in inside]
    lines += ["", "Seeds within 0.5 bits of ibsgd's value at epoch 1: " + ", ".join(within) + ".",
              f"ibsgd's value lies within the range over our seeds for layers {inside or 'none'}"
              + (f"; outside it for layers {outside}" if outside else "") + ". "
              "The hidden layers' values are one draw from the distribution above (ibsgd ran one seed). "
              "The output layer is initialised differently (ibsgd: Keras' glorot_uniform, sd 0.63; here the "
              "truncated normal 1/sqrt(2) of the other layers, sd 0.62 after truncation): a similar scale.", ""]
    return lines, seconds


def compression(root: Path, docs: Path, epochs: int, seeds: int) -> tuple[list[str], float]:
    """Saxe et al. Fig. 1 (tanh vs relu) under four estimators, reported by `trainer report`."""
    total, run_ids = 0.0, {}
    for activation in ("tanh", "relu"):
        raw = {**SAXE_BASE, "name": f"fig1-{activation}", "cohort": SAXE_COHORT, "activation_fn": activation,
               "epochs": epochs, "n_runs": seeds, "log_schedule": "ibsgd", "estimators": ESTIMATORS}
        run_ids[activation], seconds = train(root, raw)
        total += seconds
    folder, report_s = report(root, docs, SAXE_COHORT)
    store = ResultStore(root)
    runs = store.runs()
    # these runs' groups, not any of the cohort's: a root may also hold runs of other epochs
    group = {a: runs.loc[runs["run_id"].isin(ids), "group_id"].iloc[0] for a, ids in run_ids.items()}
    table = store.phase_stats(run_ids["tanh"] + run_ids["relu"])
    compared = store.compare_groups(group["tanh"], group["relu"])
    lines = [f"### 2. Saxe et al. 2018 Fig. 1: tanh vs relu ({seeds} seeds, {epochs} epochs each, "
             f"{total:.0f} s of training, {report_s:.0f} s of report)", "",
             "Every verdict is about the last hidden layer (layer 4, 3 units) on the full data: its compression "
             "(peak - final I(X;T)) tested against its noise floor: the seeds' mean I(X;T) falls from its peak to "
             "its end by more than the seeds' own noise makes such a mean curve's maximum stand above its end "
             "(one-sided p, a multiplier bootstrap over the seeds); and the difference tanh - relu with its "
             "95 % interval, two-sided p the larger of a studentized permutation test's (Welch's t) and Welch's t "
             "test's, and Cliff's delta (ibstore.stats). "
             f"The whole report, with every layer: [{folder.name}/report.md]({folder.relative_to(docs)}/report.md).",
             "", *verdicts(table, compared, group), "",
             "| estimator | activation | compression [95 % CI] | noise floor | p (> floor) |",
             "|---|---|---|---|---|"]
    for spec in ESTIMATORS:
        for activation in ("tanh", "relu"):
            row = last_hidden(table, group[activation], spec)
            lines.append(f"| {estimator_label(spec)} | {activation} | {estimate_cell(row['compression_bits'])} | "
                         f"{estimate_cell(row['noise_floor_bits'])} | {p_cell(row[EXCESS])} |")
    lines += ["", *figures(folder, docs, "epochs", "I(X;T) and I(Y;T) against epoch per layer, tanh and relu"), ""]
    return lines, total


def p_cell(excess) -> str:
    """The compression test's p as the report writes it, or why it is no test: the bins clip, or the
    layer ends at its ceiling in every seed (explorer.cohort_tables' cells)."""
    return {CLIPPED_BINS: CLIPPED_CELL, AT_CEILING: AT_CEILING_CELL}.get(excess["note"]) or p_text(excess["p_value"])


def p_equals(p_value: float) -> str:
    """"= 0.0123" or "< 0.001", as the report writes a p (explorer.cohort_tables.p_text)."""
    text = p_text(p_value)
    return text if text.startswith("<") else f"= {text}"


def estimator_label(spec: dict) -> str:
    labels = {"binning": "binning 0.07 (ibsgd)", "idnns": "IDNNs' 30 edges", "adaptive": "adaptive (Chelombiev)"}
    return "100 bins over the run's range (Saxe)" if spec["params"].get("range") == "run" else labels[spec["name"]]


def last_hidden(table, group_id: str, spec: dict) -> dict[str, dict]:
    """quantity -> its phase_stats row for the last hidden layer (4) of a group under an estimator
    (matched by the params the spec gives: the rows hold them completed with the defaults)."""
    rows = table[(table["group_id"] == group_id) & (table["layer"] == 4) & (table["estimator"] == spec["name"])]
    rows = rows[rows["params"].map(lambda text: all(json.loads(text).get(k) == v for k, v in spec["params"].items()))]
    return {row["quantity"]: row for _, row in rows.iterrows()}


def verdicts(table, compared, group: dict[str, str]) -> list[str]:
    """Each published claim about the last hidden layer beside the test of these runs."""
    claims = [
        ("Saxe et al. 2018 Fig. 1A: tanh, binning (ibsgd bin size 0.07), the last hidden layer compresses",
         "tanh", ESTIMATORS[0], True),
        ("Saxe et al. 2018 Fig. 1B: relu, 100 bins over the run's range, hidden layers do not compress",
         "relu", ESTIMATORS[1], False),
        ("Shwartz-Ziv & Tishby 2017: tanh, IDNNs' bins, the deep layers compress (tested here: the last hidden one)",
         "tanh", ESTIMATORS[2], True),
        ("Chelombiev et al. 2019: adaptive bins show compression under tanh", "tanh", ESTIMATORS[3], True),
        ("Chelombiev et al. 2019: adaptive bins show compression under relu too (saturation not required)",
         "relu", ESTIMATORS[3], True),
    ]
    lines = ["Published claims about the last hidden layer, and what these runs show:", ""]
    for claim, activation, spec, compresses in claims:
        rows = last_hidden(table, group[activation], spec)
        excess = rows[EXCESS]
        seen = excess["compresses"]
        if seen is None or seen != seen:
            verdict = f"no test ({excess['note'] or f'fewer than {MIN_SEEDS_TESTED} seeds'})"
        elif bool(seen) == compresses:      # a claim of none: p >= 0.05 is consistent with it, no proof of it
            verdict = "reproduced" if compresses else "consistent: no compression shown"
        else:
            verdict = "NOT reproduced"
        lines.append(f"- {claim}: compression {estimate_cell(rows['compression_bits'])} bits against a noise "
                     f"floor of {estimate_cell(rows['noise_floor_bits'])}, p {p_equals(excess['p_value'])} "
                     f"({excess['n']} seeds): **{verdict}**.")
    # compression over the floor, not peak - final: noise alone makes that positive, and larger for
    # the noisier estimate (explorer.cohort_tables.COMPARED)
    lines += ["", "tanh - relu, last hidden layer, compression over the noise floor:", ""]
    for spec in ESTIMATORS:
        rows = compared[(compared["layer"] == 4) & (compared["estimator"] == spec["name"])
                        & (compared["quantity"] == EXCESS)]
        rows = rows[rows["params"].map(lambda text: all(json.loads(text).get(k) == v for k, v in spec["params"].items()))]
        if rows.empty:   # a root trained before the mi rows recorded adaptive's low as configured ("auto")
            lines.append(f"- {estimator_label(spec)}: not compared (its rows' parameters differ between tanh and relu).")
            continue
        row = rows.iloc[0]
        interval = difference_interval(row["note"], row["ci_low"], row["ci_high"])
        tested = ("no test: idnns' bins [-1, 1] clip relu's hidden layers (its values above 1 share the top bin)"
                  if row["note"] == CLIPPED_BINS else f"no test ({row['note']})" if row["p_value"] != row["p_value"]
                  else f"95 % interval {interval}, p {p_equals(row['p_value'])}")
        lines.append(f"- {estimator_label(spec)}: {number_text(row['difference'])} bits, {tested}, "
                     f"Cliff's delta {row['cliffs_delta']:.3g}.")
    return lines


def report(root: Path, docs: Path, cohort: str) -> tuple[Path, float]:
    """`trainer report COHORT` into docs/reproductions/COHORT; (its folder, seconds)."""
    folder = docs / "reproductions" / cohort
    started = time.monotonic()
    if cli.main(["report", cohort, "--results", str(root), "--output", str(folder)]) != 0:
        raise SystemExit(f"trainer report {cohort} failed")
    return folder, time.monotonic() - started


def figures(folder: Path, docs: Path, kind: str, caption: str) -> list[str]:
    """The report's figures of one kind (epochs, plane), one per estimator, as Markdown images."""
    return [f"![{caption}: {path.stem}]({path.relative_to(docs)})"
            for path in sorted((folder / "figures").glob(f"*-{kind}.png"))]


def dead_networks(root: Path, docs: Path, epochs: int, seeds: int) -> tuple[list[str], float]:
    """The seed notebook's initial-bias cohort, reported by `trainer report`: health per bias."""
    raw = {**json.loads(BIAS_CONFIG.read_text()), "epochs": epochs, "n_runs": seeds}
    run_ids, seconds = train(root, raw)
    folder, report_s = report(root, docs, raw["cohort"])
    text = (folder / "report.md").read_text()
    health = text.split("## Health per seed group", 1)[1].split("\n## ", 1)[0].strip()
    glance = text.split("## At a glance: does the last hidden layer compress?", 1)[1].split("\n## ", 1)[0].strip()
    biases = raw["grid"]["initial_bias"]
    lines = [f"### 3. The seed notebook's initial-bias cohort, relu ({seeds} seeds per bias, {epochs} epochs, "
             f"{seconds:.0f} s of training, {report_s:.0f} s of report)", "",
             f"Initial biases {', '.join(f'{b:g}' for b in biases)}. `dead_network` and `diverged` are the "
             "trainer's flags (trainer/health.py; DESIGN.md says which rule applies). Dead networks are counted "
             "here and left out of every band and statistic. The whole report: "
             f"[{folder.name}/report.md]({folder.relative_to(docs)}/report.md).", "",
             "Health per initial bias:", "", health, "",
             "Compression of the last hidden layer against its noise floor, per initial bias:", "",
             glance.split("\n\n", 1)[1] if "\n\n" in glance else glance, "",
             *figures(folder, docs, "epochs", "I(X;T) and I(Y;T) against epoch per layer, per initial bias"), ""]
    return lines, seconds


KEPT_SECTIONS = ("Large positive initial bias",)
GENERATED_LEVEL = 3   # this script's sections are ### headings


def kept_sections(old: str) -> list[str]:
    """Sections of the previous docs/reproductions.md that other tools write (a heading that
    contains one of KEPT_SECTIONS, to the next heading of its level or above, or of the generated
    sections' level ###, which must not be kept twice), kept as they are."""
    kept, lines = [], old.splitlines()

    def level(line: str) -> int:
        return len(line) - len(line.lstrip("#"))
    for i, line in enumerate(lines):
        if level(line) and any(title in line for title in KEPT_SECTIONS):
            last = max(level(line), GENERATED_LEVEL)
            end = next((j for j in range(i + 1, len(lines)) if 0 < level(lines[j]) <= last), len(lines))
            while end > i + 1 and not lines[end - 1].strip():   # its blank lines once, not one more each time
                end -= 1
            kept += [*lines[i:end], ""]
    return kept


def ksg_lattice() -> list[str]:
    x, y = harmonics()
    k = canonical("ksg")[1]["k"]
    with_jitter, without = estimate("ksg", x, y)[1], estimate("ksg", x, y, noise=0)[1]
    with_k2 = estimate("ksg", x, y, k=2)[1]
    return ["### 4. KSG's I(Y;T) on the raw 12-bit inputs", "",
            f"Truth H(Y) = 0.999 bits. KSG (k = {k}) with the default Kraskov jitter (1e-10, seed 0): "
            f"{with_jitter:.3f} bits ({with_k2:.3f} with k = 2); without jitter (ties counted within the radius): "
            f"{without:.3f} bits. "
            "Not reproduced: the jitter only breaks tied distances; the gap is the k-NN estimate's bias on labels "
            "that change between inputs one bit apart. KSG's k-NN estimate for T is the differential entropy h(T) "
            "(it depends on the scale of the activations and can be negative): the trainer stores it as "
            "`mi.h_t_bits` and leaves `i_xt` empty for ksg.",
            ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=None, help="results root (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=Path("docs/reproductions.md"),
                        help="the Markdown file; the reports go to reproductions/COHORT/ beside it")
    parser.add_argument("--epochs", type=int, default=10000, help="epochs of the tanh/relu runs (published: 10000)")
    parser.add_argument("--seeds", type=int, default=50, help="seeds of the tanh/relu runs (published: 50)")
    parser.add_argument("--epoch0-seeds", type=int, default=50)
    parser.add_argument("--bias-epochs", type=int, default=8000, help="epochs of the bias cohort (notebook: 8000)")
    parser.add_argument("--bias-seeds", type=int, default=5, help="seeds per initial bias")
    args = parser.parse_args()
    root = args.results or Path(tempfile.mkdtemp(prefix="reproductions-"))
    docs = args.out.parent
    docs.mkdir(parents=True, exist_ok=True)
    kept = kept_sections(args.out.read_text()) if args.out.exists() else []
    started = time.monotonic()
    part1, t1 = epoch_zero(root, args.epoch0_seeds)
    part2, t2 = compression(root, docs, args.epochs, args.seeds)
    part3, t3 = dead_networks(root, docs, args.bias_epochs, args.bias_seeds)
    part4 = ksg_lattice()
    elapsed = time.monotonic() - started
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    header = HEADER.format(
        command=f"python bench/reproductions.py --epochs {args.epochs} --seeds {args.seeds} "
                f"--epoch0-seeds {args.epoch0_seeds} --bias-epochs {args.bias_epochs} --bias-seeds {args.bias_seeds}",
        minutes=elapsed / 60, train_minutes=(t1 + t2 + t3) / 60,
        machine=f"{platform.machine()}, {os.cpu_count()} cores, load average at the end {load}",
        epochs=args.epochs, seeds=args.seeds, bias_epochs=args.bias_epochs, bias_seeds=args.bias_seeds)
    text = "\n".join([header, *part1, *part2, *part3, *kept, *part4,
                      FOOTER.format(epochs=args.epochs, seeds=args.seeds)])
    temporary = args.out.with_name(f".{args.out.name}.tmp")
    temporary.write_text(text)
    temporary.replace(args.out)
    print(f"wrote {args.out} ({elapsed / 60:.1f} min; results in {root})")


HEADER = """# Reproductions: measured here beside the published numbers

Written by `{command}` in {minutes:.1f} minutes (runs already complete in its
results root are not trained again); the runs' training took {train_minutes:.1f} minutes
({machine}; from run.json: first start to last finish of each experiment's seeds),
each section's report time is in its title. Sections 2 and 3 are written by `trainer
report` (its reports, figures and LaTeX tables are in `docs/reproductions/`).
The full configs are in `data/configs/reproductions/` (each says which figure it
reproduces and where every setting comes from). The script's defaults are the
published scale (about 15 minutes of training on 2 cores); what this file's runs were:

| study | published | here |
|---|---|---|
| Saxe et al. 2018 Fig. 1 (tanh, relu) | 10000 epochs, 50 seeds | {epochs} epochs, {seeds} seeds, same network, optimiser, schedule and estimators |
| Chelombiev et al. 2019 (adaptive) | their code: 5-5-5-5-5, 8000 epochs | the Saxe networks above, adaptive estimator on them |
| Shwartz-Ziv & Tishby 2017 (IDNNs bins) | 8000 epochs, 50 networks | `idnns` on the Saxe tanh networks above |
| seed notebook, initial bias (relu) | 8000 epochs, 1 seed | {bias_epochs} epochs, {bias_seeds} seeds per bias, the config's biases |

Known differences from the reference code that remain (see the configs' `source`):
ibsgd's output layer is initialised with Keras' glorot_uniform (here truncated
normal 1/sqrt(units) like the hidden layers); IDNNs and Chelombiev et al. split
the data unshuffled and initialise with 1/sqrt(fan_in) (here a shuffled split and
1/sqrt(units)); ibsgd logs after epoch e + 1 passes what it calls epoch e.
"""

FOOTER = """### Scale

Compression that appears only after {epochs} epochs (the published runs train 8000-10000)
cannot show here; the verdicts above are for these runs. With {seeds} seeds (50
published) every mean carries its 95 % t interval (compression over its floor a one-sided 95 %
lower bound), cut to the range its quantity can take; the test of compression needs n >= 5
seeds to measure their noise.
"""

if __name__ == "__main__":
    main()
