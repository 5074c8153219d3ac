"""Atomic writes (trainer.atomic): the file appears whole under its name, synced to disk first, with
mode 0644 whatever the umask; a failed write leaves the old file and no temporary behind."""

import os
import stat

import pytest

from trainer import atomic
from trainer.tables import leftover_temporaries


def temporaries(folder):
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def test_a_file_is_written_with_mode_0644_whatever_the_umask(tmp_path):
    before = os.umask(0o077)
    try:
        atomic.write_bytes(tmp_path / "run.json", b"{}")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "run.json").stat().st_mode) == 0o644
    assert (tmp_path / "run.json").read_bytes() == b"{}"


def test_the_data_is_synced_on_the_temporary_file_before_the_rename(tmp_path, monkeypatch):
    """A machine crash must not leave an empty file under the final name: fsync of the temporary
    file, holding all its data, comes before the rename."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        events.append(("fsync", os.path.basename(name), os.path.getsize(name)))
        real_fsync(fd)

    def replace(source, target):
        events.append(("replace", os.path.basename(source), os.path.basename(target)))
        real_replace(source, target)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic.write_bytes(tmp_path / "metrics.part-000001.parquet", b"x" * 100_000)
    (synced, temporary, size), renamed = events
    assert synced == "fsync" and temporary.startswith(".metrics.part-000001.parquet.") and size == 100_000
    assert renamed == ("replace", temporary, "metrics.part-000001.parquet")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "run.json"
    atomic.write_bytes(path, b"old")

    def fails(handle):
        handle.write(b"half")
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError, match="No space left"):
        atomic.atomic_write(path, fails)
    assert path.read_bytes() == b"old" and temporaries(tmp_path) == []


def test_a_temporary_name_already_taken_is_never_opened(tmp_path, monkeypatch):
    """Names are drawn until one is free, as mkstemp does; the file already there is left as it was."""
    taken = tmp_path / ".run.json.aaaaaaaa.tmp"
    taken.write_bytes(b"another writer's")
    names = iter(["aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda n: next(names))
    atomic.write_bytes(tmp_path / "run.json", b"{}")
    assert taken.read_bytes() == b"another writer's" and temporaries(tmp_path) == [taken.name]
    assert (tmp_path / "run.json").read_bytes() == b"{}"


def test_a_killed_writes_temporary_is_one_the_compaction_removes(tmp_path):
    """A process killed between creating its temporary file and the rename leaves it; its name
    must be one `leftover_temporaries` recognises (".T.part-N.parquet.XXXXXXXX.tmp")."""
    fd, tmp = atomic.create_temporary(tmp_path / "mi.part-000003.parquet")
    os.close(fd)
    assert [path.name for path in leftover_temporaries(tmp_path)] == [os.path.basename(tmp)]
