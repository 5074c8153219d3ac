"""An Arrow table handed to a query worker without pickling it (ibstore.query_process).

The `runs` view of 100,000 runs is over a hundred MB of Arrow data (bench/RESULTS.md, issue 20
round 4); sent as a pickled argument of the
worker it was serialised, written through a pipe and deserialised, each a full copy and most
of a warm `trainer sql` at that size. `SharedTable` writes it once as an Arrow IPC stream
into an anonymous memory file (`memfd_create`: no path, nothing in any folder); pickling it
for the worker passes only the file's descriptor, as multiprocessing passes a `Connection`
(`multiprocessing.reduction.DupFd`: the fork server hands the descriptor to the new process),
and the worker maps the file read-only and reads the table in place. A shared read-only
mapping is not private writable memory, so it does not count against the worker's
RLIMIT_DATA; the memory is freed when both sides have closed it. Linux only (memfd_create).
"""

from __future__ import annotations

import mmap
import os
from multiprocessing import reduction

import pyarrow as pa


class SharedTable:
    """`table` in a memory file; unpickled in a worker as the `pa.Table` itself, read in place."""

    def __init__(self, table: pa.Table):
        self._fd = os.memfd_create("ib-lab-view", os.MFD_CLOEXEC)
        try:
            with pa.OSFile(f"/proc/self/fd/{self._fd}", "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            self.size = os.fstat(self._fd).st_size
        except BaseException:
            os.close(self._fd)
            raise

    def close(self) -> None:
        """This process's descriptor (call once the worker has started: it holds its own)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __reduce__(self):
        # Pickled only as a worker's argument: the fork server passes the new process its own descriptor.
        return _mapped_table, (reduction.DupFd(self._fd), self.size)


def _mapped_table(duplicate, size: int) -> pa.Table:
    fd = duplicate.detach()
    try:
        mapped = mmap.mmap(fd, size, prot=mmap.PROT_READ) if size else b""
    finally:
        os.close(fd)
    return pa.ipc.open_stream(pa.py_buffer(mapped)).read_all()
