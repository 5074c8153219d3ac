"""Column schemas of the results root (DESIGN.md, "Results root").

Units: information in bits. Epoch e is the network after e passes over the
training data; epoch 0 is the initial network. Layer 0 is the first hidden
layer, the last layer is the output (softmax) layer.
"""

from __future__ import annotations

import pyarrow as pa

# run.json's version and its statuses live with the record type.
from ibstore.record import SCHEMA_VERSION, Status  # noqa: F401  (re-exported)

TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "metrics": pa.schema([
        ("run_id", pa.string()),
        ("epoch", pa.int32()),
        ("split", pa.string()),          # train | test
        ("loss", pa.float64()),
        ("accuracy", pa.float64()),
    ]),
    "mi": pa.schema([
        ("run_id", pa.string()),
        ("epoch", pa.int32()),
        ("layer", pa.int16()),
        ("layer_name", pa.string()),
        ("units", pa.int32()),
        ("split", pa.string()),          # train | test | full
        ("estimator", pa.string()),
        ("params", pa.string()),         # JSON text, keys sorted
        ("i_xt", pa.float64()),          # bits; NULL for ksg, whose k-NN estimate is an entropy, not an MI
        ("i_yt", pa.float64()),          # bits
        ("h_t_bits", pa.float64()),      # ksg only: KSG (Eq. 20, as NPEET) differential entropy h(T), bits;
                                         # NULL for other estimators and in files written before it existed
    ]),
    "gradients": pa.schema([
        ("run_id", pa.string()),
        ("epoch", pa.int32()),
        ("layer", pa.int16()),
        ("layer_name", pa.string()),       # as in `mi`; NULL in files written before it existed
        ("grad_mean_norm", pa.float64()),  # ||mean over minibatches of dL/dW||_F
        ("grad_std_norm", pa.float64()),   # ||std over minibatches of dL/dW||_F
        ("snr", pa.float64()),             # grad_mean_norm / grad_std_norm
        ("weight_norm", pa.float64()),     # ||W||_F after the epoch
        ("health", pa.string()),           # hidden layers: alive | saturated | dead (trainer.health); NULL
                                           # for the output layer and in files written before it existed
    ]),
    "activations": pa.schema([
        ("run_id", pa.string()),
        ("epoch", pa.int32()),
        ("layer", pa.int16()),
        ("layer_name", pa.string()),     # as in `mi`; NULL in files written before it existed
        ("split", pa.string()),
        ("bin_index", pa.int64()),       # unbounded activations: a relu layer that grows 1000-fold
                                         # from its initial spread needs more than int16's bins, one
                                         # that grows 1e9-fold (sgd, learning rate 30) more than int32's
        ("bin_lo", pa.float64()),
        ("bin_hi", pa.float64()),
        ("count", pa.int64()),
    ]),
    "activation_stats": pa.schema([
        ("run_id", pa.string()),
        ("epoch", pa.int32()),
        ("layer", pa.int16()),
        ("neuron", pa.int32()),
        ("split", pa.string()),
        ("mean", pa.float64()),
        ("std", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("frac_zero", pa.float64()),       # fraction of inputs with activation exactly 0
        ("frac_saturated", pa.float64()),  # fraction where the activation's slope is < 1 % of its maximum
    ]),
}

# A running run whose heartbeat is older than this is shown as interrupted.
HEARTBEAT_STALE_SECONDS = 60
