"""One SQL statement in its own process, so the kernel bounds what DuckDB cannot.

DuckDB neither interrupts nor counts against its `memory_limit` the functions that build one
large value in a scalar context (`len(generate_series(1, 2e9))`, `length(repeat('x', 1e9))`):
such a statement ran for minutes and grew to tens of GB inside the caller (issue 17). So the
statement runs in a worker process that

- has `RLIMIT_DATA` set to the memory bound: every private writable mapping (heap, mmap'd
  arenas, thread stacks) counts, so an allocation beyond the bound fails in the worker and
  DuckDB reports `Out of Memory Error: Allocation failure` at once. `RLIMIT_AS` cannot be
  used: the worker's libraries alone reserve about as much address space as the default bound.
- is killed (SIGKILL) by the caller when the time limit is up, whatever it is doing, and has
  `RLIMIT_CPU` set to what its threads could spend in that time: a caller killed itself (kill -9
  of `trainer sql` or of the explorer) left its worker running past the limit (an attacker's);
- streams its result as an Arrow IPC stream over a pipe: the caller reads batch by batch, and
  a caller that stops reading stops the worker (the pipe fills), so memory stays bounded on
  both sides.

Workers are forked from multiprocessing's fork server, which imports DuckDB, pyarrow and the
sandbox once per calling process (`start_server` starts it early, so its start overlaps the
caller's own work); a fork is then a few milliseconds. The server is forked from no thread of
the caller, so no lock of the caller's threads (Streamlit's, DuckDB's) is inherited. Unlike
multiprocessing's own processes, ibstore's workers (`WorkerProcess`) do not run the caller's main
module first, so a script (or a Streamlit app) may run queries from top-level code.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import multiprocessing.spawn
import os
import resource
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Callable, Iterator

import duckdb
import pyarrow as pa

WORKER_PREFIX = "ib-lab "    # the names of ibstore's own workers: prepared without the caller's main module


class WorkerProcess(multiprocessing.context.ForkServerProcess):
    """A worker of ibstore's (a statement's, a cold scan's): forked from the fork server and
    prepared without the caller's main module (`_preparation_without_main`), so its target must
    live in an importable module, never in `__main__`."""

    def __init__(self, *args, name: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.name = WORKER_PREFIX + (name or self.name)


class WorkerContext(multiprocessing.context.ForkServerContext):
    Process = WorkerProcess


CONTEXT = WorkerContext()
CONTEXT.set_forkserver_preload(["ibstore.query_warmup"])


# pyarrow's mimalloc reserves a 1 GiB arena when pyarrow.dataset is imported; that reservation
# counts against RLIMIT_DATA (the whole arena is in VmData from the start), so the fork server
# starts without it (0: reserve what is used). OpenBLAS starts a thread per core, with its own
# buffers, at a worker's first matrix product (the compression test of `phase_stats`): those
# counted too, and the `phase_stats` of 200 runs failed with "can't start new thread".
_SERVER_ENVIRONMENT = {"MIMALLOC_ARENA_RESERVE": "0", "OPENBLAS_NUM_THREADS": "1"}
_server_lock = threading.Lock()
_preparation_data = multiprocessing.spawn.get_preparation_data


def _preparation_without_main(name: str) -> dict:
    """What a new process is prepared with (multiprocessing's own), but for ibstore's workers
    (named WORKER_PREFIX...) without the caller's main module: they run code of ibstore's modules
    only, and a process of every start method but fork runs the main module again first. In a
    Streamlit app the main module is the app script (Streamlit runs it as `__main__`): each
    statement's worker ran the whole app, a scan of the root included, before the statement
    (seconds a statement on a large root; bench/RESULTS.md, issue 20 branch warm100k), and each
    cold scan's worker did too."""
    data = _preparation_data(name)
    if name.startswith(WORKER_PREFIX):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


# multiprocessing looks it up at each start (popen_forkserver: `spawn.get_preparation_data`) and
# passes only the process's name: other processes are prepared as before.
multiprocessing.spawn.get_preparation_data = _preparation_without_main


def start_server() -> None:
    """Start the fork server if it is not running (the first query does otherwise); returns
    without waiting for its imports, so a caller can overlap them with its own work."""
    with _server_lock:
        saved = {name: os.environ.get(name) for name in _SERVER_ENVIRONMENT}
        os.environ.update(_SERVER_ENVIRONMENT)   # the server inherits the environment when spawned
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class FileChanged(Exception):
    """A file the statement read has changed in place since its scan (damaged, or another file
    put there): run `run_id`'s folder must be read again, which its folder's signature does not
    ask for (ibstore.index_stat)."""

    def __init__(self, message: str, run_id: str):
        super().__init__(message)
        self.run_id = run_id


@dataclass(frozen=True)
class Outcome:
    """How a worker ended. kind: done, memory (an allocation failed under the bound), vanished
    (a file to read was gone: a FileNotFoundError, `text` names it), changed (a FileChanged:
    `text` is its run id, a NUL, its message; no folder name holds a NUL), error (DuckDB refused or
    failed: `text` is its message), killed (time limit or interrupt), died
    (ended without a report: `text` names the signal or exit code). `peak_rss_bytes`: the
    worker's peak resident memory, if it could be measured."""
    kind: str
    text: str
    peak_rss_bytes: int | None


class WorkerEnded(Exception):
    """The worker ended without the whole result; `outcome` says how."""

    def __init__(self, outcome: Outcome):
        self.outcome = outcome
        super().__init__(f"{outcome.kind}: {outcome.text}")


class QueryProcess:
    """`open_reader(*args)` run in a new worker bounded to `memory_bytes`; its batches are read
    with `batches()`, then `outcome()` says how the worker ended. `kill()` may be called from
    any thread."""

    def __init__(self, open_reader: Callable[..., pa.RecordBatchReader], args: tuple, memory_bytes: int,
                 cpu_seconds: int | None = None):
        start_server()
        batches_in, batches_out = CONTEXT.Pipe(duplex=False)
        report_in, report_out = CONTEXT.Pipe(duplex=False)
        stderr_in, stderr_out = CONTEXT.Pipe(duplex=False)
        self._process = CONTEXT.Process(target=_work, name="query", daemon=True,
                                         args=(open_reader, args, memory_bytes, cpu_seconds, batches_out, report_out,
                                               stderr_out))
        self._process.start()
        for end in (batches_out, report_out, stderr_out):
            end.close()
        self._batches_in, self._report_in, self._stderr_in = batches_in, report_in, stderr_in
        self._killed = threading.Event()
        self._killed_peak: int | None = None
        self._outcome: Outcome | None = None

    def kill(self) -> None:
        if self._killed.is_set() or self._process.pid is None:
            return
        self._killed_peak = _peak_rss_bytes(self._process.pid)   # measured before it is gone
        self._killed.set()
        try:
            os.kill(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def batches(self) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The schema and the batches, read as the caller iterates. A worker that did not end
        well (no schema, a cut stream, an error after some batches) raises `WorkerEnded`, so a
        caller never takes part of a result for the whole."""
        source = open(self._batches_in.fileno(), "rb", closefd=False)
        try:
            reader = pa.ipc.open_stream(source)
        except (pa.ArrowInvalid, OSError):   # no stream: the worker failed or was killed first
            source.close()
            raise WorkerEnded(self.outcome()) from None
        return reader.schema, self._read_all(reader, source)

    def _read_all(self, reader: pa.RecordBatchStreamReader, source) -> Iterator[pa.RecordBatch]:
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except (StopIteration, pa.ArrowInvalid, OSError):   # the end, or a cut stream
                    break
                yield batch
        finally:
            source.close()
        outcome = self.outcome()
        if outcome.kind != "done":
            raise WorkerEnded(outcome)

    def outcome(self) -> Outcome:
        """How the worker ended (waits for it; kill it first if its batches are not all read)."""
        if self._outcome is None:
            try:
                report = self._report_in.recv()   # EOFError once the worker is gone without one
            except (EOFError, OSError):
                report = None
            self._process.join()
            last_words = _read_some(self._stderr_in, LAST_WORDS_BYTES) if report is None else b""
            for end in (self._batches_in, self._report_in, self._stderr_in):
                end.close()
            self._outcome = self._judge(report, last_words)
        return self._outcome

    def _judge(self, report: tuple | None, last_words: bytes) -> Outcome:
        if report is None and self._killed.is_set():
            return Outcome("killed", "", self._killed_peak)
        if report is None:
            # An allocation that fails where the library cannot throw (Arrow's C bridge checks)
            # aborts the worker; what it printed says so.
            if any(sign in last_words for sign in ALLOCATION_FAILED):
                return Outcome("memory", last_words.decode(errors="replace").strip(), None)
            code = self._process.exitcode
            text = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
            return Outcome("died", text, None)
        return Outcome(*report)


# A worker's stderr goes to its caller, which reads its end only if the worker died without a
# report: a few lines (a worker writing more would wait on the pipe until its time limit).
LAST_WORDS_BYTES = 1 << 16
ALLOCATION_FAILED = (b"Out of memory", b"std::bad_alloc", b"Allocation failure", b"MemoryError")


def _read_some(connection: Connection, limit: int) -> bytes:
    """Up to `limit` bytes already written to a pipe whose writer is gone."""
    chunks, size = [], 0
    while size < limit:
        chunk = os.read(connection.fileno(), limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _work(open_reader: Callable[..., pa.RecordBatchReader], args: tuple, memory_bytes: int, cpu_seconds: int | None,
          batches_out: Connection, report_out: Connection, stderr_out: Connection) -> None:
    """The worker: bound itself, run the statement, stream the batches, report how it ended."""
    os.dup2(stderr_out.fileno(), 2)   # a library's dying words go to the caller, not the terminal
    stderr_out.close()
    os.chdir("/")   # nothing is read by path; the caller's working directory is not the query's business
    resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    if cpu_seconds is not None:     # SIGXCPU ends it, should its caller be gone
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    kind, text = "done", ""
    try:
        with open(batches_out.fileno(), "wb", closefd=False) as sink:
            reader = open_reader(*args)
            writer = pa.ipc.new_stream(sink, reader.schema)
            for batch in reader:
                writer.write_batch(batch)
            writer.close()   # the end-of-stream mark: written only when every batch was
    except BrokenPipeError:
        pass   # the caller has every row it wants
    except Exception as error:   # reported, never lost: the caller raises it
        kind = ("memory" if out_of_memory(error) else "vanished" if isinstance(error, FileNotFoundError) else
                "changed" if isinstance(error, FileChanged) else "error")
        text = (f"{error.run_id}\0" if isinstance(error, FileChanged) else "") + (str(error) or type(error).__name__)
    batches_out.close()   # the caller's read ends here, then it reads the report
    report_out.send((kind, text, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
    report_out.close()


def out_of_memory(error: Exception) -> bool:
    """An allocation failed: DuckDB's OutOfMemoryException, Python's MemoryError, the same
    failure surfacing from the Arrow reader between batches (an OSError with DuckDB's text), or a
    thread's stack that could not be mapped (RuntimeError "can't start new thread": a new user's
    `ResultStore.sql` of phase_stats said only that)."""
    return (isinstance(error, (MemoryError, duckdb.OutOfMemoryException, pa.ArrowMemoryError))
            or str(error).startswith("Out of Memory Error")
            or isinstance(error, RuntimeError) and str(error) == "can't start new thread")


def _peak_rss_bytes(pid: int) -> int | None:
    """A live process's peak resident memory (VmHWM), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
