"""`trainer compact` while a run trains (issue 17): the live run is left alone (its writer keeps
adding part files, none is merged or removed under it) and keeps showing `running`; a dead
writer's parts beside it are merged; when the run ends every logged epoch is in its tables
exactly once and the writer's own compaction leaves one file per table."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time

import pytest
from conftest import REPO

from ibstore import index
from ibstore.index import scan
from trainer import cli, config
from trainer.schedule import logged_epochs
from trainer.store import RunWriter
from trainer.tables import all_parts, read_table, table_files

# Several flushes (RunWriter's interval: 5 s), and long enough for two compaction tries 1 s apart after
# the first: 6000 were not once the step got faster, while the test waited for a second flush (10 s in).
EPOCHS = 10000
TINY = {"epochs": EPOCHS, "architecture": [10, 7, 5], "batch_size": 1024, "log_schedule": {"every": 10}}


@pytest.mark.slow   # trains a network in a `trainer run` process
def test_compact_while_a_run_trains_leaves_it_alone_and_loses_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index.forget()
    root = tmp_path / "results"
    dead = RunWriter(root, {"run_id": "dead", "epochs_total": 2}, flush_seconds=0)   # a killed writer's parts
    for epoch in range(2):
        dead.add("metrics", {"run_id": "dead", "epoch": epoch, "split": ["train", "test"],
                             "loss": [1.0, 2.0], "accuracy": [0.5, 0.6]})
        dead.flush(epoch)
    dead.close()

    path = tmp_path / "live.json"
    path.write_text(json.dumps(TINY))
    (experiment,) = config.plan(config.load_file(path))
    live = experiment.run_id(0)
    live_dir = root / "runs" / live
    training = subprocess.Popen([sys.executable, "-m", "trainer", "run", str(path), "--results", str(root), "--quiet"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 300
        # One flush: it is training, and a compaction not leaving it alone would merge that part.
        while not all_parts(live_dir).get("metrics"):
            assert training.poll() is None and time.monotonic() < deadline, "the run ended or never flushed"
            time.sleep(0.2)
        compactions = 0
        while training.poll() is None and compactions < 5:
            parts_before = {p for parts in all_parts(live_dir).values() for _, p in parts}
            status = cli.main(["compact", "--results", str(root)])
            out = capsys.readouterr().out
            if training.poll() is not None or json.loads((live_dir / "run.json").read_text())["status"] != "running":
                break   # it ended meanwhile (run.json first, then it compacts its own parts): nothing to judge
            assert status == 0, out
            assert f"{live}: held by pid {training.pid}" in out and "left alone" in out
            assert "dead: merged 2 part file(s)" in out or compactions > 0
            parts_after = {p for parts in all_parts(live_dir).values() for _, p in parts}
            if json.loads((live_dir / "run.json").read_text())["status"] != "running":
                break   # listed after it finished: its own compaction may have merged them
            assert parts_before <= parts_after   # nothing merged or removed under the writer
            index.forget()
            shown = scan(root).run(live).status
            if shown != "running" and json.loads((live_dir / "run.json").read_text())["status"] != "running":
                break   # it finished after the check above: nothing to judge
            assert shown == "running"
            assert cli.main(["ls", "--results", str(root)]) == 0
            (row,) = [line for line in capsys.readouterr().out.splitlines() if live in line]
            assert "running" in row
            compactions += 1
            time.sleep(1)
        assert compactions >= 2, "the run ended before compaction could be tried twice while it trained"
        _, err = training.communicate(timeout=300)
        assert training.returncode == 0, err
    finally:
        training.kill()

    index.forget()
    assert scan(root).run(live).status == "completed"
    assert sorted(p.name for p in live_dir.iterdir() if p.suffix == ".parquet") \
        == sorted(f"{table}.parquet" for table in table_files(live_dir))   # compacted by its writer
    metrics = read_table(table_files(live_dir)["metrics"], "metrics").to_pandas()
    assert collections.Counter(zip(metrics["epoch"], metrics["split"])) \
        == {(epoch, split): 1 for epoch in range(EPOCHS + 1) for split in ("train", "test")}   # every epoch
    mi = read_table(table_files(live_dir)["mi"], "mi").to_pandas()
    key = ["epoch", "layer", "split", "estimator", "params"]
    assert not mi.duplicated(key).any() and sorted(mi["epoch"].unique()) == logged_epochs(TINY["log_schedule"], EPOCHS)
    assert sorted(p.name for p in (root / "runs" / "dead").iterdir() if p.suffix == ".parquet") == ["metrics.parquet"]
