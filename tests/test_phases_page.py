"""The Phases page under AppTest: the research question ("which initial biases give dead relu
networks, and does the last hidden layer compress for the live ones?") answered on the page, its
numbers checked against the `phase_stats` view through the SQL sandbox (what `trainer sql` runs),
the chart's colours against the other pages', the page state in the URL, the report button."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from bench.make_results import write_run
from conftest import APP, BIASES, EPOCHS, write_ksg_cohort, write_rate_activation_grid
from explorer import cohort_tables, report, ui
from explorer.results import ResultStore
from ibstore import layout, stats
from trainer.atomic import write_table

LAST_HIDDEN = 4                      # write_run's layers: dense_0 ... dense_4, output (5)

pytestmark = pytest.mark.slow  # every test opens the app under AppTest


def open_phases(monkeypatch, root: Path, **params) -> AppTest:
    """The app opened at a link to the Phases page (`params` its query): its first script run draws
    that page, as a browser opening the link does, not the Runs page first."""
    monkeypatch.setenv("IB_RESULTS", str(root))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(params)
    at.switch_page("app_pages/phases.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.title[0].value == "Phases"       # not the default page, which an unknown page falls back to
    return at


def link_warnings(at) -> list[str]:
    """The warnings about the link's parameters (the page's notes, a layer at its ceiling, are others)."""
    return [w.value for w in at.warning if w.icon == ":material/link_off:"]


def unescaped(text: object) -> object:
    """A cell as the browser shows it: st.table renders Markdown, the page escapes (ui.plain)."""
    return re.sub(r"\\(.)", r"\1", text).replace("\u200b", "") if isinstance(text, str) else text


# 2 and 2 seeds: the smallest two-sided p is 2 / C(4, 2) = 1/3; two other live groups, six layers
NONE_DIFFERS = ("No group is shown to differ from initial_bias=0 at q (over groups and layers) < 0.05, in any "
                "layer or quantity tested (the smallest p these seeds allow is 0.333, and each quantity's q adjusts "
                "up to 12 tests together: no q can reach 0.05 with these seeds) (5 more without a test, – in the "
                "table: a group's mean I(X;T) peaks at its "
                "last logged epoch (compression_over_floor_bits) (5)).")


def table(at, heading: str):
    """The st.table under the subheader that starts with `heading`, as shown."""
    headings = [unescaped(h.value) for h in at.subheader]
    index = next(i for i, h in enumerate(headings) if h.startswith(heading))
    return at.table[index].value.map(unescaped)


def assert_estimate_cell(cell: str, mean: float, low: float, high: float, n: int) -> None:
    """A cell as the page writes it holds the SQL view's numbers: "mean [low, high]", or "mean (n = 1: no
    interval)", each number the view's to within half its printed last digit, at least 2 decimals, and
    none that is nonzero printed as 0."""
    if n == 0:
        assert cell == "–"
        return
    printed = re.findall(r"-?\d+\.\d+", cell)
    assert cell == (f"{printed[0]} (n = 1: no interval)" if n == 1 else f"{printed[0]} [{printed[1]}, {printed[2]}]")
    for text, value in zip(printed, (mean, low, high)):
        decimals = len(text.split(".")[1])
        assert decimals >= 2 and abs(float(text) - value) <= 0.5 * 10.0 ** -decimals * (1 + 1e-9), (cell, value)
        assert value == 0 or float(text) != 0 or decimals == 6, (cell, value)


def sql_glance(root: Path, quantity: str) -> dict[str, dict]:
    """The `phase_stats` rows of the last hidden layer for `quantity`, by group title, through the
    sandbox (the `trainer sql` path)."""
    store = ResultStore(root)
    rows = store.sql(f"SELECT * FROM phase_stats WHERE layer = {LAST_HIDDEN} AND split = 'train' "
                     f"AND quantity = '{quantity}'")
    titles = store.labels(list(store.runs()["run_id"]), by_group=True)
    return {titles[r["group_id"]]: r for r in rows.to_dict("records")}


def chart_spec(at) -> dict:
    return json.loads(at.get("vega_lite_chart")[0].proto.spec)


def colour_domain(spec: dict) -> list[str]:
    return spec["spec"]["layer"][0]["encoding"]["color"]["scale"]["domain"]


def check_against_sql(at, root: Path) -> None:
    glance = table(at, "Does 4 · dense_4 (last hidden) compress?").set_index("seed group")
    compression, excess = sql_glance(root, "compression_bits"), sql_glance(root, "compression_over_floor_bits")
    assert len(glance) == len(compression) > 1
    for title, row in glance.iterrows():
        label = title.split(" [")[0]                   # the title's badge is the page's, not the view's
        want = compression[label]
        assert row["n"] == want["n"]
        assert_estimate_cell(row["compression (bits)"], want["mean"], want["ci_low"], want["ci_high"], want["n"])
        p = excess[label]["p_value"]
        assert row["p (compression > floor)"] == ("–" if p is None or math.isnan(p) else f"{p:.3g}")
        verdict = {True: "yes", False: cohort_tables.NOT_SHOWN_CELL}.get(excess[label]["compresses"], "–")
        if verdict == cohort_tables.NOT_SHOWN_CELL and excess[label]["note"] == stats.STILL_RISING:
            verdict = cohort_tables.STILL_RISING_CELL          # the view's note: its mean peaks at its last epoch
        assert row["compresses"] == verdict
        dead = int(want["n_dead"])
        assert row["left out"] == (f"{dead} dead" if dead else "")


def test_the_research_question_is_answered_on_the_page(monkeypatch, cohort_root):
    at = open_phases(monkeypatch, cohort_root)
    check_against_sql(at, cohort_root)
    glance = table(at, "Does 4 · dense_4").set_index("seed group")
    # relu with initial bias -1: both seeds dead (the trainer's flag), left out, named in the title
    assert glance.loc["initial_bias=-1 [dead: 2 of 2 seeds]", "left out"] == "2 dead"
    assert glance.loc["initial_bias=-1 [dead: 2 of 2 seeds]", "n"] == 0
    assert all(glance.loc[f"initial_bias={b:g}", "n"] == 2 for b in BIASES if b >= 0)
    # the legend counts the dead seeds left out; every group keeps its entry
    domain = colour_domain(chart_spec(at))
    assert domain == ["initial_bias=-1 (0 seeds, 2 dead left out)", "initial_bias=0 (2 seeds)",
                      "initial_bias=0.2 (2 seeds)", "initial_bias=2 (2 seeds)"]
    # which groups differ from the reference: two seeds a side cannot reach p < 0.05, so none, said so
    assert NONE_DIFFERS in [unescaped(m.value) for m in at.markdown]
    # which groups compress: none can be tested with two seeds, said in one sentence above the table
    assert ("No group can be tested: initial_bias=-1 [dead: 2 of 2 seeds]; initial_bias=0; initial_bias=0.2; "
            "initial_bias=2 (fewer than 5 seeds kept (not dead, diverged or unfinished) with a finite I(X;T) under "
            "this estimator; left out names any dropped, and seeds not measured with it are not in the group here: "
            "trainer estimate measures them).") in [
        unescaped(m.value) for m in at.markdown]


def test_group_colours_are_the_other_pages(monkeypatch, cohort_root):
    """The same groups in the same order give the same colours (charts.category_color)."""
    at = open_phases(monkeypatch, cohort_root)
    store = ResultStore(cohort_root)
    selection = list(store.runs()["run_id"])[:ui.MAX_DEFAULT_RUNS]
    pages = ui.group_domain(store, store.runs(), selection)
    mine = colour_domain(chart_spec(at))
    assert len(mine) == len(pages)
    assert [m.split(" (")[0] for m in mine] == [p.split(" [")[0] for p in pages]
    at.switch_page("app_pages/gradients.py").run()
    gradients = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert gradients["spec"]["layer"][0]["encoding"]["color"]["scale"]["domain"] == pages


def test_layers_band_axis_and_reference_follow_the_widgets(monkeypatch, cohort_root):
    at = open_phases(monkeypatch, cohort_root)
    assert chart_spec(at)["spec"]["layer"][1]["encoding"]["x"]["scale"]["type"] == "symlog"
    assert len(chart_spec(at)["facet"]["sort"]) == 12          # 6 layers x I(X;T), I(Y;T)
    at.multiselect(key="layers").set_value([LAST_HIDDEN]).run()
    at.toggle(key="log_epochs").set_value(False).run()
    at.radio(key="band").set_value("min-max").run()
    # the reference is one of the groups with live seeds: initial_bias=-1's are all dead
    assert len(at.selectbox(key="reference").options) == len(BIASES) - 1
    at.selectbox(key="reference").select_index(2).run()
    spec = chart_spec(at)
    assert spec["facet"]["sort"] == ["4 · dense_4: I(X;T)", "4 · dense_4: I(Y;T)"]
    assert "scale" not in spec["spec"]["layer"][1]["encoding"]["x"]
    compared = table(at, "Compared with")
    assert set(compared["b"]) == {"initial_bias=2"} and set(compared["layer"]) == {"4 · dense_4"}
    assert [c for c in at.caption if "band: min-max" in c.value.replace("\\", "")]     # the chart's caption


def test_a_link_names_its_reference_group_by_id_whatever_its_title_shows(monkeypatch, cohort_root):
    # the link held the group's title, which carries its badges: "initial_bias=2 [1 of 2 seeds selected]"
    # named no group once the selection or a seed changed, and the page silently compared with another
    store = ResultStore(cohort_root)
    runs = store.runs()
    configs = store.configs(list(runs["run_id"]))
    bias_2 = runs[runs["run_id"].map(lambda r: configs[r]["initial_bias"]) == 2.0]
    group = bias_2["group_id"].iloc[0]
    at = open_phases(monkeypatch, cohort_root, reference=group)
    assert at.selectbox(key="reference").value == group and not link_warnings(at)
    assert set(table(at, "Compared with")["b"]) == {"initial_bias=2"}
    # one seed of the group left out of the selection: its title changes, the link's id still names it
    others = sorted(set(runs["run_id"]) - {bias_2["run_id"].iloc[0]})
    at = open_phases(monkeypatch, cohort_root, reference=group, runs=others)
    assert at.selectbox(key="reference").value == group
    assert "1 of 2 seeds selected" in unescaped(at.selectbox(key="reference").format_func(group))
    # choosing in the page writes the id; the default leaves the URL
    at.selectbox(key="reference").set_value(at.selectbox(key="reference").options[0]).run()
    assert "reference" not in at.query_params
    at = open_phases(monkeypatch, cohort_root, reference="no-such-group")
    assert [unescaped(w) for w in link_warnings(at)] == [
        "The link's reference=no-such-group is dropped: no seed group of that id among the selected runs."]
    assert "reference" not in at.query_params and set(table(at, "Compared with")["b"]) == {"initial_bias=0"}


def test_a_link_names_layers_by_number(monkeypatch, cohort_root):
    # the link held "4 · dense_4 (last hidden)", a label the selection decides; ?layers=4 showed every layer
    at = open_phases(monkeypatch, cohort_root, layers=str(LAST_HIDDEN))
    assert at.multiselect(key="layers").value == [LAST_HIDDEN] and not link_warnings(at)
    at.multiselect(key="layers").set_value([0, LAST_HIDDEN]).run()
    assert at.query_params["layers"] in (["0", str(LAST_HIDDEN)], f"0&layers={LAST_HIDDEN}")
    at = open_phases(monkeypatch, cohort_root, layers=["9", str(LAST_HIDDEN)])
    assert at.multiselect(key="layers").value == [LAST_HIDDEN]
    assert [unescaped(w.value) for w in at.warning] == ["The link's layers=9 is dropped: no layer of that id here."]
    at = open_phases(monkeypatch, cohort_root, layers="")
    assert at.multiselect(key="layers").value == [] and "No layer chosen" in at.info[0].value


def test_the_reference_defaults_to_a_group_with_live_seeds(monkeypatch, cohort_root):
    at = open_phases(monkeypatch, cohort_root)
    compared = table(at, "Compared with")
    assert set(compared["b"]) == {"initial_bias=0"}
    row = compared[(compared["a"] == "initial_bias=2") & (compared["layer"] == "4 · dense_4")
                   & (compared["quantity"] == "final_i_xt")].iloc[0]
    store = ResultStore(cohort_root)
    phases = store.phases()
    phases = phases[(phases["layer"] == LAST_HIDDEN) & (phases["split"] == "train")
                    & (phases["estimator"] == phases["estimator"].iloc[0])]
    config = {r: store.configs([r])[r]["initial_bias"] for r in phases["run_id"]}
    by_bias = phases.assign(bias=phases["run_id"].map(config)).groupby("bias")["final_i_xt"].mean()
    assert row["a - b"] == f"{by_bias[2.0] - by_bias[0.0]:.3g}"     # difference of the seeds' means
    assert row["n a, b"] == "2, 2"
    # two seeds each: no arrangement gives p < 0.05, so the test rejects no shift
    assert row["95 % CI"] == "unbounded" and row["p"].endswith("(too few seeds for p < 0.05)")


def test_the_report_button_writes_the_report_or_refuses_in_one_line(monkeypatch, cohort_root, tmp_path):
    reports = tmp_path / "reports"
    monkeypatch.setenv(report.REPORTS_ENV, str(reports))
    at = open_phases(monkeypatch, cohort_root)
    # the cohort's own folder by default: one for all had a visitor's report of another cohort replace it
    assert at.text_input(key="report_folder").value == "initial_bias"
    at.switch_page("app_pages/config.py").run()
    at.switch_page("app_pages/phases.py").run()      # back: the box holds it again, not ""
    assert at.text_input(key="report_folder").value == "initial_bias"
    # An attacker's: any path the server's user may write was taken (/root/.ssh), and the refusals told
    # what exists elsewhere ("/etc holds '.java'", "/etc/passwd is a file"). Only names inside reports/.
    (tmp_path / "elsewhere").mkdir()
    (reports / "away").parent.mkdir()
    (reports / "away").symlink_to(tmp_path / "elsewhere")
    for name, said in (("/etc", "give one folder name of at most 100 letters"),
                       ("../elsewhere", "give one folder name"),
                       ("~root", "give one folder name"), (str(cohort_root / "reports"), "give one folder name"),
                       ("", "give one folder name"), ("initial_bias/x", "give one folder name"),
                       ("away", "is a link out of")):
        at.text_input(key="report_folder").set_value(name).run()
        at.button[0].click().run()
        assert len(at.error) == 1 and said in at.error[0].value and "\n" not in at.error[0].value, (name, at.error)
        assert "holds" not in at.error[0].value and "is a file" not in at.error[0].value
    assert list((tmp_path / "elsewhere").iterdir()) == [] and sorted(reports.iterdir()) == [reports / "away"]
    at.text_input(key="report_folder").set_value("report").run()
    at.button[0].click().run()
    assert not at.error and "Report written" in at.success[0].value
    text = (reports / "report" / "report.md").read_text()
    assert text.startswith("# Report: initial_bias") and "4 · dense_4" in text
    assert "### Seed groups compared with initial_bias=0" in text and NONE_DIFFERS in text
    # the page's reference group is the report's, in the command shown and in the report written
    groups = at.selectbox(key="reference").options
    at.selectbox(key="reference").set_value(groups[-1]).run()
    reference = at.selectbox(key="reference").value
    command = next(code.value for code in at.code if code.value.startswith("trainer report"))
    assert f"--reference={reference} --output FOLDER -- " in command
    at.button[0].click().run()
    assert not at.error and "Report written" in at.success[0].value
    text = (reports / "report" / "report.md").read_text()
    label = groups[-1].split(" [")[0]
    assert label != "initial_bias=0" and f"### Seed groups compared with {label}" in text


def test_the_report_command_reads_a_cohort_named_like_an_option_as_a_cohort(monkeypatch, tmp_path):
    # an attacker's: a cohort named "--output=/elsewhere" was shown as "trainer report --output=/elsewhere
    # ...", which argparse read as an option ("COHORT required"), and two such names could move --results
    import shlex

    from trainer.cli import build_parser

    ids = [write_run(tmp_path, "odd", {"initial_bias": float(seed), "epochs": 20 + index}, cohort=cohort, seed=seed,
                     logged=8)
           for index, cohort in enumerate(("--output=/elsewhere", "--results=/other")) for seed in range(2)]
    at = open_phases(monkeypatch, tmp_path, runs=ids)
    command = next(code.value for code in at.code if code.value.startswith("trainer report"))
    parsed = build_parser().parse_args(shlex.split(command)[1:])
    assert sorted(parsed.cohorts) == ["--output=/elsewhere", "--results=/other"]
    assert parsed.output == "FOLDER" and parsed.results == str(tmp_path.resolve())


def test_runs_of_no_cohort_get_no_report_command(monkeypatch, tmp_path):
    # `trainer report` takes cohort names: "trainer report --split train ..." was shown, which argparse refuses
    for seed in range(2):
        write_run(tmp_path, "loose", {"epochs": 20}, seed=seed, logged=8)
    at = open_phases(monkeypatch, tmp_path)
    assert not [code for code in at.code if code.value.startswith("trainer report")]
    assert not [button for button in at.button if button.label == "Write report"]
    assert any("No selected run belongs to a cohort" in caption.value for caption in at.caption)


def test_without_a_live_group_the_report_command_names_no_reference(monkeypatch, tmp_path):
    # every run diverged: the page still offers a reference (its groups), but the report, which
    # compares live groups only, gets none, so its refusal is about the runs, not the reference
    from ibstore.record import Status
    for bias in (0.0, 1.0):
        write_run(tmp_path, "gone", {"initial_bias": bias, "epochs": 20}, cohort="gone", status=Status.DIVERGED,
                  logged=8)
    at = open_phases(monkeypatch, tmp_path)
    assert at.selectbox(key="reference").value
    command = next(code.value for code in at.code if code.value.startswith("trainer report"))
    assert "--reference" not in command
    assert command.startswith(f"trainer report --results {tmp_path.resolve()} --split train")   # not the default root
    assert command.endswith("--output FOLDER -- gone")
    monkeypatch.setenv(report.REPORTS_ENV, str(tmp_path.parent / "reports"))
    at.text_input(key="report_folder").set_value("report-gone").run()
    at.button[0].click().run()
    assert len(at.error) == 1 and at.error[0].value == "Report not written: no completed run in cohort gone"


def test_a_reference_group_outside_the_reports_cohorts_is_not_passed_to_it(monkeypatch, tmp_path):
    # a selection of a cohort and an ad hoc run beside it: the page's reference, the ad hoc run's
    # group, was passed to the report, which refused it ("--reference ... is no seed group of the report")
    ids = [write_run(tmp_path, "bias", {"initial_bias": bias, "epochs": 20}, cohort="bias", seed=seed, logged=8)
           for bias in (0.0, 1.0) for seed in range(2)]
    loose = write_run(tmp_path, "basic", {"initial_bias": 0.2, "epochs": 20}, logged=8)
    at = open_phases(monkeypatch, tmp_path, runs=[*ids, loose])
    options = at.selectbox(key="reference").options
    ad_hoc = next(option for option in options if "0.2" in option)
    at.selectbox(key="reference").set_value(ad_hoc).run()
    command = next(code.value for code in at.code if code.value.startswith("trainer report"))
    assert command.startswith("trainer report --results ") and command.endswith(" -- bias") and \
        "--reference" not in command, command
    monkeypatch.setenv(report.REPORTS_ENV, str(tmp_path.parent / "reports"))
    at.text_input(key="report_folder").set_value("report-mixed").run()
    at.button[0].click().run()
    assert not at.error and "Report written" in at.success[0].value
    text = (tmp_path.parent / "reports" / "report-mixed" / "report.md").read_text()
    assert "### Seed groups compared with initial_bias=0" in text and loose not in text


def test_an_estimator_without_i_xt_says_why_instead_of_empty_tables(monkeypatch, tmp_path):
    write_ksg_cohort(tmp_path)
    at = open_phases(monkeypatch, tmp_path)
    ksg = next(option for option in at.selectbox(key="estimator").options if option.startswith("ksg "))
    at.selectbox(key="estimator").set_value(ksg).run()
    assert not at.exception
    assert len(at.info) == 1 and at.info[0].value.startswith("ksg records no I\\(X;T\\)")
    assert not at.table and "Per seed group and layer" not in [h.value for h in at.subheader]
    panels = chart_spec(at)["facet"]["sort"]
    assert panels and all(panel.endswith("I(Y;T)") for panel in panels)


def test_nothing_chosen_says_so(monkeypatch, cohort_root):
    at = open_phases(monkeypatch, cohort_root)
    at.multiselect(key="layers").set_value([]).run()
    assert "No layer chosen" in at.info[0].value and not at.get("vega_lite_chart")


@pytest.fixture(scope="module")
def fifty_seeds(tmp_path_factory) -> Path:
    """relu with initial bias -1 (dead), 0 and 0.5, 50 seeds each: the issue's 50-seed cohort."""
    root = tmp_path_factory.mktemp("fifty")
    for bias in (-1.0, 0.0, 0.5):
        for seed in range(50):
            write_run(root, "relu-bias", {"activation_fn": "relu", "initial_bias": bias, "epochs": EPOCHS},
                      seed=seed, cohort="fifty", logged=20)
    return root


def test_the_research_question_on_a_fifty_seed_cohort(monkeypatch, fifty_seeds):
    runs = list(ResultStore(fifty_seeds).runs()["run_id"])
    at = open_phases(monkeypatch, fifty_seeds, runs=runs)
    assert not [w for w in at.warning if "ceiling" not in w.value]     # 150 runs: read whole, no cap
    check_against_sql(at, fifty_seeds)
    glance = table(at, "Does 4 · dense_4").set_index("seed group")
    assert glance.loc["initial_bias=-1 [dead: 50 of 50 seeds]", "left out"] == "50 dead"
    assert list(glance["n"]) == [0, 50, 50]


def test_layers_whose_binning_ends_at_its_ceiling_are_named_on_the_page(monkeypatch, tmp_path):
    # Two tanh seeds whose first layer's train I(X;T) is log2 3277 (every input in a bin of its own) at
    # every logged epoch: the page names that layer; the others end below their ceiling.
    root = tmp_path / "results"
    for seed in (0, 1):
        run_id = write_run(root, "tanh", {"activation_fn": "tanh", "epochs": EPOCHS}, seed=seed, logged=10)
        path = layout.table_path(root, run_id, "mi")
        mi = pq.read_table(path)
        first = pc.and_(pc.equal(mi["layer"], 0), pc.equal(mi["split"], "train"))
        mi = mi.set_column(mi.schema.get_field_index("i_xt"), "i_xt", pc.if_else(first, math.log2(3277), mi["i_xt"]))
        write_table(path, mi, compacted_through=EPOCHS)
    at = open_phases(monkeypatch, root)
    (warning,) = [w.value for w in at.warning if "ceiling" in w.value]
    assert unescaped(warning).startswith("I(X;T) ends at its ceiling, H(X) (log2 n bits where no two inputs are alike), in every seed of ")
    assert "0 · dense_0." in unescaped(warning) and "1 · dense_1" not in unescaped(warning)
    compresses = table(at, "Per seed group and layer").set_index("layer")["compresses"]
    assert compresses["0 · dense_0"] == cohort_tables.AT_CEILING_CELL
    assert set(compresses.drop("0 · dense_0")) == {"–"}          # two seeds: no test can decide
    # each split's ceiling is its own inputs' entropy: the page says so where the splits' differ
    splits = json.loads((layout.run_dir(root, run_id) / "run.json").read_text())["splits"]
    train, test = (math.log2(splits[split]["inputs"]) for split in ("train", "test"))
    assert [unescaped(c.value) for c in at.caption if c.value.startswith("The ceiling")] == [
        f"The ceiling of I(X;T), H(X), is {train:.2f} bits on the train split ({splits['train']['inputs']:,} inputs), "
        f"against {test:.2f} bits on the test split ({splits['test']['inputs']:,} inputs): each split's is the "
        "entropy of its own inputs (log2 n where no two are alike), so a split of fewer inputs has a lower ceiling, "
        "and its I(X;T) and compression are on a scale of their own."]


def test_units_that_die_after_the_peak_are_named_on_the_page(monkeypatch, tmp_path):
    # Two tanh seeds; in seed 1 unit 0 of dense_3 is constant (min = max) on every split at its last
    # logged epoch: a unit that died after the group's peak. The page names that layer and seed count.
    root = tmp_path / "results"
    run_ids = [write_run(root, "tanh", {"activation_fn": "tanh", "epochs": EPOCHS}, seed=seed, logged=10)
               for seed in (0, 1)]
    path = layout.table_path(root, run_ids[1], "activation_stats")
    neurons = pq.read_table(path)
    dies = pc.and_(pc.and_(pc.equal(neurons["layer"], 3), pc.equal(neurons["neuron"], 0)),
                   pc.equal(neurons["epoch"], pc.max(neurons["epoch"])))
    neurons = neurons.set_column(neurons.schema.get_field_index("min"), "min",
                                 pc.if_else(dies, neurons["max"], neurons["min"]))
    write_table(path, neurons, compacted_through=EPOCHS)
    at = open_phases(monkeypatch, root)
    (warning,) = [unescaped(w.value) for w in at.warning if "Units died" in w.value]
    assert "3 · dense_3 (1 of 2 seeds)" in warning and "dense_2" not in warning and "dense_4" not in warning


def test_the_estimators_side_by_side_on_the_page_are_each_estimators_own_verdicts(monkeypatch, tmp_path):
    # Saxe et al.'s question on the page, not only in the report: every estimator recorded on the split,
    # each group's last hidden layer's verdict and compression over the floor as that estimator's own
    # table on the page says them
    root = tmp_path / "results"
    # listed 0.3 first: the columns follow the Estimator box's order, the configs' (a sceptic saw the
    # view's order on the page, the box's in the report)
    estimators = [{"name": "binning", "params": {"bin_size": 0.3}}, {"name": "binning", "params": {"bin_size": 0.07}}]
    for bias in (0.0, 1.0):
        for seed in range(5):
            write_run(root, "two", {"initial_bias": bias, "epochs": EPOCHS, "estimators": estimators}, seed=seed,
                      cohort="c", logged=10)
    names = ['binning {"bin_size": 0.3}', 'binning {"bin_size": 0.07}']
    own = {}
    for estimator in names:
        at = open_phases(monkeypatch, root, estimator=estimator)
        assert "Across estimators" not in [h.value for h in at.subheader]       # on demand
        glance = table(at, f"Does {LAST_HIDDEN} · dense_{LAST_HIDDEN}").set_index("seed group")
        own[estimator] = glance["compresses"] + ": " + glance["compression over floor (bits)"]
    at = open_phases(monkeypatch, root, across="true")
    assert list(at.selectbox(key="estimator").options) == names
    across = table(at, "Across estimators").set_index("seed group")
    assert list(across.columns) == names and list(across.index) == ["initial_bias=0", "initial_bias=1"]
    for estimator in names:
        assert across[estimator].to_dict() == own[estimator].to_dict()
    assert sum("Across the 2 estimators with I(X;T)" in unescaped(m.value) for m in at.markdown) == 1
    # a link's value that is no toggle's is named, not dropped unsaid
    at = open_phases(monkeypatch, root, across="perhaps")
    assert any("across=perhaps is dropped" in unescaped(w.value) for w in at.warning)
    # a reviewer's: binning beside ksg, which records no I(X;T), offered the toggle "under each of the 2
    # estimators" and then said there were fewer than two
    ksg = tmp_path / "ksg"
    write_ksg_cohort(ksg)
    assert not [t for t in open_phases(monkeypatch, ksg).toggle if t.key == "across"]
    # an attacker's: a link's across=true there was dropped unsaid, and stayed in the URL
    at = open_phases(monkeypatch, ksg, across="true")
    assert any("across=true is dropped: fewer than two estimators record I(X;T)" in unescaped(w.value)
               for w in at.warning) and "across" not in at.query_params
    at.run()                                                  # said once, not at every rerun
    assert not any("across" in unescaped(w.value) for w in at.warning)
    at = open_phases(monkeypatch, ksg, across="false")        # what no toggle shows anyway: nothing to say
    assert not any("across" in unescaped(w.value) for w in at.warning) and "across" not in at.query_params


def test_groups_along_initial_bias_get_the_trend_along_it(monkeypatch, cohort_root):
    # initial_bias -1 (dead, left out), 0, 0.2 and 2: three values kept, steps 0, 1, 2
    at = open_phases(monkeypatch, cohort_root)
    trend = table(at, "Trend along initial_bias")
    assert set(trend["layer"]) == {f"{layer} · {name}" for layer, name in
                                   enumerate(["dense_0", "dense_1", "dense_2", "dense_3", "dense_4", "output"])}
    row = trend[(trend["layer"] == "4 · dense_4") & (trend["quantity"] == "final_i_xt")].iloc[0]
    store = ResultStore(cohort_root)
    phases = store.sql(f"SELECT p.run_id, p.final_i_xt, c.value AS initial_bias FROM phases p JOIN config c "
                       f"USING (run_id) WHERE p.layer = {LAST_HIDDEN} AND p.split = 'train' AND c.key = 'initial_bias' "
                       "AND NOT p.dead_network")
    bias = phases["initial_bias"].astype(float)
    steps = bias.map({value: step for step, value in enumerate(sorted(set(bias)))})
    assert (row["values"], row["n"]) == (3, len(phases)) and len(phases) == 6
    assert row["slope per step"] == f"{np.polyfit(steps, phases['final_i_xt'], 1)[0]:.3g}"
    at.multiselect(key="layers").set_value([LAST_HIDDEN]).run()
    assert set(table(at, "Trend along initial_bias")["layer"]) == {"4 · dense_4"}


def test_a_stored_i_xt_no_estimate_gives_leaves_its_groups_untested_not_the_page_broken(monkeypatch, tmp_path):
    """A hand-made mi.parquet whose I(X;T) moves by 10^7 bits (no estimator gives more than log2 of
    the inputs): drop_test's guard against such drops (a NaN hung it, 1e300 failed with a zero-size
    error) broke the page. Its groups now have no test, and say why."""
    ids = [write_run(tmp_path, "h", {"activation_fn": "tanh", "epochs": EPOCHS}, seed=seed, logged=8)
           for seed in range(5)]
    path = layout.run_dir(tmp_path, ids[0]) / "mi.parquet"
    table = pq.read_table(path)
    pq.write_table(table.set_column(table.schema.get_field_index("i_xt"), "i_xt",
                                    pc.multiply(table["i_xt"], 1e7)), path)
    at = open_phases(monkeypatch, tmp_path)
    said = " ".join(unescaped(m.value) for m in at.markdown)
    assert "an I(X;T) moves by more than 1e+06 bits from its end" in said, said[:2000]


def test_the_last_hidden_comparisons_heading_names_the_group_every_row_is_compared_with(monkeypatch, tmp_path):
    # A reviewer's: in a grid the pairs' b need not be the reference, and the heading named the reference
    root = tmp_path / "root"
    write_rate_activation_grid(root, seeds=2)
    at = open_phases(monkeypatch, root)
    question = cohort_tables.LAST_HIDDEN_QUESTION
    headings = [unescaped(h.value) for h in at.subheader]
    assert question.format(cohort_tables.EACH_COMPARED) in headings
    last = table(at, question.format(cohort_tables.EACH_COMPARED))
    title = "activation_fn={}, learning_rate={}".format
    # the reference is the first group (relu, 0.001); the simple effects of each key at each level of the other
    assert set(zip(last["a"], last["b"])) == {(title("relu", 0.01), title("relu", 0.001)),
                                              (title("tanh", 0.001), title("relu", 0.001)),
                                              (title("tanh", 0.01), title("tanh", 0.001)),
                                              (title("tanh", 0.01), title("relu", 0.01))}
    assert len(last) == 4


def test_where_every_last_hidden_row_has_one_group_b_other_than_the_reference_the_heading_names_it(monkeypatch,
                                                                                                   tmp_path):
    # The reference five hidden layers deep, the other two groups four: its pair has no like last hidden
    # layer, and the one row left compares the learning rates at four layers; the heading named the reference
    root = tmp_path / "root"
    for architecture, rate in (([10, 7, 5, 4, 3], 0.001), ([10, 7, 5, 4], 0.001), ([10, 7, 5, 4], 0.01)):
        for seed in range(2):
            write_run(root, "d", {"architecture": architecture, "learning_rate": rate, "epochs": 20}, seed=seed,
                      cohort="depth", logged=6)
    store = ResultStore(root)
    runs = store.runs()
    configs = store.configs(list(runs["run_id"]))
    reference = runs.loc[[len(configs[r]["architecture"]) == 5 for r in runs["run_id"]], "group_id"].iloc[0]
    at = open_phases(monkeypatch, root, reference=reference)
    shallow = "architecture=[10, 7, 5, 4], learning_rate=0.001"
    heading = cohort_tables.LAST_HIDDEN_QUESTION.format(shallow)
    assert heading in [unescaped(h.value) for h in at.subheader], [unescaped(h.value) for h in at.subheader]
    assert list(table(at, heading)["b"]) == [shallow]
    # the per-layer table's pair of two depths is said to be compared layer by layer from the input
    said = " ".join(unescaped(m.value) for m in at.markdown)
    assert "Of two depths, compared layer by layer from the input" in said and "(4 and 5 hidden layers)" in said


def test_along_one_key_the_last_hidden_comparisons_heading_names_the_chosen_reference(monkeypatch, cohort_root):
    at = open_phases(monkeypatch, cohort_root)
    at.selectbox(key="reference").select_index(2).run()
    heading = cohort_tables.LAST_HIDDEN_QUESTION.format("initial_bias=2")
    assert heading in [unescaped(h.value) for h in at.subheader]
    assert set(table(at, heading)["b"]) == {"initial_bias=2"}
