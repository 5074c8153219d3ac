"""The sweep's progress line (trainer.progress), the ledger of untrained epochs, the per-run line
and the filter of TensorFlow's start-up notices (trainer.quiet): no process, no training."""

from __future__ import annotations

import io
import os

import pytest

from ibstore import layout
from ibstore.record import Status
from trainer import progress, quiet
from trainer.cli import build_parser
from trainer.config import plan as plan_experiments
from trainer.plan import Plan, Task
from trainer.progress import Eta, GroupEpochs, SweepBar, Trained, Work, to_driver
from trainer.schedule import logged_epochs
from trainer.sweep import planned_work, run_line
from trainer.task import RunResult


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress.time, "monotonic", fake)
    return fake


def test_the_defaults_are_what_the_issue_asks():
    """A bar redrawn at least every 2 s; without a terminal, a line every 10 s (also the CLI's default)."""
    assert progress.BAR_SECONDS <= 2
    assert progress.LINE_SECONDS == 10
    args = build_parser().parse_args(["sweep", "cohort.json"])
    assert args.progress_seconds == 10


def test_without_a_terminal_a_plain_line_with_rate_and_eta_comes_every_interval(clock):
    out = io.StringIO()
    bar = SweepBar(total=Work(1200), runs=4, terminal=False, line_seconds=10, stream=out)
    clock.now += 5
    bar.tick()
    assert out.getvalue() == ""                 # not due yet
    clock.now += 5                              # 10 s after the start
    bar.tick()
    clock.now += 20                             # 30 s after the start (start-up), the first report: 300 of 1200
    bar.trained(Work(300))
    clock.now += 10                             # 40 s: 600 of 1200, 300 in the last 10 s
    bar.trained(Work(300))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    # rate: the mean, 600 / 40 s = 15/s; ETA: 600 left at 10 s per 300 since the first report = 20 s
    assert lines[0] == "sweep: 0/1200 network-epochs (0%) [00:10, ?epoch/s, ETA ?, 0/4 runs ended]"
    assert lines[1] == "sweep: 300/1200 network-epochs (25%) [00:30, 10.00epoch/s, ETA ?, 0/4 runs ended]"
    assert lines[2] == "sweep: 600/1200 network-epochs (50%) [00:40, 15.00epoch/s, ETA 00:20, 0/4 runs ended]"
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_an_eta_unknown_for_the_mix_of_epochs_says_what_it_waits_for(clock):
    # A new user's: "ETA ?" for five minutes under ibsgd's schedule (every one of the first 20 epochs
    # logged), with no word of why
    out = io.StringIO()
    bar = SweepBar(total=Work(1200, 600), runs=4, terminal=False, line_seconds=10, stream=out)
    for _ in range(3):
        clock.now += 10
        bar.trained(Work(200, 200))       # every epoch so far logged; 600 left, none of them logged
    assert out.getvalue().splitlines()[-1].endswith("ETA ? until both logged and unlogged epochs are seen, "
                                                    "0/4 runs ended]")
    clock.now += 10
    bar.trained(Work(200, 0))             # an unlogged stretch: both costs are measured
    assert "ETA ? until" not in bar.plain_line(clock.now) and "ETA 00:" in bar.plain_line(clock.now)


def test_the_eta_weighs_logged_epochs_by_their_cost():
    # 45 networks under the default schedule (every epoch logged below 50, every 2nd below 100,
    # every 20th below 2000, every 100th after): a trained network-epoch costs 0.5 ms, a logged
    # one 2 ms more, after 20 s of start-up. Reported after every compiled call, as workers do.
    schedule = logged_epochs("default", 8000)
    cost = {"epochs": 0.5e-3, "logged": 2e-3}
    eta, now, done = Eta(), 20.0, Work()
    total = Work(45 * 8000, 45 * (len(schedule) - 1))
    for previous, epoch in zip(schedule, schedule[1:]):
        chunk = Work(45 * (epoch - previous), 45)
        now += chunk.epochs * cost["epochs"] + chunk.logged * cost["logged"]
        done += chunk
        eta.observe(now, done)
        if epoch == 400:                         # 0.05 of the way: the ETA is the rest's true cost
            left = total - done
            truth = left.epochs * cost["epochs"] + left.logged * cost["logged"]
            assert eta.seconds_left(left) == pytest.approx(truth, rel=1e-6)
            # one mean rate since the first report, as tqdm's ETA, overestimates it 1.8-fold (with the
            # start-up in the mean, as tqdm has it, 3.8-fold)
            assert (now - 20.0) / done.epochs * left.epochs == pytest.approx(1.77 * truth, rel=0.01)
    assert eta.seconds_left(Work()) == 0


def test_while_every_epoch_so_far_was_logged_only_a_rest_logged_alike_gets_an_eta():
    # Below epoch 50 the default schedule logs every epoch: the reports cannot tell the cost of a
    # logged network-epoch from a trained one's, and a rest of mostly unlogged epochs is "?". A
    # schedule that logs every epoch throughout is one mix all along: its rest is priced.
    eta = Eta()
    for epoch in range(1, 40):
        eta.observe(20.0 + 0.03 * epoch, Work(45 * epoch, 45 * epoch))
    assert eta.seconds_left(Work(45 * 7960, 45 * 150)) is None
    assert eta.seconds_left(Work(45 * 100, 45 * 100)) == pytest.approx(0.03 * 100)
    eta.observe(20.0 + 0.03 * 39 + 0.004 * 20, Work(45 * 59, 45 * 39))    # 20 epochs trained, none logged
    assert eta.seconds_left(Work(45 * 1000, 0)) == pytest.approx(0.004 * 1000)


def test_once_nothing_is_left_to_start_the_eta_counts_the_workers_still_busy(clock):
    # Two workers, groups a (runs a1, a2) and b (b1, b2), 100 epochs per run, reporting in turn 20
    # network-epochs every 5 s: the fit's rate is the pair's, 4 a second. Once a ends and nothing
    # is left to start, b trains alone at half of it.
    out, ledger = io.StringIO(), GroupEpochs()
    bar = SweepBar(ledger.plan({run: Work(100) for run in ("a1", "a2", "b1", "b2")}), runs=4, terminal=False,
                   stream=out, ledger=ledger)
    for _ in range(5):
        for group in (("a1", "a2"), ("b1", "b2")):
            clock.now += 5
            ledger.trained(Trained(group, 20))
            bar.trained(Work(20))
    assert bar.eta.seconds_left(bar.total - bar.done) == pytest.approx(50.0)     # 200 left at 4 a second
    # both groups still train (the runs training are named: "0/4 runs ended" alone read as stuck)
    assert bar._postfix() == "ETA 00:50, 0/4 runs ended, 4 training"
    bar.replan(-ledger.untrained(["a1", "a2"]))         # a ends early (stop_at_accuracy): b alone
    assert bar.eta.seconds_left(bar.total - bar.done) == pytest.approx(25.0)
    assert bar._postfix() == "ETA 00:50, 0/4 runs ended, 2 training"              # 100 left at 2 a second
    # while a run is still to start, a worker that frees takes it: the fit's rate stands
    bar.replan(ledger.plan({"c1": Work(20)}), runs=1)
    assert ledger.queued() and ledger.in_flight() == 1
    assert bar._postfix() == "ETA 00:30, 0/5 runs ended, 2 training"              # 120 left at 4 a second


def test_the_eta_needs_two_reports_and_never_goes_negative():
    eta = Eta()
    assert eta.seconds_left(Work(100, 10)) is None
    eta.observe(10.0, Work(100, 10))
    assert eta.seconds_left(Work(100, 10)) is None
    eta.observe(20.0, Work(200, 10))            # all in training epochs: 0.1 s each
    assert eta.seconds_left(Work(50, 0)) == pytest.approx(5.0)
    assert eta.seconds_left(Work(-5, -1)) == 0   # more done than planned (a network logged as it stopped)


def test_a_finished_groups_untrained_epochs_leave_the_total(clock, capsys):
    out = io.StringIO()
    ledger = GroupEpochs()
    bar = SweepBar(ledger.plan({"a": Work(100, 10), "b": Work(100, 10), "c": Work(50, 5)}), runs=3, terminal=False,
                   stream=out)
    group = Trained(("a", "b"), 120, 12)
    ledger.trained(group)
    bar.trained(group.work)
    # a and b stopped early at 60 epochs each: 200 planned, 120 trained, 80 never will be
    assert ledger.untrained(["b", "a"]) == Work(80, 8)
    bar.replan(-Work(80, 8))
    bar.run_ended("a line")
    bar.run_ended("b line")
    assert ledger.untrained(["c"]) == Work(50, 5)      # a group that never reported (its worker died)
    ledger.plan({"d": Work(10, 1), "e": Work(10, 1)})
    ledger.trained(Trained(("d",), 10, 1))             # e was held: the worker trained only d
    assert ledger.untrained(["d", "e"]) == Work(10, 1)
    bar.replan(-Work(50, 5), runs=-1)
    clock.now += 12
    bar.close()
    assert out.getvalue().splitlines()[-1].startswith("sweep: 120/120 network-epochs (100%)")
    assert out.getvalue().splitlines()[-1].endswith("2/2 runs ended]")
    assert capsys.readouterr().out == "a line\nb line\n"


def test_a_failed_or_interrupted_groups_untrained_epochs_stay_in_the_total_and_leave_the_eta(clock):
    """Every run of a sweep killed half way: its line read "120/120 network-epochs (100%)" beside
    "done: 2 interrupted of 2 planned". The undone work stays planned, and the ETA leaves it out."""
    out, ledger = io.StringIO(), GroupEpochs()
    bar = SweepBar(ledger.plan({"a": Work(100), "b": Work(100), "c": Work(100)}), runs=3, terminal=False,
                   stream=out, ledger=ledger)
    for group in (("a",), ("b",), ("c",)):
        clock.now += 10
        ledger.trained(Trained(group, 50))
        bar.trained(Work(50))
    assert bar.eta.seconds_left(bar.total - bar.done) == pytest.approx(30.0)     # 150 left at 5 a second
    bar.group_ended(ledger.untrained(["a"]), [Status.INTERRUPTED])
    bar.group_ended(ledger.untrained(["b"]), [Status.COMPLETED, Status.FAILED])
    # c's 50 alone, at a third of the three groups' 5 a second (a's and b's 100 left out: 01:30)
    assert bar._postfix() == "ETA 00:30, 0/3 runs ended, 1 training"
    bar.group_ended(ledger.untrained(["c"]), [Status.COMPLETED])                     # stopped early on its own
    bar.close()
    assert out.getvalue().splitlines()[-1].startswith("sweep: 150/250 network-epochs (60%)")
    assert out.getvalue().splitlines()[-1].endswith("0/3 runs ended]")             # none training now


def test_on_a_terminal_the_bar_is_redrawn_while_nothing_is_reported(clock):
    out = io.StringIO()
    bar = SweepBar(total=Work(1000), runs=2, terminal=True, stream=out)
    drawn = out.getvalue().count("\r")
    clock.now += progress.BAR_SECONDS
    bar.tick()
    assert out.getvalue().count("\r") > drawn
    assert "0/1000 network-epochs" in out.getvalue().split("\r")[-1]
    bar.close()


def test_planned_work_counts_a_resumed_run_from_its_checkpoint(tmp_path):
    experiment, = plan_experiments({"epochs": 300, "n_runs": 2, "save_checkpoints": True})
    fresh, resumed = (Task(experiment, (0,)), Task(experiment, (1,), resume=True))
    resumed_id = experiment.run_id(1)
    folder = layout.checkpoints_dir(tmp_path, resumed_id)
    folder.mkdir(parents=True)
    layout.epoch_file(folder, 120).write_bytes(b"")
    planned = planned_work(tmp_path, Plan([fresh, resumed]))
    # the default schedule logs epochs 1-49, every 2nd to 98, every 20th to 280, and 300: 49 + 25 + 10 + 1
    assert planned == {experiment.run_id(0): Work(300, 85), resumed_id: Work(300 - 120, 9)}


def test_a_runs_line_carries_its_own_time():
    run = RunResult("r", "name", 3, "completed", 0.9125, seconds=41.6)
    assert run_line(run) == "completed   name seed 3  test acc 0.912  42 s"
    failed = RunResult("r", "name", 3, "failed", None, error="ValueError: x\nmore", seconds=2.0)
    assert run_line(failed) == "failed      name seed 3  test acc -  2 s  (ValueError: x)"
    other = RunResult("r", "name", 3, "completed", 0.5, trained_here=False)
    assert run_line(other).endswith("(by another process)")
    # A worker that died before it started a run: nobody trained it, and the line says why only.
    lost = RunResult("r", "name", 3, "not started", None, error="worker process died (exit code 1)",
                     trained_here=False)
    assert run_line(lost) == "not started name seed 3  test acc -  (worker process died (exit code 1))"
    # a new user's: a dead network's chance accuracy read like a trained network's; its flags say it
    dead = RunResult("r", "name", 3, "completed", 0.501, seconds=22.0, flags=("dead",))
    assert run_line(dead) == "completed   name seed 3  test acc 0.501  [dead]  22 s"
    diverged = RunResult("r", "name", 3, "diverged", None, seconds=2.0, flags=("diverged",))
    assert "[" not in run_line(diverged)                       # its status says it already


def test_a_sweeps_run_and_held_lines_escape_a_hostile_name(tmp_path, capsys):
    # A config's name went raw into "completed <name> seed 0 ..." and "held <name> ...": an ESC
    # sequence cleared the screen or retitled the terminal, a carriage return printed over the line.
    from trainer.sweep import Progress
    from trainer.task import GroupResult

    name = "\x1b[2J\x1b[31mRED\x1b]2;pwned\x07\rOVER\u202eWRITE"
    sweep = Progress(tmp_path, "cohort", Plan([], run_ids=["a", "b"]), "s1")
    sweep.report(GroupResult([RunResult("a", name, 0, "completed", 0.5, seconds=1.0),
                              RunResult("b", name, 1, "held", None, error="held by pid 1 on host h")], 1.0))
    sweep.close()
    shown = "\\x1b[2J\\x1b[31mRED\\x1b]2;pwned\\x07\\rOVER\\u202eWRITE"
    assert capsys.readouterr().out.splitlines() == [
        f"completed   {shown} seed 0  test acc 0.500  1 s",
        f"held        {shown} seed 1  (held by pid 1 on host h; waiting for it)"]


# Lines TensorFlow 2.x writes to a fresh process's stderr, as seen from a sweep's workers.
START_UP = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    (b"I0000 00:00:1796296823.737865   28098 port.cc:153] oneDNN custom operations are on. You may see "
     b"slightly different numerical results.\n"),
    b"I1203 11:20:31.123456   28098 service.cc:148] XLA service 0x55d0 initialized for platform Host\n",
    (b"I1203 11:20:31.223456   28098 device_compiler.h:188] Compiled cluster using XLA!  This line is logged "
     b"at most once for the lifetime of the process.\n"),
]
KEPT = [
    b"E1203 11:20:31.123456   28098 cuda_dnn.cc:8310] Unable to register cuDNN factory\n",
    b"W1203 11:20:31.123456   28098 loop_optimizer.cc:933] Skipping loop optimization\n",
    b"Traceback (most recent call last):\n",
    b"ValueError: I0000 is not a log line when it is not at the start\n",
    b"Info: a line of our own\n",
]


def test_only_start_up_notices_are_recognised():
    assert all(quiet.is_start_up_notice(line) for line in START_UP)
    assert not any(quiet.is_start_up_notice(line) for line in KEPT)


def test_descriptor_2_loses_the_notices_and_keeps_everything_else(capfd):
    with quiet.native_info_dropped():
        for line in [*START_UP, *KEPT]:
            os.write(2, line)   # as C++ writes: below sys.stderr
    captured = capfd.readouterr().err.encode()
    assert captured == b"".join(KEPT)


def test_without_descriptor_2_the_filter_does_nothing_and_raises_nothing():
    # A process started with stderr closed (every trainer process filters while it imports
    # TensorFlow): os.dup(2) fails there, and the import must not.
    saved = os.dup(2)
    os.close(2)
    try:
        with quiet.native_info_dropped():
            with pytest.raises(OSError):
                os.fstat(2)   # still closed: no pipe was put in its place
        with pytest.raises(OSError):
            os.fstat(2)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def test_a_workers_progress_to_a_sweep_that_is_gone_stops_it_as_an_interrupt():
    def closed(message):
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(KeyboardInterrupt):
        to_driver(closed, (OSError,))(Trained(("a",), 10))
    sent = []
    to_driver(sent.append, (OSError,))(Trained(("a",), 10))
    assert sent == [Trained(("a",), 10)]
    with pytest.raises(ValueError):   # any other error is not taken for the sweep's end
        to_driver(lambda message: int("x"), (OSError,))(Trained(("a",), 10))
