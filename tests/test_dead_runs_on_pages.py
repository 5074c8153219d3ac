"""Dead networks on the Runs, Gradients and Activations pages: left out of what they cannot
answer, said where they draw nothing, not opened on; under Streamlit's AppTest on the small relu cohort (conftest.cohort_root: initial_bias -1, whose runs the
trainer flags dead, 0, 0.2 and 2, two seeds each). The charts themselves are tested in
tests/test_charts.py, tests/test_phase_charts.py and tests/test_runs_table.py."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from conftest import open_app
from explorer import ui
from explorer.results import ResultStore

pytestmark = pytest.mark.slow  # opens the app under AppTest

DEAD_GROUP = "initial_bias=-1 [dead: 2 of 2 seeds]"


def dead_runs(root) -> set[str]:
    runs = ResultStore(root).runs()
    return set(runs.loc[runs["dead_network"].eq(True), "run_id"])


def captions(at) -> str:
    return "\n".join(element.value for element in at.caption)


def parallel_coordinates(at) -> tuple[dict, list[dict]]:
    """The Runs page's parallel coordinates (the layered chart with rules) and its data's rows, which
    Streamlit sends beside the spec as Arrow."""
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        if any(layer.get("mark", {}).get("type") == "rule" for layer in spec.get("layer", [])):
            return spec, [row for dataset in chart.proto.datasets
                          for row in pa.ipc.open_stream(dataset.data.data).read_all().to_pylist()]
    raise AssertionError("no parallel coordinates")


def test_the_parallel_coordinates_leave_dead_runs_out_of_a_layers_compression(monkeypatch, cohort_root):
    """A dead network's compression, 0, was drawn like a live run's 0: its runs draw no line on
    that outcome, and a caption counts them and says why."""
    at = open_app(monkeypatch, cohort_root)
    at.selectbox(key="pc_outcome").set_value("compression").run()
    spec, rows = parallel_coordinates(at)
    drawn = {row["run_id"] for row in rows if "run_id" in row}
    dead = dead_runs(cohort_root)
    assert len(dead) == 2 and not dead & drawn and len(drawn) == 6
    assert "2 of the 8 runs measured draw no line (2 dead)" in captions(at)
    lines = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "line")
    assert lines["encoding"]["color"]["legend"]["title"] == "compression over floor of 4 · dense_4 (bits)"


def test_the_gradients_page_says_why_a_dead_group_draws_no_snr(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, page="gradients")
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert DEAD_GROUP in spec["spec"]["layer"][1]["encoding"]["color"]["scale"]["domain"]     # in the legend
    assert f"No line for {ui.plain(DEAD_GROUP)}: no SNR above 0 at any epoch" in captions(at)


def test_the_activations_page_opens_on_a_run_that_is_not_dead(monkeypatch, cohort_root):
    """The first selected runs (initial_bias=-1) are dead: every histogram was all zeros."""
    at = open_app(monkeypatch, cohort_root, page="activations")
    run_id = at.selectbox(key="run").value
    runs = ResultStore(cohort_root).runs().set_index("run_id")
    assert run_id not in dead_runs(cohort_root) and runs.loc[run_id, "initial_bias"] == 0.0
