"""Where results live: the results root and the files of one run."""

from __future__ import annotations

import os
from pathlib import Path

from ibstore.schema import TABLE_SCHEMAS

DEFAULT_ROOT = Path("data/results")
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


def runs_dir(root: Path) -> Path:
    return Path(root) / "runs"


def run_dir(root: Path, run_id: str) -> Path:
    return runs_dir(root) / run_id


def run_json_path(root: Path, run_id: str) -> Path:
    return run_dir(root, run_id) / "run.json"


def table_path(root: Path, run_id: str, table: str) -> Path:
    if table not in TABLE_SCHEMAS:
        raise ValueError(f"unknown table {table!r}; tables are {', '.join(TABLE_SCHEMAS)}")
    return run_dir(root, run_id) / f"{table}.parquet"


def activations_dir(root: Path, run_id: str) -> Path:
    """Saved raw activations (optional, for re-estimation)."""
    return run_dir(root, run_id) / "activations"


def checkpoints_dir(root: Path, run_id: str) -> Path:
    return run_dir(root, run_id) / "checkpoints"
