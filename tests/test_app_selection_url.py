"""The selection in the URL at any size (issue 20): "Select all shown" puts the filter in the URL
(?select=shown), not every run id; a longer list is cut at ui.MAX_URL_RUNS and said so; a large
selection is summarised in the sidebar; a shared link reopens the same selection; what a link
names that is not understood is a warning, never an error."""


import pytest
from conftest import BIASES, open_app
from test_phases_page import unescaped

from explorer import ui
from explorer.results import ResultStore

pytestmark = pytest.mark.slow  # every test opens the app under AppTest



def url(at) -> dict[str, list[str]]:
    """The URL's parameters, each as a list (AppTest gives a single value as a string)."""
    return {name: [value] if isinstance(value, str) else list(value) for name, value in at.query_params.items()}


def selected(at) -> list[str]:
    return list(at.session_state[ui.SELECTED])


def select_all_shown(at) -> None:
    """Clear the selection, then select every run shown (a changed filter may have selected them
    all already, as a list: the button is then disabled)."""
    next(b for b in at.button if b.label == "Clear selection").click().run()
    next(b for b in at.button if b.label == "Select all shown").click().run()
    assert not at.exception, [e.message for e in at.exception]


def runs_where(root, condition) -> set[str]:
    """The runs a SQL condition matches, asked of the store outside the app."""
    return set(ResultStore(root).runs(condition)["run_id"])


def warnings(at) -> str:
    return "\n".join(w.value for w in at.warning)


def test_select_all_shown_puts_the_filter_in_the_url_and_the_link_reopens_it(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root)
    at.text_input(key="where").set_value("initial_bias >= 0").run()
    select_all_shown(at)
    expected = runs_where(cohort_root, "initial_bias >= 0")
    assert len(expected) == 6 and set(selected(at)) == expected
    assert url(at) == {"select": ["shown"], "where": ["initial_bias >= 0"]}     # no run id listed
    at.run()                                                  # a rerun keeps it
    assert set(selected(at)) == expected and url(at)["select"] == ["shown"]
    at.switch_page("app_pages/compare.py").run()              # so does another page
    assert set(selected(at)) == expected and url(at) == {"select": ["shown"], "where": ["initial_bias >= 0"]}

    link = open_app(monkeypatch, cohort_root, "compare", **url(at))    # the shared link, in a new session
    assert selected(link) == selected(open_app(monkeypatch, cohort_root, **url(at)))
    assert set(selected(link)) == expected and not link.warning


def test_a_config_key_filter_travels_in_the_link_as_displayed(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, fkey="initial_bias", fval=["0.2", "2"])
    select_all_shown(at)
    expected = runs_where(cohort_root, "initial_bias IN (0.2, 2)")
    assert len(expected) == 4 and set(selected(at)) == expected
    assert url(at) == {"select": ["shown"], "fkey": ["initial_bias"], "fval": ["0.2", "2"]}
    at.switch_page("app_pages/config.py").run()               # the filter stays in the URL on another page
    assert url(at) == {"select": ["shown"], "fkey": ["initial_bias"], "fval": ["0.2", "2"]}
    link = open_app(monkeypatch, cohort_root, "config", **url(at))
    assert set(selected(link)) == expected and not link.warning


def test_a_pick_after_select_all_shown_lists_ids_again(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root)
    select_all_shown(at)
    assert url(at) == {"select": ["shown"]} and len(selected(at)) == 2 * len(BIASES)
    chosen = selected(at)[:2]
    at.multiselect(key=ui.SELECTION).set_value(chosen).run()  # an edit in the sidebar
    assert url(at) == {"runs": chosen} and selected(at) == chosen


def test_a_long_list_is_cut_in_the_url_and_said_so_but_kept_in_the_session(monkeypatch, cohort_root):
    monkeypatch.setattr(ui, "MAX_URL_RUNS", 3)
    at = open_app(monkeypatch, cohort_root)
    every = list(at.dataframe[0].value["run_id"])
    chosen = every[:5]
    at.multiselect(key=ui.SELECTION).set_value(chosen).run()
    assert selected(at) == chosen and url(at)["runs"] == chosen[:3]
    assert "The URL lists the first 3 of them" in "\n".join(c.value for c in at.caption)
    at.run()
    assert selected(at) == chosen                             # the cut URL does not cut the selection


def test_a_large_selection_is_summarised_in_the_sidebar(monkeypatch, cohort_root):
    monkeypatch.setattr(ui, "MAX_SIDEBAR_CHIPS", 3)
    at = open_app(monkeypatch, cohort_root)
    assert len(selected(at)) == 2 * len(BIASES)
    assert not [m for m in at.multiselect if m.key == ui.SELECTION]       # no chips
    assert "8 of 8 runs selected" in "\n".join(c.value for c in at.caption)
    at.switch_page("app_pages/config.py").run()
    assert len(selected(at)) == 2 * len(BIASES)               # kept without the widget
    at.switch_page("app_pages/runs.py").run()
    at.text_input(key="where").set_value("initial_bias = 2").run()
    assert len(selected(at)) == 2 and at.multiselect(key=ui.SELECTION).value == selected(at)


@pytest.mark.parametrize("params", [{"select": "shown", "fkey": "initial_bias", "fval": "0.3"},
                                    {"select": "shown", "fkey": "activation", "fval": "sigmoid"}])
def test_a_link_whose_filter_matches_no_run_here_selects_none_not_the_whole_root(monkeypatch, cohort_root, params):
    """A stale link (a value or key this root lacks): the runs its filter shows are none. Dropping the
    unknown part of the filter instead selected every run of the root behind a warning."""
    at = open_app(monkeypatch, cohort_root, **params)
    assert selected(at) == []
    assert "so the link's filter shows no run of this root, and none is selected" in warnings(at)


@pytest.mark.parametrize("params, named", [
    ({"select": "everything", "runs": []}, "select=everything is not understood"),
    ({"select": "shown", "fkey": "no_such_key"}, "no_such_key is no config key"),
    ({"select": "shown", "fkey": "initial_bias", "fval": ["7", "2"]}, "never takes the value(s) 7"),
    ({"select": "shown", "where": "initial_bais > 0"}, "SQL condition does not run"),
    ({"select": "shown", "where": "1=1; DROP TABLE runs"}, "SQL condition does not run"),
    ({"select": "shown", "where": "**bold** [x](http://evil.invalid)"}, "SQL condition does not run"),
])
def test_a_link_not_understood_warns_and_never_fails(monkeypatch, cohort_root, params, named):
    at = open_app(monkeypatch, cohort_root, **params)
    assert ui.plain(named) in warnings(at), warnings(at)     # shown as text, escaped
    assert warnings(at).count(ui.plain(named)) == 1           # once: the sidebar and the Runs page both said it
    assert "**bold**" not in warnings(at)                     # the link's text is shown as text
    every = list(ResultStore(cohort_root).runs()["run_id"])
    assert set(selected(at)) <= set(every) and selected(at)   # something known is selected
    if "fval" in params:                                      # the values it takes still filter
        assert set(selected(at)) == runs_where(cohort_root, "initial_bias = 2")


def test_a_links_filter_that_other_statements_kept_waiting_keeps_the_link(monkeypatch, cohort_root):
    # An attacker's: statements holding every place of the sandbox kept a shared link's filter waiting
    # until its time limit; the page then wrote the first runs into the URL in its place, the very runs
    # the filter left out, and called the condition one that "does not run"
    import threading

    from ibstore import sandbox

    places = threading.BoundedSemaphore(1)
    places.acquire()                                       # another visitor's statement holds the place
    monkeypatch.setattr(sandbox, "_PLACES", places)
    monkeypatch.setattr(sandbox, "APP_TIMEOUT_S", 0.5)
    at = open_app(monkeypatch, cohort_root, select="shown", where="initial_bias > 0.25")
    assert ui.plain("the link's SQL condition could not run now (query did not start within 0.5 s: all 4 "
                    "places") in warnings(at), warnings(at)
    assert ui.plain("the link is kept as it is: reload the page to run it again") in warnings(at)
    assert url(at) == {"select": ["shown"], "where": ["initial_bias > 0.25"]}      # no run ids in its place
    at.run()                                               # an interaction neither runs it again nor drops it
    assert url(at) == {"select": ["shown"], "where": ["initial_bias > 0.25"]}
    # the visitor's own choice replaces it: a pick in the sidebar, or every run the table shows (drawn
    # without the condition: a reviewer's "Select all shown" wrote the condition with every run)
    picked = selected(at)[:2]
    at.multiselect(key=ui.SELECTION).set_value(picked).run()
    assert url(at)["runs"] == picked and "select" not in url(at) and selected(at) == picked
    at = open_app(monkeypatch, cohort_root, select="shown", where="initial_bias > 0.25")
    select_all_shown(at)
    assert url(at) == {"select": ["shown"]} and len(selected(at)) == len(ResultStore(cohort_root).runs())
    places.release()                                       # free again: the same link, opened anew, runs
    again = open_app(monkeypatch, cohort_root, select="shown", where="initial_bias > 0.25")
    assert set(selected(again)) == runs_where(cohort_root, "initial_bias > 0.25") and not warnings(again)


def test_a_filter_links_problem_is_warned_once(monkeypatch, cohort_root):
    # an attacker's: the sidebar and the Runs page both warned a `select=shown` link's filter problem
    at = open_app(monkeypatch, cohort_root, select="shown", fkey="initial_bias", fval="None")
    assert warnings(at).count(ui.plain("initial_bias never takes the value(s) None")) == 1, warnings(at)
    assert selected(at) == []        # the link's filter shows no run, and none is selected


@pytest.mark.parametrize("params, named", [
    ({"fkey": "initial_bias", "fval": ["0.2", "abc"]}, "never takes the value(s) abc"),
    ({"fkey": "initial_bias", "fval": "0.2", "where": "nonexistent_col > 1"}, "SQL condition"),
    ({"fkey": "nokey", "fval": "0.2", "where": "initial_bias > 0"}, "nokey is no config key"),
])
def test_a_links_warning_survives_the_rerun_that_selects_what_its_filter_shows(monkeypatch, cohort_root, params,
                                                                             named):
    # without select=shown the Runs page selects what the link's filter shows in a rerun, which
    # dropped the warnings the first run drew: the part of the link it left out went unsaid (an
    # attacker saw it in a browser and in AppTest)
    at = open_app(monkeypatch, cohort_root, **params)
    assert ui.plain(named) in warnings(at), warnings(at)


@pytest.mark.parametrize("page, params, named", [
    (None, {"group": "nonexistent"}, "group=nonexistent is dropped: the selected runs recorded no such varying "
                                     "config key"),
    (None, {"pc_outcome": "zzz"}, "pc_outcome=zzz is dropped: pc_outcome is one of "),
    ("phases", {"log_epochs": "maybe"}, "log_epochs=maybe is dropped: log_epochs is one of true, false."),
])
def test_a_links_value_a_bound_widget_does_not_offer_is_named(monkeypatch, cohort_root, page, params, named):
    # Streamlit's binding drops such a value unsaid, and the page showed its default as if the link named it
    at = open_app(monkeypatch, cohort_root, page, **params)
    assert named in unescaped(warnings(at)), warnings(at)


@pytest.mark.parametrize("page, params, named", [
    (None, {"select": "shown", "fkey": "initial_bias", "fval": [f"x{i}" for i in range(300)]},
     "initial_bias never takes the value(s) x0, x1, x2, x3, x4, x5, x6, x7, x8, x9 and 290 more"),
    ("phases", {"reference": "r" * 10_000}, "reference=" + "r" * 100 + "… (10,000 characters) is dropped"),
])
def test_a_links_long_or_many_values_are_named_in_part(monkeypatch, cohort_root, page, params, named):
    # 300 unknown values were listed whole (twice), and a 10,000-character reference echoed whole
    at = open_app(monkeypatch, cohort_root, page, **params)
    assert named in unescaped(warnings(at)) and len(warnings(at)) < 2_000, warnings(at)[:300]


def test_a_toggles_value_in_any_case_is_read_and_not_warned(monkeypatch, cohort_root):
    at = open_app(monkeypatch, cohort_root, "phases", log_epochs="FALSE")
    assert at.toggle(key="log_epochs").value is False and "log_epochs" not in warnings(at)


def test_the_app_opens_on_the_cohort_trained_last(monkeypatch, tmp_path):
    # A new user's: after the 500-epoch quickstart and then the notebook's full cohort, the app opened on
    # the quickstart (the first cohort in the Runs table's order: fewer epochs sort first)
    from datetime import timedelta

    from bench.make_results import write_run
    from ibstore import layout
    from ibstore.record import RunRecord

    root = tmp_path / "results"
    quick = [write_run(root, "quick", {"epochs": 20, "initial_bias": bias}, seed=seed, cohort="quickstart", logged=5)
             for bias in (0.0, 1.0) for seed in range(2)]
    full = [write_run(root, "full", {"epochs": 60, "initial_bias": bias}, seed=seed, cohort="initial_bias_relu",
                      logged=5) for bias in (0.0, 1.0) for seed in range(2)]
    for run_id in full:                             # trained a day after the quickstart
        path = layout.run_json_path(root, run_id)
        record = RunRecord.from_json_bytes(path.read_bytes())
        later = {field: getattr(record, field) + timedelta(days=1) for field in ("started_at", "finished_at",
                                                                                 "heartbeat_at")}
        path.write_bytes(record.model_copy(update=later).to_json_bytes())
    ordered = ui.ordered_runs(ResultStore(root))["run_id"].tolist()
    assert ordered.index(quick[0]) < ordered.index(full[0])        # the quickstart is first in the table
    at = open_app(monkeypatch, root)
    assert sorted(selected(at)) == sorted(full)


def test_a_parameter_given_twice_is_named_and_its_last_value_used(monkeypatch, cohort_root):
    # an attacker's: ?group=a&group=b took b without a word
    at = open_app(monkeypatch, cohort_root, group=["(no grouping)", "initial_bias"])
    assert "The link gives group 2 times; its last value, initial\\_bias, is the one read." in warnings(at), \
        warnings(at)
    assert at.selectbox(key="group").value == "initial_bias"
    assert url(at)["group"] == ["initial_bias"]      # the URL keeps what is read (it kept both values)
    # a slider (which then read neither) and a selectbox of ids say so too
    at = open_app(monkeypatch, cohort_root, "training", smooth=["0.1", "0.5"])
    assert "The link gives smooth 2 times; none of them is read: the slider shows its default." in warnings(at)
    assert "smooth" not in url(at)
    at = open_app(monkeypatch, cohort_root, "phases", reference=["a", "b"])
    assert "The link gives reference 2 times" in warnings(at), warnings(at)
    # an attacker's: a select_slider read neither of two speeds but was said to read the last; the
    # number of columns and the Runs page's filters took the last without a word
    at = open_app(monkeypatch, cohort_root, "movie", speed=["2×", "4×"])
    assert "The link gives speed 2 times; none of them is read: the slider shows its default." in warnings(at)
    assert at.select_slider(key="speed").value == "1×"
    at = open_app(monkeypatch, cohort_root, "training", cols=["3", "4"])
    assert "The link gives cols 2 times; its last value, 4, is the one read." in warnings(at)
    assert url(at)["cols"] == ["4"]
    at = open_app(monkeypatch, cohort_root, select="shown", where=["initial_bias > 5", "1=1"])
    assert "the link gives where 2 times; its last value, 1\\=1, is the one read" in warnings(at), warnings(at)
    # and a query, and the selection's select (the attacker's second round)
    at = open_app(monkeypatch, cohort_root, "sql", q=["SELECT 1 AS a", "SELECT 2 AS b"])
    assert "The link gives q 2 times; its last value, SELECT 2 AS b, is the one read." in warnings(at), warnings(at)
    at = open_app(monkeypatch, cohort_root, select=["bogus", "shown"])
    assert "the link gives select 2 times; its last value, shown, is the one read" in warnings(at), warnings(at)
