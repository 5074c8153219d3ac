"""The compiled function of the training loop: train a chunk of epochs and return every layer.

One compiled call (a graph loop over epochs and, inside it, over minibatches, the last
one padded and masked) trains every epoch up to the next logged one, evaluates loss and
accuracy on train and test after each epoch, sums the kernel gradients of the last
epoch's minibatches, and returns every layer's activations after the last epoch (the
evaluation of a logged epoch, fused into the call: no second call, no reading the weights
back). It stops early at the first epoch where a network reaches `stop_at_accuracy`. The
same call with zero epochs is the evaluation before training. The loop around it is
trainer.training.

Inside the call the trainable parameters, the optimizer's slots and the gradient sums each live
as one [N, P] tensor (`flattened`): the optimizer's update and the sums are then one fused loop
over every layer's parameters per minibatch rather than several per parameter, each with its
fixed cost (issue 18, branch step3: the step's compiled operations from about 250 to about 160).

XLA cache rule: nothing is captured from outside a compiled loop as a constant (see
`train_epoch`), so the HLO, and with it trainer.xla_cache's key, is the same in every process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trainer import datasets, xla_cache
from trainer.model import StackedMLP, cross_entropy
from trainer.optimizers import Optimizer
from trainer.tensorflow_without_keras import tf


def flattened(parameters: list[tf.Tensor]) -> tf.Tensor:
    """The stacked parameters [N, ...] each as one tensor [N, P], each network's values in a row."""
    return tf.concat([tf.reshape(p, [p.shape[0], -1]) for p in parameters], axis=1)


def unflattened(flat: tf.Tensor, shapes: list) -> list[tf.Tensor]:
    """The parameters of those shapes from their `flattened` form: tf.split, whose gradient is
    one concatenation (a slice's would be padded back to the whole tensor)."""
    pieces = tf.split(flat, [math.prod(shape[1:]) for shape in shapes], axis=1)
    return [tf.reshape(piece, shape) for piece, shape in zip(pieces, shapes)]


def batch_last_minibatch(x_by_feature: tf.Tensor, n_rows: int, index: tf.Tensor) -> tf.Tensor:
    """Each network's minibatch batch-last, [N, d, batch]: x[index[s, b], i] at [s, i, b], from the
    rows x [n_rows, d] stored feature by feature (`x_by_feature` = x.T flattened, [d * n_rows]) and
    each network's row numbers `index` [N, batch].

    Gathered as single numbers, so the minibatch comes out batch-last as the layers use it
    (trainer.model.stacked_dense). Gathered as rows ([N, batch, d]) and transposed, XLA folds the
    transpose into the first layer's kernel-gradient product, and the product's row-major form
    then depends on the stack: a stack of one drops its size-1 axis and XLA copies the rows out
    transposed, which YNNPACK takes (trainer.xla_flags); a batched stack's product reads them
    transposed, which YNNPACK refuses, and Eigen's sum differs from YNNPACK's at rounding level
    (issue 18, branch ynn; tests/test_stack_independence.py). Row numbers fit int32: d * n_rows
    float32 values are the dataset itself."""
    features = x_by_feature.shape[0] // n_rows
    return tf.gather(x_by_feature, tf.range(features)[None, :, None] * n_rows + index[:, None, :])


@dataclass
class Chunk:
    """What one compiled call returns, for the epochs it trained."""

    n_epochs: int
    loss: np.ndarray        # [epochs, 2 (train, test), N]
    accuracy: np.ndarray    # [epochs, 2 (train, test), N]
    grad_sum: list[np.ndarray]      # per layer [N, fan_in, units]: the last epoch's minibatch gradients summed
    grad_sq_sum: list[np.ndarray]   # ... and their squares summed
    layers: list[np.ndarray]        # per layer [N, n_all, units]: the activations after the last epoch
    kernels: list[np.ndarray] | None = None     # per layer [N, fan_in, units], set at logged epochs


class CompiledSteps:
    """The compiled function of the loop: train a chunk of epochs, then evaluate with every layer.

    XLA-compiled: the same graph without XLA trains several times slower (README, "Benchmarks",
    start-up). One function, so a run traces and compiles once."""

    def __init__(self, model: StackedMLP, optimizer: Optimizer, data: datasets.Dataset,
                 batch_size: int | str, stop_at_accuracy: float | None, capacity: int, loss: str):
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.n_networks = model.layers[0].kernel.shape[0]
        self.x_train_by_feature = tf.constant(np.ascontiguousarray(data.train.x.T).reshape(-1))   # see batch_last_minibatch
        self.y_train = tf.constant(data.train.y.astype(np.int32))
        self.x_all = tf.constant(data.full.x)
        self.y_all = tf.constant(data.full.y.astype(np.int32))
        self.n_train, self.n_all = len(data.train.y), len(data.full.y)
        self.batch_size = self.n_train if batch_size == "full" else min(int(batch_size), self.n_train)
        self.n_batches = math.ceil(self.n_train / self.batch_size)
        self.padded = self.n_batches * self.batch_size
        self.capacity = capacity
        # A network that reaches this test accuracy ends the call at that epoch (2: never).
        self.target = tf.constant(2.0 if stop_at_accuracy is None else stop_at_accuracy, tf.float64)
        # The chunk's minibatch orders live in a variable of fixed shape, so every chunk length
        # runs the same compiled program (one XLA compilation per run).
        self.orders = tf.Variable(tf.zeros([capacity, self.n_networks, self.padded], tf.int32), trainable=False)
        # autograph=False: the loops are explicit tf.while_loops, and converting the code costs seconds.
        self.train_chunk = xla_cache.first_call_quiet(
            tf.function(self._train_chunk, jit_compile=True, autograph=False))

    def train(self, orders: np.ndarray, active: np.ndarray) -> Chunk:
        """Train up to len(orders) epochs (orders: [epochs, N, padded] int32, each network's order
        then zeros: `trainer.minibatch_orders.ChunkOrders`); stop after an epoch where an `active`
        network reaches the target accuracy."""
        k = len(orders)
        # The chunk's rows alone, written in place: a slice assign (`orders[:k].assign`) first
        # reads the whole variable, and the write then copies all of it (issue 18: a visible share of
        # a cohort's CPU; bench/bench_step.py --orders; bench/RESULTS.md, issue 18 stop 30).
        self.orders.scatter_update(tf.IndexedSlices(tf.convert_to_tensor(orders), tf.range(k)))
        n_epochs, loss, correct, grad_sum, grad_sq_sum, _, _, layers = self.train_chunk(tf.constant(k),
                                                                                       tf.constant(active))
        n_epochs = int(n_epochs)
        loss = loss.numpy()[:n_epochs].astype(np.float64)
        return Chunk(n_epochs, loss, self._accuracy(correct.numpy()[:n_epochs], loss),
                     [g.numpy() for g in grad_sum], [g.numpy() for g in grad_sq_sum], [v.numpy() for v in layers])

    def evaluate_layers(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """(loss [2, N], accuracy [2, N], per layer activations [N, n_all, units]) of the current
        networks: the compiled chunk with zero epochs (no second function to trace and compile)."""
        *_, loss, correct, layers = self.train_chunk(tf.constant(0), tf.constant(np.zeros(self.n_networks, bool)))
        loss = loss.numpy().astype(np.float64)
        return loss, self._accuracy(correct.numpy(), loss), [v.numpy() for v in layers]

    def _accuracy(self, correct: np.ndarray, loss: np.ndarray) -> np.ndarray:
        """Fraction correct per split ([..., 2, N], as `correct` and `loss`); NaN where the split's
        loss is not finite: a network whose outputs are NaN predicts nothing, and the argmax of NaN
        outputs (the first class) would count as right for every input of that class."""
        sizes = np.array([self.n_train, self.n_all - self.n_train], np.float64)[:, None]
        return np.where(np.isfinite(loss), correct.astype(np.float64) / sizes, np.nan)

    def _metrics(self, weights, moving) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        """Loss [2, N] (mean over the split) and number correct [2, N] on train and test, and
        every layer's activations [N, n_all, units]."""
        layers, logits, _ = self.model.forward(weights, moving, self.x_all)     # logits [N, classes, n_all]
        labels = tf.broadcast_to(self.y_all, [self.n_networks, self.n_all])
        per_example = cross_entropy(self.loss, logits, labels)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels), tf.int32)
        n = self.n_train
        loss = tf.stack([tf.reduce_mean(per_example[:, :n], axis=1), tf.reduce_mean(per_example[:, n:], axis=1)])
        count = tf.stack([tf.reduce_sum(correct[:, :n], axis=1), tf.reduce_sum(correct[:, n:], axis=1)])
        return loss, count, layers

    def _train_chunk(self, n_epochs: tf.Tensor, active: tf.Tensor):
        """Train up to n_epochs epochs (orders from self.orders) as one graph: per epoch a loop
        over the minibatches, then loss and number correct on train and test; stop after an
        epoch where an `active` network reaches the target; then evaluate every layer. Returns
        (epochs trained, loss and correct [capacity, 2, N] (rows past the epochs trained are 0),
        the last epoch's per-layer sums of the minibatch kernel gradients and of their squares,
        loss and correct [2, N] after the last epoch, every layer's activations [N, n_all, units]
        then). With n_epochs = 0 it is the evaluation of the current networks."""
        model, optimizer = self.model, self.optimizer
        n_test = tf.constant(self.n_all - self.n_train, tf.float64)
        shapes = [p.shape for p in model.trainable]
        flat_shape = [self.n_networks, sum(math.prod(shape[1:]) for shape in shapes)]

        def train_batch(batch, order, flat, moving, slots, step, grad_sum, grad_sq_sum):
            start = batch * self.batch_size
            index = tf.slice(order, [0, start], [self.n_networks, self.batch_size])
            # Padding rows (past the end of the data) weigh 0: the last batch is a smaller one.
            row_weights = tf.cast(start + tf.range(self.batch_size) < self.n_train, tf.float32)
            x = batch_last_minibatch(self.x_train_by_feature, self.n_train, index)
            y = tf.gather(self.y_train, index)
            with tf.GradientTape() as tape:
                tape.watch(flat)
                _, logits, new_moving = model.forward(unflattened(flat, shapes), moving, x, row_weights)
                per_example = cross_entropy(self.loss, logits, y)
                # Summing the networks' mean losses keeps each network's gradient its own.
                loss = tf.reduce_sum(tf.reduce_sum(per_example * row_weights, axis=1) / tf.reduce_sum(row_weights))
            gradient = tape.gradient(loss, flat)
            step = step + 1
            (flat,), slots = optimizer.update([flat], slots, [gradient], step)
            if model.any_max_norm:
                flat = flattened(model.constrain(unflattened(flat, shapes)))
            # Summed in float64: XLA on CPU flushes float32 denormals to 0, so a gradient below about
            # 1e-19 (a saturated tanh layer's) squared to 0 and its std to 0 (SNR NaN) or too small.
            gradient64 = tf.cast(gradient, tf.float64)
            return (batch + 1, order, flat, new_moving, slots, step, grad_sum + gradient64,
                    grad_sq_sum + gradient64 * gradient64)

        def record(loss, correct, epoch, epoch_loss, epoch_correct):
            """Loss and correct with row `epoch` set, and whether an active network reached the target."""
            loss = tf.tensor_scatter_nd_update(loss, [[epoch]], epoch_loss[None])
            correct = tf.tensor_scatter_nd_update(correct, [[epoch]], epoch_correct[None])
            test_accuracy = tf.cast(epoch_correct[1], tf.float64) / n_test
            finite = tf.reduce_all(tf.math.is_finite(epoch_loss), axis=0)
            return loss, correct, tf.reduce_any(active & finite & (test_accuracy >= self.target))

        def train_epoch(epoch, flat, moving, slots, step, grad_sum, grad_sq_sum, loss, correct, stop):
            # The gradient sums restart at every epoch; the loop carries them out of the last one.
            # Zeros made here, not captured from outside the loop: a captured constant gets a name
            # that differs from process to process, and so would the HLO that keys the XLA cache.
            zero_grads = tf.zeros(flat_shape, tf.float64)
            _, _, flat, moving, slots, step, grad_sum, grad_sq_sum = tf.while_loop(
                lambda batch, *_: batch < self.n_batches, train_batch,
                (tf.constant(0), self.orders[epoch], flat, moving, slots, step, zero_grads, zero_grads))

            def measured():
                epoch_loss, epoch_correct, _ = self._metrics(unflattened(flat, shapes), moving)
                return record(loss, correct, epoch, epoch_loss, epoch_correct)

            # The last epoch is measured by the evaluation after the loop, which also returns every
            # layer: measuring it here too would run the forward pass over every input twice.
            loss, correct, stop = tf.cond(epoch + 1 < n_epochs, measured, lambda: (loss, correct, stop))
            return epoch + 1, flat, moving, slots, step, grad_sum, grad_sq_sum, loss, correct, stop

        weights, moving = model.read()
        state = (tf.constant(0), flattened(weights), moving, [[flattened(slot)] for slot in optimizer.read_slots()],
                 optimizer.iterations.read_value(), tf.zeros(flat_shape, tf.float64), tf.zeros(flat_shape, tf.float64),
                 tf.zeros([self.capacity, 2, self.n_networks]),
                 tf.zeros([self.capacity, 2, self.n_networks], tf.int32), tf.constant(False))
        epoch, flat, moving, slots, step, grad_sum, grad_sq_sum, loss, correct, _ = tf.while_loop(
            lambda epoch, *rest: (epoch < n_epochs) & tf.logical_not(rest[-1]), train_epoch, state)
        weights = unflattened(flat, shapes)
        final_loss, final_correct, layers = self._metrics(weights, moving)
        # Row epoch - 1 holds the last epoch trained (no row is returned when none was: row 0 is unused).
        loss, correct, _ = record(loss, correct, tf.maximum(epoch - 1, 0), final_loss, final_correct)
        model.write(weights, moving)
        optimizer.write(step, [unflattened(slot, shapes) for (slot,) in slots])
        kernels = model.kernel_positions
        grad_sum, grad_sq_sum = ([unflattened(sums, shapes)[i] for i in kernels] for sums in (grad_sum, grad_sq_sum))
        return epoch, loss, correct, grad_sum, grad_sq_sum, final_loss, final_correct, layers
