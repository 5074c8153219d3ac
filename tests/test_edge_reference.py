"""`edge` against an independent port of deep-bottleneck's EDGE, on a network the trainer trains.

The port below follows deep-bottleneck's deep_bottleneck/mi_estimator/edge.py (commit bb88a13:
gen_W, find_knn, gen_eps, H1, Hash, Compute_MI, NoshadEDGE and EDGE.compute_mi's calls) in the
style of that code (np.random's global state, dicts of tuples, a loop over the rows, math.log)
and never calls trainer.estimators, with one change, for speed: H1 hashes all the rows of a
projection in one numpy expression (the same elementwise floats as deep-bottleneck's call per row),
and Hash files their keys row by row. sklearn's NearestNeighbors is used when it is installed;
otherwise find_knn's distances are the sorted |a - q| (what its k-d tree returns in one
dimension), for the 500 queries at once.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainer.estimators import canonical, estimate
from trainer.estimators.errors import EstimatorError

# the module fixture trains networks: one test process runs the module (pytest-xdist group), so it
# trains them once, not once in each process
pytestmark = pytest.mark.xdist_group("edge_reference")

TOLERANCE = 1e-9  # bits


# --- the reference, ported ---------------------------------------------------------------------------


def ref_gen_W(X, Y):
    np.random.seed(3334)
    N = X.shape[0]
    dim_X, dim_Y = X.shape[1], Y.shape[1]
    kx, ky = 2, 2
    rx, ry = 10, 10
    std_X = np.array([np.std(X[:, [i]]) for i in range(dim_X)])
    std_Y = np.array([np.std(Y[:, [i]]) for i in range(dim_Y)])
    std_X = np.reshape(std_X, (dim_X, 1))
    std_Y = np.reshape(std_Y, (dim_Y, 1))
    d_X_shrink = min(dim_X, math.floor(math.log(1.0 * N / rx, kx)))
    d_Y_shrink = min(dim_Y, math.floor(math.log(1.0 * N / ry, ky)))
    std_X_mat = np.tile(std_X, (1, d_X_shrink))
    std_Y_mat = np.tile(std_Y, (1, d_Y_shrink))
    std_X_mat[std_X_mat < 0.0001] = 1
    std_Y_mat[std_Y_mat < 0.0001] = 1
    mu_X = np.zeros((dim_X, d_X_shrink))
    mu_Y = np.zeros((dim_Y, d_Y_shrink))
    sigma_X = 1.0 / (std_X_mat * np.sqrt(dim_X))
    sigma_Y = 1.0 / (std_Y_mat * np.sqrt(dim_Y))
    W = np.random.normal(mu_X, sigma_X, (dim_X, d_X_shrink))
    V = np.random.normal(mu_Y, sigma_Y, (dim_Y, d_Y_shrink))
    return W, V


def ref_kneighbors_last_distance(A, T, k):
    """NearestNeighbors(n_neighbors=k).fit(A).kneighbors(T)[0][:, -1] for one-column A."""
    try:
        from sklearn.neighbors import NearestNeighbors
    except ImportError:
        return np.sort(np.abs(A[:, 0] - T), axis=1)[:, k - 1]      # T [queries, 1]: [queries, rows], each sorted
    distances, _ = NearestNeighbors(n_neighbors=k, algorithm="auto").fit(A).kneighbors(T)
    return distances[:, -1]


def ref_find_knn(A, d):
    np.random.seed(3334)
    r = 500
    A = A.reshape((-1, 1))
    N = A.shape[0]
    k = math.floor(0.43 * N ** (2 / 3 + 0.17 * (d / (d + 1))) * math.exp(-1.0 / np.max([10000, d ** 4])))
    T = np.random.choice(A.reshape(-1, ), size=r).reshape(-1, 1)
    return np.mean(ref_kneighbors_last_distance(A, T, k))


def ref_gen_eps(XW, YV):
    d_X, d_Y = XW.shape[1], YV.shape[1]
    eps_X = np.array([ref_find_knn(XW[:, [i]], d_X) for i in range(d_X)]) + 0.0001
    eps_Y = np.array([ref_find_knn(YV[:, [i]], d_Y) for i in range(d_Y)]) + 0.0001
    return eps_X, eps_Y


def ref_H1(XW, b, eps):
    """H1 of every row of XW [N, d]: its keys, tuples of floats (d > 1) or floats (d = 1)."""
    d_X = XW.shape[1]
    if d_X > 1 or eps > 0:  # H1's first two branches, one expression for rows [N, d]
        X_te = 1.0 * (XW + b) / eps
    else:
        X_te = XW
    X_t = np.floor(X_te)
    if d_X > 1:
        return [tuple(row) for row in X_t.tolist()]
    return X_t[:, 0].tolist()  # np.squeeze(X_t).item() of each row (np.asscalar, gone from numpy)


def ref_Hash(XW, YV, eps_X, eps_Y, b_X, b_Y):
    CX, CY, CXY = {}, {}, {}
    for i, (X_l, Y_l) in enumerate(zip(ref_H1(XW, b_X, eps_X), ref_H1(YV, b_Y, eps_Y))):
        CX.setdefault(X_l, []).append(i)
        CY.setdefault(Y_l, []).append(i)
        CXY.setdefault((X_l, Y_l), []).append(i)
    return CX, CY, CXY


def ref_Compute_MI(XW, YV, U, eps_X, eps_Y, b_X, b_Y):
    N = XW.shape[0]
    CX, CY, CXY = ref_Hash(XW, YV, eps_X, eps_Y, b_X, b_Y)
    I = 0
    N_c = 0
    for e in CXY.keys():
        Ni, Mj, Nij = len(CX[e[0]]), len(CY[e[1]]), len(CXY[e])
        I += Nij * max(min(math.log(1.0 * Nij * N / (Ni * Mj), 2), U), 0.001)
        N_c += Nij
    return 1.0 * I / N_c


def ref_NoshadEDGE(X, Y, U=10, gamma=(1, 1), L_ensemble=10, eps_range_factor=0.1):
    """hashing='p-stable', epsilon=[0, 0], epsilon_vector='range', 'median', stochastic=False,
    normalize_epsilon=False: the branches deep-bottleneck's EDGE takes."""
    gamma = np.array(gamma)
    gamma = gamma * 0.9
    if X.ndim == 1:
        X = X.reshape((-1, 1))
    if Y.ndim == 1:
        Y = Y.reshape((-1, 1))
    W, V = ref_gen_W(X, Y)
    d_X_shrink, d_Y_shrink = W.shape[1], V.shape[1]
    XW, YV = np.dot(X, W), np.dot(Y, V)
    eps_X_temp, eps_Y_temp = ref_gen_eps(XW, YV)
    cx, cy = 3 * d_X_shrink, 3 * d_Y_shrink
    eps_X0, eps_Y0 = eps_X_temp * cx * gamma[0], eps_Y_temp * cy * gamma[1]
    T = np.linspace(1, 1 + eps_range_factor, L_ensemble)
    I_vec = np.zeros(L_ensemble)
    for j in range(L_ensemble):
        eps_X, eps_Y = eps_X0 * T[j], eps_Y0 * T[j]
        b_X = np.linspace(0, 1, L_ensemble, endpoint=False)[j] * eps_X
        b_Y = np.linspace(0, 1, L_ensemble, endpoint=False)[j] * eps_Y
        I_vec[j] = ref_Compute_MI(XW, YV, U, eps_X, eps_Y, b_X, b_Y)
    return np.median(I_vec)


def deep_bottleneck_edge(layer_activations, labels, examples):
    """(MI_XM, MI_YM) of EDGE.compute_mi for one layer and epoch."""
    layer_activations = np.asarray(layer_activations, dtype=np.float32)

    def compute(X, Y, U):
        return ref_NoshadEDGE(X, Y, U=U, L_ensemble=10, gamma=[0.1, 0.1])

    mi_with_label = compute(layer_activations, labels[:, np.newaxis], U=1)
    mi_with_input = compute(layer_activations, examples, U=12)
    return mi_with_input, mi_with_label


# --- closed forms (fast) -----------------------------------------------------------------------------


def test_defaults_are_deep_bottlenecks():
    assert canonical("mi_estimator.edge") == ("edge", {"U_xt": 12.0, "U_yt": 1.0, "L_ensemble": 10, "gamma_t": 0.1,
                                                       "gamma_xy": 0.1, "eps_range_factor": 0.1, "seed": 3334})


def test_a_layer_equal_to_the_labels_gives_the_capped_label_entropy():
    # T = Y: two cells on each side, every edge joins a class to its own cell, so
    # I = sum_y p(y) min(log2 1/p(y), U): with p = 1/4, 3/4 that is 1/4 * 1 + 3/4 log2(4/3) under U = 1
    # and H(Y) = 0.811 bits under U = 12.
    y = np.repeat([0, 1], [250, 750])
    t = y.astype(np.float32)[:, None]
    assert estimate("edge", t, y)[1] == pytest.approx(0.25 + 0.75 * math.log2(4 / 3), abs=1e-12)
    label_entropy = -0.25 * math.log2(0.25) - 0.75 * math.log2(0.75)
    assert estimate("edge", t, y, U_yt=12)[1] == pytest.approx(label_entropy, abs=1e-12)
    x = np.eye(2)[y]  # inputs that are the one-hot labels: the same two cells
    assert estimate("edge", t, y, inputs=x)[0] == pytest.approx(label_entropy, abs=1e-12)


def test_identical_activations_give_the_floor_of_0_001_bits():
    # one T cell: every edge has N_ij n / (N_i M_j) = 1, log 0, floored at 0.001 bits
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    x = rng.integers(0, 2, (300, 12)).astype(np.float32)
    assert estimate("edge", np.full((300, 3), 0.4), y, inputs=x) == (pytest.approx(0.001, abs=1e-15),) * 2


def test_without_inputs_i_xt_is_nan_and_too_few_rows_raise():
    rng = np.random.default_rng(4)
    t, y = rng.normal(size=(100, 3)), rng.integers(0, 2, 100)
    i_xt, i_yt = estimate("edge", t, y)
    assert math.isnan(i_xt) and i_yt == pytest.approx(deep_bottleneck_edge(t, y, t)[1], abs=TOLERANCE)
    with pytest.raises(EstimatorError, match="at least 20 inputs"):
        estimate("edge", t[:19], y[:19])
    with pytest.raises(EstimatorError, match="inputs must be numeric"):
        estimate("edge", t, y, inputs=t[:99])


def test_synthetic_layers_are_the_reference():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, (600, 12)).astype(np.float32)
    y = (x.sum(axis=1) > 6).astype(np.int64)
    for units in (1, 3, 10):
        t = np.tanh(x @ rng.normal(size=(12, units)))
        ours = estimate("edge", t, y, inputs=x)
        assert ours == pytest.approx(deep_bottleneck_edge(t, y, x), abs=TOLERANCE)


# --- real activations from the trainer (slow) --------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(inputs of all rows, labels, n_train, {epoch: layers}) of a small tanh run of the trainer."""
    from trainer import config, saved
    from trainer.datasets import load_data
    from trainer.training import run_experiment

    root = tmp_path_factory.mktemp("edge_run")
    # logged (and saved) at epochs 0 and 30 alone: the two the test compares
    raw = {"name": "edge", "activation_fn": "tanh", "architecture": [10, 7, 5, 4, 3], "epochs": 30,
           "log_schedule": {"every": 30}, "save_activations": True, "mi_splits": ["train"],
           "estimators": [{"name": "binning", "params": {"bin_size": 0.07}}]}
    experiment = config.plan(raw)[0]
    (run_id, status), = run_experiment(experiment, root, progress=False).items()
    assert status.status == "completed"
    labels, n_train, _ = saved.load_index(root, run_id)
    epochs = saved.saved_epochs(root, run_id)
    layers = {epoch: saved.load_epoch(root, run_id, epoch) for epoch in (epochs[0], epochs[-1])}
    full = load_data(experiment.config).full                                 # train rows, then test rows
    assert np.array_equal(full.y, labels)
    return full.x, labels, n_train, layers


@pytest.mark.slow
def test_edge_is_deep_bottleneck_on_trained_layers(trained):
    inputs, labels, n_train, layers = trained
    checked = 0
    for epoch, values in layers.items():
        for layer in (0, 3, len(values) - 1):
            for rows in (slice(0, n_train), slice(None)):                  # train split, full
                t, y, x = values[layer][rows], labels[rows], inputs[rows]
                ours = estimate("edge", t, y, inputs=x)
                reference = deep_bottleneck_edge(t, y, x)
                assert ours == pytest.approx(reference, abs=TOLERANCE), (epoch, layer, rows)
                assert ours[0] > 0.5 and 0.001 <= ours[1] <= 1.0
                checked += 1
    assert checked == 12
