"""Where results live: the results root and the files of one run."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import TypeVar

from ibstore.schema import TABLE_SCHEMAS

DEFAULT_ROOT = Path("data/results")
T = TypeVar("T")
ROOT_ENV = "IB_RESULTS"



def results_root(cli_value: str | os.PathLike | None = None) -> Path:
    """`--results` if given, else $IB_RESULTS, else data/results (DESIGN.md)."""
    if cli_value:
        return Path(cli_value)
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV])
    return DEFAULT_ROOT


def root_source(cli_value: str | os.PathLike | None = None) -> str:
    """Which rule chose the root, for display ("--results", "$IB_RESULTS", "default")."""
    if cli_value:
        return "--results"
    if os.environ.get(ROOT_ENV):
        return f"${ROOT_ENV}"
    return "default"


def leads_nowhere(root: Path) -> bool:
    """Whether `root` is a symlink to nothing: a missing target, or a loop (`ln -s a b; ln -s b a`)."""
    return Path(root).is_symlink() and not Path(root).exists()


def runs_dir(root: Path) -> Path:
    return Path(root) / "runs"


def holds_run_folders(folder: Path, looked_at: int = 100) -> bool:
    """Whether one of the first `looked_at` entries of `folder` is a run folder (has a run.json): a
    root's runs/ folder given as the root. An entry this user may not search (lost+found, another
    user's folder in /tmp) is none."""
    def is_run_folder(entry: Path) -> bool:
        try:
            return (entry / "run.json").is_file()
        except OSError:
            return False

    try:
        return any(is_run_folder(entry) for _, entry in zip(range(looked_at), folder.iterdir()))
    except OSError:     # the folder itself cannot be listed: what reads it next says so
        return False


def run_dir(root: Path, run_id: str) -> Path:
    return runs_dir(root) / run_id


def run_json_path(root: Path, run_id: str) -> Path:
    return run_dir(root, run_id) / "run.json"


def table_path(root: Path, run_id: str, table: str) -> Path:
    if table not in TABLE_SCHEMAS:
        raise ValueError(f"unknown table {table!r}; tables are {', '.join(TABLE_SCHEMAS)}")
    return run_dir(root, run_id) / f"{table}.parquet"


# A table is a base file `T.parquet` plus part files `T.part-000001.parquet`, ... (one per
# flush with new rows). The base may carry this Parquet key-value metadata: parts numbered
# <= its value are already inside the base and are ignored (DESIGN.md, "Results root").
COMPACTED_THROUGH_KEY = b"ib.compacted_through"
PART_DIGITS = 6
_TABLE_FILE = re.compile(r"(?P<table>[a-z_]+)(?:\.part-(?P<part>\d{%d,}))?\.parquet" % PART_DIGITS)


def table_part_path(root: Path, run_id: str, table: str, n: int) -> Path:
    """Part `n` (>= 1) of a run's table: `<run>/<table>.part-<n, 6 digits>.parquet`."""
    if n < 1:
        raise ValueError(f"part numbers start at 1, got {n}")
    return table_path(root, run_id, table).with_name(f"{table}.part-{n:0{PART_DIGITS}d}.parquet")


def parse_table_file(filename: str) -> tuple[str, int | None] | None:
    """(table, part number) for a part file, (table, None) for a base file, None for anything
    else (other files, unknown tables, temporary files, which start with ".")."""
    match = _TABLE_FILE.fullmatch(filename)
    if match is None or match["table"] not in TABLE_SCHEMAS:
        return None
    part = int(match["part"]) if match["part"] is not None else None
    return None if part == 0 else (match["table"], part)


def compacted_through(key_value_metadata: dict[bytes, bytes] | None) -> int:
    """The base file's `ib.compacted_through` from its Parquet key-value metadata
    (`pq.read_metadata(path).metadata`); 0 when absent or not a whole number."""
    value = (key_value_metadata or {}).get(COMPACTED_THROUGH_KEY, b"")
    return int(value) if value.isdigit() and len(value) <= 18 else 0


def current_table_files(filenames, compacted_through: dict[str, int] | None = None) -> dict[str, list[str]]:
    """The files that make up each table, from a run folder's file names: the base first, then
    its parts by number. `compacted_through`: table -> the base's `ib.compacted_through` (0 or
    absent: none); parts at or below it are left out because the base holds their rows."""
    listed: dict[str, dict[int | None, str]] = {}
    for name in filenames:
        parsed = parse_table_file(name)
        if parsed is not None:
            listed.setdefault(parsed[0], {})[parsed[1]] = name
    return current_files(listed, compacted_through)


def current_files(listed: dict[str, dict[int | None, T]], compacted_through: dict[str, int] | None = None
                  ) -> dict[str, list[T]]:
    """`current_table_files` of files already parsed: table -> part (None: the base) -> file."""
    compacted_through = compacted_through or {}
    current = {}
    for table in TABLE_SCHEMAS:
        by_part = listed.get(table, {})
        through = compacted_through.get(table, 0)
        names = ([by_part[None]] if None in by_part else []) + [
            by_part[part] for part in sorted(part for part in by_part if part is not None and part > through)]
        if names:
            current[table] = names
    return current


def real_folder(folder: Path, parents: bool = True) -> Path:
    """`folder`, made if missing (with its missing parents unless not `parents`: a run's
    checkpoints/ and activations/ are not made where its folder is gone), for writing into: an
    OSError if it is a symbolic link. Another user's link in a shared root (runs/, a run's folder,
    its checkpoints/, .sweeps/) sent a run's files, and the removal of older ones, out of the root;
    readers skip such runs already. (The root itself may be a link its owner made.)"""
    for _ in range(2):   # before, and after a mkdir another process may have raced
        if folder.is_symlink():
            raise OSError(errno.ELOOP, f"{folder} is a symbolic link; results are written only inside the "
                                       f"results root, not through links (remove the link)")
        folder.mkdir(parents=parents, exist_ok=True)
    return folder


def activations_dir(root: Path, run_id: str) -> Path:
    """Saved raw activations (optional, for re-estimation)."""
    return run_dir(root, run_id) / "activations"


def checkpoints_dir(root: Path, run_id: str) -> Path:
    return run_dir(root, run_id) / "checkpoints"


# Saved activations and checkpoints: one `epoch_NNNNNN.npz` per epoch in their folder.
_EPOCH_FILE = re.compile(r"epoch_(\d+)\.npz")


def epoch_file(folder: Path, epoch: int) -> Path:
    return folder / f"epoch_{epoch:06d}.npz"


def epochs_in(folder: Path) -> list[int]:
    """The epochs that have an `epoch_NNNNNN.npz` in `folder`, sorted (none if it is missing)."""
    # only names epoch_file writes: a stray "epoch_10.npz" beside epoch_000010.npz read epoch 10 twice
    return sorted(int(m.group(1)) for p in Path(folder).glob("epoch_*.npz")
                  if (m := _EPOCH_FILE.fullmatch(p.name)) and p.name == epoch_file(Path(), int(m.group(1))).name)
