"""Ctrl-C while a sweep starts a worker (issue 18): the parent must not lose it. Workers are
started with SIGINT blocked, which they inherit; the parent holds a Ctrl-C back meanwhile and
raises it once the worker is registered. In-process, no worker is started: fast tier."""

from __future__ import annotations

import os
import signal
import threading

from trainer.local_pool import _sigint_held_back


def blocked_signals() -> set:
    return signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_a_ctrl_c_while_a_worker_starts_reaches_the_parent_once_it_has_started():
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    # A thread that does not block SIGINT, as the sweep's progress threads: the kernel may hand
    # the process's signal to it, whatever the main thread's mask.
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with _sigint_held_back():
            assert signal.SIGINT in blocked_signals()   # what a worker started here inherits
            os.kill(os.getpid(), signal.SIGINT)         # the terminal's Ctrl-C, mid-start
            for _ in range(100):                        # bytecode boundaries: any handler would run here
                pass
            assert received == []
        assert received == [signal.SIGINT]
        assert signal.SIGINT not in blocked_signals()
        assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    finally:
        stop.set()
        other.join()
        signal.signal(signal.SIGINT, previous)


def test_holding_back_keeps_a_signal_mask_the_parent_already_had():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        with _sigint_held_back():
            pass
        assert signal.SIGUSR1 in blocked_signals()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
