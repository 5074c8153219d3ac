"""The index is a cache, never an authority (issue 17.2).

Someone who can write a shared results root plants files where an index could be: a named
pipe, a 6 GiB sparse file, a symlink, and a well-formed index (valid magic, version and CRC:
what the former code trusted) whose records name a run FORGED with test accuracy 0.999 and
list a run that does not exist. None of it may block a scan, cost memory, or be shown: the
index lives only in the user's own cache folder, is read only from a private folder, only as
a regular file of this user and of plausible size, opened without following links or blocking.
"""

from __future__ import annotations

import json
import os
import resource
import threading
from pathlib import Path

import pytest

from ibstore import index, index_file, views
from ibstore.index_file import INDEX_FILE
from ibstore.index import scan

NOBODY = 65534
HANG_GUARD_S = 30   # a scan that blocks on a planted file would never end; this ends the test


@pytest.fixture
def root(small_tanh_root):
    return small_tanh_root(3)


def truth(root: Path) -> dict[str, tuple[str, float]]:
    """run_id -> (name, final test accuracy) as the run folders say, from a scan with no index."""
    return {r.run_id: (r.name, r.final_test_accuracy) for r in scan(root).runs}


def shown(result) -> dict[str, tuple[str, float]]:
    return {r.run_id: (r.name, r.final_test_accuracy) for r in result.runs}


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def guarded_scan(root: Path):
    """A fresh process's scan of `root` (nothing kept in memory), in a thread so that a scan
    blocked on a planted file fails the test instead of hanging it."""
    index.forget()
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=scan(root)), daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    assert not worker.is_alive(), "the scan blocked"
    return outcome["result"]


def forge(root: Path, directory: Path) -> None:
    """Write into `directory` a well-formed index of `root` whose first run is named FORGED with
    test accuracy 0.999 and which lists a ghost run no folder holds."""
    legit = index_file.cache_dir(root) / INDEX_FILE
    entries, shown_statuses, files, _, _ = index_file._parse(index_file.read_index_file(legit, 1 << 40))
    first = sorted(entries)[0]
    record = json.loads(entries[first].record_json)
    entries[first].record_json = json.dumps({**record, "name": "FORGED", "final_test_accuracy": 0.999}).encode()
    ghost = dict(record, run_id="ghost", name="ghost")
    entries["ghost"] = index_file.Entry("ghost", entries[first].signature, json.dumps(ghost).encode(),
                                   entries[first].written_status, ())
    shown_statuses["ghost"] = shown_statuses[first]
    records = [entries[name].record() for name in sorted(entries)]
    directory.mkdir(parents=True, exist_ok=True)
    original = index_file.writable_index_dir
    index_file.writable_index_dir = lambda _: directory
    try:
        assert index_file.save(root, entries, files, views.runs_table(records),
                               views.config_table(records)) == directory / INDEX_FILE
    finally:
        index_file.writable_index_dir = original


def test_the_index_is_kept_in_the_users_cache_only(root):
    result = scan(root)
    assert result.index_path == index_file.cache_dir(root) / INDEX_FILE
    assert not (root / ".index").exists()
    mode = index_file.cache_dir(root).stat().st_mode & 0o777
    assert mode == 0o700


def test_a_forged_index_in_the_root_is_never_shown(root):
    expected = truth(root)
    forge(root, root / ".index")           # where the former code read it first
    result = guarded_scan(root)
    assert shown(result) == expected and "ghost" not in shown(result)
    assert "FORGED" not in {name for name, _ in shown(result).values()}


@pytest.mark.parametrize("loosen", ["group-writable", "other user's folder"])
def test_an_index_folder_others_can_write_is_not_used(root, loosen):
    expected = truth(root)
    directory = index_file.cache_dir(root)
    forge(root, directory)                 # as if another user had written it there
    if loosen == "group-writable":
        directory.chmod(0o770)
    else:
        os.chown(directory, NOBODY, NOBODY) if os.geteuid() == 0 else pytest.skip("needs root to chown")
    result = guarded_scan(root)
    assert shown(result) == expected and "ghost" not in shown(result)
    assert "not used" in result.index_note and "rebuilt in memory" in result.index_note


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_an_index_file_of_another_user_is_not_used(root):
    expected = truth(root)
    forge(root, index_file.cache_dir(root))
    os.chown(index_file.cache_dir(root) / INDEX_FILE, NOBODY, NOBODY)
    result = guarded_scan(root)
    assert shown(result) == expected and "belongs to another user" in result.index_note


def plant_fifo(path: Path) -> None:
    os.mkfifo(path)


def plant_sparse(path: Path) -> None:
    with open(path, "wb") as file:
        file.truncate(6 << 30)


def plant_symlink(path: Path) -> None:
    target = path.with_name("elsewhere.bin")
    plant_sparse(target)
    path.symlink_to(target)


@pytest.mark.parametrize("plant, why", [(plant_fifo, "not a regular file"),
                                        (plant_sparse, "more than an index of this root can hold"),
                                        (plant_symlink, "Too many levels of symbolic links")])
@pytest.mark.parametrize("where", ["user cache", "root"])
def test_a_planted_file_costs_nothing_and_is_rebuilt(root, plant, why, where):
    expected = truth(root)
    directory = index_file.cache_dir(root) if where == "user cache" else root / ".index"
    index.forget()
    (directory / INDEX_FILE).unlink(missing_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    plant(directory / INDEX_FILE)
    before_rss = rss_bytes()
    before_cpu = resource.getrusage(resource.RUSAGE_SELF)
    result = guarded_scan(root)
    after_cpu = resource.getrusage(resource.RUSAGE_SELF)
    assert shown(result) == expected
    assert rss_bytes() - before_rss < 100 * 2**20
    # the file is judged from its descriptor's fstat: nothing of it is read (bytes read by this process)
    assert after_cpu.ru_inblock - before_cpu.ru_inblock < 10_000
    if where == "user cache":
        assert why in result.index_note
    else:
        assert result.index_note in ("no index yet: built", "loaded " + str(index_file.cache_dir(root) / INDEX_FILE))
