"""The `trainer` command: run, sweep, sql, estimate, ls.

Exit status: 0 success, 1 a run failed (or diverged, or was interrupted),
2 bad input (config, dataset, query, arguments). User mistakes get one clear
line on stderr, never a stack trace.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path

from ibstore import layout
from ibstore.schema import HEARTBEAT_STALE_SECONDS

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UserError(Exception):
    """Bad input: printed as one line, exit status 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from trainer import config, datasets, estimators, schedule, store
    return (UserError, config.ConfigError, datasets.DatasetError, estimators.EstimatorError,
            schedule.ScheduleError, store.StoreError)


def _terminate_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    from trainer import config

    raw = config.apply_overrides(config.load_file(args.config), args.set or [])
    experiments = config.plan(raw)
    for experiment in experiments:
        if experiment["ignored"]:
            print(f"note: ignoring keys with no meaning here: {', '.join(sorted(experiment['ignored']))}",
                  file=sys.stderr)
    root = layout.results_root(args.results)
    from trainer.training import run_experiment

    statuses = {}
    for experiment in experiments:
        try:
            statuses.update(run_experiment(experiment, root, progress=not args.quiet))
        except _user_errors():
            raise
        except Exception:
            traceback.print_exc()
            print(f"error: experiment {experiment['name']!r} failed; its runs are marked 'failed'", file=sys.stderr)
            return EXIT_RUN_FAILED
    for run_id, status in statuses.items():
        print(f"{run_id}: {status}  ({layout.run_dir(root, run_id)})")
    return EXIT_OK if all(s == "completed" for s in statuses.values()) else EXIT_RUN_FAILED


def effective_status(meta: dict, now: float | None = None) -> str:
    """A run that says `running` but whose heartbeat is stale was killed: interrupted."""
    if meta.get("status") != "running":
        return meta.get("status", "unknown")
    try:
        beat = datetime.fromisoformat(meta["heartbeat_at"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return "interrupted"
    return "interrupted" if (now or time.time()) - beat > HEARTBEAT_STALE_SECONDS else "running"


def cmd_ls(args: argparse.Namespace) -> int:
    root = layout.results_root(args.results)
    runs_dir = layout.runs_dir(root)
    print(f"results root: {root} ({layout.root_source(args.results)})")
    paths = sorted(runs_dir.glob("*/run.json")) if runs_dir.exists() else []
    if not paths:
        print("no runs yet: try `trainer run data/configs/basic.json --set epochs=300`")
        return EXIT_OK
    print(f"{'run_id':40} {'status':12} {'epochs':>11}  name")
    for path in paths:
        try:
            meta = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            print(f"{path.parent.name:40} {'unreadable':12} {'':>11}  run.json: {error}")
            continue
        epochs = f"{meta.get('epochs_done', '?')}/{meta.get('epochs_total', '?')}"
        print(f"{meta.get('run_id', path.parent.name):40} {effective_status(meta):12} {epochs:>11}  {meta.get('name', '')}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainer", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)

    def with_results(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--results", metavar="DIR",
                         help=f"results root (default: ${layout.ROOT_ENV}, else {layout.DEFAULT_ROOT})")
        return sub

    run = with_results(verbs.add_parser("run", help="train one experiment (all its seeds)"))
    run.add_argument("config", metavar="CONFIG.json")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config key; the value is parsed as JSON if it can be")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=cmd_run)

    ls = with_results(verbs.add_parser("ls", help="list runs with their status"))
    ls.set_defaults(handler=cmd_ls)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted: runs marked 'interrupted'; what was logged so far is kept", file=sys.stderr)
        return 130
    except Exception as error:
        if isinstance(error, _user_errors()):
            print(f"error: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise
