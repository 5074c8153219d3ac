"""A stop asked by a signal, kept as a fact of the process.

A handler's KeyboardInterrupt raised while TensorFlow's C++ code runs a Python callback (tracing
and compiling, through pybind11) can come out as another error: "RuntimeError: pybind11::
error_already_set: MISMATCH of original and normalized active exception types", or a SystemError.
The training loop recorded such runs failed, and `--resume` then skipped them. It asks
`requested()` instead of trusting the exception's type.
"""

from __future__ import annotations

_requested = False


def stop(signum, frame) -> None:
    """A signal handler (SIGINT, SIGTERM): note the request, then raise KeyboardInterrupt."""
    global _requested
    _requested = True
    raise KeyboardInterrupt


def requested() -> bool:
    """Whether a signal asked this process to stop (`stop` ran)."""
    return _requested
