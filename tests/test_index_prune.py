"""The user's index cache keeps the indexes of roots that exist, at most MAX_INDEXES of them
(ibstore.index_prune): a new index folder drops those of roots that are gone, then the least
recently saved."""

from __future__ import annotations

import os
import shutil

import pytest

from ibstore import index, index_file, index_prune
from ibstore.index import scan

from conftest import write_tanh_runs


@pytest.fixture
def make_root(tmp_path, private_index):
    def make(name: str):
        root = tmp_path / name
        write_tanh_runs(root, 1)
        assert scan(root).index_path is not None   # its index saved
        return root
    return make


def index_home(tmp_path):
    return tmp_path / "cache" / "ib-lab" / "index"


def test_a_new_index_removes_those_of_roots_that_are_gone_or_replaced(tmp_path, make_root):
    kept, deleted, replaced = make_root("kept"), make_root("deleted"), make_root("replaced")
    folders = {root: index_file.cache_dir(root) for root in (kept, deleted, replaced)}
    assert all((folder / index_prune.ROOT_FILE).is_file() for folder in folders.values())
    shutil.rmtree(deleted)
    # the same path, another folder: made before the old one goes, so it cannot reuse its inode
    successor = tmp_path / "successor"
    successor.mkdir()
    shutil.rmtree(replaced)
    successor.rename(replaced)
    index.forget()
    new = make_root("new")
    assert sorted(os.listdir(index_home(tmp_path))) == sorted(
        folder.name for folder in (folders[kept], index_file.cache_dir(new), ))
    assert index_file.cache_dir(replaced) not in folders.values()   # its new folder gets a new index


def test_beyond_the_cap_the_least_recently_saved_indexes_go_first(tmp_path, make_root, monkeypatch):
    monkeypatch.setattr(index_prune, "MAX_INDEXES", 3)
    roots = [make_root(f"root{n}") for n in range(3)]
    for age, root in zip((300, 100, 200), roots):   # root0 saved longest ago, then root2
        saved = index_file.cache_dir(root)   # index.bin is renamed into it: its mtime is the last save
        os.utime(saved, (saved.stat().st_atime, saved.stat().st_mtime - age))
    make_root("root3")
    left = set(os.listdir(index_home(tmp_path)))
    assert left == {index_file.cache_dir(root).name for root in (roots[1], roots[2], tmp_path / "root3")}
    make_root("root4")
    assert index_file.cache_dir(roots[2]).name not in os.listdir(index_home(tmp_path))
    assert len(os.listdir(index_home(tmp_path))) == 3


def test_only_private_folders_of_the_index_home_are_removed_never_through_a_link(tmp_path, make_root):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / index_prune.ROOT_FILE).write_text('{"root": "/no/such/root", "device": 1, "inode": 1}')
    home = index_home(tmp_path)
    make_root("first")
    (home / "link").symlink_to(elsewhere)
    shared = home / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    (shared / index_prune.ROOT_FILE).write_text('{"root": "/no/such/root", "device": 1, "inode": 1}')
    make_root("second")
    assert (elsewhere / index_prune.ROOT_FILE).is_file() and (home / "link").is_symlink()
    assert (shared / index_prune.ROOT_FILE).is_file()   # not this user's alone: not ours to judge
