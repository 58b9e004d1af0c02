"""Whether a value is being traced, and a conditional that only builds a
graph when it is.

Run eagerly on JAX, `keras.ops.cond` compiles both branches on every call:
its branches are new closures each step, so JAX's cache never hits (on 4
variables, NovoGrad's eager step took 400 ms, nearly all of it compiling
the norm's fallback branch). There a concrete predicate needs no compiled
conditional: Python picks the branch. Eager TensorFlow and PyTorch already
run only the chosen branch (and PyTorch's own `cond` also handles its
shape-only "meta" tensors).
"""

import keras
import numpy as np


def symbolic(value):
    """Whether `value` is being traced (no number to inspect yet)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly() or tf.is_symbolic_tensor(
            getattr(value, "value", value))
    if backend == "jax":
        import jax

        return isinstance(getattr(value, "value", value), jax.core.Tracer)
    return False


def cond(pred, true_fn, false_fn):
    """`keras.ops.cond`, or on JAX the branch `pred` selects when `pred`
    is concrete."""
    if keras.backend.backend() != "jax" or symbolic(pred):
        return keras.ops.cond(pred, true_fn, false_fn)
    return true_fn() if bool(np.asarray(pred)) else false_fn()
