"""Full reductions that run at memory speed inside XLA on CPU.

XLA:CPU emits a full reduction of an element-wise expression as a
single-threaded loop, but lowers a dot product to a multithreaded matrix
kernel. So a tensor is summed as row sums of a matrix product with a vector
of ones (rows of 1024), and the few leftover components with a plain sum
(measured in `benchmarks/update_step.py`: NovoGrad's update on 10M
parameters went from 19.9 to 14.2 ms, Signum's from 11.6 to 9.3 ms). Rows
of 0/1 indicators sum exactly in float32; NaN and Inf propagate.
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


def count(indicator):
    """Exact int32 number of ones in a float32 0/1 tensor."""
    return ops.sum(ops.cast(row_sums(indicator), "int32"))


def l2_norm(g, center=None):
    """Euclidean norm of float32 `g` (of `g - center`, for a scalar
    `center`) without spurious overflow/underflow.

    The direct sum of squares is used when it is finite and positive; only
    when it overflows (components beyond about 1e19) or is zero (all
    components zero, or so small their squares underflow) is the tensor
    rescaled by its largest magnitude first.

    The difference with `center` is formed inside each sum, not once
    before them: a difference made outside would be the conditional's
    operand, which XLA must then write out in full (on CPU the standard
    deviation took 5x as long).
    """
    if math.prod(g.shape) == 0:
        return ops.zeros((), g.dtype)

    def centered():
        return g if center is None else g - center

    direct = ops.sum(row_sums(ops.square(centered())))

    def rescaled():
        d = centered()
        scale = ops.max(ops.abs(d))
        safe = ops.where(scale > 0, scale, ops.ones_like(scale))
        return scale * ops.sqrt(ops.sum(row_sums(ops.square(d / safe))))

    usable = ops.logical_and(ops.isfinite(direct), direct > 0.0)
    return tracing.cond(usable, lambda: ops.sqrt(direct), rescaled)
