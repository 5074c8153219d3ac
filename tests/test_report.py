"""`trainer report` on the hand-set root of tests/known_phases.py: its numbers, figures, tables,
and its refusals (unknown cohort, empty root, only running runs, output inside the root), and
that a failed write leaves nothing behind."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import shutil
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats as scipy_stats

from bench.make_results import write_run
from explorer import cohort_tables, report
from known_phases import write_known_root
from test_phases import benjamini_hochberg, kept_drops, kept_values, multiplier_test
from ibstore import layout, stats, trend
from ibstore.record import Status
from trainer import cli

COHORTS = ["cohort-compress", "cohort-noise", "cohort-single"]


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-root")
    return root, write_known_root(root)


@pytest.fixture(scope="module")
def written(known, tmp_path_factory):
    root, ids = known
    out = tmp_path_factory.mktemp("out") / "report"
    assert cli.main(["report", *COHORTS, "--results", str(root), "--output", str(out)]) == 0
    return root, ids, out


@pytest.mark.slow
def test_the_report_ends_with_the_config_its_runs_were_trained_with(written):
    # a new user's: a cohort shortened with --set epochs=3000 read exactly like the shipped one
    root, ids, out = written
    text = (out / "report.md").read_text()
    section = text[text.index("## What was trained"):]
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1].rstrip(" |")
            for line in section.splitlines()[5:] if line.startswith("| ")}
    configs = [json.loads((root / "runs" / run_id / "run.json").read_text())["config"] for run_id in ids.values()]
    assert rows["learning_rate"] == rows["seed"] == report.VARIES        # the groups' key, and the seeds
    assert {config["epochs"] for config in configs} == {int(rows["epochs"])}
    assert rows["activation_fn"] == configs[0]["activation_fn"] and rows["architecture"] == json.dumps(
        configs[0]["architecture"])
    assert "What they were trained with is at the end" in text.splitlines()[2]
    # a value that reads "<var>" is a value (an attacker's label_column "<var>" read "varies")
    from explorer.results import ResultStore
    # an attacker's: a 5,000-character value was printed whole, and a blank line and a bidi control went
    # raw into the .tex (a blank line ends the tabular's row in TeX)
    hostile = "p\n\nq\u202e" + "x" * 5000
    for seed in range(2):
        write_run(root.parent / "var-root", "v", {"epochs": 20, "label_column": "<var>"}, seed=seed, cohort="v",
                  logged=8)
        write_run(root.parent / "long-root", "v", {"epochs": 20, "label_column": hostile}, seed=seed, cohort="v",
                  logged=8)
    var_report, _ = report.write_report(ResultStore(root.parent / "var-root"), ["v"], root.parent / "var-out")
    trained = var_report.read_text().split("## What was trained")[1]
    assert "| label_column | &lt;var> |" in trained and "| seed | varies |" in trained
    long_report, _ = report.write_report(ResultStore(root.parent / "long-root"), ["v"], root.parent / "long-out")
    trained = long_report.read_text().split("## What was trained")[1]
    assert "| label_column | p q\\u202e" + "x" * (report.MAX_VALUE_CHARS - 5) + "… (5,005 characters) |" in trained
    tex = (root.parent / "long-out" / "tables" / "config.tex").read_text()
    assert "\n\n" not in tex and "\u202e" not in tex and "p q\\textbackslash u202e" in tex.replace("{}", "")
    assert (out / "tables" / "config.tex").is_file()


def test_seed_groups_of_the_same_networks_are_named_in_the_report(tmp_path):
    # A new user's: `trainer estimate` asked for --set save_activations=true, which trained the cohort's
    # networks again under new ids in the same cohort, and its trends counted each seed twice (11 of 20
    # significant against 5 of 20)
    from explorer.results import ResultStore
    root = tmp_path / "root"
    for seed in range(2):
        write_run(root, "a", {"epochs": 20}, seed=seed, cohort="c", logged=8)
        write_run(root, "a", {"epochs": 20, "save_activations": True}, seed=seed, cohort="c", logged=8)
        write_run(root, "a", {"epochs": 20, "histogram_bins": 50}, seed=seed, cohort="c", logged=8)   # an attacker's
        write_run(root, "more", {"epochs": 20}, seed=seed + 2, cohort="c", logged=8)   # other seeds: other networks
        write_run(root, "b", {"epochs": 20, "initial_bias": 1.0}, seed=seed, cohort="c", logged=8)
    store = ResultStore(root)
    run_ids = store.runs()["run_id"].tolist()
    labels = store.labels(run_ids, by_group=True)
    note = cohort_tables.same_networks_note(store, run_ids, labels)
    copies = [group for group, runs in store.groups(run_ids).items()
              if store.configs(runs[:1])[runs[0]]["initial_bias"] == 0 and int(runs[0][-1]) < 2]
    assert len(copies) == 3 and note.startswith(
        "The same networks in more than one seed group: " + " and ".join(labels[group] for group in copies) + " (runs")
    assert note.split(" (runs")[0].count(" and ") == 2     # neither "more" (seeds 2, 3) nor b
    written_report, _ = report.write_report(store, ["c"], tmp_path / "out")
    assert report.inline_text(note) in written_report.read_text()
    alone = [run_id for run_id in run_ids if run_id.startswith(("more", "b-"))]
    assert cohort_tables.same_networks_note(store, alone, store.labels(alone, by_group=True)) is None


def test_groups_trained_on_different_versions_of_one_dataset_are_named(tmp_path):
    # An attacker put one seed group on two versions of a data file (the trainer now refuses each way
    # it found); runs copied in from another root, or recorded before the check, can still hold them
    from explorer.results import ResultStore
    root = tmp_path / "root"
    for seed in range(2):
        for bias in (0.0, 1.0, 2.0):
            write_run(root, "d", {"epochs": 20, "initial_bias": bias}, seed=seed, cohort="c", logged=8)
    store = ResultStore(root)
    flats = store.flat_configs(store.runs()["run_id"].tolist())
    # bias 0: seed 1 on another version than seed 0; bias 2: both seeds on that other version
    version = {run_id: "b" * 64 if (flat["initial_bias"], flat["seed"]) in ((0, 1), (2, 0), (2, 1)) else "a" * 64
               for run_id, flat in flats.items()}
    for run_id, digest in version.items():
        path = layout.run_json_path(root, run_id)
        path.write_text(json.dumps({**json.loads(path.read_text()), "data_sha256": digest}))
    store = ResultStore(root)
    runs = store.runs()
    labels = store.labels(runs["run_id"].tolist(), by_group=True)
    note = cohort_tables.data_versions_note(runs, labels, store.flat_configs(runs["run_id"].tolist()))
    on_a, on_b = ["initial_bias=0", "initial_bias=1"], ["initial_bias=0", "initial_bias=2"]
    assert set(labels.values()) == {"initial_bias=0", "initial_bias=1", "initial_bias=2"}
    assert note == ("Trained on different versions of one dataset (its SHA-256, data_sha256, differs): harmonics: 2 "
                    f"versions ({'a' * 12}…: {', '.join(on_a)}; {'b' * 12}…: {', '.join(on_b)}). A group under two "
                    "versions pools seeds of both, and groups on different versions differ in their data besides "
                    "what their titles name: compare them knowing that, or train them again on one version.")
    written_report, _ = report.write_report(store, ["c"], tmp_path / "out")
    assert report.inline_text(note) in written_report.read_text()
    one = runs[runs["data_sha256"] == "a" * 64]
    assert cohort_tables.data_versions_note(one, labels, store.flat_configs(one["run_id"].tolist())) is None
    # a reviewer's: groups of two split seeds hold two digests of one file, each its own dataset (as
    # their titles say): bias 1 on split seed 0, bias 2 on split seed 1
    split = {run_id: {**flats[run_id], "split_seed": 1 if digest == "b" * 64 else 0}
             for run_id, digest in version.items()}
    apart = runs[[flats[run_id]["initial_bias"] != 0 for run_id in runs["run_id"]]]
    assert cohort_tables.data_versions_note(apart, labels, split) is None
    assert cohort_tables.data_versions_note(apart, labels, flats) is not None     # one split: two versions


@pytest.mark.slow
def test_report_holds_the_statistics_figures_and_tables(written):
    root, ids, out = written
    text = (out / "report.md").read_text()
    lines = text.splitlines()
    assert f"by `trainer report` ({report.CODE_VERSION})." in lines[2]
    glance_lines = lines[:next(i for i, line in enumerate(lines) if line.startswith("### Does the last hidden"))]
    glance = {line.split(" | ")[1]: line for line in glance_lines if line.startswith("| binning")}
    assert list(glance) == ["learning_rate=0.0001", "learning_rate=0.0004", "learning_rate=0.001"]   # by value
    # the compressing group: p at its floor 1/10000; the noise group: not significant
    compress = glance["learning_rate=0.0004"]
    # p, then q over the two groups with a test (n = 1 has none), both worked out here
    p_values = [multiplier_test(kept_drops(group))[0] for group in ("compress", "noise")]
    q_compress = benjamini_hochberg(p_values)[0]
    assert p_values[0] < 0.001 <= p_values[1]     # the floor, 1/10000, is written "< 0.001"
    assert f"| {cohort_tables.p_text(p_values[0])} | {cohort_tables.p_text(q_compress)} | yes | 1 dead |" in compress
    assert "| – | – |" in glance["learning_rate=0.001"]
    assert f"{kept_values('compress', 'compression_bits').mean():.2f} [" in compress
    noise = glance["learning_rate=0.0001"]
    assert noise.endswith(f"| {cohort_tables.NOT_SHOWN_CELL} |  |")       # p >= 0.05: no evidence, not evidence of none
    assert "| 1.99 (n = 1: no interval) |" in glance["learning_rate=0.001"]
    assert f"Left out, still training: {ids[('compress', 7)]}." in text
    assert f"{ids[('compress', 6)]} (dead)" in text
    health = next(line for line in lines if line.startswith("| learning_rate=0.0004 | 7 |"))
    assert health.startswith("| learning_rate=0.0004 | 7 | 1 | 0 |")   # 7 completed runs, 1 dead
    # the comparison row: compress vs noise on final I(X;T), exact permutation p over 924 splits
    a, b = kept_values("compress", "final_i_xt"), kept_values("noise", "final_i_xt")
    # the larger p of Welch's t permuted (studentized, two-sided) and Welch's t test
    def welch(x, y):
        return (x.mean() - y.mean()) / math.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
    pooled = np.concatenate([a, b])
    t = np.array([welch(pooled[list(c)], np.delete(pooled, list(c))) for c in itertools.combinations(range(12), 6)])
    observed = welch(a, b)
    permuted = min(1.0, 2 * min(np.mean(t >= observed - 1e-9), np.mean(t <= observed + 1e-9)))
    p = max(permuted, scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    cliffs_delta = np.sign(a[:, None] - b[None, :]).mean()
    row = next(line for line in lines if line.startswith("| learning_rate=0.0004 | learning_rate=0.0001 | 0 · dense_0 | "
                                                           "final_i_xt |"))
    # p, then q over layers and over groups and layers (one layer, one group tested: q = p), then Cliff's
    # delta with its interval (tests/test_effect_sizes.py checks the interval)
    assert f"| {cohort_tables.number_text(a.mean() - b.mean())} |" in row
    assert f"| {p:.3g} | {p:.3g} | {p:.3g} | {cliffs_delta:.3g} [" in row
    for name in ("1-binning-epochs", "1-binning-plane"):
        assert (out / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / "figures" / f"{name}.svg").read_text().lstrip().startswith("<svg")
        assert f"](figures/{name}.png)" in text
    assert "\\toprule" in (out / "tables" / "glance.tex").read_text()
    assert not list(out.parent.glob(".report.*"))   # no temporary folder left


def test_a_layers_yes_needs_q_below_005_in_the_per_layer_table_and_no_is_not_shown():
    # a layer with p < 0.05 among others: "yes" on its p alone, but in a table (q over its layers, or at a
    # glance over its groups) only where that q is below 0.05 too
    def excess(p: float, q: float) -> pd.Series:
        return pd.Series({"note": None, "compresses": p < 0.05, "p_value": p, "q_value": q})
    assert cohort_tables._compresses(excess(0.0108, 0.0648)) == "yes"
    assert cohort_tables._compresses(excess(0.0108, 0.0648), q_value=0.0648) == cohort_tables.P_ONLY_CELL
    assert cohort_tables._compresses(excess(0.001, 0.006), q_value=0.006) == "yes"
    assert cohort_tables._compresses(excess(0.29, 0.5), q_value=0.5) == cohort_tables.NOT_SHOWN_CELL == "not shown"


def test_a_p_below_0001_is_written_so_and_others_to_3_digits():
    assert [cohort_tables.p_text(p) for p in (0.0001, 0.000999, 0.001, 0.0123456, 1.0, math.nan, None)] == [
        "< 0.001", "< 0.001", "0.001", "0.0123", "1", "–", "–"]


def test_the_report_names_the_code_that_wrote_it(tmp_path):
    """The header names the package's version, a SHA-256 of the ibstore and explorer source (which any
    edit changes, committed or not), the checkout's git commit (tests/test_git_commit.py) and the
    numeric libraries' versions."""
    from ibstore.git_commit import git_commit
    from importlib.metadata import version

    top = Path(report.__file__).resolve().parent.parent
    files = sorted(p for name in ("ibstore", "explorer") for p in (top / name).rglob("*.py"))
    whole = hashlib.sha256(b"".join(p.relative_to(top).as_posix().encode() + b"\0" + p.read_bytes() + b"\0"
                                    for p in files)).hexdigest()[:12]
    libraries = ", ".join(f"{name} {version(name)}" for name in ("numpy", "scipy", "pandas", "duckdb", "pyarrow"))
    commit = git_commit(top)
    checkout = "" if commit is None else f", from the checkout at git commit {commit[:12]}"
    assert report.CODE_VERSION == (f"information-plane-lab {version('information-plane-lab')}, source digest {whole} "
                                   f"(a SHA-256 of the source files as imported{checkout}); {libraries}")
    for name in ("ibstore", "explorer"):
        shutil.copytree(top / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    assert report.source_digest(tmp_path) == whole
    stats_source = tmp_path / "ibstore" / "stats.py"
    stats_source.write_text(stats_source.read_text().replace("ALPHA = 0.05", "ALPHA = 0.10"))
    assert report.source_digest(tmp_path) != whole        # one changed line, uncommitted: another digest


def test_a_one_sided_cell_writes_its_bound_as_its_mean():
    def cell(mean: float, low: float) -> str:
        return cohort_tables.estimate_cell(pd.Series({"n": 5, "mean": mean, "sd": 1.0, "ci_low": low,
                                                      "ci_high": math.inf, "note": None}))
    assert cell(1.99, 0.466) == "1.99 (≥ 0.47)"
    assert cell(0.0, -0.00212) == "0.0000 (≥ -0.0021)"      # was "0.0000 (≥ -0.00212)"
    assert cell(0.0049, 0.0012) == "0.0049 (≥ 0.0012)"
    assert cell(0.5, -2.7e-17) == "0.50 (≥ 0.00)"           # a bound at 0 up to the means' rounding
    assert cell(0.0, -2.7e-17) == "0.00 (≥ 0.00)"           # ... of a mean of 0 too
    assert cell(0.5, -math.inf) == "0.50 (no bound)"


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, known):
    root, _ = known
    before = tree_hash(root)
    cases = [
        (["nope"], str(tmp_path / "a"), "unknown cohort 'nope'; cohorts in"),
        (["cohort-noise"], str(root / "inside"), "is inside the results root"),
        (["cohort-noise"], "", "--output is empty; give a folder"),   # not the working folder
        # no folder can be made there: was FileNotFoundError's traceback from tempfile.mkdtemp
        (["cohort-noise"], "/proc/report", "cannot write a folder beside report in /proc (No such file"),
    ]
    for cohorts, output, message in cases:
        assert cli.main(["report", *cohorts, "--results", str(root), "--output", output]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert tree_hash(root) == before and not (tmp_path / "a").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["report", "x", "--results", str(empty), "--output", str(tmp_path / "b")]) == 2
    assert f"{empty} has no runs; give the one the runs were trained into (--results DIR or $IB_RESULTS)" in (
        capsys.readouterr().err)
    # runs of no cohort (`trainer run` of a config without "cohort"): the refusal says where cohorts come from
    loose = tmp_path / "loose"
    write_run(loose, "basic", {"epochs": 5}, logged=3)
    assert cli.main(["report", "basic", "--results", str(loose), "--output", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "cohorts in " + str(loose) + ": none (1 run belongs to no cohort: a config's \"cohort\" key names its "
        "runs' cohort when they are trained, as the shipped cohorts' configs do; a run keeps the cohort it was "
        "trained in, so `--set cohort=NAME` finds runs already completed done, and `--force` trains them again "
        "into NAME)")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert cli.main(["report", "cohort-noise", "--results", str(root), "--output", str(tmp_path / "busy")]) == 2
    assert "holds 'notes.txt', which no report writes" in capsys.readouterr().err
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    # an attacker's: a symlink to nothing (planted in a shared /tmp, say) at or above --output made its
    # target, wherever it pointed, and the report went there
    (tmp_path / "planted").symlink_to(tmp_path / "elsewhere" / "deeper")
    for output in (tmp_path / "planted", tmp_path / "planted" / "sub"):
        assert cli.main(["report", "cohort-noise", "--results", str(root), "--output", str(output)]) == 2
        assert f"{tmp_path / 'planted'} is a symlink that leads nowhere" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.slow
def test_a_folder_with_a_report_md_and_anything_else_is_not_replaced(tmp_path, capsys, known):
    # any folder holding a report.md was renamed away and deleted whole: a results root beside it,
    # a thesis, a data folder
    root, _ = known
    project = tmp_path / "project"
    shutil.copytree(root, project / "results")
    (project / "report.md").write_text("my notes")
    before = tree_hash(project)
    for output, named in ((project, "holds the results root"), (project / "results" / "..", "holds the results root")):
        assert cli.main(["report", "cohort-noise", "--results", str(project / "results"), "--output", str(output)]) == 2
        assert named in capsys.readouterr().err
    other = tmp_path / "other"
    shutil.copytree(project, other, ignore=shutil.ignore_patterns("results"))
    for extra, name in (("thesis.tex", "'thesis.tex'"), ("figures/plot.py", "'figures/plot.py'"),
                        ("tables/sub/x.tex", "'tables/sub'")):
        (other / extra).parent.mkdir(parents=True, exist_ok=True)
        (other / extra).write_text("mine")
        assert cli.main(["report", "cohort-noise", "--results", str(root), "--output", str(other)]) == 2
        assert f"holds {name}, which no report writes" in capsys.readouterr().err
        (other / extra).unlink()
    (other / "tables" / "sub").rmdir()
    assert tree_hash(project) == before
    # a previous report is replaced
    assert cli.main(["report", "cohort-noise", "--results", str(root), "--output", str(other)]) == 0
    assert (other / "report.md").read_text().startswith("# Report: cohort-noise")
    assert cli.main(["report", "cohort-noise", "--results", str(root), "--output", str(other)]) == 0


def test_a_cohort_still_training_is_refused_and_named(tmp_path, capsys):
    from bench.make_results import write_run
    root = tmp_path / "root"
    run_id = write_run(root, "busy", {"epochs": 20}, cohort="training", status="running", epochs_done=5, logged=5)
    assert cli.main(["report", "training", "--results", str(root), "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: no completed run in cohort training (1 still training: {run_id})"
    assert not (tmp_path / "r").exists()


def test_a_failed_write_leaves_nothing_and_keeps_the_previous_report(tmp_path, monkeypatch, known):
    root, _ = known
    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.md").write_text("previous")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report, "_save_chart", broken)
    with pytest.raises(OSError):
        report.write_report(report.ResultStore(root), ["cohort-single"], out)
    assert (out / "report.md").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


@pytest.mark.slow   # imports the trainer (TensorFlow)
def test_reproductions_keeps_the_large_positive_bias_section():
    from bench.reproductions import kept_sections
    old = "\n".join(["# Reproductions", "### 3. Dead relu networks", "old table",
                     "### Large positive initial bias under the clipped loss", "measured by hand", "",
                     "#### Figures", "![x](y.png)", "### 4. KSG", "old ksg"])
    assert kept_sections(old) == ["### Large positive initial bias under the clipped loss", "measured by hand", "",
                                  "#### Figures", "![x](y.png)", ""]
    assert kept_sections("# Reproductions\n### 2. Saxe\n") == []
    # a ## section ends at the generated ### sections after it (they are written anew, not kept twice)
    assert kept_sections("## Large positive initial bias\ntext\n### 4. KSG\nk\n### Scale\ns") == \
        ["## Large positive initial bias", "text", ""]
    # kept again and again, its blank lines do not grow
    assert kept_sections("## Large positive initial bias\ntext\n\n\n\n### 4. KSG\n") == \
        ["## Large positive initial bias", "text", ""]


@pytest.mark.slow   # a fresh interpreter imports pandas, altair and scipy
def test_the_report_verb_reaches_no_streamlit():
    import subprocess
    import sys
    code = ("import sys; from trainer import cli; from explorer import report; "
            "assert 'streamlit' not in sys.modules and 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_result_store_phase_chart_counts_dead_networks_in_its_legend(known):
    root, ids = known
    store = report.ResultStore(root)
    completed = [run_id for (group, seed), run_id in ids.items() if (group, seed) != ("compress", 7)]
    spec = store.phase_chart(completed, "binning", '{"bin_size": 0.07}', "train").to_dict()
    domain = spec["spec"]["layer"][1]["encoding"]["color"]["scale"]["domain"]
    assert domain == ["learning_rate=0.0001 (6 seeds)", "learning_rate=0.0004 (6 seeds, 1 dead left out)",
                      "learning_rate=0.001 (1 seed)"]


def test_an_unknown_split_is_refused_naming_the_splits(tmp_path, capsys):
    # `--split tset` once wrote a report with no MI at all ("No MI recorded on split 'tset'").
    with pytest.raises(SystemExit) as exit_:
        cli.main(["report", "c", "--results", str(tmp_path), "--output", str(tmp_path / "out"), "--split", "tset"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--split: invalid choice: 'tset'" in err and "'train', 'test', 'full'" in err
    assert not (tmp_path / "out").exists()


def test_a_split_the_runs_have_no_mi_on_is_refused_naming_the_recorded_ones(tmp_path, capsys):
    # `--split full` on runs with MI on train and test once wrote a report without MI, exit 0.
    from bench.make_results import write_run
    root = tmp_path / "root"
    write_run(root, "pair", {"epochs": 20}, seed=0, cohort="c", logged=8)
    before = tree_hash(root)
    assert cli.main(["report", "c", "--results", str(root), "--output", str(tmp_path / "out"), "--split", "full"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --split full: cohort c has no MI on that split; its MI is on train, test"
    assert tree_hash(root) == before and not (tmp_path / "out").exists()
    path, _ = report.write_report(report.ResultStore(root), ["c"], tmp_path / "out", split="test")
    assert '## binning {"bin_size": 0.07}, test split' in path.read_text().splitlines()


def test_groups_measured_on_another_split_only_are_named_in_a_report_on_this_one(tmp_path):
    # A new user's: two cohorts reported together, one with MI on the full inputs alone, lost its
    # groups from every MI section without a word
    from bench.make_results import write_run
    root = tmp_path / "root"
    for seed in range(2):
        write_run(root, "pair", {"epochs": 20}, seed=seed, cohort="c", logged=8)
        write_run(root, "whole", {"epochs": 20, "initial_bias": 1.0, "mi_splits": ["full"]}, seed=seed, cohort="f",
                  logged=8)
    path, _ = report.write_report(report.ResultStore(root), ["c", "f"], tmp_path / "out")
    text = path.read_text()
    note = next(line for line in text.splitlines() if line.startswith("Not in the MI sections below"))
    assert note.startswith("Not in the MI sections below, no MI on the train split (the splits they have): ")
    assert "(full). --split full reports them." in note and "initial_bias=1" in note
    assert "## binning" in text and text.count("initial_bias=0") > 1


def test_a_selected_run_whose_table_cannot_be_read_is_named_in_the_report(tmp_path):
    # A damaged mi.parquet once left its run out of every MI statistic without a word: the report
    # said n = 1 where the cohort has 2 seeds, and nothing about why.
    from bench.make_results import write_run
    root = tmp_path / "root"
    ids = [write_run(root, "pair", {"epochs": 20}, seed=seed, cohort="c", logged=8) for seed in (0, 1)]
    (root / "runs" / ids[1] / "mi.parquet").write_bytes(b"not parquet")
    path, _ = report.write_report(report.ResultStore(root), ["c"], tmp_path / "out", split="train")
    text = path.read_text()
    line = next(line for line in text.splitlines() if line.startswith("Files that could not be read"))
    assert f"{ids[1]}/mi.parquet" in line and "unreadable Parquet file" in line and ids[0] not in line


@pytest.mark.slow   # draws the information plane through Vega
def test_the_plane_draws_its_panels_in_the_tables_order(known, tmp_path):
    # The panels followed the rows' group ids, whose text order is not the groups' (a quickstart's
    # initial_bias=0.2, "...-0-2-<hash>", came before initial_bias=0, "...-0-<hash>"): here the
    # tables' order is turned round, and the plane must follow it.
    root, _ = known
    store = report.ResultStore(root)
    runs = store.runs()
    runs = runs[runs["status"] == "completed"]
    labels = store.labels(runs["run_id"].tolist(), by_group=True)
    turned = dict(reversed(list(labels.items())))
    (tmp_path / "figures").mkdir()
    report._figures(store, runs, turned, "binning", runs_params(store), "train", "ci", tmp_path, "plane-order")
    svg = (tmp_path / "figures" / "plane-order-plane.svg").read_text()
    positions = [svg.index(f">{label}<") for label in turned.values()]
    assert positions == sorted(positions), dict(zip(turned.values(), positions))


def runs_params(store) -> str:
    """The params of the binning rows of `store` (one estimator spec in the known root)."""
    return store.sql("SELECT DISTINCT params FROM mi WHERE estimator = 'binning'")["params"].item()


@pytest.mark.slow   # writes the figures through Vega
def test_every_group_is_compared_with_the_reference_asked_by_name_or_group_id(written, tmp_path):
    root, ids, first = written
    store = report.ResultStore(root)
    group_id = store.runs().set_index("run_id").loc[ids[("compress", 0)], "group_id"]

    def comparison_rows(text: str) -> list[list[str]]:
        return [line.split(" | ") for line in text.splitlines() if line.startswith("| learning_rate=")
                and " · dense_0 | " in line and "final_i_xt |" in line and line.count(" | ") == 10]

    default = (first / "report.md").read_text()
    assert "### Seed groups compared with learning_rate=0.0001" in default   # the first group, by value
    by_name, by_id = tmp_path / "by-name", tmp_path / "by-id"
    assert cli.main(["report", *COHORTS, "--results", str(root), "--output", str(by_name),
                     "--reference", "learning_rate=0.0004"]) == 0
    assert cli.main(["report", *COHORTS, "--results", str(root), "--output", str(by_id), "--reference", group_id]) == 0
    text = (by_name / "report.md").read_text()
    assert "### Seed groups compared with learning_rate=0.0004" in text
    rows = comparison_rows(text)
    assert {row[1] for row in rows} == {"learning_rate=0.0004"}
    assert {row[0].lstrip("| ") for row in rows} == {"learning_rate=0.0001", "learning_rate=0.001"}
    # the same test turned round: noise against compress is minus compress against noise, with the same p
    a, b = kept_values("compress", "final_i_xt"), kept_values("noise", "final_i_xt")
    turned = next(row for row in rows if row[0] == "| learning_rate=0.0001" and row[3] == "final_i_xt")
    before = next(row for row in comparison_rows(default)
                  if row[0] == "| learning_rate=0.0004" and row[3] == "final_i_xt")
    assert turned[5] == f"{b.mean() - a.mean():.3g}" and turned[7] == before[7]
    low, high = (float(end) for end in before[6].strip("[]").split(", "))
    assert turned[6] == f"[{-high:.3g}, {-low:.3g}]"
    # by group id: the same report, but for the line that times it
    assert ([line for line in text.splitlines() if not line.startswith("Results root")] ==
            [line for line in (by_id / "report.md").read_text().splitlines() if not line.startswith("Results root")])


def test_an_unknown_reference_is_refused_naming_the_groups(tmp_path, capsys, known):
    root, _ = known
    before = tree_hash(root)
    assert cli.main(["report", *COHORTS, "--results", str(root), "--output", str(tmp_path / "out"),
                     "--reference", "0.0004"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: --reference '0.0004' is no seed group of the report; its seed groups: "
                   "learning_rate=0.0001; learning_rate=0.0004; learning_rate=0.001")
    assert tree_hash(root) == before and not (tmp_path / "out").exists()


def test_a_reference_without_a_kept_run_or_rows_falls_back_and_says_why(known):
    root, ids = known
    store = report.ResultStore(root)
    completed = [run_id for key, run_id in ids.items() if key != ("compress", 7)]
    labels = store.labels(completed, by_group=True)
    these = store.phases(completed)
    these = these[these["run_id"].isin(completed)]
    single = these.loc[these["run_id"] == ids[("single", 0)], "group_id"].iloc[0]
    assert cohort_tables.reference_note(these, labels, single) is None
    assert set(cohort_tables.comparison_table(these, labels, single)["b"]) == {"learning_rate=0.001"}
    dead = these.assign(dead_network=these["dead_network"] | (these["group_id"] == single))
    assert set(cohort_tables.comparison_table(dead, labels, single)["b"]) == {"learning_rate=0.0001"}
    assert cohort_tables.reference_note(dead, labels, single) == (
        "The reference learning_rate=0.001 has no run kept here (dead, diverged or unfinished): compared with "
        "learning_rate=0.0001, the first group with two runs kept.")
    unmeasured = these[these["group_id"] != single]
    assert set(cohort_tables.comparison_table(unmeasured, labels, single)["b"]) == {"learning_rate=0.0001"}
    assert cohort_tables.reference_note(unmeasured, labels, single) == (
        "The reference learning_rate=0.001 is not measured with these parameters on this split: compared with "
        "learning_rate=0.0001, the first group with two runs kept.")


@pytest.mark.slow   # reads the report the `written` fixture draws through Vega
def test_final_test_accuracy_is_compared_with_the_reference_over_every_completed_run(written):
    root, ids, out = written
    lines = (out / "report.md").read_text().splitlines()
    start = lines.index("### Final test accuracy compared with learning_rate=0.0001") + 4   # title, caption
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
    assert table[0].startswith("| a | b | n a, b |")
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in table[2:]}
    assert list(rows) == ["learning_rate=0.0004", "learning_rate=0.001"]
    runs = report.ResultStore(root).runs().set_index("run_id")["final_test_accuracy"]
    # every completed run, the dead one too (its accuracy is the outcome); the running one is left out
    compress = runs[[ids[("compress", seed)] for seed in range(7)]].to_numpy()
    noise = runs[[ids[("noise", seed)] for seed in range(6)]].to_numpy()
    # the comparisons' test permutes Welch's t (studentized: "equal means", not "the same
    # distribution"; the raw difference of means gave 0.746 here), bounded by Welch's t test
    p = max(scipy_stats.permutation_test((compress, noise),
                                         lambda a, b: scipy_stats.ttest_ind(a, b, equal_var=False).statistic,
                                         n_resamples=np.inf, permutation_type="independent").pvalue,
            scipy_stats.ttest_ind(compress, noise, equal_var=False).pvalue)
    row = rows["learning_rate=0.0004"]
    assert row[1:4] == ["learning_rate=0.0001", "7, 6", f"{compress.mean() - noise.mean():.3g}"]
    # q over the groups compared: the single seed has no test, so q = p
    assert row[5:7] == [f"{p:.3g}", f"{p:.3g}"]
    assert rows["learning_rate=0.001"][2:7] == ["1, 6", f"{runs[ids[('single', 0)]] - noise.mean():.3g}",
                                                "n = 1: no interval", "–", "–"]


@pytest.mark.slow   # writes the figures through Vega
def test_an_estimator_without_i_xt_gets_its_i_yt_figure_and_a_sentence_not_empty_tables(tmp_path):
    # ksg records no I(X;T) (h(T) goes to h_t_bits): its tables were rows of n = 0 and "–", its plane empty
    from conftest import write_ksg_cohort
    root = tmp_path / "root"
    write_ksg_cohort(root)
    path, _ = report.write_report(report.ResultStore(root), ["c"], tmp_path / "out", split="train")
    text = path.read_text()
    ksg = text[text.index("## ksg"):]
    assert "ksg records no I(X;T)" in ksg and "### Phases" not in ksg and "### Seed groups compared" not in ksg
    assert "I(Y;T) against epoch per layer" in ksg and "Information plane" not in ksg
    glance = text[:text.index("## Health")]
    assert "| ksg" not in glance and "Not in this table, no I(X;T) recorded: ksg {" in glance
    glance, compared = glance.split("### Does the last hidden layer compress more or less than in ")
    assert glance.count("| binning") == 2                       # the other estimator's rows stay
    assert compared.count("| binning") == 1 and "| ksg" not in compared      # its one group against the reference
    figures = sorted(p.name for p in (tmp_path / "out" / "figures").iterdir())
    assert [name for name in figures if "ksg" in name] == ["2-ksg-epochs.png", "2-ksg-epochs.svg"]


@pytest.mark.slow   # writes the figures through Vega
def test_the_glance_comparisons_heading_names_a_reference_only_where_every_estimator_took_it(tmp_path):
    # A sceptic's: each estimator compares with the first group it has a live run of; the heading named
    # the first estimator's, while the other's rows (and its sentence) were against another group
    root = tmp_path / "root"
    fine, coarse = {"name": "binning", "params": {"bin_size": 0.07}}, {"name": "binning", "params": {"bin_size": 0.3}}
    # the groups' order is their `estimators` text's: the one-estimator group comes first
    for bias, estimators in ((0.0, [fine]), (1.0, [coarse, fine]), (2.0, [coarse, fine])):
        for seed in range(2):
            write_run(root, "r", {"initial_bias": bias, "epochs": 20, "estimators": estimators}, seed=seed,
                      cohort="c", logged=8)
    path, _ = report.write_report(report.ResultStore(root), ["c"], tmp_path / "out", split="train")
    text = path.read_text()
    section = text[text.index("### Does the last hidden layer compress more or less than in "):text.index("## Health")]
    references = {line.split(" | ")[2] for line in section.splitlines() if line.startswith("| binning")}
    assert len(references) == 2                          # bias 0 for bin_size 0.07, bias 1 for 0.3 (none at 0)
    assert section.startswith("### Does the last hidden layer compress more or less than in the group each is "
                              "compared with?")


@pytest.mark.slow   # writes the figures through Vega
def test_an_estimators_name_reaches_no_file_name_or_link_target_raw(tmp_path):
    # An attacker's mi.parquet named its estimator "kde) <img src=x onerror=alert(...)> (": the name went
    # into the figures' file names, so into the links' targets, unescaped, and the script ran in a viewer
    import re

    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    root = tmp_path / "root"
    hostile = "kde) <img src=x onerror=alert(document.domain)> (/../x"
    for bias in (0.0, 1.0):
        for seed in range(2):
            run_id = write_run(root, "h", {"initial_bias": bias, "epochs": 20}, seed=seed, cohort="c", logged=5)
            path = layout.run_dir(root, run_id) / "mi.parquet"
            table = pq.read_table(path)
            column = pc.cast(pc.if_else(pc.equal(table["estimator"], "binning"), hostile, table["estimator"]),
                             table.schema.field("estimator").type)
            pq.write_table(table.set_column(table.schema.get_field_index("estimator"), "estimator", column), path)
    path, _ = report.write_report(report.ResultStore(root), ["c"], tmp_path / "out", split="train")
    text = path.read_text()
    assert "<img" not in text and "&lt;img" in text
    targets = re.findall(r"\]\(([^)]*)\)", text)
    assert targets and all(re.fullmatch(r"figures/[A-Za-z0-9_-]+\.(png|svg)", target) for target in targets), targets
    assert all((tmp_path / "out" / target).is_file() for target in targets)


@pytest.mark.slow   # writes the figures through Vega
def test_an_estimator_only_dead_runs_record_gets_a_sentence_not_a_failed_report(tmp_path):
    # An attacker's: `trainer estimate` of a dead run alone; its estimator's information plane had no
    # live run, so no epoch to colour, and the report failed with "cannot convert float NaN to integer"
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from conftest import write_cohort
    root = tmp_path / "root"
    write_cohort(root)
    runs = report.ResultStore(root).runs()
    dead = runs.loc[runs["dead_network"].fillna(False).astype(bool), "run_id"].tolist()
    assert dead
    for run_id in dead:
        path = layout.run_dir(root, run_id) / "mi.parquet"
        table = pq.read_table(path)
        coarse = table.set_column(table.schema.get_field_index("params"), "params",
                                  pc.cast(pa.array(['{"bin_size": 0.5}'] * len(table)), table.schema.field("params").type))
        pq.write_table(pa.concat_tables([table, coarse]), path)
    path, _ = report.write_report(report.ResultStore(root), ["initial_bias"], tmp_path / "out", split="train")
    text = path.read_text()
    section = text[text.index('## binning {"bin_size": 0.5}'):]
    assert "No information plane: no run of these groups that the statistics keep" in section
    assert "-plane.png" in text[:text.index('## binning {"bin_size": 0.5}')]           # the live estimator's


@pytest.mark.slow   # writes the figures through Vega
def test_a_grid_is_reported_in_pairs_each_key_at_each_level_of_the_other(tmp_path):
    # A new user's 2 x 2 grid compared every group with one reference: the learning rate's effect under
    # relu was in no table, and the diagonal pair (both keys changed) was in every one
    from conftest import write_rate_activation_grid
    root = tmp_path / "root"
    write_rate_activation_grid(root, seeds=3)
    path, _ = report.write_report(report.ResultStore(root), ["grid"], tmp_path / "out", split="train",
                                  reference="activation_fn=tanh, learning_rate=0.001")
    text = path.read_text()
    simple_effects = {("activation_fn=relu, learning_rate=0.001", "activation_fn=tanh, learning_rate=0.001"),
                      ("activation_fn=tanh, learning_rate=0.01", "activation_fn=tanh, learning_rate=0.001"),
                      ("activation_fn=relu, learning_rate=0.01", "activation_fn=relu, learning_rate=0.001"),
                      ("activation_fn=relu, learning_rate=0.01", "activation_fn=tanh, learning_rate=0.01")}
    for heading in ("### Final test accuracy compared in pairs: each key's effect at each level of the others",
                    "### Seed groups compared in pairs: each key's effect at each level of the others"):
        section = text[text.index(heading):]
        rows = [line.split(" | ") for line in section[:section.index("\n#", 1)].splitlines()
                if line.startswith("| activation_fn=")]
        assert {(row[0][2:], row[1]) for row in rows} == simple_effects, heading
    assert "### Does the last hidden layer compress more or less than in the group each is compared with?" in text


@pytest.mark.slow   # writes the figures through Vega
def test_where_reports_the_runs_of_a_cohort_a_condition_holds_for(tmp_path, capsys):
    # A new user's shortened sweep (--set epochs=2000) and the full one were one cohort: the report
    # compared all 18 groups, and its reference had to be named "epochs=8000, initial_bias=0"
    root = tmp_path / "root"
    for epochs in (20, 40):
        for bias in (0.0, 1.0):
            for seed in range(2):
                write_run(root, "b", {"initial_bias": bias, "epochs": epochs}, seed=seed, cohort="bias", logged=5)
    out = tmp_path / "out"
    assert cli.main(["report", "bias", "--results", str(root), "--output", str(out), "--where", "epochs = 40",
                     "--reference", "initial_bias=0"]) == 0
    text = (out / "report.md").read_text()
    assert "Runs where epochs = 40 (`--where`; 4 of the cohorts' runs left out by it)." in text
    assert "4 completed runs in 2 seed groups" in text
    assert "| initial_bias=1 | initial_bias=0 |" in text and "epochs=" not in text      # the groups: the bias alone
    runs = report.ResultStore(root).runs().set_index("run_id")
    selected = report.select(report.ResultStore(root), ["bias"], "epochs = 40 ").runs["run_id"]
    assert set(runs.loc[selected, "epochs"]) == {40} and len(selected) == 4
    before = tree_hash(out)
    for where, message in (("epochs = 7", "--where matched none of the 8 runs of cohort bias; it is a SQL condition "
                                          "over the runs view"),
                           ("no_such_column > 1", "--where: "), ("1; DROP TABLE runs", "--where: ")):
        assert cli.main(["report", "bias", "--results", str(root), "--output", str(out), "--where", where]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert tree_hash(out) == before                       # the previous report stands


@pytest.mark.slow   # writes the figures through Vega
def test_a_trend_no_row_of_which_has_a_test_is_one_sentence_not_a_table_of_dashes(tmp_path):
    # A sceptic's: groups along initial_bias that also differ in activation_fn, each activation at fewer
    # than 3 biases, read a trend section of rows that all said "fewer than 3 values"
    root = tmp_path / "root"
    for activation, biases in (("relu", (0.0, 1.0)), ("tanh", (2.0,))):
        for bias in biases:
            for seed in range(2):
                write_run(root, "t", {"activation_fn": activation, "initial_bias": bias, "epochs": 20}, seed=seed,
                          cohort="c", logged=5)
    path, _ = report.write_report(report.ResultStore(root), ["c"], tmp_path / "out", split="train")
    text = path.read_text()
    section = text[text.index("### Trend along initial_bias"):]
    section = section[:section.index("\n#", 1)] if "\n#" in section[1:] else section
    assert f"No trend along initial_bias could be tested ({trend.TOO_FEW_LEVELS})." \
        in section
    assert not [line for line in section.splitlines() if line.startswith("|")]      # no table


@pytest.mark.slow   # writes the figures through Vega
def test_an_emoji_in_a_config_value_is_drawn_as_a_replacement_character_not_a_failed_report(tmp_path):
    # An attacker's: Vega cut a long legend label between the two halves of an emoji's UTF-16 pair and
    # vl-convert failed the whole report; the tables keep the character, the figures draw U+FFFD
    root = tmp_path / "root"
    for tag in ("a", "b"):
        for seed in range(2):
            write_run(root, "e", {"epochs": 10, "dataset": "file", "dataset_path": f"/data/d {'😀' * 8} {tag}.npz"},
                      seed=seed, cohort="emo", logged=4)
    path, _ = report.write_report(report.ResultStore(root), ["emo"], tmp_path / "out", split="train")
    assert "😀" * 8 in path.read_text()
    svg = (tmp_path / "out" / "figures" / "1-binning-epochs.svg").read_text()
    assert "\ufffd" in svg and "😀" not in svg


def test_runs_with_no_mi_at_all_are_counted_and_named_beside_the_mi_sections(tmp_path):
    # A sceptic's seed that diverged at epoch 0 logged no MI: its group read n = 2 and "left out: 2
    # dead" of 3 seeds, and a group whose every seed did so was in no MI section, without a word
    root = tmp_path / "root"
    for rate in (0.001, 0.01):
        for seed in range(3):
            write_run(root, "k", {"epochs": 10, "learning_rate": rate}, seed=seed, cohort="c", logged=4)
    for seed in range(2):
        run_id = write_run(root, "k", {"epochs": 10, "learning_rate": 9.0}, seed=seed, cohort="c", logged=4,
                           status=Status.DIVERGED, epochs_done=0)
        layout.table_path(root, run_id, "mi").unlink()
    path, _ = report.write_report(report.ResultStore(root), ["c"], tmp_path / "out", split="train")
    (note,) = [line for line in path.read_text().splitlines() if line.startswith("No MI was recorded")]
    assert note.startswith("No MI was recorded for learning_rate=9: 2 of 2 seeds (k-") and note.count(
        " diverged at epoch 0") == 2, note


def test_config_keys_alike_after_unicode_normalisation_make_a_report_not_a_syntax_error(tmp_path):
    # An attacker's full-width key "ｌｒ" beside "lr": pandas' itertuples made a namedtuple of the runs'
    # columns, and Python normalised both names to lr ("SyntaxError: duplicate argument 'lr'")
    root = tmp_path / "root"
    for rate, tag in ((0.001, "a"), (0.01, "b")):
        for seed in range(2):
            run_id = write_run(root, "w", {"epochs": 10, "learning_rate": rate}, seed=seed, cohort="wide", logged=4)
            path = layout.run_dir(root, run_id) / "run.json"     # by hand: the trainer refuses unknown keys
            record = json.loads(path.read_text())
            path.write_text(json.dumps({**record, "config": {**record["config"], "lr": 0.1, "ｌｒ": tag}}))
    path, _ = report.write_report(report.ResultStore(root), ["wide"], tmp_path / "out", split="train")
    assert "ｌｒ=a" in path.read_text() and "ｌｒ=b" in path.read_text()


@pytest.mark.slow
def test_at_a_glance_the_last_hidden_layers_compression_over_floor_is_compared_with_q_over_the_groups(written):
    # The one comparison asked of in advance: each group's compression over the floor at its last hidden
    # layer against the reference's; its p is the full comparison table's, its q Benjamini-Hochberg over
    # these groups' p alone (written out here), not over every group and layer.
    _, _, out = written
    text = (out / "report.md").read_text()
    section = text[text.index("### Does the last hidden layer compress more or less than in learning_rate=0.0001?"):
                   text.index("## Health")]
    rows = [line.strip("| ").split(" | ") for line in section.splitlines() if line.startswith("| binning")]
    assert [(row[1], row[2], row[3]) for row in rows] == [
        ("learning_rate=0.0004", "learning_rate=0.0001", "0 · dense_0"),
        ("learning_rate=0.001", "learning_rate=0.0001", "0 · dense_0")]
    full = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in text.splitlines()
            if line.startswith("| learning_rate=") and f"| 0 · dense_0 | {stats.EXCESS} |" in line}
    for row in rows:
        assert row[7] == full[row[1]][7]                                       # the same p
    tested = [row for row in rows if row[7] != "–"]
    p_values = [float(row[7].removeprefix("< ")) for row in tested]
    assert len(tested) == 1 and [row[8] for row in tested] == [cohort_tables.p_text(q) for q in
                                                                benjamini_hochberg(p_values)]
    assert f"{stats.EXCESS}" in section and "adjusts over those pairs alone" in section


@pytest.mark.slow   # writes the figures through Vega
def test_the_report_s_trend_table_is_the_slope_over_the_values_with_two_runs(tmp_path):
    # Three learning rates with 2 seeds each and one with a single seed: the report's trend rows are the
    # least-squares slope of each kept run's final I(X;T) on its step over the three values of 2 runs
    # (np.polyfit), with Spearman's rho from scipy, and say that one value of one run was left out
    root = tmp_path / "root"
    for rate, seeds in ((0.001, 2), (0.003, 2), (0.01, 2), (0.03, 1)):
        for seed in range(seeds):
            write_run(root, "t", {"learning_rate": rate, "epochs": 20}, seed=seed, cohort="c", logged=5)
    path, _ = report.write_report(report.ResultStore(root), ["c"], tmp_path / "out", split="train")
    section = path.read_text()[path.read_text().index("### Trend along learning"):]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| 0 · dense_0 | final_i_xt")]
    phases = report.ResultStore(root).phases()
    phases = phases[(phases["layer"] == 0) & (phases["split"] == "train") & (phases["estimator"] == "binning")]
    phases = phases.assign(rate=phases["run_id"].map(
        {r: json.loads((layout.run_dir(root, r) / "run.json").read_text())["config"]["learning_rate"]
         for r in phases["run_id"]})).sort_values("rate")
    kept = phases[phases["rate"] < 0.03]
    steps = kept["rate"].rank(method="dense").to_numpy() - 1
    (row,) = rows
    assert row[2:5] == ["3", "6", f"{np.polyfit(steps, kept['final_i_xt'], 1)[0]:.3g}"], row
    assert row[6].endswith(f"({cohort_tables.ONE_RUN_LEFT_OUT.format(1)})"), row[6]
    rho = scipy_stats.spearmanr(kept["rate"], kept["final_i_xt"]).statistic
    assert row[8].rstrip(" |").startswith(f"{rho:.3g} ["), row[8]
    assert (tmp_path / "out" / "tables" / "1-binning-trend.tex").is_file()


@pytest.mark.slow   # reads the report the `written` fixture draws through Vega
def test_the_groups_along_one_numeric_key_get_its_trend(written):
    # The three cohorts differ only in learning_rate (0.0001, 0.0004, 0.001): "single" has one run, whose
    # spread is unknown, so its value is left out (a sceptic's one-run steps broke the test's level), and
    # two values are no trend. The trend itself is tested on the Phases page and in tests/test_trend.py.
    root, ids, out = written
    text = (out / "report.md").read_text()
    section = text[text.index("### Trend along learning_rate"):]
    assert (f"No trend along learning\\_rate could be tested ({trend.TOO_FEW_LEVELS})." in section
            or f"No trend along learning_rate could be tested ({trend.TOO_FEW_LEVELS})." in section), section[:2000]
    assert not [line for line in section.split("## ")[0].splitlines() if line.startswith("| 0 · dense_0 | ")]


def test_diverged_runs_are_counted_in_their_groups_health_and_left_out_of_their_statistics(tmp_path):
    # The report once took completed runs only: a setting whose every seed diverged had no row at all,
    # and the health table's diverged column counted among completed runs, so it read 0 everywhere.
    from bench.make_results import write_run
    root = tmp_path / "root"
    runs = {(rate, seed, status): write_run(root, f"lr{rate}", {"epochs": 20, "learning_rate": rate}, seed=seed,
                                            cohort="c", status=status, epochs_done=10 if status == "diverged" else None,
                                            logged=8)
            for rate, seed, status in [(0.001, 0, "completed"), (0.001, 1, "completed"), (0.001, 2, "diverged"),
                                       (10.0, 0, "diverged"), (10.0, 1, "diverged")]}
    path, selection = report.write_report(report.ResultStore(root), ["c"], tmp_path / "out", split="train")
    text = path.read_text()
    lines = text.splitlines()
    assert sorted(selection.run_ids) == sorted(runs.values()) and selection.other == {}
    assert "2 completed and 3 diverged runs in 2 seed groups" in text and "Left out, not completed" not in text
    store = report.ResultStore(root)
    accuracy = store.runs().set_index("run_id").loc[[runs[0.001, 0, "completed"], runs[0.001, 1, "completed"]],
                                                    "final_test_accuracy"].to_numpy()
    assert np.isnan(store.runs().set_index("run_id").loc[runs[10.0, 0, "diverged"], "final_test_accuracy"])
    half = scipy_stats.t.ppf(0.975, 1) * accuracy.std(ddof=1) / np.sqrt(2)
    assert (f"| learning_rate=0.001 | 3 | 0 | 0 | 1 | {accuracy.mean():.3f} [{max(accuracy.mean() - half, 0):.3f}, "
            f"{min(accuracy.mean() + half, 1):.3f}] |") in lines
    assert "| learning_rate=10 | 2 | 0 | 0 | 2 | – |" in lines
    glance = next(line for line in lines if line.startswith("| binning") and "learning_rate=10 |" in line)
    assert glance.endswith("| 2 diverged |") and "| 0 | – |" in glance
    spec = store.phase_chart(selection.run_ids, "binning", '{"bin_size": 0.07}', "train").to_dict()
    assert spec["spec"]["layer"][1]["encoding"]["color"]["scale"]["domain"] == [
        "learning_rate=0.001 (2 seeds, 1 diverged left out)", "learning_rate=10 (0 seeds, 2 diverged left out)"]


@pytest.mark.slow
def test_a_report_reads_one_snapshot_and_leaves_no_rescan_running(known, tmp_path, monkeypatch):
    # the store rescanned every 2 s in a daemon thread: a report's tables could come from different
    # snapshots while a sweep wrote, and a rescan still inside pyarrow at exit aborted the process
    # once ("terminate called after throwing an instance of ''") after the report was written
    from explorer import results
    root, _ = known
    clock = itertools.count(0.0, 60.0)     # the store's clock: a minute passes between any two looks
    monkeypatch.setattr(results, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    scans, real_scan = [], results.scan
    monkeypatch.setattr(results, "scan", lambda *args, **kwargs: scans.append(1) or real_scan(*args, **kwargs))
    assert cli.main(["report", *COHORTS, "--results", str(root), "--output", str(tmp_path / "out")]) == 0
    assert len(scans) == 1


def test_one_seed_never_gets_an_interval_whatever_note_stands_in_its_place():
    # a layer at its ceiling carries that note instead of n = 1's, and showed "0.00 [nan, nan]"
    nan = float("nan")
    cell = {"n": 1, "mean": 0.0, "sd": nan, "ci_low": nan, "ci_high": nan, "note": "at ceiling"}
    assert cohort_tables.estimate_cell(cell) == "0.00 (n = 1: no interval)"
    assert cohort_tables.estimate_cell({**cell, "n": 3}) == "0.00 (no interval)"
    assert cohort_tables.estimate_cell({**cell, "n": 3, "ci_low": -0.5, "ci_high": 0.5}) == "0.00 [-0.50, 0.50]"


def test_a_previous_report_a_killed_writer_swapped_out_goes_back(tmp_path):
    # An attacker's: SIGKILL between the swap's two renames left no report in the folder, the previous
    # one inside the writer's ".old" folder, and the next report deleted it with the rest
    host = socket.gethostname()
    kept = tmp_path / f".rep.{host}.999999999.abcd.old" / report.REPORT_FOLDER_KEPT
    kept.mkdir(parents=True)
    (kept / "report.md").write_text("# Report: before\n")
    report._remove_dead_staging(tmp_path / "rep")
    assert (tmp_path / "rep" / "report.md").read_text() == "# Report: before\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]


@pytest.mark.slow
def test_a_report_removes_what_a_killed_report_left_beside_it(known, tmp_path):
    # SIGKILL while a report wrote left ".rep.<host>.<pid>.<random>.tmp" folders that nothing removed
    root, _ = known
    host = socket.gethostname()
    dead, live = tmp_path / f".rep.{host}.999999999.abcd.tmp", tmp_path / f".rep.{host}.{os.getpid()}.efgh.tmp"
    # not this report's: another target's ("rep.99999", pid 999999999 in the name's middle) and another host's
    other_target = tmp_path / f".rep.99999.{host}.999999999.ijkl.tmp"
    other_host = tmp_path / ".rep.elsewhere.999999999.mnop.tmp"
    # an attacker's: killed after its swap, a report left the whole previous report beside it
    swapped_out = tmp_path / f".rep.{host}.999999999.old"
    for folder in (dead, live, other_target, other_host, swapped_out):
        (folder / "figures").mkdir(parents=True)
    assert cli.main(["report", "cohort-noise", "--results", str(root), "--output", str(tmp_path / "rep")]) == 0
    assert not dead.exists() and not swapped_out.exists() and live.exists()   # a live process's is its own
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other_target.name, other_host.name, "rep"])


def test_a_report_folder_with_the_longest_name_a_file_may_take_is_written(known, tmp_path):
    # An attacker's: a valid 240-character folder name was refused as "File name too long", the
    # staging name (".NAME.HOST.PID.RANDOM.tmp") beside it being longer than 255 bytes
    root, _ = known
    target = tmp_path / ("r" * 240)
    assert cli.main(["report", "cohort-noise", "--results", str(root), "--output", str(target)]) == 0
    assert (target / "report.md").is_file() and [p.name for p in tmp_path.iterdir()] == [target.name]
    assert len(report._staging_prefix(target.name).encode()) < 100      # the digest, not the name


def test_a_file_put_into_the_folder_while_the_report_is_written_is_kept_and_the_report_refused(tmp_path):
    # An attacker's: the folder was checked once, before the report's ten seconds of figures; a file put
    # there meanwhile was removed with the previous report when the new one was swapped in
    target = tmp_path / "race"
    target.mkdir()
    (target / "report.md").write_text("# Report: previous\n")
    staging = tmp_path / ".staging"
    staging.mkdir()
    (staging / "report.md").write_text("# Report: new\n")
    (target / "precious.txt").write_text("draft")
    with pytest.raises(report.ReportError, match="came to hold 'precious.txt' while the report was written"):
        report._swap_in(staging, target)
    assert (target / "precious.txt").read_text() == "draft" and (target / "report.md").read_text() == "# Report: previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging", "race"]       # write_report removes its staging
    (target / "precious.txt").unlink()
    (target / "report.md").unlink()
    target.rmdir()
    target.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(report.ReportError, match="became a file or a link while the report was written"):
        report._swap_in(staging, target)
    assert target.is_symlink() and (staging / "report.md").is_file()
    # a folder above it swapped for a link: the report went through the link, out of the reports folder
    target.unlink()
    (tmp_path / "reports").mkdir()
    (tmp_path / "outside").mkdir()
    staging = tmp_path / "reports" / ".staging"
    staging.mkdir()
    (staging / "report.md").write_text("# Report: new\n")
    (tmp_path / "reports").rename(tmp_path / "reports-moved")
    (tmp_path / "reports").symlink_to(tmp_path / "outside")
    with pytest.raises(report.ReportError, match="was moved or replaced by a link while the report was written"):
        report._swap_in(tmp_path / "reports" / ".staging", (tmp_path / "reports" / "x"))
    assert list((tmp_path / "outside").iterdir()) == []


def test_reports_swapped_into_one_folder_by_two_threads_at_once_both_land_whole(tmp_path, monkeypatch):
    # An attacker's: two visitors of one explorer wrote a report to one folder at once; their swaps
    # shared the previous report's name, and one got "Directory not empty" (or, interleaved otherwise,
    # left the previous report behind, and every later write there failed until the server restarted)
    import threading
    import time

    target = tmp_path / "shared"

    def write(name: str) -> None:
        for attempt in range(30):
            staging = tmp_path / f".staging-{name}-{attempt}"
            staging.mkdir()
            (staging / "report.md").write_text(f"# Report: {name} {attempt}\n")
            report._swap_in(staging, target)

    # each rename slowed down, so the two threads' swaps interleave (without the lock they collided in most runs)
    original = Path.rename

    def slow_rename(self, target):
        moved = original(self, target)
        time.sleep(0.005)
        return moved
    monkeypatch.setattr(Path, "rename", slow_rename)
    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (target / "report.md").read_text() in ("# Report: a 29\n", "# Report: b 29\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]      # no staging or previous report left


def test_a_report_folder_is_a_plain_name_and_a_leading_tilde_is_home(tmp_path, monkeypatch):
    # An attacker's: the page's "~/ibreport" made a folder named "~" in the server's folder, which
    # `rm -rf ~` would take for the home folder; a newline or a bidirectional mark was a name too
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = tmp_path / "results"
    assert report.output_folder("~/ibreport", root) == tmp_path / "home" / "ibreport"
    for name in ("rep/\nnl", "rep\u202eodt", "rep\x1b[31m"):
        with pytest.raises(report.ReportError, match="holds a control or format character"):
            report.output_folder(tmp_path / name, root)
    # the page's default folder is the cohorts' own, whatever their names hold
    assert report.default_folder(["initial_bias_relu"]) == "initial_bias_relu"
    assert report.default_folder(["../../etc", "a/b"]).startswith("etc+a-b-")
    # names that lose characters keep apart (an attacker's "x y", "x/y" and "x-y"; "日本" and "中文")
    # and long ones fit the page's one name of 100 characters (an attacker's 101 were refused by the page)
    cohorts = (["x y"], ["x/y"], ["x-y"], ["日本"], ["中文"], ["a-", "b"], ["a", "b"], ["a" * 101],
               ["x" * 60, "y" * 60])
    folders = [report.default_folder(names) for names in cohorts]
    assert len(set(folders)) == len(folders) and all(report.PAGE_FOLDER_NAME.fullmatch(f) for f in folders), folders
    with pytest.raises(report.ReportError, match="no such user's home folder"):
        report.output_folder("~no-such-user-here/x", root)
    with pytest.raises(report.ReportError, match="holds a control or format character"):
        report.output_folder(tmp_path / "rep\u2028x", root)


def test_config_values_reach_the_markdown_as_text_not_html_links_or_lines(tmp_path):
    """A config value is anyone's text (an attacker's file name `<img src=x onerror=...>` as a
    dataset_path): report.md carried it raw into headings, sentences and table rows, and a viewer that
    renders HTML ran it; a line break in it began a heading of its own."""
    evil = "<img src=x onerror=alert(1)>\n# pwned ![t](http://evil.invalid/t.png) `x` | y"
    for seed in range(2):
        for column in ("label", evil):
            write_run(tmp_path / "results", "x", {"activation_fn": "tanh", "epochs": 60, "label_column": column},
                      seed=seed, cohort="c<b>x</b>", logged=20)
    store = report.ResultStore(tmp_path / "results")
    path, _ = report.write_report(store, ["c<b>x</b>", "c<b>x</b>"], tmp_path / "out")
    text = path.read_text()
    assert "<img" not in text and "<b>" not in text and "](http" not in text
    assert not any(line.startswith("# pwned") for line in text.splitlines())
    assert text.startswith("# Report: c&lt;b>x&lt;/b>\n")       # named once
    shown = "label_column=&lt;img src=x onerror=alert(1)> # pwned ![t]\\(http://evil.invalid/t.png) \\`x\\`"
    assert f"| {shown} \\| y | 2 | 0 | 0 | 0 |" in text                     # a health row: one row, its cells
    assert f"### Final test accuracy compared with {shown} | y" in text
    # the LaTeX tables hold the value itself, escaped for LaTeX alone
    tex = (path.parent / "tables" / "health.tex").read_text()
    assert "label\\_column=<img src=x onerror=alert(1)>" in tex and "&lt;" not in tex and "\\(" not in tex


def test_a_root_whose_mi_files_hold_no_layer_names_gets_its_report(tmp_path):
    # files written before layer_name existed hold NULL there (ibstore.schema): the report's figure
    # went to vl-convert with a bare NaN and failed, and its per-layer table came out empty
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from ibstore import layout
    root = tmp_path / "results"
    ids = [write_run(root, f"b{bias}", {"epochs": 20, "initial_bias": bias}, seed=seed, cohort="c", logged=8)
           for bias in (0.0, 0.5) for seed in range(2)]
    for run_id in ids:
        path = layout.table_path(root, run_id, "mi")
        table = pq.read_table(path)
        names = table.schema.get_field_index("layer_name")
        pq.write_table(table.set_column(names, "layer_name", pc.cast(pa.nulls(len(table)), pa.string())), path)
    path, _ = report.write_report(report.ResultStore(root), ["c"], tmp_path / "out")
    text = path.read_text()
    section = text[text.index("### Phases per seed group"):].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| initial_bias=")]
    assert len(rows) == 2 * 6 and rows[0].startswith("| initial_bias=0 | 0 | 2 |")   # a row per group and layer
    assert (tmp_path / "out" / "figures" / "1-binning-epochs.svg").read_text().lstrip().startswith("<svg")
