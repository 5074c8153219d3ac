"""ksg's h(T) against NPEET's entropy(), the k-NN code of the reference repository, on real activations.

NPEET (Greg Ver Steeg) ships in ravidziv/IDNNs as idnns/information/entropy_estimators.py
(commit e53f054); `npeet_entropy` below is its entropy() (L15-28) written again here, line by
line, in its own style (lists of rows, math.log), with three changes only: Python 3's map returns
an iterator, so the logs are listed; the module-level numpy.random it draws its jitter from is a
RandomState(seed) passed in, so that the draws can be the estimator's; and the cKDTree is queried
once for all the points, not once per point (the same distances, without a Python call per point).
It never calls trainer.estimators. The activations come from the project's
trainer (a tanh and a relu network, 5 epochs each on the harmonics data, activations saved);
the h_t_bits the trainer wrote must equal NPEET's value to 1e-9 bits, for every layer and
logged epoch. The relu layers' dead units repeat rows, the case in which only NPEET's jitter
keeps the estimate finite. The I(Y;T) the same rows hold is checked against a brute-force port
of Ross (2014), and h(T) of a large Gaussian sample against its closed form.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.spatial as ss
from scipy.special import digamma, polygamma

from ibstore import layout
from trainer import config, saved
from trainer.estimators import estimate
from trainer.training import run_experiment

# the module fixture trains networks: one test process runs the module (pytest-xdist group), so it
# trains them once, not once in each process
pytestmark = pytest.mark.xdist_group("ksg_reference")

TOLERANCE = 1e-9  # bits


def npeet_entropy(x, k=3, base=2, nr=None):
    """NPEET's entropy(x, k, base): the classic K-L k-nearest neighbor continuous entropy estimator
    (max-norm), its jitter drawn from `nr` (NPEET: the numpy.random module)."""
    assert k <= len(x) - 1, "Set k smaller than num. samples - 1"
    d = len(x[0])
    N = len(x)
    intens = 1e-10  # small noise to break degeneracy, see doc.
    x = [list(p + intens * nr.rand(len(x[0]))) for p in x]
    tree = ss.cKDTree(x)
    nn = tree.query(x, k + 1, p=float('inf'))[0][:, k]
    const = digamma(N) - digamma(k) + d * math.log(2)
    return (const + d * np.mean(list(map(math.log, nn)))) / math.log(base)


def ross_mi_bits_rows(t: np.ndarray, y: np.ndarray, k: int) -> float:
    """Ross 2014, Eq. 2, by brute force: psi(N) - <psi(N_y)> + psi(k) - <psi(m_i)>, m_i the other
    points within the Euclidean distance of i's k-th nearest neighbour of its class (every class
    here has more than k members and the jitter makes distances distinct). Every distance, for a
    block of 128 points at a time (their squares summed a column at a time: numpy's sum over a short
    last axis is slow)."""
    total = 0.0
    for start in range(0, len(t), 128):
        rows = np.arange(start, min(start + 128, len(t)))
        squares = np.zeros((len(rows), len(t)))
        for column in t.T:
            squares += (column - column[rows, None]) ** 2
        dist = np.sqrt(squares)                                                  # [rows, all points]
        dist[np.arange(len(rows)), rows] = np.inf
        radius = np.empty(len(rows))
        for label in np.unique(y[rows]):
            of_class = y[rows] == label
            radius[of_class] = np.partition(dist[of_class][:, y == label], k - 1, axis=1)[:, k - 1]
        total += digamma((dist <= radius[:, None]).sum(axis=1)).sum()
    class_sizes = np.bincount(y)
    return float((digamma(len(t)) - np.mean(digamma(class_sizes[y])) + digamma(k) - total / len(t)) / math.log(2))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """{activation: (mi rows, labels, {epoch: saved activations})} of two short real trainings."""
    root = tmp_path_factory.mktemp("ksg_reference")
    out = {}
    for activation in ("tanh", "relu"):
        raw = {"name": f"ksg-{activation}", "activation_fn": activation, "epochs": 5,
               "log_schedule": {"every": 5}, "mi_splits": ["full"], "save_activations": True,
               "estimators": [{"name": "ksg", "params": {}}, {"name": "ksg", "params": {"k": 2, "seed": 7}}]}
        (experiment,) = config.plan(raw)
        run_experiment(experiment, root, seeds=[0], progress=False)
        run_id = experiment.run_id(0)
        labels, _, _ = saved.load_index(root, run_id)
        layers = {epoch: saved.load_epoch(root, run_id, epoch) for epoch in saved.saved_epochs(root, run_id)}
        mi = pq.read_table(layout.table_path(root, run_id, "mi")).to_pandas()
        out[activation] = (mi, labels.astype(np.int64), layers)
    return out


@pytest.mark.slow  # its fixture trains two networks
def test_ksg_entropy_is_npeet_entropy_on_trained_networks(trained):
    checked = 0
    for activation, (mi, labels, layers) in trained.items():
        assert sorted(layers) == [0, 5]
        for _, row in mi.iterrows():
            params = json.loads(row["params"])
            values = layers[row["epoch"]][row["layer"]].astype(np.float64)
            expected = npeet_entropy(values, k=params["k"], nr=np.random.RandomState(params["seed"]))
            assert row["i_xt"] is None or math.isnan(row["i_xt"])
            assert row["h_t_bits"] == pytest.approx(expected, abs=TOLERANCE), (activation, row["epoch"], row["layer"])
            checked += 1
        # the dead units of relu repeat rows: there the estimate stands on the jitter alone
        if activation == "relu":
            assert any(len(np.unique(v, axis=0)) < len(v) for epoch in layers.values() for v in epoch)
    assert checked == 2 * 2 * 6 * 2  # networks x logged epochs x layers x ksg specs


@pytest.mark.slow  # its fixture trains two networks
def test_ksg_i_yt_is_ross_on_trained_networks(trained):
    mi, labels, layers = trained["tanh"]
    for _, row in mi[mi.epoch == 5].iterrows():
        params = json.loads(row["params"])
        t = layers[5][row["layer"]].astype(np.float64)
        # the documented jitter of the I(Y;T) part: noise * max(1, mean |t_u|) * N(0, 1), seeded
        t = t + 1e-10 * np.maximum(1.0, np.abs(t).mean(axis=0)) * np.random.default_rng(params["seed"]).standard_normal(t.shape)
        assert row["i_yt"] == pytest.approx(ross_mi_bits_rows(t, labels, params["k"]), abs=1e-6), row["layer"]


def test_ksg_entropy_equals_npeet_on_repeated_rows():
    # all rows equal: only the jitter separates them (NPEET: "small noise to break degeneracy")
    rng = np.random.default_rng(3)
    t = np.repeat(rng.normal(size=(40, 3)), 5, axis=0)
    for seed in (0, 11):
        assert estimate("ksg", t, np.zeros(200, dtype=int), seed=seed)[0] == pytest.approx(
            npeet_entropy(t, nr=np.random.RandomState(seed)), abs=TOLERANCE)
    assert estimate("ksg", t, np.zeros(200, dtype=int), noise=0)[0] == -math.inf  # NPEET's math.log(0) raises


def test_ksg_entropy_of_a_gaussian_sample_is_its_closed_form():
    # h(N(0, I_d)) = d/2 log2(2 pi e). The estimate is psi(n) - psi(k) + d log 2 + d <log r_i>, and
    # d log r_i ~ -log f(x_i) - log(n c_d) + log G_i with G_i ~ Gamma(k, 1) (the k-NN ball's mass times n),
    # so its variance is about (Var log f(X) + psi'(k)) / n, Var log f(X) = Var(|X|^2 / 2) = d / 2.
    # d = 2, k = 3, n = 20000: standard deviation 0.012 bits (30 seeds: 0.013, bias -0.007); 5 of them.
    n, d, k = 20000, 2, 3
    t = np.random.default_rng(21).normal(size=(n, d))
    std_bits = math.sqrt((d / 2 + float(polygamma(1, k))) / n) / math.log(2)
    h = estimate("ksg", t, np.zeros(n, dtype=int))[0]
    assert h == pytest.approx(d / 2 * math.log2(2 * math.pi * math.e), abs=5 * std_bits)
    # a scaled copy: max-norm distances scale exactly, so h moves by d log2(3) up to the unscaled jitter
    assert estimate("ksg", 3 * t, np.zeros(n, dtype=int))[0] - h == pytest.approx(d * math.log2(3), abs=1e-6)
