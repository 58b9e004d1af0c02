"""Values that every variable's update shares within one update.

Keras calls `update_step` once per model variable. What depends only on
the step (the learning rate in the compute dtype, the bias corrections and
the ratio bound, the hyperparameters read from their variables) is the same
for all of them. Computed once per update and compute dtype, instead of
once per variable, the traced update holds a fraction of the operations:
tracing, lowering to XLA and compiling take time in proportion to them
(XLA merges the copies, but only after lowering each one).

Values are kept for the extent of one `scope` (one update, or one traced
function that runs it) and per thread: under `tf.distribute` each replica
traces in a thread of its own, and a tensor of one graph or one replica
must not leak into another. Outside a scope nothing is kept.
"""

import contextlib
import threading

import keras


class PerUpdate:
    """The values shared by the variables' updates of one optimizer."""

    def __init__(self):
        self._local = threading.local()

    def __reduce__(self):
        # Copies of an optimizer (`copy.deepcopy`) start with nothing kept.
        return (PerUpdate, ())

    @contextlib.contextmanager
    def scope(self):
        """Values computed inside are shared until the scope ends (an
        inner scope starts afresh: it traces into a graph of its own)."""
        outer = getattr(self._local, "values", None)
        self._local.values = {}
        try:
            yield
        finally:
            self._local.values = outer

    def kept(self, name, make):
        """A container kept under `name` for this scope (`make()` the
        first time), or `None` outside a scope."""
        values = getattr(self._local, "values", None)
        if values is None:
            return None
        return values.setdefault(name, make())

    def get(self, name, dtype, compute):
        """The value `name` in `dtype`: `compute()` the first time in this
        scope, the same tensor afterwards."""
        values = getattr(self._local, "values", None)
        if values is None:
            return compute()
        key = (name, keras.backend.standardize_dtype(dtype))
        if key not in values:
            values[key] = compute()
        return values[key]
