"""`trainer ls` (trainer.listing and the CLI verb): order, alignment, escaping, --where."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.make_results import write_run
from ibstore.record import SCHEMA_VERSION, RunRecord

BASE = {"run_id": "r1", "status": "completed", "schema_version": SCHEMA_VERSION}


def test_ls_sorts_numbers_in_run_ids_by_value():
    import json

    from trainer import config
    from trainer.listing import natural_key

    ids = ["bias-2-0-3fa1c2d0-s0", "bias-0-2-3fa1c2d0-s0", "bias-m1-0-3fa1c2d0-s0", "bias-0-0-3fa1c2d0-s0",
           "bias-10-0-3fa1c2d0-s0", "bias-0-0-3fa1c2d0-s10", "bias-0-0-3fa1c2d0-s2", "m0-5", "0", "0-2", "m1"]
    assert sorted(ids, key=natural_key) == [
        "m1", "m0-5", "0", "0-2",
        "bias-m1-0-3fa1c2d0-s0", "bias-0-0-3fa1c2d0-s0", "bias-0-0-3fa1c2d0-s2", "bias-0-0-3fa1c2d0-s10",
        "bias-0-2-3fa1c2d0-s0", "bias-2-0-3fa1c2d0-s0", "bias-10-0-3fa1c2d0-s0"]
    # a sceptic's learning rates, which JSON writes 1e-05 below 0.0001, were sorted as text
    rate_of = {config.slug(f"c[learning_rate={json.dumps(rate)}]") + "-3fa1c2d0-s0": rate
               for rate in (0.001, 1e-05, 0.0001, 5e-05, 2.5e-05, -1e-05)}
    assert "c-learning-rate-2-5e-05-3fa1c2d0-s0" in rate_of
    assert [rate_of[run_id] for run_id in sorted(rate_of, key=natural_key)] == sorted(rate_of.values())


def test_ls_table_is_aligned_escaped_and_has_a_header_when_empty():
    from ibstore.text import terminal_text as escape
    from trainer.listing import COLUMNS, LEGEND, table

    assert table([]).split() == list(COLUMNS)
    records = [RunRecord(**{**BASE, "run_id": "b\nfake  completed"}, name="x\x1b[2J\u202ey", epochs_done=3,
                         epochs_total=10, final_test_accuracy=0.91234, dead_network=True, diverged=True),
               RunRecord(**{**BASE, "run_id": "a", "status": "running"})]
    lines = table(records).splitlines()
    assert len(lines) == 4 and lines[3] == LEGEND
    assert lines[1].split() == ["a", "running", "?/?", "-", "-"]
    assert lines[2].split() == ["b\\nfake", "completed", "completed", "3/10", "0.912", "dead,diverged",
                                "x\\x1b[2J\\u202ey"]
    shown_id = "b\\nfake  completed"
    assert lines[0].index("status") == lines[1].index("running") == lines[2].index("completed", len(shown_id))
    assert lines[0].index("test_acc") + len("test_acc") == lines[2].index("0.912") + len("0.912")  # right-aligned
    assert escape("plain é 名前") == "plain é 名前" and escape("\ud800") == "\\ud800"


def test_ls_flags_a_run_whose_status_is_diverged_though_its_flag_is_unset(tmp_path, capsys):
    """`trainer ls` flags runs by the explorer's rule (ibstore.record.run_flags): status diverged is
    diverged, as the explorer's badge says, also when run.json leaves `diverged` null."""
    from ibstore import layout
    from trainer import cli

    record = RunRecord(**{**BASE, "status": "diverged"}, epochs_done=3, epochs_total=10)
    assert record.diverged is None
    layout.run_dir(tmp_path, record.run_id).mkdir(parents=True)
    layout.run_json_path(tmp_path, record.run_id).write_bytes(record.to_json_bytes())
    assert cli.main(["ls", "--results", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()[2:-1]
    assert [row.split() for row in rows] == [["r1", "diverged", "3/10", "-", "diverged"]]


@pytest.mark.slow
def test_ls_where_filters_through_the_read_only_sandbox(tmp_path, capsys):
    from tests.conftest import write_cohort
    from trainer import cli
    from trainer.listing import LEGEND, table

    write_cohort(tmp_path)
    before = {path: path.read_bytes() for path in (tmp_path / "runs").rglob("*") if path.is_file()}
    assert cli.main(["ls", "--results", str(tmp_path), "--where", "initial_bias < 0"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = out[3:out.index(LEGEND)]              # the legend, then the cohorts, follow the rows
    assert out[1] == f"--where matched 2 of {len(run_folders(tmp_path))} runs"
    assert len(rows) == 2 and all(row.split()[4] == "dead" for row in rows)
    assert cli.main(["ls", "--results", str(tmp_path), "--where", "initial_bias > 100"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [f"--where matched 0 of {len(run_folders(tmp_path))} runs",
                                                        table([])]
    assert cli.main(["ls", "--results", str(tmp_path), "--where", "initial_bias < 0 -- a trailing comment"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"--where matched 2 of {len(run_folders(tmp_path))} runs"
    for hostile in ("1=1; DROP TABLE runs", "run_id IN (SELECT 1 FROM (COPY runs TO 'x.csv'))", "nope >",
                    "run_id IN (SELECT * FROM read_csv('x.csv'))"):
        assert cli.main(["ls", "--where", hostile, "--results", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --where: ") and len(err.strip().splitlines()) == 1
    # a condition only: pasted after WHERE, these ran as the end of the statement
    for clause, trailing in (("LIMIT", "initial_bias < 0 LIMIT 1"), ("ORDER", "initial_bias < 0 ORDER BY 1"),
                             ("UNION", "initial_bias < 0 UNION SELECT 'x'")):
        assert cli.main(["ls", "--where", trailing, "--results", str(tmp_path)]) == 2
        # a new user's ORDER BY read DuckDB's parser error alone
        assert capsys.readouterr().err == (f'error: --where: Parser Error: syntax error at or near "{clause}" (line 1) '
                                           "(a condition is one expression over the runs view, as after WHERE: no "
                                           "ORDER BY, LIMIT, UNION or second statement)\n")
    after = {path: path.read_bytes() for path in (tmp_path / "runs").rglob("*") if path.is_file()}
    assert after == before and not Path("x.csv").exists()


@pytest.mark.slow
def test_ls_where_on_a_key_held_as_json_text_says_how_to_compare_it(tmp_path, capsys):
    # A new user's grid over batch_size [32, "full"] made the key JSON text for the whole root: 32 failed
    # to convert '"full"', and 'full' matched nothing, unexplained
    from bench.make_results import write_run
    from trainer import cli

    for batch_size in (32, "full"):
        write_run(tmp_path, "b", {"batch_size": batch_size, "epochs": 20}, cohort="c", logged=5)
    hint = ("batch_size is JSON text in this root's runs view (its values are of several kinds, or lists): compare "
            "it with its values as text, such as '\"full\"' or '32'")
    assert cli.main(["ls", "--results", str(tmp_path), "--where", "batch_size = 32"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --where: Conversion Error") and err.strip().endswith(f"({hint})")
    assert cli.main(["ls", "--results", str(tmp_path), "--where", "batch_size = 'full'"]) == 0
    assert capsys.readouterr().err == f"note: {hint}\n"
    assert cli.main(["ls", "--results", str(tmp_path), "--where", "batch_size = '\"full\"'"]) == 0
    captured = capsys.readouterr()
    assert "--where matched 1 of 2 runs" in captured.out and not captured.err


def test_ls_where_blank_is_no_condition_and_none_closes_the_parenthesis_around_it(tmp_path, capsys):
    # "  " gave DuckDB's syntax error at "WHERE" of the statement around it, "" listed every run: both
    # list every run now, as an empty --results or a cleared condition on the Runs page is none. A ')'
    # the condition did not open would end the parentheses put around it, and what follows would run.
    from tests.conftest import write_cohort
    from trainer import cli

    write_cohort(tmp_path)
    assert cli.main(["ls", "--results", str(tmp_path)]) == 0
    every_run = capsys.readouterr().out
    for blank in ("", "  ", "\n\t"):
        assert cli.main(["ls", "--where", blank, "--results", str(tmp_path)]) == 0
        assert capsys.readouterr().out == every_run
    assert cli.main(["ls", "--where", "initial_bias < 0) LIMIT (1", "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith('error: --where: Parser Error: syntax error at or near ")" (line 1) (')


def test_ls_of_an_empty_root_names_a_config_that_exists(tmp_path, capsys, monkeypatch):
    from trainer import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["ls", "--results", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["run_id", "status", "epochs", "test_acc", "flags", "name"]
    config = out[2].split("trainer run ")[1].split()[0]
    assert Path(config).is_absolute() and Path(config).is_file()


def test_ls_into_a_reader_that_left_exits_0_without_a_traceback(tmp_path, capsys, monkeypatch):
    # `trainer ls | head -1`: head exits after one line, and the next write raises BrokenPipeError,
    # which once ended `trainer ls` with a traceback.
    import os
    import sys

    from tests.conftest import write_cohort
    from trainer import cli

    write_cohort(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)                                  # the reader has left
    with os.fdopen(write_end, "w", buffering=1) as left:
        monkeypatch.setattr(sys, "stdout", left)
        assert cli.main(["ls", "--results", str(tmp_path)]) == 0
        left.write("a line the reader never sees\n")    # stdout now goes nowhere: no second failure
    assert capsys.readouterr().err == ""


def test_a_run_whose_reader_left_exits_1_saying_its_output_is_lost_not_that_it_stopped(capsys, monkeypatch):
    # `trainer run ... | head -1` with every run ended: only the next run line failed.
    import os
    import sys

    from trainer import cli

    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w", buffering=1) as left:
        monkeypatch.setattr(sys, "stdout", left)
        assert cli._reader_left("run") == 1
        left.write("a line the reader never sees\n")
    err = capsys.readouterr().err
    assert "reader left" in err and "output is lost" in err and "trainer ls" in err
    assert "stopped" not in err and "Traceback" not in err


@pytest.mark.parametrize("verb", [["ls"], ["compact"], ["report", "c", "--output", "out"]])
def test_a_results_root_that_is_a_file_is_bad_input(tmp_path, capsys, monkeypatch, verb):
    # A mistyped --results naming a file once listed "no runs yet" and compacted nothing, exit 0.
    from trainer import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    assert cli.main([*verb, "--results", str(tmp_path / "notes.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: results root '{tmp_path / 'notes.txt'}' (--results) is not a folder; ")
    assert "--results DIR or $IB_RESULTS" in err and len(err.splitlines()) == 1
    assert (tmp_path / "notes.txt").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("verb", [["ls"], ["compact"]])
def test_a_runs_folder_given_as_the_root_names_its_parent(tmp_path, capsys, verb):
    # `--results ROOT/runs` listed "no runs yet", exit 0: the runs are one folder down from a root
    from trainer import cli

    runs = tmp_path / "results" / "runs"
    (runs / "basic-1a2b3c4d-s0").mkdir(parents=True)
    (runs / "basic-1a2b3c4d-s0" / "run.json").write_text("{}")
    assert cli.main([*verb, "--results", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: results root '{runs}' (--results) holds run folders itself: it is a root's runs/ "
                   f"folder; give the folder that holds it (--results '{tmp_path / 'results'}')\n")
    assert sorted(p.name for p in runs.iterdir()) == ["basic-1a2b3c4d-s0"]        # nothing written
    assert cli.main([*verb, "--results", str(tmp_path / "results")]) in (0, 1)     # its parent is read


@pytest.mark.parametrize("verb", [["ls"], ["compact"], ["sweep", "c.json"], ["report", "c", "--output", "out"]])
def test_a_path_too_long_for_the_system_is_one_line_not_a_traceback(tmp_path, capsys, verb, monkeypatch):
    # An attacker's: a 300-character --results ended in ENAMETOOLONG's traceback
    from trainer import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.json").write_text('{"epochs": 1}')
    assert cli.main([*verb, "--results", str(tmp_path / ("z" * 300))]) == 2
    err = capsys.readouterr().err
    long = str(tmp_path / ("z" * 300))
    assert err.startswith("error: a path is too long for this system's files (")
    assert f"({len(long):,} characters)" in err
    assert len(err.splitlines()) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


@pytest.mark.parametrize("verb", [["sweep"], ["run"]])
def test_a_runs_folder_given_as_the_root_is_not_written_into(tmp_path, capsys, verb):
    # An attacker's: `trainer sweep/run --results ROOT/runs` wrote ROOT/runs/runs/<id>, where no reader looks
    import json

    from trainer import cli

    runs = tmp_path / "results" / "runs"
    (runs / "basic-1a2b3c4d-s0").mkdir(parents=True)
    (runs / "basic-1a2b3c4d-s0" / "run.json").write_text("{}")
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"name": "c", "epochs": 1, "architecture": [4], "log_schedule": {"every": 1}}))
    assert cli.main([*verb, str(config), "--results", str(runs)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"error: cannot write results under '{runs}': it holds run folders itself, so it is a "
                            "root's runs/ folder; give the folder that holds it "
                            f"(--results '{tmp_path / 'results'}')\n")
    assert "to do" not in captured.out                                         # not planned as if empty
    assert sorted(p.name for p in runs.iterdir()) == ["basic-1a2b3c4d-s0"]    # nothing written
    # nor a run's own folder (it wrote a runs/ folder inside that run)
    run = runs / "basic-1a2b3c4d-s0"
    assert cli.main([*verb, str(config), "--results", str(run)]) == 2
    assert capsys.readouterr().err == (f"error: cannot write results under '{run}': it is a run's folder (it holds "
                                       f"run.json); give the results root that holds it (--results "
                                       f"'{tmp_path / 'results'}')\n")
    assert sorted(p.name for p in run.iterdir()) == ["run.json"]
    # nor reached through ".." or a link (an attacker's: `trainer run` wrote runs/ inside the run)
    (tmp_path / "link").symlink_to(run)
    for path in (run / ".." / run.name, tmp_path / "link"):
        assert cli.main([*verb, str(config), "--results", str(path)]) == 2
        assert f"it is a run's folder (it holds run.json); give the results root that holds it (--results " \
               f"'{(tmp_path / 'results').resolve()}')" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["run.json"]


def test_a_root_beside_a_folder_it_may_not_search_is_read_as_before(tmp_path, capsys, monkeypatch):
    # /tmp, or a mount with lost+found: looking for run folders in it must not end in a traceback
    # (as root no mode stops the look, so the refusal is the one Python raises for another user)
    from trainer import cli

    (tmp_path / "private").mkdir()
    is_file = Path.is_file

    def refused(path: Path) -> bool:
        if path.parent.name == "private":
            raise PermissionError(13, "Permission denied", str(path))
        return is_file(path)

    monkeypatch.setattr(Path, "is_file", refused)
    assert cli.main(["ls", "--results", str(tmp_path)]) == 0
    assert "no runs yet" in capsys.readouterr().out
    # a root this user may not search at all (mode 600): one line, not a traceback
    is_dir = Path.is_dir

    def unsearchable(path: Path) -> bool:
        if path.parent == tmp_path / "private":
            raise PermissionError(13, "Permission denied", str(path))
        return is_dir(path)

    monkeypatch.setattr(Path, "is_dir", unsearchable)
    assert cli.main(["ls", "--results", str(tmp_path / "private")]) == 2
    assert capsys.readouterr().err == f"error: results root '{tmp_path / 'private'}' (--results) cannot be read: " \
                                      "Permission denied\n"


def run_folders(root: Path) -> list[Path]:
    """The run folders of `root`."""
    return [path for path in (root / "runs").iterdir() if path.is_dir()]


def test_ls_names_runs_of_one_name_by_the_config_keys_they_differ_in():
    """`trainer run basic.json --set ...` names every run "basic": the name column adds the keys in
    which runs of that name differ (the seed left out), and leaves a name alone whose runs differ
    only in seed or that no other run shares."""
    from trainer.listing import table

    estimators = [{"name": "binning", "params": {"bin_size": 0.07}}, {"name": "kde_upper"}]

    def record(run_id: str, name: str, **config) -> RunRecord:
        return RunRecord(**{**BASE, "run_id": run_id}, name=name, config={"name": name, "epochs": 300, **config})

    records = [record("a1", "basic", seed=0, activation_fn="tanh", estimators=estimators),
               record("a2", "basic", seed=1, activation_fn="relu", initial_bias=0.2, estimators=estimators),
               record("a3", "basic", seed=2, activation_fn="relu", estimators=estimators[:1]),
               record("b1", "cohort[x=1]", seed=0, activation_fn="tanh"),
               record("b2", "cohort[x=1]", seed=1, activation_fn="tanh"),
               record("c1", "alone", seed=5, activation_fn="relu")]
    names = [line.split(None, 5)[5] for line in table(records).splitlines()[1:-1]]
    assert names == [
        "basic (activation_fn=tanh, estimators=binning+kde_upper, initial_bias=(missing))",
        "basic (activation_fn=relu, estimators=binning+kde_upper, initial_bias=0.2)",
        "basic (activation_fn=relu, estimators=binning, initial_bias=(missing))",
        "cohort[x=1]", "cohort[x=1]", "alone"]
    # runs of one name that differ only in an estimator's params: by name alone both read
    # "estimators=binning" (a sceptic's); their values are written whole, as the explorer titles them
    bins = [[{"name": "binning", "params": {"bin_size": size}}] for size in (0.07, 0.1)]
    names = [line.split(None, 5)[5] for line in table([record("d1", "estpar2", seed=0, estimators=bins[0]),
                                                       record("d2", "estpar2", seed=0, estimators=bins[1])]
                                                      ).splitlines()[1:-1]]
    assert names == ['estpar2 (estimators=[{"name": "binning", "params": {"bin_size": 0.07}}])',
                     'estpar2 (estimators=[{"name": "binning", "params": {"bin_size": 0.1}}])']


def test_ls_cuts_a_name_past_its_limit_and_says_how_much_is_left():
    """A 500,000-character name, or 20,000 keys that differ, printed whole (3.2 MB for one root)."""
    from trainer.listing import MAX_NAME_CHARS, table

    records = [RunRecord(**{**BASE, "run_id": "long"}, name="n" * 500_000),
               RunRecord(**{**BASE, "run_id": "k1"}, name="keys", config={f"k{i}": i for i in range(20_000)}),
               RunRecord(**{**BASE, "run_id": "k2"}, name="keys", config={})]
    lines = table(records).splitlines()[1:-1]
    assert all(len(line) < MAX_NAME_CHARS + 100 for line in lines)
    assert lines[2].endswith("n" * MAX_NAME_CHARS + f"... ({500_000 - MAX_NAME_CHARS:,} more)")
    assert lines[0].split(None, 5)[5].startswith("keys (k0=0, k1=1, k10=10, ")


def test_ls_names_the_cohorts_report_takes_after_the_table():
    """The table shows each run's config name, never its cohort, which `trainer report` asks for: the
    listed runs' cohorts follow the table, each counted over the whole root (what the report reads,
    whatever --where listed), the first 20 and how many more, each as a shell takes it, escaped and cut."""
    from trainer.listing import MAX_NAME_CHARS, cohorts_line

    records = [RunRecord(**{**BASE, "run_id": f"q{i}"}, name="basic", cohort="quick start, v2") for i in range(3)]
    records += [RunRecord(**{**BASE, "run_id": "solo"}, name="basic", cohort="z\x1b[31mred"),
                RunRecord(**{**BASE, "run_id": "none"}, name="basic")]
    assert cohorts_line(records, records) == (r"cohorts (trainer report COHORT): 'quick start, v2' (3 runs), "
                                              r"'z\x1b[31mred' (1 run)")
    assert cohorts_line(records[:1], records) == "cohorts (trainer report COHORT): 'quick start, v2' (3 runs)"
    assert cohorts_line(records[-1:], records) is None                     # no cohort: no line
    many = [RunRecord(**{**BASE, "run_id": f"c{i}"}, cohort=f"c{i:02d}" + "x" * 300) for i in range(25)]
    line = cohorts_line(many, many)
    assert line.endswith(" and 5 more") and line.count("(1 run)") == 20 and "c19" in line and "c20" not in line
    assert f"{'x' * (MAX_NAME_CHARS - 3)}... (103 more) (1 run)" in line
    like_an_option = [RunRecord(**{**BASE, "run_id": "o"}, cohort="--output=/tmp/x")]
    assert cohorts_line(like_an_option, like_an_option) == (
        "cohorts (trainer report --output DIR -- COHORT): --output=/tmp/x (1 run)")


@pytest.mark.slow
def test_ls_under_where_counts_each_cohort_over_the_whole_root(tmp_path, capsys):
    from trainer import cli
    from trainer.listing import LEGEND

    for seed in range(2):
        write_run(tmp_path, "q", {"epochs": 4, "initial_bias": float(seed)}, seed=seed, cohort="quickstart", logged=2)
    assert cli.main(["ls", "--results", str(tmp_path), "--where", "initial_bias = 0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "--where matched 1 of 2 runs" and out[-2] == LEGEND
    assert out[-1] == "cohorts (trainer report COHORT): quickstart (2 runs)"
