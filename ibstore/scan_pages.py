"""The deferred half of a table file's check: decoding its pages (CRC checked) and casting its
columns to the table's schema (ibstore.scan_footer `_damage`), the costly part of reading a run
folder (most of a cold scan's time when the scan did it). The scan reads footers only; this runs
when something first reads a table (`Scan.check`), once per file version: the verdict is kept
under the file's identity (path, inode, ctime, mtime, size) here and in the index.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from ibstore.scan import PAGES, identity
from ibstore.scan_footer import pages_problem, run_of

# Files checked at once: decoding pages releases the GIL (bench/bench_sql.py measures it).
CHECK_THREADS = 8


def page_verdict(path: str, table: str) -> str | None:
    """Why the table file at `path` cannot be read whole as `table`, or None. Its folder is
    entered without following a link (as the scan reads it). A file gone since the scan gets
    None: the query then fails on it as `vanished` and is retried on a new scan, which lists
    what replaced it (a compaction's base file), as before this check existed."""
    try:
        dir_fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"its folder cannot be read ({error.strerror or error}): table skipped for this run"
    try:
        name = os.path.basename(path)
        try:
            entry = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as error:
            return f"cannot be read ({error.strerror or error}): table skipped for this run"
        return PAGES.get(("pages", path, *identity(entry)), lambda: pages_problem(dir_fd, name, table, run_of(path)))
    finally:
        os.close(dir_fd)


def page_verdicts(files: list[tuple[str, str]]) -> list[str | None]:
    """`page_verdict` of each (path, table), on up to CHECK_THREADS threads, in order."""
    if len(files) <= 1:
        return [page_verdict(*file) for file in files]
    with ThreadPoolExecutor(max_workers=min(CHECK_THREADS, len(files)), thread_name_prefix="check_pages") as pool:
        return list(pool.map(lambda file: page_verdict(*file), files))
