"""ibstore.query_process: ibstore's workers (a statement's, a cold scan's) do not run the caller's
main module again (a Streamlit app's main is the app script, which every worker ran whole, a scan
included)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow   # starts a Python process and its query worker
def test_workers_run_no_main_module(tmp_path, cohort_root):
    marker = tmp_path / "main-ran"
    script = tmp_path / "app_like.py"
    # Like a Streamlit script: top-level code that is not under `if __name__ == "__main__":`.
    script.write_text(textwrap.dedent(f"""
        import os
        with open({str(marker)!r}, "a") as log:
            log.write(f"{{__name__}} {{os.getpid()}}\\n")
        from ibstore import index, sandbox, scan_workers
        if __name__ == "__main__":
            scan_workers.PROCESS_MIN_FOLDERS = 1        # the cold scan below reads in worker processes
            found = index.scan({str(cohort_root)!r}, save=False)
            assert "worker" not in (found.index_note or ""), found.index_note   # they did not die
            count = sandbox.run_query(found, "SELECT count(*) AS n FROM runs")
            print(int(count["n"][0]))
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) == len(list((cohort_root / "runs").iterdir()))
    assert [line.split()[0] for line in marker.read_text().splitlines()] == ["__main__"]
