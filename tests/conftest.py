"""Shared fixtures: small synthetic results roots written in the trainer's format."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

# Before numpy is imported here or in a test process (pytest -n N's workers inherit it): BLAS on one
# thread. The suite runs three processes on two cores; the statistics tests' small matrix products
# spent about half their CPU on OpenBLAS's threads spinning (measured in a single process:
# 30 CPU-s with them, 15 without).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "explorer" / "app.py")
sys.path.insert(0, str(REPO))  # for bench.make_results

from bench.make_results import write_run  # noqa: E402
from trainer import atomic  # noqa: E402

# A suite started in the background of a non-interactive shell inherits SIGINT ignored, and so
# would every process its tests start; the Ctrl-C tests need it as a terminal gives it.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config) -> None:
    """The suite's indexes in a cache folder of its own, removed at its end (every process it
    starts inherits it): each temporary root a test opens would otherwise leave an index folder
    in the user's ~/.cache/ib-lab/index. The XLA cache stays where it was (it spares compiling)."""
    from trainer import xla_cache

    os.environ.setdefault(xla_cache.CACHE_ENV, str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ib-lab" / "xla"))
    config.ib_cache = tempfile.mkdtemp(prefix="ib-lab-test-cache-")
    os.environ["XDG_CACHE_HOME"] = config.ib_cache


def pytest_unconfigure(config) -> None:
    shutil.rmtree(getattr(config, "ib_cache", ""), ignore_errors=True)


def pytest_runtest_setup(item) -> None:
    """Under `--dist loadgroup` (pytest -n N) a test marked xdist_group carries its group in its node
    id, or the scheduler spreads its group over the test processes: the Ray tests two heads at once,
    the browser tests two Chromiums, the timed tests beside one another. pytest 9.2's node ids
    silently ended that (pytest-xdist issue 1386), so such a test fails here, naming the cause."""
    if getattr(item.config.option, "loadgroup", False) and any(item.iter_markers("xdist_group")) and (
            "@" not in item.nodeid):
        pytest.fail(f"pytest-xdist did not put this test in its xdist_group (pytest {pytest.__version__} with this "
                    "pytest-xdist): install the pinned versions, pip install -c constraints.txt -e '.[dev]'",
                    pytrace=False)


BIASES = (-1.0, 0.0, 0.2, 2.0)
EPOCHS = 60


def write_cohort(root: Path, seeds: int = 2) -> list[str]:
    """relu, initial_bias in BIASES, `seeds` seeds each: the seed notebook's cohort, small."""
    return [write_run(root, "relu-bias", {"activation_fn": "relu", "initial_bias": bias, "epochs": EPOCHS},
                      seed=seed, cohort="initial_bias", logged=20)
            for bias in BIASES for seed in range(seeds)]


def write_rate_activation_grid(root: Path, seeds: int) -> None:
    """Cohort `grid`: learning_rate 0.001 and 0.01 x activation_fn tanh and relu, `seeds` seeds each."""
    for rate in (0.001, 0.01):
        for activation in ("tanh", "relu"):
            for seed in range(seeds):
                write_run(root, "g", {"learning_rate": rate, "activation_fn": activation, "epochs": 20}, seed=seed,
                          cohort="grid", logged=6)


def write_ksg_cohort(root: Path) -> None:
    """Cohort `c`: initial_bias 0 and 1, 2 seeds each, measured by binning and by ksg, which records
    no I(X;T) (its h(T) goes to h_t_bits)."""
    estimators = [{"name": "binning", "params": {"bin_size": 0.07}}, {"name": "ksg", "params": {"k": 2}}]
    for bias in (0.0, 1.0):
        for seed in range(2):
            write_run(root, "k", {"initial_bias": bias, "epochs": 20, "estimators": estimators}, seed=seed,
                      cohort="c", logged=8)


class StartsAProcess(Exception):
    """A test outside the slow tier started a process."""


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(request, monkeypatch):
    """The fast tier (`pytest -m "not slow"`) is fast because its tests train nothing, serve
    nothing and start no process: a test not marked slow that starts one (a command, a SQL
    worker, a pool) fails here, naming what it started, so the tier cannot drift."""
    if request.node.get_closest_marker("slow"):
        return

    def refuse(what):
        def start(*args, **kwargs):
            raise StartsAProcess(f"{request.node.nodeid} starts {what}: mark it @pytest.mark.slow")
        return start

    import multiprocessing.process
    import subprocess
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("a command (subprocess)"))
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse("a process (multiprocessing)"))
    monkeypatch.setattr(os, "fork", refuse("a process (os.fork)"))
    monkeypatch.setattr(os, "posix_spawn", refuse("a process (os.posix_spawn)"))


@pytest.fixture(autouse=True)
def _main_module_kept():
    """Streamlit's AppTest leaves the app script as sys.modules["__main__"], and a process that a
    later test of this pytest worker spawns re-runs the parent's main module first: the app then
    started its store in a bootstrapping child, which died of it."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(autouse=True)
def _no_racy_window(monkeypatch):
    """Tests write a run and scan it within milliseconds: the index's racy rule would read such a
    folder again at every scan for RACY_NS (only reads, never another answer). Off here, so that
    a test sees what the signature alone notices; tests/test_index_signature.py tests the rule."""
    from ibstore import index
    monkeypatch.setattr(index, "RACY_NS", 0)


@pytest.fixture(scope="session")
def cohort_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    write_cohort(root)
    return root


@pytest.fixture
def messy_root(tmp_path) -> dict[str, object]:
    """A cohort plus every kind of damage the explorer must survive; returns root and run ids."""
    root = tmp_path / "results"
    good = write_cohort(root, seeds=1)
    tanh = {"activation_fn": "tanh", "epochs": EPOCHS}
    truncated = write_run(root, "truncated", tanh, logged=10)
    mi_path = root / "runs" / truncated / "mi.parquet"
    mi_path.write_bytes(mi_path.read_bytes()[:200])
    no_mi = write_run(root, "no-mi", tanh, logged=10, tables=("metrics", "gradients"))
    running = write_run(root, "running", tanh, logged=10, status="running", epochs_done=30)
    stale = write_run(root, "stale", tanh, logged=10, status="running", epochs_done=20, heartbeat_age_s=3600)
    old = write_run(root, "old-schema", tanh, logged=10)
    old_json = root / "runs" / old / "run.json"
    old_json.write_text(json.dumps({**json.loads(old_json.read_text()), "schema_version": 0}))
    gradients = root / "runs" / old / "gradients.parquet"
    pq.write_table(pq.read_table(gradients).drop_columns(["snr"]), gradients)
    (root / "runs" / "broken-json-s0").mkdir()
    (root / "runs" / "broken-json-s0" / "run.json").write_text('{"run_id": "broken-json-s0", "status": ')
    (root / "runs" / "no-run-json-s0").mkdir()
    return {"root": root, "good": good, "truncated": truncated, "no_mi": no_mi, "running": running,
            "stale": stale, "old": old, "broken": "broken-json-s0", "empty_dir": "no-run-json-s0"}


def write_tanh_runs(results: Path, seeds: int) -> list[str]:
    """`seeds` small tanh runs (20 epochs, 5 logged); their run ids."""
    return [write_run(results, "tanh", {"activation_fn": "tanh", "epochs": 20}, seed=seed, logged=5)
            for seed in range(seeds)]


@pytest.fixture
def private_index(tmp_path, monkeypatch):
    """The index in a private cache inside tmp_path, and nothing of it kept by this process."""
    from ibstore import index

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index.forget()
    yield
    index.forget()


@pytest.fixture
def small_tanh_root(tmp_path, monkeypatch, private_index):
    """A function making a root of `seeds` small tanh runs, with a private index saved at every scan."""
    from ibstore import index

    monkeypatch.setattr(index, "SAVE_INTERVAL_S", 0.0)

    def make(seeds: int) -> Path:
        results = tmp_path / "results"
        write_tanh_runs(results, seeds)
        return results
    return make


@pytest.fixture
def reads(monkeypatch):
    """The run folders read (not merely listed) by each scan."""
    from ibstore import scan_workers

    calls: list[str] = []
    original = scan_workers.read_run
    monkeypatch.setattr(scan_workers, "read_run", lambda root, run_dir: calls.append(run_dir.name) or original(root, run_dir))
    return calls


def open_app(monkeypatch, root, page=None, **params):
    """The explorer on `root` under Streamlit's AppTest, URL `params` given, on `page`; fails
    on an exception in the app. Its first script run draws `page`, as a browser opening a link to
    it does (not the Runs page first)."""
    from streamlit.testing.v1 import AppTest   # streamlit only where a test opens the app
    monkeypatch.setenv("IB_RESULTS", str(root))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(params)
    if page:
        at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    # switching before the first run falls back to the default page if the page is unknown
    assert page in (None, "runs") or not at.title or at.title[0].value != "Runs", f"{page} drew the Runs page"
    return at


def disk_full_for(monkeypatch, path_part: str) -> None:
    """Every atomic write (trainer.atomic) of a Parquet file whose temporary path contains `path_part`
    fails as on a full disk: its temporary file is created, but writes to it go to /dev/full (ENOSPC)."""
    real_create = atomic.create_temporary

    def create_on_full_disk(path):
        fd, tmp = real_create(path)
        if path_part in tmp and path.name.endswith(".parquet"):
            full = os.open("/dev/full", os.O_WRONLY)
            os.dup2(full, fd)
            os.close(full)
        return fd, tmp

    monkeypatch.setattr(atomic, "create_temporary", create_on_full_disk)
