"""The XLA flag every trainer process compiles with: XLA's YNNPACK fusions for dots only, so that a
network's numbers do not depend on the networks it is stacked with.

XLA's CPU backend (TensorFlow 2.21) hands a reduction to YNNPACK (a `__ynn_fusion`) when the
reduction is large enough, and otherwise emits it itself as a tree of 32-wide partial sums (a
reduce-window, then a reduce). The two add in different orders, and "large enough" counts the
whole stacked tensor: the bias gradient of a stack, [N, units, batch] summed over the batch, went
to YNNPACK in a stack of 45 networks and not in a stack of 2 (seen in the optimised HLO,
`XLA_FLAGS=--xla_dump_to=...`), so each network's gradients, and from them every number of the
run, changed at rounding level with the size of its stack (issue 18; tests/test_stack_independence.py).
With `--xla_cpu_experimental_ynn_fusion_type=dot` every reduction is XLA's own, whose order for
one output element does not depend on the rest of the tensor, and YNNPACK takes the products it
accepts (row-major operands; xla/backends/cpu/ynn_support.cc, IsDotSupportedByYnn): the
evaluation's first layer, [N * units, d] x [d, examples], and in the minibatch step each network's
kernel gradients [fan_in, batch] x [batch, units] and a wide layer's input gradient. YNNPACK's
sums differ from Eigen's, and its sum of a product from that of the same product with its operands
swapped, so each product must take the same form in a stack of
one, which XLA writes without the network axis, as in a batched stack: the minibatch is gathered
batch-last (trainer.compiled.batch_last_minibatch) and the kernel gradient is written with h first
(trainer.model._stacked_dense_per_network); the optimised HLO (`--xla_dump_to=DIR
--xla_dump_hlo_as_text`, *train_chunk*after_optimizations.txt) shows the same `__ynn_fusion`s for
every stack size. The chunk then costs less CPU than with no YNNPACK fusion, for a stack of
45 networks and for a network alone (bench/bench_step.py; bench/RESULTS.md, issue 18 stop 31);
XNNPACK's and oneDNN's dot fusions gave nothing there.

XLA reads `XLA_FLAGS` once, when the process compiles its first function: `use` runs before the
trainer imports TensorFlow (trainer.tensorflow_without_keras). A user's `XLA_FLAGS` that already
sets the YNNPACK fusion types is left as it is (then a network's numbers may depend on its stack).
"""

from __future__ import annotations

import os

YNN_FUSION_TYPES = "--xla_cpu_experimental_ynn_fusion_type"


def use() -> None:
    """Add the flag to this process's `XLA_FLAGS` (inherited by the processes it starts)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if YNN_FUSION_TYPES not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {YNN_FUSION_TYPES}=dot".strip()
