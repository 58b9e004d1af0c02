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
from keras_signadam.optimizers import tracing


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
        so each count is an extra pass over the gradient. The common case
        needs one: the indicator plus `0 * raw_gradient` sums to NaN exactly
        when a component is non-finite, and only then are both counted
        separately, from the same rows the first pass summed: the branch
        then takes no array that the first pass did not already write.
        """
        counters = self._counters[optimizer.variable_index(variable)]
        if counters is None:
            return
        dtype = counters.dtype
        indicator = (
            ops.zeros_like(raw_gradient) if zero_confidence is None
            else zero_confidence
        )
        marked = indicator + raw_gradient * 0.0
        blocks = reductions.row_blocks(marked)
        rows = reductions.block_sums(blocks, marked.dtype)

        def count_where(condition):
            total = ops.zeros((), "int32")
            for block in blocks:
                total += reductions.count(ops.cast(condition(block),
                                                   block.dtype))
            return total

        def separate_counts():
            # A non-finite component is NaN in the blocks, and has zero
            # confidence, so it counts among the nonzero values.
            zeros = (
                ops.zeros((), "int32") if zero_confidence is None
                else count_where(lambda b: ops.not_equal(b, 0.0))
            )
            return zeros, count_where(ops.isnan)

        zeros, bad = tracing.cond(
            ops.all(ops.isfinite(rows)),
            lambda: (ops.sum(ops.cast(rows, "int32")),
                     ops.zeros((), "int32")),
            separate_counts,
        )
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
