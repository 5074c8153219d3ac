"""The `trainer` command: run, sweep, sql, estimate, ls.

Exit status: 0 success, 1 a run failed (or diverged, or was interrupted),
2 bad input (config, dataset, query, arguments). User mistakes get one clear
line on stderr, never a stack trace.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback

from ibstore import layout

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UserError(Exception):
    """Bad input: printed as one line, exit status 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from trainer import config, datasets, estimators, reestimate, schedule, store, sweep
    return (UserError, config.ConfigError, datasets.DatasetError, estimators.EstimatorError,
            schedule.ScheduleError, store.StoreError, reestimate.EstimateError, sweep.SweepError)


def _terminate_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    from trainer import config

    raw = config.apply_overrides(config.load_file(args.config), args.set or [])
    experiments = config.plan(raw)
    ignored = sorted({key for experiment in experiments for key in experiment["ignored"]})
    if ignored:
        print(f"note: ignoring keys with no meaning here: {', '.join(ignored)}", file=sys.stderr)
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: a whole number >= 1")
    return value


def cmd_sweep(args: argparse.Namespace) -> int:
    from trainer import sweep

    completed = sweep.sweep(args.path, layout.results_root(args.results), workers=args.workers,
                            ray_address=args.ray, retry_failed=args.retry_failed, resume=args.resume)
    return EXIT_OK if completed else EXIT_RUN_FAILED


def cmd_ls(args: argparse.Namespace) -> int:
    from ibstore.scan import scan

    root = layout.results_root(args.results)
    print(f"results root: {root} ({layout.root_source(args.results)})")
    found = scan(root)
    if not found.runs and not found.problems:
        print("no runs yet: try `trainer run data/configs/basic.json --set epochs=300`")
        return EXIT_OK
    print(f"{'run_id':44} {'status':12} {'epochs':>11}  name")
    for run in sorted(found.runs, key=lambda r: r["run_id"]):
        epochs = f"{run.get('epochs_done', '?')}/{run.get('epochs_total', '?')}"
        print(f"{run['run_id']:44} {run['status']:12} {epochs:>11}  {run.get('name', '')}")
    for problem in found.problems:
        print(f"warning: {problem.path}: {problem.problem}", file=sys.stderr)
    return EXIT_OK


def cmd_sql(args: argparse.Namespace) -> int:
    from ibstore import sandbox

    root = layout.results_root(args.results)
    try:
        frame = sandbox.run_query(root, args.query)
    except sandbox.SqlError as error:
        raise UserError(str(error)) from None
    text = sandbox.format_result(frame, args.format)
    print(text, end="" if text.endswith("\n") else "\n")
    return EXIT_OK


def cmd_estimate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from trainer import config, estimators, reestimate, saved
    from trainer.measure import params_text

    root = layout.results_root(args.results)
    params = dict(config.parse_override(text) for text in args.param or [])
    name, params = estimators.canonical(args.estimator, params)
    run_ids = reestimate.select_runs(root, args.runs)
    total = sum(len(saved.saved_epochs(root, run_id)) for run_id in run_ids)
    with tqdm(total=total, desc=f"{name} on {len(run_ids)} run(s)", unit="epoch") as bar:
        for run_id in run_ids:
            written = reestimate.reestimate(root, run_id, name, params, on_epoch=lambda: bar.update(1))
            tqdm.write(f"{run_id}: {written} MI rows ({name} {params_text(params)})")
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

    sweep = with_results(verbs.add_parser(
        "sweep", help="train every config under PATH (grids expanded); skip runs that are complete"))
    sweep.add_argument("path", metavar="PATH", help="a config file or a folder of them (recursive, *.json)")
    sweep.add_argument("--workers", type=_positive_int, metavar="N",
                       help="local worker processes, one TensorFlow thread each (default: number of cores)")
    sweep.add_argument("--ray", metavar="ADDRESS",
                       help="run on a Ray cluster: auto, ray://host:port, or local (start one here)")
    sweep.add_argument("--retry-failed", action="store_true", help="rerun failed and diverged runs")
    sweep.add_argument("--resume", action="store_true",
                       help="continue interrupted runs from their last checkpoint (restart them if none)")
    sweep.set_defaults(handler=cmd_sweep)

    ls = with_results(verbs.add_parser("ls", help="list runs with their status"))
    ls.set_defaults(handler=cmd_ls)

    sql = with_results(verbs.add_parser("sql", help="read-only SQL over the results"))
    sql.add_argument("query", metavar="QUERY",
                     help="one SELECT/WITH/DESCRIBE/SHOW/EXPLAIN/SUMMARIZE statement over the views "
                          "runs, config, metrics, mi, gradients, activations, activation_stats")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sql.set_defaults(handler=cmd_sql)

    estimate = with_results(verbs.add_parser(
        "estimate", help="add MI rows of another estimator to finished runs (needs saved activations)"))
    estimate.add_argument("runs", nargs="+", metavar="RUN_ID", help="run ids, group ids or cohort names")
    estimate.add_argument("--estimator", required=True, metavar="NAME")
    estimate.add_argument("--param", action="append", metavar="K=V", help="estimator parameter (JSON value)")
    estimate.set_defaults(handler=cmd_estimate)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # TensorFlow's start-up chatter hides the progress bar
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
