"""The trainer builds its networks without Keras (start-up, issue 18): its activations and its
kernel initialiser give Keras' numbers bit for bit, and a `trainer run` never imports Keras
(nor, through it, IPython), nor streamlit. (pandas it does: pyarrow imports it on its first
`pa.array`, to ask whether the values are pandas objects.)"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from trainer.config.schema import ACTIVATIONS, SEED_MAX
from trainer.model import activation, truncated_normal
from trainer.tensorflow_without_keras import tf

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_each_activation_gives_keras_values_and_gradients_bit_for_bit(name):
    # Zero, both signs, the kinks of relu6 / hard_sigmoid (+-3, 6), saturation and overflow.
    grid = np.concatenate([np.linspace(-12, 12, 2001), [0.0, -0.0, 3.0, -3.0, 6.0, 1e-8, -1e-8, 88.0, -88.0, 1e4]])
    x = tf.constant(grid.astype(np.float32))
    values, gradients = [], []
    for function in (activation(name), keras.activations.get(name)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
        values.append(y.numpy())
        gradients.append(tape.gradient(y, x).numpy())
    np.testing.assert_array_equal(values[0], values[1])
    np.testing.assert_array_equal(gradients[0], gradients[1])


@pytest.mark.parametrize("seed", [0, 1, 1003, 2**31 - 2, 2**31 + 5, SEED_MAX * 1000 + 6])
def test_truncated_normal_equals_keras_initialiser_bit_for_bit(seed):
    for shape, stddev in (((12, 10), 1 / np.sqrt(10)), ((3, 2), 0.5)):
        ours = truncated_normal(shape, stddev, seed)
        theirs = keras.initializers.TruncatedNormal(stddev=stddev, seed=seed)(shape).numpy()
        assert ours.dtype == np.float32 and ours.shape == shape
        np.testing.assert_array_equal(ours, theirs)


def test_a_different_seed_gives_different_weights():
    assert not np.array_equal(truncated_normal((12, 10), 0.3, 0), truncated_normal((12, 10), 0.3, 1))


# Runs `trainer run` in this process, then prints its exit code and the heavy modules it imported.
RUN_THEN_MODULES = (
    "import json, sys\n"
    "from trainer import cli\n"
    "code = cli.main(sys.argv[1:])\n"
    "print(json.dumps({'code': code, 'tensorflow': 'tensorflow' in sys.modules,\n"
    "                  'unwanted': sorted(m for m in sys.modules\n"
    "                                     if m.split('.')[0] in ('keras', 'IPython', 'streamlit'))[:5]}))\n")


@pytest.mark.slow
def test_trainer_run_imports_no_keras(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}, "PYTHONPATH": str(REPO),
           "IB_XLA_CACHE": str(tmp_path / "xla"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", RUN_THEN_MODULES, "run", "data/configs/basic.json", "--set",
                             "epochs=1", "--quiet", "--results", str(tmp_path / "results")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"code": 0, "tensorflow": True, "unwanted": []}, result.stderr
