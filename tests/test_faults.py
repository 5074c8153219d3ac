"""Faults not tried before (issue 17.8), on a real full disk: a small tmpfs mounted as the
results root (skipped where mounting is not allowed). A flush that meets a full disk leaves
the tables and run.json agreeing; a compaction that meets it leaves the run's files as they
were; every reader keeps working."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess

import pytest

from ibstore import index, index_file
from ibstore.index import scan
from ibstore.sandbox import run_query
from trainer import cli
from trainer.store import RunWriter, StoreError

pytestmark = pytest.mark.slow   # each test runs mount and umount, and sandbox workers


@contextlib.contextmanager
def tmpfs(tmp_path, monkeypatch, size: str):
    """A tmpfs of `size` mounted on a new folder (the test skips where mounting is not allowed),
    with the index in a private cache inside tmp_path; unmounted afterwards."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index.forget()
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        index.forget()
        subprocess.run(["umount", str(disk)], check=True)


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    with tmpfs(tmp_path, monkeypatch, "400k") as disk:
        yield disk / "results"


def rows(run_id: str, epoch: int) -> dict:
    return {"run_id": run_id, "epoch": epoch, "split": ["train", "test"], "loss": [1.0, 2.0],
            "accuracy": [0.5, 0.5 + epoch / 1e4]}


def tree(path) -> dict[str, str]:
    """Every file's digest; a run lock's only by its presence: whoever takes the lock writes who
    holds it there (pid, host, the second it was taken), so a compaction in a later second than the
    writer changed it (ibstore.lock)."""
    return {str(p.relative_to(path)): "lock" if p.name == ".lock" else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_flush_on_a_full_disk_keeps_tables_and_record_agreeing(small_disk):
    writer = RunWriter(small_disk, {"run_id": "r", "epochs_total": 10_000}, flush_seconds=0)
    epoch, failed = 0, None
    while failed is None and epoch < 10_000:
        writer.add("metrics", rows("r", epoch))
        try:
            writer.flush(epoch)
        except StoreError as error:
            failed = error
        epoch += 1
    assert failed is not None and "No space left on device" in str(failed)
    status = writer.finish("completed", epoch - 1)
    assert status == "failed"
    record = scan(small_disk).run("r")
    last = run_query(small_disk, "SELECT max(epoch) AS last FROM metrics")["last"][0]
    assert record.epochs_done == last < epoch - 1


@pytest.mark.slow
def test_a_compaction_on_a_full_disk_leaves_the_files_as_they_were(small_disk, capsys):
    writer = RunWriter(small_disk, {"run_id": "r", "epochs_total": 10}, flush_seconds=0)
    for epoch in range(10):
        writer.add("metrics", rows("r", epoch))
        writer.flush(epoch)
    writer.close()   # parts left, as by a killed writer
    filler = small_disk.parent / "filler"
    try:   # fill the disk to the last block
        with open(filler, "wb") as file:
            while True:
                file.write(b"\0" * 4096)
                file.flush()
    except OSError:
        pass
    before = tree(small_disk)
    assert cli.main(["compact", "--results", str(small_disk)]) == 1
    assert "could not be compacted" in capsys.readouterr().err
    assert tree(small_disk) == before
    filler.unlink()
    assert run_query(small_disk, "SELECT count(*) AS n FROM metrics")["n"][0] == 20


@pytest.mark.slow
def test_every_read_command_works_on_a_read_only_root(tmp_path, monkeypatch, capsys):
    """The root mounted read-only (a tmpfs remounted ro: file modes do not stop root, a
    read-only mount does): ls, ls --where, sql and the explorer's store read it; the index goes
    to the user's cache."""
    from bench.make_results import write_run
    from explorer.results import ResultStore

    with tmpfs(tmp_path, monkeypatch, "8m") as disk:
        root = disk / "results"
        ids = [write_run(root, "tanh", {"activation_fn": "tanh", "epochs": 20}, seed=seed, logged=5)
               for seed in range(2)]
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        assert cli.main(["ls", "--results", str(root)]) == 0
        listed = capsys.readouterr().out
        assert all(run_id in listed for run_id in ids)
        assert cli.main(["ls", "--results", str(root), "--where", f"run_id = '{ids[0]}'"]) == 0
        assert ids[0] in capsys.readouterr().out
        assert cli.main(["sql", "--results", str(root), "SELECT count(DISTINCT run_id) AS n FROM mi"]) == 0
        assert capsys.readouterr().out.splitlines()[2].strip() == "2"
        store = ResultStore(root)
        assert sorted(store.mi()["run_id"].unique()) == sorted(ids) and store.problems == []
        assert (index_file.cache_dir(root) / index_file.INDEX_FILE).is_file()   # nothing written into the root
