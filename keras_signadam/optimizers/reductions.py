"""Full reductions that run at memory speed inside XLA on CPU.

XLA:CPU emits a full reduction of an element-wise expression as a
single-threaded loop, but lowers a dot product to a multithreaded matrix
kernel. So a tensor is summed as row sums of a matrix product with a vector
of ones (rows of 1024), and the few leftover components with a plain sum
(measured in `benchmarks/update_step.py`: NovoGrad's update on 10M
parameters went from 19.9 to 14.2 ms, Signum's from 11.6 to 9.3 ms). Rows
of small integers sum exactly in float32; NaN and Inf propagate.
"""

import math

from keras import ops

from keras_signadam.optimizers import tracing

ROW = 1024


def row_blocks(x):
    """`x` flattened into rows of `ROW`: a (rows, ROW) matrix of the full
    rows and a vector of the leftover components, each present only if
    not empty."""
    flat = ops.reshape(x, (-1,))
    n = math.prod(x.shape)
    full = n // ROW
    blocks = []
    if full:
        blocks.append(ops.reshape(flat[: full * ROW], (full, ROW)))
    if n - full * ROW:
        blocks.append(flat[full * ROW:])
    return blocks


def block_sums(blocks, dtype):
    """The row sums of `row_blocks`' blocks: one per full row, then the
    sum of the leftover (a single 0 in `dtype` when there are none)."""
    parts = []
    for block in blocks:
        if len(block.shape) == 2:
            ones = ops.ones((ROW, 1), dtype=block.dtype)
            parts.append(ops.reshape(ops.matmul(block, ones), (-1,)))
        else:
            parts.append(ops.reshape(ops.sum(block), (1,)))
    if not parts:
        return ops.zeros((1,), dtype=dtype)
    return parts[0] if len(parts) == 1 else ops.concatenate(parts)


def row_sums(x):
    """Row sums of float32 `x` flattened into rows of `ROW` (the leftover
    components form a last, shorter row)."""
    return block_sums(row_blocks(x), x.dtype)


def finite_part(x):
    """`x` with its non-finite components replaced by zero."""
    return ops.where(ops.isfinite(x), x, ops.zeros_like(x))


def formed(x):
    """`x`, or `x()` where `x` is a function that forms the tensor anew
    from tensors in memory (see `l2_norm`)."""
    return x() if callable(x) else x


def l2_norm(x, center=None):
    """Euclidean norm of float `x` (of `x - center`, for a scalar
    `center`), its non-finite components counted as zero, without spurious
    overflow/underflow.

    The direct sum of squares of `x` is used when it is finite (so is
    every component then) and positive. Otherwise (a non-finite
    component, components beyond about 1e19, all zero or so small their
    squares underflow) the finite part is rescaled by its largest
    magnitude first, in a conditional branch.

    Only `x` and scalars enter the branch: XLA writes out in full any
    tensor a conditional takes, so a branch given the finite part, or
    `x - center`, would cost a copy of the tensor at every step (on CPU,
    in fresh pages each time: the adaptive threshold's XLA update took
    2.3x as long, CHANGELOG, 0.6.0). Pass the raw tensor, already
    in memory, not an expression of it; or, for an expression, a function
    that forms it from tensors in memory, called again in the branch so
    that only they enter it.
    """
    value = formed(x)
    if math.prod(value.shape) == 0:
        return ops.zeros((), value.dtype)

    def centered(y):
        return y if center is None else y - center

    direct = ops.sum(row_sums(ops.square(centered(value))))

    def rescaled():
        d = centered(finite_part(formed(x)))
        scale = ops.max(ops.abs(d))
        safe = ops.where(scale > 0, scale, ops.ones_like(scale))
        return scale * ops.sqrt(ops.sum(row_sums(ops.square(d / safe))))

    usable = ops.logical_and(ops.isfinite(direct), direct > 0.0)
    return tracing.cond(usable, lambda: ops.sqrt(direct), rescaled)
