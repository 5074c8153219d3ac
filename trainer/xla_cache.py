"""TensorFlow's persistent XLA compilation cache, under the user's cache folder.

A compiled call (`tf.function(jit_compile=True)`) is compiled by XLA the first time a process
calls it. With TensorFlow's flag `--tf_xla_persistent_cache_directory` (in `TF_XLA_FLAGS`, read
when the process compiles its first function) every executable is also saved there, keyed by a
hash of its HLO and of the traced function's signature, and a later process that builds the same
HLO (the same network shape, stack size, batch and chunk capacity) loads it instead of compiling
again, if it traces it at the same place in its order: TensorFlow numbers traced functions per
process, and the number is in both (DESIGN.md).

The folder is `$IB_XLA_CACHE`, else `$XDG_CACHE_HOME/ib-lab/xla` (`~/.cache/ib-lab/xla`), one
subfolder per TensorFlow version and CPU (an executable compiled for one CPU's instruction set
must not be loaded on another that shares the home folder) and `XLA_FLAGS` (the key does not
hold them, and a user's XLA flags change the code compiled from it). `IB_XLA_CACHE=off` turns it off; a
`TF_XLA_FLAGS` that already names a cache directory is left as it is.

Every load makes TensorFlow log, at error level, two complaints that are harmless: it tries
the file as text before binary ("Error parsing text-format tensorflow.XlaSerializedCacheEntry"),
and it compares LLVM's tuning flags `prefer-no-scatter` / `prefer-no-gather`, which are not
CPU features, with the host's CPU features. `first_call_quiet` drops exactly those lines and
passes every other line through.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

CACHE_ENV = "IB_XLA_CACHE"
FLAG = "--tf_xla_persistent_cache_directory"
HARMLESS_ON_LOAD = ("Error parsing text-format tensorflow.XlaSerializedCacheEntry",
                    "Target machine feature +prefer-no-scatter is not",
                    "Target machine feature +prefer-no-gather is not")


def cache_folder(tensorflow_version: str) -> Path | None:
    """Where this TensorFlow on this CPU keeps its executables (None: the cache is off)."""
    chosen = os.environ.get(CACHE_ENV, "")
    if chosen.lower() == "off":
        return None
    base = Path(chosen) if chosen else \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ib-lab" / "xla"
    return base / f"tf{tensorflow_version}-{_machine_digest()}"


def enable(tensorflow_version: str) -> Path | None:
    """Point TensorFlow's persistent cache at `cache_folder` (before the process compiles
    anything). Returns the folder, or None when the cache is off, the user set their own, or
    the folder cannot be made (then one line on stderr says so and training goes on uncached)."""
    flags = os.environ.get("TF_XLA_FLAGS", "")
    folder = cache_folder(tensorflow_version)
    if folder is None or FLAG in flags:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"note: no XLA compilation cache ({error.strerror}: {folder}); set {CACHE_ENV} to a writable "
              f"folder, or {CACHE_ENV}=off", file=sys.stderr)
        return None
    os.environ["TF_XLA_FLAGS"] = f"{flags} {FLAG}={folder}".strip()
    return folder


def first_call_quiet(function: Callable) -> Callable:
    """`function`, whose first call (the one that compiles or loads from the cache) runs with
    TensorFlow's harmless load messages dropped."""
    called = False

    def call(*args):
        nonlocal called
        if called:
            return function(*args)
        called = True
        with _harmless_load_messages_dropped():
            return function(*args)

    return call


@contextmanager
def _harmless_load_messages_dropped():
    """File descriptor 2 goes to a temporary file for the duration (TensorFlow logs from C++,
    below sys.stderr); at the end its lines are written back, but for HARMLESS_ON_LOAD."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True)
                    if not any(message.encode() in line for message in HARMLESS_ON_LOAD)]
            if kept:
                with os.fdopen(os.dup(2), "wb") as stderr:
                    stderr.write(b"".join(kept))


def _machine_digest() -> str:
    """A short digest of the CPU's model and instruction-set flags (Linux, else the machine type)
    and of `XLA_FLAGS`."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        identity = "\n".join(sorted({line for line in lines if line.split(":")[0].strip() in ("model name", "flags")}))
    except OSError:
        identity = platform.machine()
    identity += "\nXLA_FLAGS=" + os.environ.get("XLA_FLAGS", "")
    return hashlib.sha256(identity.encode()).hexdigest()[:12]
