"""Exact per-step counts of zero-confidence and non-finite gradient
components (`optimizer.sparsity`, `optimizer.nonfinite_count`).

The counters are one small integer variable per model variable: [components
with zero confidence in the last step, non-finite components skipped so
far]. Per variable, so each update writes only its own state (no
cross-variable dependency, nothing to reduce across replicas). They are
built even when counting is off, so it can be turned on later and
checkpoints hold the same variables either way.
"""

import math

from keras import ops

from keras_signadam.optimizers import hyperparameters
from keras_signadam.optimizers import reductions
from keras_signadam.optimizers import state

# Greater than the components of a row of `reductions.ROW`, a power of two
# (so rows divide by it exactly), and small enough that a row of marks,
# ROW * (NONFINITE_MARK + 1), stays below 2**24.
NONFINITE_MARK = float(2 * reductions.ROW)


class Counters:
    def __init__(self, optimizer, var_list):
        self._counters = state.add_state_variables(
            optimizer, var_list, "counters", shape=(2,), dtype="int"
        )
        self._sizes = [math.prod(v.shape) for v in var_list]

    def record(self, optimizer, variable, raw_gradient, zero_confidence):
        """Counts for one variable's step.

        `zero_confidence` is a float tensor, 1 where the component had zero
        confidence (non-finite ones included), or `None` for optimizers
        without a confidence function.

        XLA on CPU does not fuse a reduction into the element-wise update,
        so each count is an extra pass over the gradient; both counts share
        one. Each non-finite component is marked `NONFINITE_MARK` (plus 1,
        as it has zero confidence too) in the 0/1 indicator, so a row of
        `reductions.ROW` components sums to z + NONFINITE_MARK * b, with z
        the row's zero-confidence components (at most ROW, less than the
        mark) and b its non-finite ones: both read back exactly (integers
        below 2**24 sum exactly in float32). No conditional: XLA would
        write out in full any tensor one takes.
        """
        counters = self._counters[optimizer.variable_index(variable)]
        if counters is None:
            return
        dtype = counters.dtype
        finite = ops.isfinite(raw_gradient)
        if zero_confidence is None:
            marked = ops.where(finite, 0.0, NONFINITE_MARK)
        else:
            marked = ops.where(finite, zero_confidence, NONFINITE_MARK + 1.0)
        marked = ops.cast(marked, raw_gradient.dtype)
        rows = reductions.row_sums(marked)
        bad_rows = ops.floor(rows / NONFINITE_MARK)
        zeros = ops.sum(ops.cast(rows - NONFINITE_MARK * bad_rows, "int32"))
        bad = ops.sum(ops.cast(bad_rows, "int32"))
        optimizer.assign(
            counters,
            ops.stack(
                [ops.cast(zeros, dtype), counters[1] + ops.cast(bad, dtype)]
            ),
        )

    def _column(self, column):
        return [
            (int(hyperparameters.value_of(c)[column]), n)
            for c, n in zip(self._counters, self._sizes) if c is not None
        ]

    def sparsity(self):
        pairs = self._column(0)
        total = sum(n for _, n in pairs)
        return sum(z for z, _ in pairs) / total if total else 0.0

    def nonfinite_count(self):
        return sum(bad for bad, _ in self._column(1))
