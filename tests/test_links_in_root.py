"""Writers never write through a symbolic link another user planted in a shared root: a link
for a run's folder, for runs/, for a run's checkpoints/ or for .sweeps/ sent tables, checkpoints
(and the removal of older ones) and progress files out of the root, while every reader skipped
such a run as a link."""

from __future__ import annotations

import pytest

from ibstore import layout
from ibstore.lifecycle import Redo
from ibstore.lock import RunLock
from trainer import store
from trainer.store import RunWriter


def victim(tmp_path):
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "metrics.parquet").write_bytes(b"not yours")
    (folder / "epoch_000001.npz").write_bytes(b"not yours")
    return folder


def untouched(folder) -> bool:
    return sorted(p.name for p in folder.iterdir()) == ["epoch_000001.npz", "metrics.parquet"] and all(
        p.read_bytes() == b"not yours" for p in folder.iterdir())


@pytest.mark.parametrize("linked", ["run", "runs"])
def test_a_run_folder_or_runs_that_is_a_link_is_refused_by_name(tmp_path, linked):
    root, target = tmp_path / "root", victim(tmp_path)
    (root / "runs").mkdir(parents=True)
    if linked == "runs":
        (root / "runs").rmdir()
        (root / "runs").symlink_to(target)
        link = root / "runs"
    else:
        link = root / "runs" / "r"
        link.symlink_to(target)
    with pytest.raises(store.StoreError, match=f"{link} is a symbolic link; results are written only inside"):
        RunWriter(root, {"run_id": "r", "epochs_total": 3}, redo=Redo(completed=True, failed=True, interrupted=True))
    with pytest.raises(OSError, match="is a symbolic link"):
        RunLock.acquire(root / "runs" / "r")
    assert untouched(target) and link.is_symlink()


@pytest.mark.slow   # a writer asks git for the commit
def test_a_fresh_start_removes_a_planted_checkpoints_link_not_what_it_points_to(tmp_path):
    root, target = tmp_path / "root", victim(tmp_path)
    writer = RunWriter(root, {"run_id": "r", "epochs_total": 3})
    writer.close()
    for folder in (layout.checkpoints_dir(root, "r"), layout.activations_dir(root, "r")):
        folder.symlink_to(target)
    RunWriter(root, {"run_id": "r", "epochs_total": 3}, redo=Redo(interrupted=True)).close()
    assert untouched(target)
    assert not layout.checkpoints_dir(root, "r").exists() and not layout.activations_dir(root, "r").exists()
    layout.checkpoints_dir(root, "r").symlink_to(target)   # planted during training: refused when written
    with pytest.raises(OSError, match="checkpoints is a symbolic link"):
        layout.real_folder(layout.checkpoints_dir(root, "r"))
    assert untouched(target)


def test_a_lock_file_that_is_a_folder_or_a_link_is_named_and_no_other_folder_is_advised(tmp_path):
    # "cannot write results under ROOT: Is a directory. Choose a writable folder" named no file, and
    # another root would not have helped
    root = tmp_path / "root"
    for name, plant in (("d", lambda lock: lock.mkdir()), ("l", lambda lock: lock.symlink_to(tmp_path / "x"))):
        (root / "runs" / name).mkdir(parents=True)
        plant(root / "runs" / name / ".lock")
        with pytest.raises(store.StoreError) as error:
            RunWriter(root, {"run_id": name, "epochs_total": 3})
        assert f"{root / 'runs' / name / '.lock'}: " in str(error.value)
        assert "Choose a writable folder" not in str(error.value)
    assert store.unwritable(root, PermissionError(13, "Permission denied")).args[0].endswith(
        "Choose a writable folder with --results DIR or $IB_RESULTS.")


def test_a_resumed_run_writes_no_activations_through_a_planted_link(tmp_path):
    # save_index (a fresh start) checked the folder; a resume writes epochs without it
    import numpy as np

    from trainer import saved
    root, target = tmp_path / "root", victim(tmp_path)
    (root / "runs" / "r").mkdir(parents=True)
    layout.activations_dir(root, "r").symlink_to(target)
    with pytest.raises(OSError, match="activations is a symbolic link"):
        saved.save_epoch(root, "r", 7, [np.zeros((3, 2))])
    assert untouched(target)


def test_only_the_names_the_writer_gives_are_saved_epochs(tmp_path):
    # a stray "epoch_10.npz" beside epoch_000010.npz made trainer estimate write epoch 10's rows twice
    for name in ("epoch_000010.npz", "epoch_10.npz", "epoch_0000010.npz", "epoch_1000000.npz", "epoch_x.npz"):
        (tmp_path / name).write_bytes(b"")
    assert layout.epochs_in(tmp_path) == [10, 1_000_000]


@pytest.mark.slow   # a writer asks git for the commit
def test_compact_removes_a_killed_writes_temporaries_from_a_run_without_parts(tmp_path):
    from trainer import tables
    root = tmp_path / "root"
    RunWriter(root, {"run_id": "r", "epochs_total": 3}).finish("completed", 0)
    run_dir = root / "runs" / "r"
    table_tmp = run_dir / ".mi.parquet.abc12345.tmp"
    table_tmp.write_text("cut short")
    (run_dir / "activations").mkdir()
    array_tmp, kept = run_dir / "activations" / ".epoch_000001.npz.abcd1234.tmp", run_dir / "activations" / "notes.txt"
    array_tmp.write_text("cut short")
    kept.write_text("mine")
    merged, held, failed = tables.compact(root)
    assert merged == {"r": 0} and not held and not failed
    assert not table_tmp.exists() and not array_tmp.exists() and kept.read_text() == "mine"


@pytest.mark.parametrize("kind", ["loop", "dangling"])
def test_a_results_root_that_is_a_symlink_to_nothing_is_one_line(tmp_path, capsys, monkeypatch, kind):
    # `ln -s loop2 loop1; ln -s loop1 loop2` as --results raised RuntimeError ("Symlink loop") from
    # Path.resolve in every verb and the explorer; a dangling link to write into said "File exists"
    from trainer import cli, sweep

    root = tmp_path / "root"
    if kind == "loop":
        root.symlink_to(tmp_path / "other")
        (tmp_path / "other").symlink_to(root)
    else:
        root.symlink_to(tmp_path / "missing")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for verb in (["ls"], ["sql", "SELECT 1"]):
        assert cli.main([*verb, "--results", str(root)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is a symlink that leads nowhere (its target is missing, or it loops)" in err
    with pytest.raises(store.StoreError, match="is a symlink that leads nowhere"):
        sweep.check_writable(root)
    # a sweep into a dangling link once created its missing target and trained there, exit 0
    config = tmp_path / "c.json"
    config.write_text('{"name": "c", "epochs": 1, "architecture": [4]}')
    assert cli.main(["sweep", str(config), "--results", str(root)]) == 2
    assert "is a symlink that leads nowhere" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()
    assert layout.leads_nowhere(root) and not layout.leads_nowhere(tmp_path)
    from ibstore import index_file
    assert index_file.cache_dir(root).parent.name == "index"       # no RuntimeError from a loop
