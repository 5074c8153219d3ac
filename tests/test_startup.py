"""Start-up: the reading verbs never import TensorFlow, nor the explorer's first load scipy.stats;
the persistent XLA cache is keyed so a second process loads what the first compiled, and its
harmless load messages are dropped."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import write_cohort

from trainer import xla_cache, xla_flags

REPO = Path(__file__).resolve().parents[1]

# Runs the CLI with the given arguments, then prints the TensorFlow/Keras/JAX modules it imported.
CLI_THEN_HEAVY_MODULES = (
    "import json, sys\n"
    "from trainer import cli\n"
    "code = cli.main(sys.argv[1:])\n"
    "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'jax'))\n"
    "print(json.dumps({'code': code, 'heavy': heavy[:5]}))\n")


def env_with(**extra: str) -> dict[str, str]:
    # Without this process's TF_XLA_FLAGS: a training test in this process has set the cache flag
    # there, and a child that inherits it keeps it (a user's own flag wins over IB_XLA_CACHE).
    inherited = {key: value for key, value in os.environ.items() if key != "TF_XLA_FLAGS"}
    return {**inherited, "PYTHONPATH": str(REPO), **extra}


@pytest.mark.parametrize("verb", [["ls"], ["sql", "SELECT count(*) AS n FROM runs"], ["compact"],
                                  ["ls", "--where", "initial_bias < 0"]])
@pytest.mark.slow
def test_reading_verbs_do_not_import_tensorflow(tmp_path, verb):
    write_cohort(tmp_path, seeds=1)
    result = subprocess.run([sys.executable, "-c", CLI_THEN_HEAVY_MODULES, *verb, "--results", str(tmp_path)],
                            cwd=REPO, env=env_with(), capture_output=True, text=True, timeout=120)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"code": 0, "heavy": []}, result.stderr


# Imports the training loop, prints which optional heavy modules came with it, then imports JAX.
TRAINING_THEN_JAX = (
    "import json, sys\n"
    "import trainer.training\n"
    "loaded = sorted(m for m in ('jax', 'keras', 'scipy.spatial') if m in sys.modules)\n"
    "import jax, jax.numpy\n"
    "print(json.dumps({'loaded': loaded, 'jax_after': float(jax.numpy.add(1, 2))}))\n")


@pytest.mark.slow
def test_the_training_loop_imports_tensorflow_without_jax_keras_or_scipy_spatial(tmp_path):
    pytest.importorskip("jax")    # the bench extra: TensorFlow's TFLite utilities import it when present
    result = subprocess.run([sys.executable, "-c", TRAINING_THEN_JAX], check=False, cwd=REPO, env=env_with(),
                            capture_output=True, text=True, timeout=300)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"loaded": [], "jax_after": 3.0}, result.stderr


def test_cache_folder_is_per_tensorflow_version_and_cpu_and_can_be_turned_off(monkeypatch, tmp_path):
    monkeypatch.delenv(xla_cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = xla_cache.cache_folder("2.21.0")
    assert folder.parent == tmp_path / "ib-lab" / "xla"
    assert folder.name.startswith("tf2.21.0-") and len(folder.name) == len("tf2.21.0-") + 12
    assert xla_cache.cache_folder("2.22.0") != folder
    monkeypatch.setenv(xla_cache.CACHE_ENV, str(tmp_path / "mine"))
    assert xla_cache.cache_folder("2.21.0").parent == tmp_path / "mine"
    monkeypatch.setenv(xla_cache.CACHE_ENV, "off")
    assert xla_cache.cache_folder("2.21.0") is None


def test_executables_compiled_under_other_xla_flags_go_to_another_cache_folder(monkeypatch, tmp_path):
    """The cache key does not hold XLA_FLAGS, which change the code compiled from it."""
    monkeypatch.setenv(xla_cache.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    plain = xla_cache.cache_folder("2.21.0")
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_xnn_fusion_type=dot")
    flagged = xla_cache.cache_folder("2.21.0")
    assert flagged != plain and flagged.parent == plain.parent and flagged.name.startswith("tf2.21.0-")
    assert xla_cache.cache_folder("2.21.0") == flagged


def test_the_trainer_compiles_with_ynnpack_dot_fusions_only_and_keeps_a_users_own_choice(monkeypatch):
    """Dots only: YNNPACK's reductions made a network's numbers depend on its stack (trainer.xla_flags)."""
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_hlo_as_text")
    xla_flags.use()
    assert os.environ["XLA_FLAGS"] == "--xla_dump_hlo_as_text --xla_cpu_experimental_ynn_fusion_type=dot"
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=")
    xla_flags.use()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type="


def test_enable_sets_the_flag_once_and_keeps_a_users_own(monkeypatch, tmp_path):
    monkeypatch.setenv(xla_cache.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    folder = xla_cache.enable("2.21.0")
    assert folder.is_dir()
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory={folder}"
    assert xla_cache.enable("2.21.0") is None     # already set: left as it is
    assert os.environ["TF_XLA_FLAGS"].count("persistent_cache_directory") == 1


def test_enable_without_a_writable_folder_says_so_and_trains_uncached(monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(xla_cache.CACHE_ENV, str(blocker / "cache"))
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    assert xla_cache.enable("2.21.0") is None
    assert "TF_XLA_FLAGS" not in os.environ
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("note: no XLA compilation cache") and "IB_XLA_CACHE" in line


def test_first_call_drops_only_the_harmless_load_messages(capfd):
    def noisy(x):
        os.write(2, b"E0000 text_format.cc:378] Error parsing text-format tensorflow.XlaSerializedCacheEntry: 2:1\n"
                    b"E0000 cpu_aot_loader.cc:220] Target machine feature +prefer-no-gather is not  supported\n"
                    b"E0000 something that matters\n")
        return x + 1

    quiet = xla_cache.first_call_quiet(noisy)
    assert quiet(1) == 2
    assert capfd.readouterr().err == "E0000 something that matters\n"
    assert quiet(2) == 3                          # later calls are not wrapped
    assert "XlaSerializedCacheEntry" in capfd.readouterr().err


def test_first_call_passes_errors_and_their_messages_through(capfd):
    def failing():
        os.write(2, b"E0000 compilation failed\n")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        xla_cache.first_call_quiet(failing)()
    assert capfd.readouterr().err == "E0000 compilation failed\n"


@pytest.mark.slow
def test_a_second_process_loads_the_compiled_steps_from_the_cache(tmp_path):
    """Same config in two processes: the first writes the executables, the second finds them
    under the same keys (no new file), trains the same numbers and prints no load message."""
    cache = tmp_path / "cache"
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"epochs": 2, "architecture": [6, 4], "log_schedule": {"every": 1}}))

    def run(results: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "trainer", "run", str(config), "--quiet",
                               "--results", str(tmp_path / results)],
                              cwd=REPO, env=env_with(IB_XLA_CACHE=str(cache), TF_CPP_MIN_LOG_LEVEL="2"),
                              capture_output=True, text=True, timeout=300)

    first = run("a")
    assert first.returncode == 0, first.stderr
    written = {path.name: path.stat().st_mtime_ns for path in cache.rglob("*.pb")}
    assert len(written) == 1                      # the chunk, with its evaluation (one function)
    second = run("b")
    assert second.returncode == 0, second.stderr
    assert {path.name: path.stat().st_mtime_ns for path in cache.rglob("*.pb")} == written
    assert "XlaSerializedCacheEntry" not in second.stderr and "prefer-no-" not in second.stderr
    first_metrics, second_metrics = (pq.read_table(next((tmp_path / results).rglob("metrics.parquet"))).to_pandas()
                                     for results in ("a", "b"))
    assert len(first_metrics) == 6                # epochs 0..2, train and test
    assert first_metrics[["loss", "accuracy"]].equals(second_metrics[["loss", "accuracy"]])


# Imports every module the Runs page's first load imports, then prints whether scipy.stats came along.
RUNS_PAGE_IMPORTS = (
    "import json, sys\n"
    "import explorer.cohort_tables, explorer.seed_bands, explorer.quickstart, ibstore.stats, ibstore.views\n"
    "print(json.dumps({'scipy.stats': 'scipy.stats' in sys.modules}))\n")


@pytest.mark.slow
def test_the_explorers_first_load_does_not_import_scipy_stats():
    """scipy.stats cost the explorer's first load about 0.8 s; only the statistics themselves need it."""
    result = subprocess.run([sys.executable, "-c", RUNS_PAGE_IMPORTS], check=False, cwd=REPO, env=env_with(),
                            capture_output=True, text=True, timeout=120)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"scipy.stats": False}, result.stderr
