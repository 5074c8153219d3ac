"""TensorFlow imported without Keras: the trainer's one way to import it (`from
trainer.tensorflow_without_keras import tf`).

`tensorflow/__init__.py` (2.16 and later) ends with an eager `import keras.src.optimizers`,
inside `try: ... except (ImportError, AttributeError): pass`, only so that Keras' optimizers
register themselves for SavedModel loading. That import pulls in all of Keras (and through it
IPython, rich, PIL): about 1.3 s of CPU, a third of `import tensorflow`, in a process that uses
no Keras (the trainer builds its networks, initialisers and activations from `tf.*`:
trainer.model). While TensorFlow is imported, `sys.modules["keras.src.optimizers"]` is None, so
that import raises ImportError and TensorFlow goes on without it; the entry is removed at once,
so a later `import keras` (or `tf.keras`, which TensorFlow loads lazily) works as usual.
"""

from __future__ import annotations

import sys

EAGER_KERAS_IMPORT = "keras.src.optimizers"   # tensorflow/__init__.py's eager Keras import

if "tensorflow" in sys.modules or EAGER_KERAS_IMPORT in sys.modules:
    import tensorflow as tf  # already imported (or Keras is already loaded): nothing to save
else:
    sys.modules[EAGER_KERAS_IMPORT] = None   # type: ignore[assignment]  # makes that import raise ImportError
    try:
        import tensorflow as tf
    finally:
        if sys.modules.get(EAGER_KERAS_IMPORT, "") is None:
            del sys.modules[EAGER_KERAS_IMPORT]

__all__ = ["tf"]
