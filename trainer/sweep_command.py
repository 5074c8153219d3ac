"""`trainer sweep`: its arguments and its handler (the sweep itself is trainer.sweep)."""

from __future__ import annotations

import argparse

from ibstore import layout
from trainer.arguments import EXIT_OK, EXIT_RUN_FAILED, RAY_MODES, positive_int, positive_seconds
from trainer.progress import LINE_SECONDS


def add_parser(verbs, with_results) -> None:
    sweep = with_results(verbs.add_parser(
        "sweep", help="train every config under PATH (grids expanded); skip runs that are complete"))
    sweep.add_argument("path", metavar="PATH", help="a config file or a folder of them (recursive, *.json)")
    sweep.add_argument("--workers", type=positive_int, metavar="N",
                       help="local worker processes, one TensorFlow thread each (default: number of cores)")
    sweep.add_argument("--ray", metavar="ADDRESS",
                       help="run on a Ray cluster: auto, ray://host:port, or local (start one here)")
    sweep.add_argument("--ray-mode", choices=RAY_MODES,
                       help="shared: Ray workers write the results root themselves (a shared filesystem); "
                            "ship: they train into node-local scratch and send their files to this process, "
                            "the only writer of the root; auto (default): ship unless every node sees the root")
    sweep.add_argument("--retry-failed", action="store_true", help="rerun failed and diverged runs")
    restart = sweep.add_mutually_exclusive_group()   # together, --force silently restarted what --resume continues
    restart.add_argument("--resume", action="store_true",
                         help="continue interrupted runs from their last checkpoint (restart them if none)")
    restart.add_argument("--force", action="store_true",
                         help="train every planned run again from the start, completed ones too "
                              "(never one another live process holds)")
    sweep.add_argument("--sweep-id", metavar="ID",
                       help="name of the progress file <results>/.sweeps/ID.json (default: start time and pid)")
    sweep.add_argument("--progress-seconds", type=positive_seconds, default=LINE_SECONDS, metavar="SECONDS",
                       help=f"without a terminal, print a progress line this often (default {LINE_SECONDS:g})")
    sweep.add_argument("--yes", action="store_true",
                       help="start a plan of more than 10,000 runs (refused without it)")
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a key of every config (e.g. epochs=2000 to shorten a built-in cohort; its "
                            "runs are others then: pass it again to resume them); the value is parsed as JSON if "
                            "it can be")
    sweep.set_defaults(handler=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from trainer import plan, sweep

    root = layout.results_root(args.results)
    # Counted from the grids before anything is expanded, planned or written.
    overrides = args.set or []
    plan.check_plan_size(plan.count_runs(args.path, overrides), root, confirmed=args.yes)
    completed = sweep.sweep(args.path, root, workers=args.workers,
                            ray_address=args.ray, retry_failed=args.retry_failed, resume=args.resume,
                            force=args.force, sweep_id=args.sweep_id, ray_mode=args.ray_mode,
                            line_seconds=args.progress_seconds, overrides=overrides)
    return EXIT_OK if completed else EXIT_RUN_FAILED
