"""Keeping the user's index cache small: each index folder says which root it indexes
(`root.json`, written when the folder is made), and making a new folder removes the folders of
roots that no longer exist (the path gone, or now another folder: another device or inode, so
another key) and, beyond MAX_INDEXES folders, the least recently saved ones. A test suite or a
user who opens many temporary roots otherwise leaves one index folder per root for ever.

Only folders of this user that no one else can write, directly inside the index home, are
removed (never through a link); a folder without root.json (written by earlier code) is removed
only by the count. Removing the index of a root in use costs its next reader one cold scan.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ibstore.private_file import read_index_file, why_not_private

ROOT_FILE = "root.json"
MAX_INDEXES = 100          # index folders kept; the least recently saved go first
MAX_ROOT_FILE_BYTES = 1 << 16


def root_identity(root: Path) -> dict | None:
    """The resolved path of `root` and its device and inode, or None if it cannot be inspected."""
    resolved = root.resolve()
    try:
        info = os.stat(resolved)
    except OSError:
        return None
    return {"root": str(resolved), "device": info.st_dev, "inode": info.st_ino}


def write_root_file(directory: Path, root: Path) -> None:
    """Say in the new index folder `directory` which root it indexes (skipped if it cannot be)."""
    identity = root_identity(root)
    if identity is None:
        return
    temporary = directory / f".{ROOT_FILE}.{os.getpid()}.tmp"
    try:
        temporary.write_text(json.dumps(identity))   # surrogates of an undecodable path as \udcxx
        os.replace(temporary, directory / ROOT_FILE)
    except OSError:
        temporary.unlink(missing_ok=True)


def root_gone(directory: Path) -> bool:
    """True if `directory`'s root.json names a root that no longer exists as it was."""
    try:
        saved = json.loads(read_index_file(directory / ROOT_FILE, MAX_ROOT_FILE_BYTES).to_pybytes())
        now = root_identity(Path(saved["root"]))
        return now is None or (now["device"], now["inode"]) != (saved["device"], saved["inode"])
    except (OSError, ValueError, KeyError, TypeError):   # no root.json, or not one we wrote
        return False


def prune(index_home: Path, keep: Path) -> list[Path]:
    """Remove from `index_home` the index folders of roots that are gone, then the least recently
    saved beyond MAX_INDEXES (never `keep`); the folders removed."""
    try:
        folders = [index_home / name for name in os.listdir(index_home) if not name.startswith(".")]
    except OSError:
        return []
    folders = [folder for folder in folders if folder != keep and why_not_private(folder) is None]
    removed = [folder for folder in folders if root_gone(folder)]
    kept = [folder for folder in folders if folder not in removed]
    if len(kept) + 1 > MAX_INDEXES:   # + 1: `keep`
        kept.sort(key=_saved_at)
        removed += kept[:len(kept) + 1 - MAX_INDEXES]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)   # lstat-checked above; rmtree follows no link
    return removed


def _saved_at(folder: Path) -> float:
    """When the folder's index was last saved: index.bin is renamed into it, which sets its mtime."""
    try:
        return os.lstat(folder).st_mtime
    except OSError:
        return 0.0
