"""The `trainer` command: run, sweep, sql, estimate, ls, compact, report.

Exit status: 0 success, 1 a run failed (or diverged, or was interrupted),
2 bad input (config, dataset, query, arguments). User mistakes get one clear
line on stderr, never a stack trace.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import signal
import sys
from pathlib import Path

from ibstore import layout
from ibstore.text import terminal_text
from trainer import interrupts, sweep_command
from trainer.arguments import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_RUN_FAILED,
    limit_seconds,
    positive_int,
    size,
)


class UserError(Exception):
    """Bad input: printed as one line, exit status 2."""


def _read_root(args: argparse.Namespace) -> Path:
    """The results root a verb reads. One that is there but is not a folder is bad input: a
    mistyped --results naming a file once listed "no runs yet" and compacted nothing, exit 0.
    (A root not made yet has no runs: that is said as such.)"""
    root = layout.results_root(args.results)
    if layout.leads_nowhere(root):
        raise UserError(f"results root {terminal_text(str(root))!r} ({layout.root_source(args.results)}) is a symlink "
                        f"that leads nowhere (its target is missing, or it loops); give the folder that holds runs/ "
                        f"(--results DIR or ${layout.ROOT_ENV})")
    if root.exists() and not root.is_dir():
        raise UserError(f"results root {terminal_text(str(root))!r} ({layout.root_source(args.results)}) is not "
                        f"a folder; give the folder that holds runs/ (--results DIR or ${layout.ROOT_ENV})")
    try:
        lacks_runs = root.is_dir() and not layout.runs_dir(root).is_dir()
    except OSError as error:     # a folder this user may not search
        raise UserError(f"results root {terminal_text(str(root))!r} ({layout.root_source(args.results)}) cannot be "
                        f"read: {error.strerror}") from None
    if lacks_runs and layout.holds_run_folders(root):
        raise UserError(f"results root {terminal_text(str(root))!r} ({layout.root_source(args.results)}) holds run "
                        f"folders itself: it is a root's runs/ folder; give the folder that holds it "
                        f"(--results {terminal_text(str(root.parent))!r})")
    return root


def _root_text(root: Path, args: argparse.Namespace) -> str:
    """The root as a read verb names it: its path, the rule that chose it, and whether it exists
    (a mistyped --results reads as an empty root)."""
    missing = "" if root.exists() else "; no such folder"
    return terminal_text(f"{root} ({layout.root_source(args.results)}{missing})")


def _user_errors() -> tuple[type[BaseException], ...]:
    from trainer import reestimate, store, sweep
    from trainer.task import users_mistakes
    return UserError, *users_mistakes(), store.StoreError, reestimate.EstimateError, sweep.SweepError


def cmd_run(args: argparse.Namespace) -> int:
    """`trainer run CONFIG` (trainer.run_command)."""
    from trainer.run_command import run_config

    return run_config(args, _user_errors())


def cmd_compact(args: argparse.Namespace) -> int:
    """Merge finished runs' part files into one file per table; live runs are left alone."""
    from trainer.tables import compact

    root = _read_root(args)
    merged, held, failed = compact(root)
    for run_id, parts in merged.items():
        print(f"{terminal_text(run_id)}: merged {parts} part file(s)")
    for run_id, text in held.items():
        print(terminal_text(f"{run_id}: {text}; left alone"))
    for run_id, error in failed.items():
        print(terminal_text(f"{run_id}: could not be compacted ({error}); tables merged before it stay merged, the "
                            f"others keep their part files (no row is lost either way)"), file=sys.stderr)
    print(terminal_text(f"compacted {len(merged)} run(s) under {root}; {len(held)} live, {len(failed)} failed"))
    return EXIT_OK if not failed else EXIT_RUN_FAILED


def cmd_ls(args: argparse.Namespace) -> int:
    from ibstore import sandbox, statement_check, views
    from ibstore.index import scan
    from trainer import listing

    root = _read_root(args)
    found = scan(root)
    runs = found.runs
    # a blank condition is no condition, as an empty --results or --sweep-id is none, and a cleared
    # condition on the explorer's Runs page
    where = (args.where or "").strip()
    if where:
        # The condition is user SQL: it runs in the read-only sandbox like `trainer sql`.
        configs = [run.config for run in found.runs]
        try:
            matched = set(sandbox.run_query(found, statement_check.runs_where(where))["run_id"])
        except sandbox.SqlError as error:
            hint = views.where_error_hint(configs, where, error)
            raise UserError(f"--where: {error}" + (f" ({hint})" if hint else "")) from None
        runs = [run for run in runs if run.run_id in matched]
        if not runs and (hint := views.json_text_note(configs, where)):
            print(terminal_text(f"note: {hint}"), file=sys.stderr)
    print(f"results root: {_root_text(root, args)}")
    if where:      # a header alone would not say whether the condition matched nothing or the root is empty
        print(f"--where matched {len(runs)} of {len(found.runs)} run{'' if len(found.runs) == 1 else 's'}")
    print(listing.table(runs))
    if cohorts := listing.cohorts_line(runs, found.runs):
        print(cohorts)
    if not found.runs:
        print(listing.first_run_hint())
    for problem in found.problems:
        print(f"warning: {terminal_text(problem.path)}: {terminal_text(problem.problem)}", file=sys.stderr)
    return EXIT_OK


SIGNAL_GRACE_S = 2.0


def cmd_sql(args: argparse.Namespace) -> int:
    from ibstore import query_process, read_retry, sandbox
    from ibstore.index import scan
    from ibstore.scan import left_out
    from trainer import sql_output

    query_process.start_server()   # its imports overlap the scan below
    root = _read_root(args)
    if not (root / "runs").is_dir():   # a mistyped --results answered every query with empty views, silently
        print(f"note: results root {_root_text(root, args)} has no runs yet: every view is empty", file=sys.stderr)
    try:
        fmt = sql_output.format_for(args.output, args.format)
        if fmt == "parquet" and args.output is None:
            raise sql_output.OutputError("--format parquet needs --output FILE")
        output = sql_output.output_path(args.output, root) if args.output else None
        limits = sandbox.Limits(timeout_s=args.timeout or None, memory_bytes=args.memory)
        found = scan(root)
        statement = sandbox.Statement(found, args.query, limits)
    except (sandbox.SqlError, sql_output.OutputError) as error:
        raise UserError(str(error)) from None

    def consume(batches, schema):
        if fmt == "table":
            table, total = sandbox.first_rows(batches, schema, args.max_rows)
            return sql_output.format_table(table, total, args.max_rows).encode()
        if output is not None:
            return sql_output.write_atomically(output, lambda file: sql_output.write_rows(fmt, batches, schema, file))
        return sql_output.write_rows(fmt, batches, schema, sys.stdout.buffer, terminal=sys.stdout.isatty())

    attempt = 1
    while True:
        outcome, signals = _run_interruptibly(statement, consume)
        if signals or not _read_again(outcome.get("error"), root, attempt, fmt == "table" or output is not None):
            break
        attempt += 1
        read_retry.wait_before(attempt)
        found = scan(root)
        statement = sandbox.Statement(found, args.query, limits)
    if signals:
        if output is not None:
            sql_output.temporary_path(output).unlink(missing_ok=True)   # a worker cut short leaves it
        print(f"interrupted ({signal.Signals(signals[0]).name}): query stopped", file=sys.stderr)
        return 128 + signals[0]
    error = outcome.get("error")
    if isinstance(error, BrokenPipeError):
        return _reader_left("sql")
    if error is not None:
        raise _sql_failure(error, args.output)
    if fmt == "table":
        sys.stdout.buffer.write(outcome["value"])
        sys.stdout.flush()
    elif output is not None:
        print(terminal_text(f"{outcome['value']:,} rows written to {output}"), file=sys.stderr)
    if left := left_out(found.problems):   # a count over the runs may be over fewer than the root holds
        print(f"note: {len(left):,} file(s) of the root could not be read and are left out of every view "
              '(trainer sql "SELECT * FROM problems" names them)', file=sys.stderr)
    return EXIT_OK


def _read_again(error: BaseException | None, root: Path, attempt: int, buffered: bool) -> bool:
    """Whether `trainer sql` runs its statement again on a new scan: a file it read was gone or
    damaged in place since its scan (a sweep compacted it beside the query, 1 read in 11 of an
    attacker's; a hand cut it), nothing is printed yet (`buffered`: a table, or a file written
    whole) and tries are left (ibstore.read_retry). A damaged file's run is read again by the next
    scan, which leaves the file out and names it; the index saved says so to the next command too."""
    from ibstore import index, read_retry, sandbox

    again = (isinstance(error, (sandbox.FileVanished, sandbox.FileDamaged)) and buffered
             and attempt < read_retry.READ_ATTEMPTS)
    if isinstance(error, sandbox.FileDamaged):
        index.reread(root, [error.run_id])
        if not again:   # no scan follows in this command to save it
            index.save_index(root)
    return again


def _sql_failure(error: BaseException, output: str | None) -> BaseException:
    """The one line a failed statement is reported with (a UserError), or the error itself."""
    from ibstore import sandbox

    if isinstance(error, sandbox.QueryStopped):
        return UserError(f"query stopped after {error.seconds:g} s (--timeout)")
    if isinstance(error, sandbox.MemoryLimitExceeded):
        more = sandbox.size_text(2 * error.memory_bytes).replace(" ", "")
        return UserError(f"query stopped: it needed more than {sandbox.size_text(error.memory_bytes)} "
                         f"of memory (--memory; e.g. --memory {more})")
    if isinstance(error, sandbox.SqlError):
        return UserError(str(error))
    if isinstance(error, OSError):
        return UserError(f"could not write {output or 'the output'}: {error.strerror or error}")
    if isinstance(error, (ValueError, ArithmeticError, NotImplementedError)):   # pyarrow's errors are ValueErrors
        # a value the output cannot hold (a duplicate column name, an infinite timestamp, a type the
        # format lacks): the result as the user asked for it cannot be written
        return UserError(f"the result cannot be shown or written this way: {error}")
    return error


def _run_interruptibly(statement, consume) -> tuple[dict[str, object], list[int]]:
    """Run the statement; returns ({"value": ...} or {"error": ...}, the signals that stopped it)."""
    import threading
    import time

    # The statement runs in a worker thread so that this thread is free to take signals: DuckDB
    # does not return to Python while it works, so a handler here is what interrupts it.
    outcome: dict[str, object] = {}
    signals: list[int] = []

    def work():
        try:
            outcome["value"] = statement.run(consume)
        except BaseException as error:   # handed to the main thread, which reports it
            outcome["error"] = error

    def stop(signum, frame):
        signals.append(signum)
        statement.interrupt()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    worker = threading.Thread(target=work, name="trainer sql", daemon=True)
    try:
        worker.start()
        signalled_at = None
        while worker.is_alive():
            worker.join(0.2)
            if signals and signalled_at is None:
                signalled_at = time.monotonic()
            # The interrupt normally ends the worker within milliseconds; a second signal, or a
            # worker still busy after SIGNAL_GRACE_S (e.g. inside one long Arrow read), ends us anyway.
            if signalled_at is not None and (len(signals) > 1 or time.monotonic() - signalled_at > SIGNAL_GRACE_S):
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return outcome, signals


def cmd_estimate(args: argparse.Namespace) -> int:
    """Its progress is the sweep's line (trainer.progress): a bar on a terminal, plain lines without."""
    from trainer import config, estimators, reestimate, saved
    from trainer.measure import params_text
    from trainer.progress import SweepBar, Work

    root = _read_root(args)
    params = dict(config.parse_overrides(args.param or [], "--param", "bin_size=0.1"))
    name, params = estimators.canonical(args.estimator, params)
    run_ids, unfinished = reestimate.select_runs(root, args.runs)
    if unfinished:
        print(terminal_text(f"left out, interrupted or failed (not finished: {reestimate.AGAIN}, then estimate "
                            f"them): {', '.join(unfinished)}"))
    total = sum(len(saved.saved_epochs(root, run_id)) for run_id in run_ids)
    bar = SweepBar(Work(total), len(run_ids), name=f"{name} on {len(run_ids)} run(s)", unit="saved epochs")
    try:
        reestimate.reestimate(root, run_ids, name, params, on_epoch=lambda: bar.trained(Work(1)),
                              on_written=lambda run_id, rows: bar.run_ended(f"{run_id}: {rows} MI rows written "
                                                                            f"({name} {params_text(params)})"))
    finally:
        bar.close()
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """Markdown report of cohorts with tables and figures. The one place the trainer reaches
    explorer code (the chart builders and ResultStore), imported here and only here."""
    from explorer import report
    from explorer.results import ResultStore

    root = _read_root(args)
    # One snapshot for the whole report, never rescanned: its tables agree while a sweep writes, and
    # no background rescan is left running at exit (a daemon thread inside pyarrow then aborted the
    # process: "terminate called after throwing an instance of ''", once, after the report was written).
    store = ResultStore(root, max_age_s=math.inf)
    try:
        path, selection = report.write_report(store, args.cohorts, args.output, args.split, args.band, args.reference,
                                              args.where or "")
    except report.ReportError as error:
        raise UserError(str(error)) from None
    if selection.running:
        print(terminal_text(f"left out, still training: {', '.join(selection.running)}"), file=sys.stderr)
    print(terminal_text(f"report: {path}"))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from trainer import estimators   # numpy only, a cheap import: the names in --estimator's help
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
    run.add_argument("--workers", type=positive_int, metavar="N",
                     help="worker processes when the networks make more than one stack (default: one per "
                          "core); 1 trains everything in this process")
    run.add_argument("--force", action="store_true",
                     help="train runs that are already completed again (never one another process holds)")
    run.add_argument("--yes", action="store_true", help="start a plan of more than 10,000 runs (refused without it)")
    run.set_defaults(handler=cmd_run)

    sweep_command.add_parser(verbs, with_results)

    compact = with_results(verbs.add_parser(
        "compact", help="merge the part files of finished runs into one file per table"))
    compact.set_defaults(handler=cmd_compact)

    ls = with_results(verbs.add_parser(
        "ls", help="list runs: status, epochs, final test accuracy, dead/diverged/saturated flags"))
    ls.add_argument("--where", metavar="CONDITION",
                    help="SQL condition over the runs view, e.g. \"initial_bias < 0 AND final_test_accuracy > 0.8\"")
    ls.set_defaults(handler=cmd_ls)

    sql = with_results(verbs.add_parser("sql", help="read-only SQL over the results"))
    sql.add_argument("query", metavar="QUERY",
                     help="one SELECT/WITH/PIVOT/DESCRIBE/SHOW/EXPLAIN/SUMMARIZE statement over the views "
                          "runs, config, metrics, mi, gradients, activations, activation_stats, problems, "
                          "phases, phase_stats")
    sql.add_argument("--format", choices=("table", "csv", "json", "parquet"),
                     help="table (default: the first --max-rows rows), or every row as csv / json "
                          "(to stdout or --output) / parquet (--output only); default from --output's suffix")
    sql.add_argument("--output", metavar="FILE",
                     help="write every row to FILE (atomically; not inside the results root)")
    sql.add_argument("--max-rows", type=positive_int, default=200, metavar="N",
                     help="rows the table shows (default 200); the rest are counted and left out")
    sql.add_argument("--timeout", type=limit_seconds, default=30.0, metavar="SECONDS",
                     help="stop the query after this long (default 30; 0: no limit)")
    sql.add_argument("--memory", type=size, default="2GiB", metavar="SIZE",
                     help="memory the query may use, e.g. 600MB or 4GB, at least 512MiB (default 2GiB); more ends it")
    sql.set_defaults(handler=cmd_sql)

    estimate = with_results(verbs.add_parser(
        "estimate", help="add MI rows of another estimator to finished runs (needs saved activations)"))
    estimate.add_argument("runs", nargs="+", metavar="RUN_ID", help="run ids, group ids or cohort names")
    estimate.add_argument("--estimator", required=True, metavar="NAME",
                          help=f"one of {', '.join(estimators.ESTIMATORS)}; deep-bottleneck's names "
                               f"({', '.join(estimators.ALIASES)}) also work")
    estimate.add_argument("--param", action="append", metavar="K=V", help="estimator parameter (JSON value)")
    estimate.set_defaults(handler=cmd_estimate)

    report = with_results(verbs.add_parser(
        "report", help="Markdown report of cohorts: phases, statistics over seeds, figures (PNG, SVG)"))
    report.add_argument("cohorts", nargs="+", metavar="COHORT", help="cohort names (the runs' `cohort`)")
    report.add_argument("--output", required=True, metavar="DIR",
                        help="folder for report.md, figures/ and tables/ (new, empty or a previous report; "
                             "not inside the results root); written atomically")
    report.add_argument("--split", choices=("train", "test", "full"),
                        help="MI split to report (default: train, else full, else test)")
    report.add_argument("--band", choices=("ci", "min-max"), default="ci",
                        help="band over seeds in the I-vs-epoch figures: 95 %% t interval (default) or min-max")
    report.add_argument("--where", metavar="CONDITION",
                        help="only the cohorts' runs this SQL condition over the runs view holds for, as trainer ls "
                             "takes it, e.g. \"epochs = 8000\"")
    report.add_argument("--reference", metavar="GROUP",
                        help="the seed group every other is compared with, by its name in the report "
                             "(e.g. activation_fn=tanh) or its group_id (default: the first with a run that "
                             "is not dead)")
    report.set_defaults(handler=cmd_report)
    parser.set_defaults(verb_parsers=verbs.choices)   # `main` says an unknown option with its verb's usage
    return parser


def _reader_left(verb: str) -> int:
    """The reader of stdout left (`trainer ls | head`). For a verb that only reads the root it has
    all it wants: no error. For a verb that writes, the rest of its output is lost: exit 1, said on
    stderr. stdout goes to /dev/null from here, so the interpreter's last flush does not fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if verb in ("ls", "sql"):
        return EXIT_OK
    # Not "stopped": a run's closing line can be what failed, after every run ended.
    runs = "; `trainer ls` shows what its runs reached" if verb in ("run", "sweep") else ""
    print(f"error: trainer {verb}: its output's reader left (a closed pipe), so the rest of its output is lost"
          f"{runs}", file=sys.stderr)
    return EXIT_RUN_FAILED


def command() -> None:
    """The `trainer` command (and `python -m trainer`): `main`, then the process ends. One that
    imported TensorFlow ends with os._exit once its output is flushed, as the sweep's workers do
    (trainer.local_pool): every file is written and closed when `main` returns, and the
    interpreter's teardown of TensorFlow (a last garbage collection of its heap, then its C++
    destructors) is a noticeable part of a one-epoch run, seconds of it on loaded cores (bench/RESULTS.md,
    issue 18 stop 32).
    It is also the likely place of the SIGABRT ("terminate called without an active exception")
    a finished `trainer run` hit once in a CI run under load."""
    status = main()
    if "tensorflow" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def cut_path(path: str, chars: int = 80) -> str:
    """A path as a message names it: its start and end, at most `chars` characters."""
    shown = terminal_text(path)
    return shown if len(shown) <= chars else f"{shown[:chars // 2]}…{shown[-chars // 2:]} ({len(path):,} characters)"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # TensorFlow's start-up chatter hides the progress bar
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:     # argparse says these with the top level's usage, which does not list the verb's options
        args.verb_parsers[args.verb].error(f"unrecognized arguments: {' '.join(unknown)}")
    for signum in (signal.SIGINT, signal.SIGTERM):   # Ctrl-C and SIGTERM alike: KeyboardInterrupt, noted
        if signal.getsignal(signum) is not signal.SIG_IGN:   # one the parent ignores (`cmd &` in a script) stays so
            signal.signal(signum, interrupts.stop)
    try:
        status = args.handler(args)
        sys.stdout.flush()   # a reader that left is met here, where the verb is known, not at exit
        return status
    except BrokenPipeError:
        return _reader_left(args.verb)
    except KeyboardInterrupt:
        if args.verb in ("run", "sweep"):  # their writers record `interrupted` as they stop
            # said of the runs still training then: one that had ended (or none started) is as it was
            print(f"interrupted: any run this {args.verb} was still training is marked 'interrupted', with what "
                  f"it logged so far; `trainer ls` shows each run's status", file=sys.stderr)
        else:
            print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if isinstance(error, _user_errors()):
            print(f"error: {terminal_text(str(error))}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if isinstance(error, OSError) and error.errno == errno.ENAMETOOLONG:   # a path given: --results, a config
            named = f" ({cut_path(str(error.filename))})" if error.filename else ""
            print(f"error: a path is too long for this system's files{named}; give a shorter one", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise
