"""ibstore.collector: the garbage collector is off during a scan and as it was afterwards."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from ibstore import collector, index
from ibstore.scan import read_run


@pytest.fixture
def collector_state():
    was = gc.isenabled()
    yield
    gc.enable() if was else gc.disable()


@pytest.mark.parametrize("enabled", [True, False])
def test_paused_turns_it_off_and_back_to_what_it_was_even_on_error(enabled, collector_state):
    gc.enable() if enabled else gc.disable()
    with pytest.raises(RuntimeError):
        with collector.paused():
            assert not gc.isenabled()
            raise RuntimeError("a read failed")
    assert gc.isenabled() is enabled


def test_what_was_made_meanwhile_ends_in_the_oldest_generation_unwalked(collector_state, monkeypatch):
    gc.enable()
    # As in a process that froze nothing for good (this one may have imported TensorFlow, which
    # does): the pause's unfreeze then releases those objects too, which costs only collector time.
    monkeypatch.setattr(collector, "_frozen_for_good", False)
    with collector.paused():
        made = [[index] for index in range(1000)]   # containers: tracked by the collector
    assert gc.get_count()[0] < 100          # no young objects left to walk at the next collection
    young = {id(item) for generation in (0, 1) for item in gc.get_objects(generation=generation)}
    assert not any(id(item) in young for item in made)
    # still tracked, in no young generation and not frozen for good: in the oldest one
    assert all(gc.is_tracked(item) for item in made) and gc.get_freeze_count() == 0


def test_a_scan_reads_with_it_off_and_leaves_it_on(tmp_path, monkeypatch, collector_state):
    gc.enable()
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    seen = []

    def spying_read_run(root, run_dir):
        seen.append(gc.isenabled())
        return read_run(root, run_dir)

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("ibstore.scan_workers.read_run", spying_read_run)
    index.forget(tmp_path)
    index.scan(tmp_path)
    assert seen == [False]
    assert gc.isenabled()


def run_python(code: str) -> str:
    """stdout of `code` run in a fresh interpreter (its collector state is its own)."""
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_for_good_keeps_them_frozen_and_no_later_pause_releases_them():
    out = run_python("""
import gc
from ibstore import collector
with collector.paused(for_good=True):
    kept = [[i] for i in range(1000)]
frozen = gc.get_freeze_count()
with collector.paused():
    made = [[i] for i in range(1000)]
walked = {id(item) for item in gc.get_objects()}    # every generation but the permanent one
print(frozen >= 1000, gc.get_freeze_count() >= frozen + 1000, any(id(item) in walked for item in kept + made),
      gc.isenabled())
""")
    assert out.split() == ["True", "True", "False", "True"]


@pytest.mark.slow
def test_tensorflow_is_imported_with_its_objects_frozen_for_good():
    out = run_python("""
import gc
from trainer.tensorflow_without_keras import tf
print(gc.get_freeze_count(), len(gc.get_objects()), gc.isenabled(), int(tf.constant(2) + 3))
""")
    frozen, walked, enabled, five = out.split()
    # TensorFlow's import leaves some 400,000 objects; a full collection walks only what came after.
    assert int(frozen) > 100_000 and int(walked) < int(frozen) // 10
    assert enabled == "True" and five == "5"
