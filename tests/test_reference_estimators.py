"""Each named estimator against an independent implementation of its reference, on real networks.

The references below are written here from the published code (ibsgd, IDNNs, Chelombiev et
al.'s adaptive_estimators) or from the paper where there is no code (Saxe et al.'s run-wide
range, Ross's estimator), in the style of that code (np.unique over void views, np.digitize,
dense distance matrices, loops) and never call trainer.estimators. They are applied to the
activations of two small networks (tanh and relu, 12-10-7-5-4-3-2 on the 4096 harmonics
inputs) trained here in numpy for a few epochs; the estimates must agree to 1e-6 bits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import digamma, logsumexp

from trainer.datasets import harmonics
from trainer.estimators import estimate, for_network
from trainer.measure import MiRows

pytestmark = pytest.mark.slow  # the module's fixture trains networks

TOLERANCE = 1e-6  # bits
LOGGED_EPOCHS = (0, 5, 30)
SIZES = [12, 10, 7, 5, 4, 3, 2]


def train_network(activation: str, seed: int = 0) -> dict[int, list[np.ndarray]]:
    """{epoch: float32 activations of every layer on all 4096 inputs} of a small network trained by
    full-batch gradient descent on the harmonics data (softmax output, cross-entropy)."""
    x, y = harmonics()
    x = x.astype(np.float64)
    rng = np.random.default_rng(seed)
    weights = [np.clip(rng.normal(0, 1 / math.sqrt(n_out), (n_in, n_out)), -2 / math.sqrt(n_out), 2 / math.sqrt(n_out))
               for n_in, n_out in zip(SIZES[:-1], SIZES[1:])]
    biases = [np.zeros(n_out) for n_out in SIZES[1:]]
    f, df = {"tanh": (np.tanh, lambda h: 1 - h * h),
             "relu": (lambda z: np.maximum(z, 0), lambda h: (h > 0).astype(float))}[activation]
    onehot = np.eye(2)[y]
    logged = {}
    for epoch in range(max(LOGGED_EPOCHS) + 1):
        hs = [x]
        for i, (w, b) in enumerate(zip(weights, biases)):
            z = hs[-1] @ w + b
            if i == len(weights) - 1:
                z = np.exp(z - z.max(axis=1, keepdims=True))
                hs.append(z / z.sum(axis=1, keepdims=True))
            else:
                hs.append(f(z))
        if epoch in LOGGED_EPOCHS:
            logged[epoch] = [h.astype(np.float32) for h in hs[1:]]
        delta = (hs[-1] - onehot) / len(x)
        for i in reversed(range(len(weights))):
            grad_w, grad_b = hs[i].T @ delta, delta.sum(axis=0)
            if i:
                delta = (delta @ weights[i].T) * df(hs[i])
            weights[i] -= 2.0 * grad_w
            biases[i] -= 2.0 * grad_b
    return logged


@pytest.fixture(scope="module")
def networks() -> dict[str, dict[int, list[np.ndarray]]]:
    return {activation: train_network(activation) for activation in ("tanh", "relu")}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x, y = harmonics()
    return x.astype(np.float32), y.astype(np.int64)


def layers_of(networks):
    """(activation, epoch, layer index, activations) for every logged layer of both networks."""
    return [(activation, epoch, index, values) for activation, epochs in networks.items()
            for epoch, layers in epochs.items() for index, values in enumerate(layers)]


def test_the_networks_are_not_trivial(networks):
    # both trained (the last layer moved) and the relu network has exact zeros, where estimators differ
    for epochs in networks.values():
        assert not np.allclose(epochs[0][-1], epochs[30][-1], atol=1e-3)
    assert (networks["relu"][30][0] == 0).mean() > 0.2


# --- ibsgd simplebinmi.bin_calc_information2 (bin size) -----------------------------------------------


def ibsgd_get_unique_probs(x):
    uniqueids = np.ascontiguousarray(x).view(np.dtype((np.void, x.dtype.itemsize * x.shape[1])))
    _, unique_inverse, unique_counts = np.unique(uniqueids, return_index=False, return_inverse=True,
                                                 return_counts=True)
    return np.asarray(unique_counts / float(sum(unique_counts))), unique_inverse


def ibsgd_bin_calc_information2(labelixs, layerdata, binsize):
    def get_h(d):
        digitized = np.floor(d / binsize).astype('int')
        p_ts, _ = ibsgd_get_unique_probs(digitized)
        return -np.sum(p_ts * np.log(p_ts))

    h_layer = get_h(layerdata)
    h_layer_given_output = 0
    for label, ixs in labelixs.items():
        h_layer_given_output += ixs.mean() * get_h(layerdata[ixs, :])
    return h_layer, h_layer - h_layer_given_output


def test_binning_bin_size_is_ibsgd(networks, data):
    _, y = data
    labelixs = {label: y == label for label in (0, 1)}
    for activation, epoch, index, values in layers_of(networks):
        # ibsgd bins the float32 activations as they come out of Keras
        expected = np.array(ibsgd_bin_calc_information2(labelixs, values, 0.07)) / np.log(2)
        assert estimate("binning", values, y, bin_size=0.07) == pytest.approx(expected, abs=TOLERANCE), \
            (activation, epoch, index)


def edge_heavy_layers() -> dict[str, np.ndarray]:
    """float32 layers [4096, 4] whose values sit on or next to the multiples of 0.07, where the float32
    and the float64 quotient a / 0.07 floor differently."""
    rng = np.random.default_rng(3)
    steps = (rng.integers(-4, 20, (4096, 4)) * 0.42 - 3).astype(np.float32)
    return {
        # Keras 3's hard_sigmoid, relu6(x + 3) / 6, on pre-activations -3 + k * 0.42: values near k * 0.07
        "hard_sigmoid steps": np.clip((steps + np.float32(3)) / np.float32(6), 0, 1).astype(np.float32),
        "2 decimals": np.round(rng.normal(0, 0.5, (4096, 4)), 2).astype(np.float32),
        "multiples of 0.07 (float32)": rng.integers(-20, 21, (4096, 4)).astype(np.float32) * np.float32(0.07),
        "multiples of 0.07 (float64)": (rng.integers(-20, 21, (4096, 4)) * 0.07).astype(np.float32),
    }


def test_binning_is_ibsgd_in_float32_on_values_on_bin_edges(data):
    _, y = data
    labelixs = {label: y == label for label in (0, 1)}
    moved = []
    for name, values in edge_heavy_layers().items():
        expected = np.array(ibsgd_bin_calc_information2(labelixs, values, 0.07)) / np.log(2)
        assert estimate("binning", values, y, bin_size=0.07) == pytest.approx(expected, abs=1e-9), name
        # the same values as float64 land in other bins, so this checks the float32 arithmetic itself
        float64 = np.array(ibsgd_bin_calc_information2(labelixs, values.astype(np.float64), 0.07)) / np.log(2)
        moved.append(np.count_nonzero(np.floor(values / 0.07) != np.floor(values.astype(np.float64) / 0.07)))
        assert estimate("binning", values.astype(np.float64), y, bin_size=0.07) == pytest.approx(expected, abs=1e-9)
        assert abs(float64[0] - expected[0]) > 1e-4 or moved[-1] == 0, name
    assert all(count > 0 for count in moved), moved


# --- IDNNs: np.digitize over np.linspace(-1, 1, 30) ---------------------------------------------------


def idnns_calc_information_for_layer(data, bins, unique_inverse_x, unique_inverse_y, pxs, pys1):
    """ravidziv/IDNNs information_process.calc_information_for_layer + calc_information_from_mat."""
    bins = bins.astype(np.float32)
    digitized = bins[np.digitize(np.squeeze(data.reshape(1, -1)), bins) - 1].reshape(len(data), -1)
    b2 = np.ascontiguousarray(digitized).view(np.dtype((np.void, digitized.dtype.itemsize * digitized.shape[1])))
    _, _, unique_counts = np.unique(b2, return_index=False, return_inverse=True, return_counts=True)
    p_ts = unique_counts / float(sum(unique_counts))

    def conditional_entropy(px, unique_inverse):
        total = 0.0
        for i in range(px.shape[0]):
            current = digitized[unique_inverse == i, :]
            view = np.ascontiguousarray(current).view(np.dtype((np.void, current.dtype.itemsize * current.shape[1])))
            _, _, counts = np.unique(view, return_index=False, return_inverse=True, return_counts=True)
            p = np.asarray(counts / float(sum(counts)), dtype=np.float64)
            total += px[i] * (-np.sum(p * np.log2(p)))
        return total

    h2 = -np.sum(p_ts * np.log2(p_ts))
    # H(T|X): every harmonics input is distinct (asserted below), so each conditional entropy is that of
    # one row, 0; the 4096 single-row np.unique calls of IDNNs' loop are skipped for time.
    h2x = 0.0
    h2y = conditional_entropy(pys1, unique_inverse_y)
    return h2 - h2x, h2 - h2y


def test_idnns_is_idnns(networks, data):
    x, y = data
    x_view = np.ascontiguousarray(x).view(np.dtype((np.void, x.dtype.itemsize * x.shape[1])))
    _, unique_inverse_x, x_counts = np.unique(x_view, return_inverse=True, return_counts=True)
    assert (x_counts == 1).all()
    labels = np.eye(2)[y]
    y_view = np.ascontiguousarray(labels).view(np.dtype((np.void, labels.dtype.itemsize * 2)))
    _, unique_inverse_y, y_counts = np.unique(y_view, return_inverse=True, return_counts=True)
    unique_inverse_x, unique_inverse_y = unique_inverse_x.reshape(-1), unique_inverse_y.reshape(-1)  # numpy 2
    pys1 = y_counts / float(np.sum(y_counts))
    bins = np.linspace(-1, 1, 30)
    for activation, epoch, index, values in layers_of(networks):
        expected = idnns_calc_information_for_layer(values, bins, unique_inverse_x, unique_inverse_y,
                                                    x_counts / len(x), pys1)
        assert estimate("idnns", values, y) == pytest.approx(expected, abs=TOLERANCE), (activation, epoch, index)


# --- Chelombiev et al. 2019: set_up_bins(maxentropy=True, per_layer_bins=True) -----------------------


def chelombiev_set_up_bins(ws, activation, num_of_bins):
    """ivansche/adaptive_estimators information_process.set_up_bins, the per_layer_bins and maxentropy
    branch (activation 0 = tanh, 1 = relu, 3 = ELU). ws[epoch][layer] is one layer's activations."""
    bins = []
    low = -1.000001 if activation in (0, 3) else 0
    for i in range(len(ws)):
        epoch_bins = []
        for j in range(len(ws[i])):
            layer_bins = [low]
            unique = np.unique(np.squeeze(ws[i][j].reshape(1, -1)))
            unique = np.sort(np.setdiff1d(unique, layer_bins))
            if unique.size > 0:
                for k in range(num_of_bins):
                    ind = int(k * (unique.size / num_of_bins))
                    layer_bins.append(unique[ind])
                layer_bins.append(unique[-1])
            epoch_bins.append(np.asarray(layer_bins))
        bins.append(epoch_bins)
    return bins


def chelombiev_calc_information_sampling(data, bins, labels):
    """calc_information_sampling + calc_information_from_mat for distinct inputs (H(T|X) = 0), in bits."""
    bins = bins.astype(np.float32)
    digitized = bins[np.digitize(np.squeeze(data.reshape(1, -1)), bins) - 1].reshape(len(data), -1)

    def entropy_of_rows(rows):
        view = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))
        _, counts = np.unique(view, return_counts=True)
        p = counts / float(sum(counts))
        return -np.sum(p * np.log2(p))

    h2 = entropy_of_rows(digitized)
    h2y = sum(np.mean(labels == label) * entropy_of_rows(digitized[labels == label]) for label in np.unique(labels))
    return h2, h2 - h2y


@pytest.mark.parametrize("activation, code", [("tanh", 0), ("relu", 1)])
def test_adaptive_is_chelombiev(networks, data, activation, code):
    _, y = data
    epochs = sorted(networks[activation])
    ws = [networks[activation][epoch] for epoch in epochs]
    bins = chelombiev_set_up_bins(ws, code, 30)
    params = for_network("adaptive", {"n_bins": 30}, activation)  # low as the trainer fills it in
    for i, epoch in enumerate(epochs):
        for j, values in enumerate(ws[i]):
            expected = chelombiev_calc_information_sampling(values, bins[i][j], y)
            assert estimate("adaptive", values, y, **params) == pytest.approx(expected, abs=TOLERANCE), (epoch, j)


def test_adaptive_differs_from_quantile_on_relu(networks, data):
    # why the distinction matters: exact zeros make equal-mass bins collapse (issue 9: up to ~2 bits)
    _, y = data
    values = networks["relu"][30][0]
    adaptive = estimate("adaptive", values, y, n_bins=30, low=0)[0]
    quantile = estimate("quantile", values, y, n_bins=30)[0]
    assert adaptive - quantile > 0.1


# --- Saxe et al. 2018, ReLU: n bins between the layer's min and max over the whole run ----------------


def saxe_run_range_mi(epochs: dict[int, list[np.ndarray]], y: np.ndarray, n_bins: int):
    """{(epoch, layer): (I(X;T), I(Y;T))} with n_bins evenly spaced bins between each layer's minimum and
    maximum over all logged epochs (Saxe et al. 2018, Sec. 2 and appendix; no public code): edges
    np.linspace(lo, hi, n_bins + 1), the maximum in the last bin."""
    result = {}
    n_layers = len(next(iter(epochs.values())))
    for layer in range(n_layers):
        lo = min(float(layers[layer].min()) for layers in epochs.values())
        hi = max(float(layers[layer].max()) for layers in epochs.values())
        inner = np.linspace(lo, hi, n_bins + 1)[1:-1]
        for epoch, layers in epochs.items():
            codes = np.digitize(layers[layer].astype(np.float64), inner)
            _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
            p = counts / counts.sum()
            h_t = -np.sum(p * np.log2(p))
            h_t_given_y = 0.0
            for label in np.unique(y):
                _, class_counts = np.unique(codes[y == label], axis=0, return_counts=True)
                q = class_counts / class_counts.sum()
                h_t_given_y += np.mean(y == label) * -np.sum(q * np.log2(q))
            result[epoch, layer] = (h_t, h_t - h_t_given_y)
    return result


def test_run_range_binning_is_saxe_through_the_deferred_path(networks, data):
    x, y = data
    rows = {"full": slice(0, len(y))}
    for activation, epochs in networks.items():
        expected = saxe_run_range_mi(epochs, y, 100)
        mi = MiRows("r", [{"name": "binning", "params": {"n_bins": 100, "range": "run"}}], activation, y, rows,
                    ["full"], [f"l{i}" for i in range(len(SIZES) - 1)])
        for epoch in sorted(epochs):
            assert mi.at_epoch(epoch, epochs[epoch]) is None  # nothing can be estimated before the end
        got = mi.at_end()
        assert len(got["epoch"]) == len(expected)
        assert set(got["params"]) == {'{"n_bins": 100, "range": "run"}'}
        for epoch, layer, i_xt, i_yt in zip(got["epoch"], got["layer"], got["i_xt"], got["i_yt"]):
            assert (i_xt, i_yt) == pytest.approx(expected[epoch, layer], abs=TOLERANCE), (activation, epoch, layer)


# --- KDE bounds: ibsgd kde.py (Kolchinsky & Tracey 2017) --------------------------------------------


def ibsgd_entropy_estimator_kl(x, var):
    dims, n = float(x.shape[1]), float(x.shape[0])
    x2 = np.sum(np.square(x), axis=1)[:, None]
    dists = x2 + x2.T - 2 * x @ x.T
    normconst = (dims / 2.0) * np.log(2 * np.pi * var)
    lprobs = logsumexp(-dists / (2 * var), axis=1) - np.log(n) - normconst
    return dims / 2 + -np.mean(lprobs)


def ibsgd_entropy_estimator_bd(x, var):
    return ibsgd_entropy_estimator_kl(x, 4 * var) + np.log(0.25) * x.shape[1] / 2


def ibsgd_kde_mi(activity, y, noise_variance, entropy_func):
    """IBnet_ComputeMI.ipynb: I(X;M) = H(M) - H(M|X), I(Y;M) = H(M) - sum_y p(y) H(M|Y=y), in bits."""
    h = entropy_func(activity, noise_variance)
    h_given_x = (activity.shape[1] / 2.0) * (np.log(2 * np.pi * noise_variance) + 1)
    h_given_y = sum(np.mean(y == label) * entropy_func(activity[y == label], noise_variance) for label in (0, 1))
    return (h - h_given_x) / np.log(2), (h - h_given_y) / np.log(2)


@pytest.mark.parametrize("name, entropy_func", [("kde_upper", ibsgd_entropy_estimator_kl),
                                                ("kde_lower", ibsgd_entropy_estimator_bd)])
def test_kde_bounds_are_ibsgd(networks, data, name, entropy_func):
    _, y = data
    subset = np.random.default_rng(0).choice(len(y), 1024, replace=False)  # dense 4096^2 matrices are slow
    for activation, epoch, index, values in layers_of(networks):
        if epoch != 30:
            continue
        activity = values[subset].astype(np.float64)
        expected = ibsgd_kde_mi(activity, y[subset], 1e-3, entropy_func)
        assert estimate(name, activity, y[subset], noise_variance=1e-3) == pytest.approx(
            expected, abs=TOLERANCE), (activation, index)


# --- KSG: Kraskov et al.'s entropy (NPEET) and Ross's I(Y;T), brute force ---------------------------------


def ksg_entropy_bits_brute(points: np.ndarray, k: int, seed: int) -> float:
    """Kraskov et al. 2004 Eq. 20 as NPEET's entropy() computes it (IDNNs' entropy_estimators.py): uniform
    jitter 1e-10 * rand per coordinate (drawn by a RandomState(seed), row after row), max-norm distances
    from a dense matrix, psi(N) - psi(k) + d log 2 + d <log r_k>, in bits."""
    nr = np.random.RandomState(seed)
    x = np.array([p + 1e-10 * nr.rand(points.shape[1]) for p in points])
    n, d = x.shape
    dist = np.abs(x[:, None, :] - x[None, :, :]).max(-1)
    r = np.sort(dist, axis=1)[:, k]  # column 0 is the point itself
    return float((digamma(n) - digamma(k) + d * np.log(2) + d * np.mean(np.log(r))) / np.log(2))


def ross_mi_bits_brute(t: np.ndarray, y: np.ndarray, k: int) -> float:
    """Ross 2014, Eq. 2: psi(N) - <psi(N_y)> + psi(k) - <psi(m_i)>, m_i = points within the distance of
    i's k-th same-class neighbour (distances are distinct after the jitter, so k_i = k)."""
    dist = np.sqrt(((t[:, None, :] - t[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    total = 0.0
    for i in range(len(t)):
        same = dist[i, y == y[i]]
        radius = np.sort(same)[k - 1]
        m = int((dist[i] <= radius).sum())
        total += digamma(m)
    class_sizes = np.bincount(y)
    return float((digamma(len(t)) - np.mean(digamma(class_sizes[y])) + digamma(k) - total / len(t)) / np.log(2))


def test_ksg_is_npeet_entropy_and_ross(networks, data):
    _, y = data
    subset = np.random.default_rng(1).choice(len(y), 600, replace=False)
    for activation, epoch, index, values in layers_of(networks):
        if epoch != 30 or index == 0:
            continue
        t = values[subset].astype(np.float64)
        # the documented jitter of the I(Y;T) part: noise * max(1, mean |t_u|) * N(0, 1), seeded
        jitter = 1e-10 * np.maximum(1.0, np.abs(t).mean(axis=0)) * np.random.default_rng(0).standard_normal(t.shape)
        for k in (2, 3):
            expected = (ksg_entropy_bits_brute(t, k, 0), ross_mi_bits_brute(t + jitter, y[subset], k))
            assert estimate("ksg", t, y[subset], k=k) == pytest.approx(expected, abs=TOLERANCE), (activation, index)


def test_ksg_on_the_raw_lattice_inputs(data):
    # the 12-bit inputs determine the label, so the truth is H(Y) = 0.999 bits. Kraskov's jitter breaks the
    # tied distances (0.58 bits without it, counting ties within the radius; 0.63 with it, k = 3); the rest of
    # the gap is the k-NN estimate's bias on labels that flip between inputs one bit apart, not ties
    x, y = data
    assert estimate("ksg", x, y, noise=0)[1] == pytest.approx(0.580, abs=0.005)
    assert estimate("ksg", x, y)[1] == pytest.approx(0.626, abs=0.005)
    assert estimate("ksg", x, y, seed=1)[1] == pytest.approx(0.607, abs=0.005)  # the jitter's seed moves it by ~0.02
    assert estimate("ksg", x, y, k=2)[1] == pytest.approx(0.624, abs=0.005)
    assert estimate("ksg", x, y, k=2, seed=1)[1] == pytest.approx(0.604, abs=0.005)
    # h(T): every other input is at max-norm distance 1, so psi(4096) - psi(3) + 12 log 2 nats (+ the jitter)
    assert estimate("ksg", x, y)[0] == pytest.approx((digamma(4096) - digamma(3)) / np.log(2) + 12, abs=1e-6)
