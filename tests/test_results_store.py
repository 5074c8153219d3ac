import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.make_results import write_run
from explorer.results import ResultStore
from ibstore import index, layout, scan, scan_footer
from ibstore.record import SCHEMA_VERSION
from ibstore.sandbox import SqlError

from conftest import BIASES, EPOCHS


@pytest.mark.slow
def test_a_damaged_root_loads_everything_else(messy_root):
    store = ResultStore(messy_root["root"])
    runs = store.runs().set_index("run_id")
    expected = set(messy_root["good"]) | {messy_root[k] for k in ("truncated", "no_mi", "running", "stale", "old")}
    assert set(runs.index) == expected
    assert runs.loc[messy_root["running"], "status"] == "running"
    assert runs.loc[messy_root["running"], "epochs_done"] == 30
    assert runs.loc[messy_root["stale"], "status"] == "interrupted"  # heartbeat an hour old

    # table files are checked when their table is first read: reading mi finds the truncated file
    assert messy_root["truncated"] not in set(store.mi(list(runs.index))["run_id"])
    problems = {(p.run_id, os.path.basename(p.path)): p.problem for p in store.problems}
    assert "not valid JSON" in problems[(messy_root["broken"], "run.json")]
    assert "unreadable Parquet" in problems[(messy_root["truncated"], "mi.parquet")]
    assert "no run.json" in problems[(messy_root["empty_dir"], messy_root["empty_dir"])]
    assert len(problems) == 3   # an older schema_version is not a problem: its missing columns are NULL
    assert len(store.sql("SELECT * FROM problems")) == 3


@pytest.mark.slow
def test_trainer_sql_says_when_files_of_the_root_are_left_out(messy_root, capsys):
    # An attacker rewrote a run's mi.parquet while counting runs: "2460,5" instead of "2952,6", exit 0,
    # nothing on stderr. What the views leave out is now counted beside the answer.
    from trainer import cli

    root = str(messy_root["root"])
    assert cli.main(["sql", "SELECT count(*) AS n FROM problems", "--format", "csv", "--results", root]) == 0
    out, err = capsys.readouterr()
    problems = int(out.split()[1])
    assert problems >= 3 and err == (f"note: {problems} file(s) of the root could not be read and are left out of every "
                                     'view (trainer sql "SELECT * FROM problems" names them)\n')


@pytest.mark.slow
def test_a_run_whose_folder_name_holds_a_control_character_is_read_and_not_said_left_out(tmp_path, capsys):
    # An attacker's: two runs with an ESC in their folder's name were in every view, and `trainer sql`
    # said "note: 2 file(s) of the root could not be read and are left out of every view"
    from trainer import cli

    root = tmp_path / "root"
    plain = write_run(root, "x", {"epochs": 10}, seed=0, logged=4)
    odd = write_run(root, "x", {"epochs": 10}, seed=1, logged=4) + "\x1b[31m"
    os.rename(layout.run_dir(root, odd[:-5]), layout.run_dir(root, odd))
    record = json.loads((layout.run_dir(root, odd) / "run.json").read_text())
    (layout.run_dir(root, odd) / "run.json").write_text(json.dumps({**record, "run_id": odd}))
    for path in layout.run_dir(root, odd).glob("*.parquet"):      # each row names its folder's run
        table = pq.read_table(path)
        pq.write_table(table.set_column(table.schema.get_field_index("run_id"), "run_id",
                                        pa.array([odd] * table.num_rows)), path)
    # nor a run.json of a newer schema, nor a symbolic link that is no table file (a reviewer's)
    record = json.loads((layout.run_dir(root, plain) / "run.json").read_text())
    (layout.run_dir(root, plain) / "run.json").write_text(json.dumps({**record, "schema_version": 99}))
    (layout.run_dir(root, plain) / "notes.txt").symlink_to("/etc/hostname")
    assert cli.main(["sql", "SELECT DISTINCT run_id FROM mi ORDER BY run_id", "--format", "json",
                     "--results", str(root)]) == 0
    out, err = capsys.readouterr()
    assert [row["run_id"] for row in json.loads(out)] == sorted([plain, odd]) and err == ""
    warned = sorted((p.problem.split(":")[0], p.left_out) for p in ResultStore(root).problems)   # named, as warnings
    assert warned == [("folder name holds control characters (shown escaped)", False), ("is a symlink", False),
                      (f"written with schema_version 99, this version reads {SCHEMA_VERSION}", False)], warned
    assert scan.left_out(ResultStore(root).problems) == []
    # a symbolic link in place of a table file leaves that table out, and says so
    (layout.run_dir(root, plain) / "gradients.parquet").rename(layout.run_dir(root, plain) / "g.bak")
    (layout.run_dir(root, plain) / "gradients.parquet").symlink_to(layout.run_dir(root, plain) / "g.bak")
    assert [p.path.rsplit("/", 1)[1] for p in scan.left_out(ResultStore(root).problems)] == ["gradients.parquet"]


def test_missing_tables_and_columns_are_empty_not_errors(messy_root):
    store = ResultStore(messy_root["root"])
    ids = [messy_root["truncated"], messy_root["no_mi"], messy_root["old"]]
    assert store.recorded("mi", ids) == [messy_root["old"]]
    assert store.recorded("metrics", ids) == ids
    assert store.mi([messy_root["truncated"], messy_root["no_mi"]]).empty
    assert store.activations([messy_root["no_mi"]]).empty
    # the truncated run keeps its other tables
    assert store.metrics([messy_root["truncated"]])["epoch"].max() == EPOCHS
    # the old-schema run lacks the snr column: NULL, the rest is there
    old = store.gradients([messy_root["old"]])
    assert len(old) > 0 and old["snr"].isna().all() and old["grad_mean_norm"].notna().all()


def test_results_follow_the_root_as_it_changes(messy_root):
    from bench.make_results import write_run

    store = ResultStore(messy_root["root"])
    before = len(store.runs())
    new = write_run(messy_root["root"], "late", {"activation_fn": "tanh", "epochs": EPOCHS}, logged=10)
    assert store.refresh() is True
    assert len(store.runs()) == before + 1
    assert store.refresh() is False  # nothing changed since
    (messy_root["root"] / "runs" / new / "mi.parquet").unlink()
    assert store.refresh() is True
    assert store.recorded("mi", [new]) == []



def test_a_live_panels_refresh_right_after_a_scan_is_skipped(messy_root, monkeypatch):
    """A live panel's first run follows the page's first scan at once: at 100,000 runs a second
    stat pass there cost the first load about a second."""
    store = ResultStore(messy_root["root"])
    store.runs()
    new = write_run(messy_root["root"], "late", {"activation_fn": "tanh", "epochs": EPOCHS}, logged=10)
    assert store.refresh(unless_within_s=3600) is False    # compared with the root just now: no scan
    assert new not in set(store.runs()["run_id"])
    assert store.refresh(unless_within_s=0.0) is True
    assert new in set(store.runs()["run_id"])


def test_parquet_footers_are_read_once(cohort_root, monkeypatch):
    index.scan(cohort_root)
    calls = []
    original = scan_footer.pq.read_metadata
    monkeypatch.setattr(scan_footer.pq, "read_metadata", lambda *a, **k: calls.append(a) or original(*a, **k))
    index.scan(cohort_root)
    assert calls == []


@pytest.mark.slow
def test_notebook_api_on_the_cohort(cohort_root):
    store = ResultStore(cohort_root)
    ids = store.runs()["run_id"].tolist()
    assert len(ids) == 2 * len(BIASES)
    assert store.varying_keys(ids) == ["initial_bias"]
    labels = store.labels(ids, by_group=True)
    assert list(labels.values()) == [f"initial_bias={b:g}" for b in BIASES]   # ordered by value
    mi = store.mi(ids, estimator="binning", split="train")
    assert set(mi["layer"]) == set(range(6)) and set(mi["split"]) == {"train"}
    assert mi.loc[mi["epoch"] == 0, "i_xt"].max() <= 11.68 + 1e-9
    over = store.mi_over_seeds(ids, "binning", '{"bin_size": 0.07}', "train", "median")
    assert set(over["seeds"]) == {2} and (over["i_xt_min"] <= over["i_xt"]).all()
    assert (over["i_xt"] <= over["i_xt_max"]).all()
    mean = store.mi_over_seeds(ids, "binning", '{"bin_size": 0.07}', "train", "mean")
    pair = store.mi(ids[:2], "binning", "train")
    assert len(over) == len(mean) == len(BIASES) * len(pair) // 2  # one row per group, epoch, layer
    # relu with negative initial bias never learns
    dead = store.dead_runs(ids)
    assert sorted(dead) == sorted(r for r, c in store.configs(ids).items() if c["initial_bias"] < 0)
    runs = store.runs("final_test_accuracy > 0.8")
    assert 0 < len(runs) < len(ids)
    with pytest.raises(SqlError):
        store.runs("1 = 1; DROP TABLE runs")
    # the Runs page's filter is a condition, as `trainer ls --where`'s: pasted after WHERE, these ran
    # as the end of the statement (one run; a run named x)
    for trailing in ("true LIMIT 1", "false UNION SELECT 'x'", "true ORDER BY run_id LIMIT 2"):
        with pytest.raises(SqlError, match="syntax error at or near"):
            store.runs(trailing)
    stats = store.activation_stats(ids[:1], split="train", layer=0)
    assert set(stats["layer"]) == {0} and stats["neuron"].nunique() == 10
    chart = store.infoplane_chart(ids, by_group=True).to_dict()
    assert chart["facet"]["sort"] == [f"initial_bias={b:g} (2 seeds)" for b in BIASES]
    one = store.infoplane_chart([ids[0]], by_group=True).to_dict()       # a sceptic's "(1 seeds)"
    assert [title.split(" (")[1] for title in one["facet"]["sort"]] == ["1 seed)"]


def test_a_file_vanishing_between_scan_and_read_costs_only_that_file(messy_root):
    store = ResultStore(messy_root["root"], max_age_s=3600)
    ids = messy_root["good"]
    assert set(store.metrics(ids)["run_id"]) == set(ids)
    (messy_root["root"] / "runs" / ids[0] / "metrics.parquet").unlink()   # after the snapshot
    assert set(store.metrics(ids)["run_id"]) == set(ids[1:])


def test_config_keys_and_values_follow_the_root(tmp_path):
    shape = {"epochs": 4, "architecture": [3]}
    write_run(tmp_path, "a", {**shape, "initial_bias": 0.5}, logged=2)
    store = ResultStore(tmp_path)
    keys = store.config_keys()
    assert keys == sorted(keys) and {"initial_bias", "epochs", "architecture"} <= set(keys)
    assert store.config_values("initial_bias") == ["0.5"]
    assert store.config_values("no.such.key") == ["null"]
    write_run(tmp_path, "b", {**shape, "initial_bias": -1.0}, logged=2)
    store.refresh()
    assert store.config_values("initial_bias") == ["-1.0", "0.5"]     # sorted JSON text of the new snapshot


def test_the_store_saves_the_index_in_the_background_after_a_cold_open_else_rarely(tmp_path, monkeypatch,
                                                                                  private_index):
    from explorer import results

    ids = [write_run(tmp_path, "saving", {"epochs": EPOCHS}, seed=seed, logged=2) for seed in range(4)]
    path = index.index_file.cache_dir(tmp_path) / index.index_file.INDEX_FILE
    store = ResultStore(tmp_path)
    assert len(store.runs()) == 4 and store._saving is not None      # every run read: saved, in a thread
    store._saving.join(30)
    saved = path.stat().st_mtime_ns
    run_json = tmp_path / "runs" / ids[0] / "run.json"
    run_json.write_bytes(run_json.read_bytes().replace(b'"epochs_done"', b'"epochs_done" ', 1))
    assert store.refresh()
    assert not store._saving.is_alive() and path.stat().st_mtime_ns == saved      # 1 of 4 read: minutes early
    monkeypatch.setattr(results, "SAVE_AFTER_READS", 2)
    write_run(tmp_path, "saving", {"epochs": EPOCHS}, seed=4, logged=2)
    assert store.refresh()                            # 2 read since the save (the change, the new run)
    store._saving.join(30)
    assert path.stat().st_mtime_ns != saved
    saved = path.stat().st_mtime_ns
    monkeypatch.setattr(results, "SAVE_EVERY_S", 0.0)
    run_json.write_bytes(run_json.read_bytes().replace(b'"epochs_done" ', b'"epochs_done"', 1))
    store.refresh()                                   # 1 read, but due by time
    store._saving.join(30)
    assert path.stat().st_mtime_ns != saved
    index.forget()
    assert index.scan(tmp_path, save=False).folders_read == 0   # what the store read is in the saved index


def test_estimator_choices_follow_the_order_the_configs_list_them(tmp_path):
    """The pages' and the report's first estimator is the one the researcher listed first, not the
    alphabetically first; one that more runs recorded still comes before."""
    listed = [{"name": "ksg", "params": {"k": 2}}, {"name": "binning", "params": {"bin_size": 0.5}},
              {"name": "idnns", "params": {}}, {"name": "binning", "params": {"bin_size": 0.07}}]
    shape = {"epochs": 4, "architecture": [3], "mi_splits": ["train"]}
    first = write_run(tmp_path, "a", {**shape, "estimators": listed}, seed=0, logged=2)
    second = write_run(tmp_path, "a", {**shape, "estimators": listed}, seed=1, logged=2)
    store = ResultStore(tmp_path)
    choices = store.mi_choices([first, second])
    assert choices["estimator"].tolist() == ["ksg", "binning", "idnns", "binning"]
    assert choices["params"].tolist()[1::2] == ['{"bin_size": 0.5}', '{"bin_size": 0.07}']
    assert set(choices["runs"]) == {2}
    # a run of another config, which lists adaptive before binning 0.07: binning 0.07, which all three
    # runs recorded, comes first; adaptive, which one did, last
    third = write_run(tmp_path, "b", {**shape, "estimators": [{"name": "adaptive", "params": {}},
                                                               {"name": "binning", "params": {"bin_size": 0.07}}]},
                      logged=2)
    store.refresh()
    choices = store.mi_choices([first, second, third])
    assert list(zip(choices["estimator"], choices["runs"])) == [
        ("binning", 3), ("ksg", 2), ("binning", 2), ("idnns", 2), ("adaptive", 1)]
