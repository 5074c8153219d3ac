"""TensorFlow imported without Keras: the trainer's one way to import it (`from
trainer.tensorflow_without_keras import tf`).

`tensorflow/__init__.py` (2.16 and later) ends with an eager `import keras.src.optimizers`,
inside `try: ... except (ImportError, AttributeError): pass`, only so that Keras' optimizers
register themselves for SavedModel loading. That import pulls in all of Keras (and through it
IPython, rich, PIL): a large share of `import tensorflow` (bench/RESULTS.md), in a process that uses
no Keras (the trainer builds its networks, initialisers and activations from `tf.*`:
trainer.model). While TensorFlow is imported, `sys.modules["keras.src.optimizers"]` is None, so
that import raises ImportError and TensorFlow goes on without it; the entry is removed at once,
so a later `import keras` (or `tf.keras`, which TensorFlow loads lazily) works as usual.

JAX the same way: `tensorflow/lite/python/util.py` (imported by `import tensorflow`) tries
`from jax import jit` for TFLite's JAX converter, so where JAX is installed (the `bench` extra)
all of JAX and its own scipy imports load too, at a cost of the same order. The trainer converts nothing
to TFLite; JAX stays importable after TensorFlow is in.

Before TensorFlow is imported, trainer.xla_flags sets the XLA flag the trainer compiles with.
The import runs with the garbage collector paused, its objects then frozen for good
(ibstore.collector): they live as long as the process. It also runs with TensorFlow's start-up
notices dropped (trainer.quiet: absl INFO lines such as "oneDNN custom operations are on"),
so a `trainer run` in the foreground prints its own lines only, as a sweep's workers do;
warnings and errors pass.
"""

from __future__ import annotations

import sys

from ibstore import collector
from trainer import xla_flags
from trainer.quiet import native_info_dropped

EAGER_KERAS_IMPORT = "keras.src.optimizers"   # tensorflow/__init__.py's eager Keras import
OPTIONAL_JAX_IMPORT = "jax"                     # tensorflow/lite/python/util.py's `from jax import jit`
SKIPPED = (EAGER_KERAS_IMPORT, OPTIONAL_JAX_IMPORT)

xla_flags.use()

if "tensorflow" in sys.modules:
    import tensorflow as tf  # already imported: nothing to save
else:
    blocked = [name for name in SKIPPED if name not in sys.modules]   # one already loaded costs nothing more
    for name in blocked:
        sys.modules[name] = None   # type: ignore[assignment]  # makes that import raise ImportError
    try:
        with collector.paused(for_good=True), native_info_dropped():
            import tensorflow as tf
    finally:
        for name in blocked:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]

__all__ = ["tf"]
