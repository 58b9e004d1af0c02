"""Optimizer state kept in bfloat16, with stochastic rounding.

With ``state_dtype="bfloat16"`` each moment is computed in float32 and
stored in bfloat16 (2 bytes instead of 4). Rounding to nearest would freeze
an exponential average: with beta_2 = 0.999 a second moment near 1 moves by
about 1e-3 per step, under half of bfloat16's spacing there (2**-8), so
every step rounds back to the old value. Stochastic rounding keeps the
stored value unbiased instead: a float32 ``x`` between the neighbouring
bfloat16 values ``lo < x < hi`` is stored as ``hi`` with probability
``(x - lo) / (hi - lo)`` and as ``lo`` otherwise, so ``E[stored] = x`` and
the average keeps moving in expectation.

It is done on the bit pattern: a float32's upper 16 bits are its bfloat16
truncation, so adding a uniform random integer in [0, 2**16) to the 32-bit
pattern and clearing the lower 16 bits rounds the magnitude up with exactly
that probability (for either sign, since the sign bit is not touched for
finite values).

``state_dtype="int8"`` (SignAdam and SignAdamPP only) uses the bounded
range of their moments: their input is ternary, so |m| <= 1 and
0 <= v <= 1. The first moment is stored as ``q = SR(127 m)`` and read as
``q / 127``. The second is stored bias-corrected, as
``q = SR(127 sqrt(v_hat))`` with ``v_hat = v / (1 - beta_2**t)``, and read
as ``(q / 127)**2``: v_hat is near 1 from the first step (v starts at
1 - beta_2 and would round to a few codes), and the square root makes the
spacing finest where v_hat is small and 1 / sqrt(v_hat) is steep.
``SR(y) = floor(y + u)`` with ``u`` uniform in [0, 1) (16 random bits)
rounds up with probability ``y - floor(y)``, so the stored code is
unbiased (for v, the stored square root is). One byte per moment: a
quarter of float32 state.

The random bits come from a counter-based hash of (step, variable, element)
computed inside the update, so they cost no state and no random-number
generator, are the same on every replica, and repeat exactly when a run is
resumed from a checkpoint (the step is `optimizer.iterations`, which is
saved). The hash is ``lowbias32`` (C. Wellons' integer hash), in int32
arithmetic that wraps modulo 2**32 on every backend.
"""

import math

import numpy as np
from keras import ops

from keras_signadam import compat

INT8_LEVELS = 127.0

_GOLDEN = -1640531527  # 0x9E3779B9 as int32: spreads steps apart
_STREAM = 0x3C6EF372   # separates the variables' streams
_MUL_1 = 0x7FEB352D
_MUL_2 = -2073254261   # 0x846CA68B as int32
_LOW_16 = 0xFFFF
_HIGH_16 = -65536      # 0xFFFF0000 as int32


def _shift_right(x, bits):
    """Logical right shift of int32 (arithmetic shift, then clear the
    copies of the sign bit)."""
    return ops.bitwise_and(ops.right_shift(x, bits), (1 << (32 - bits)) - 1)


def hash32(x):
    """lowbias32 of an int32 tensor: all 32 output bits depend on all input
    bits."""
    x = ops.bitwise_xor(x, _shift_right(x, 16))
    x = x * _MUL_1
    x = ops.bitwise_xor(x, _shift_right(x, 15))
    x = x * _MUL_2
    return ops.bitwise_xor(x, _shift_right(x, 16))


def random_bits(shape, step, stream):
    """32 random bits (int32) per element of `shape` for this `step` (an
    integer tensor; only its low 32 bits count) and `stream` (a Python
    int, one per variable)."""
    offset = (stream * _STREAM) & 0x7FFFFFFF
    # The step mixed with the stream, once per variable...
    seed = hash32(ops.cast(step, "int32") * _GOLDEN + offset)
    # ...then with each element's index.
    mixed = seed
    for term in _index_terms(shape):
        mixed = ops.add(mixed, term)
    return hash32(mixed)


def _index_terms(shape):
    """`flat_index * _GOLDEN` (modulo 2**32) of every element of `shape`,
    as one small int32 term per axis whose broadcast sum is that product.

    Added one by one to the seed, which is not a constant, so no constant
    folding can widen them to the full shape: TensorFlow folds a
    `range(size) * _GOLDEN` into a literal of 4 bytes per parameter that
    the compiled update reads at every step and carries in its binary."""
    terms, stride = [], 1
    for axis in reversed(range(len(shape))):
        dim = int(shape[axis])
        factor = np.uint64((stride * _GOLDEN) % 2**32)
        term = (np.arange(dim, dtype=np.uint64) * factor) % np.uint64(2**32)
        broadcast = [1] * len(shape)
        broadcast[axis] = dim
        terms.append(term.astype(np.uint32).view(np.int32).reshape(broadcast))
        stride *= dim
    return terms


def order_after(value, dtype):
    """An integer 0 (1 only if the first component of `value` is not
    finite) that XLA cannot fold: adding it to the step makes the random
    bits, and so the writes that use them, come after `value`."""
    if math.prod(value.shape) == 0:
        return ops.zeros((), dtype)
    first = ops.cast(ops.reshape(value, (-1,))[0], "float32")
    return ops.cast(ops.isnan(first * 0.0), dtype)


def ordered_after(value, anchors):
    """`value`, bit for bit, as an expression XLA can compute only once
    every tensor in `anchors` is: ``value - 0 * sum(order_after(a))``
    (x - 0 is x, signed zeros included, and no float multiple of 0 is
    folded)."""
    order = sum(order_after(anchor, "int32") for anchor in anchors)
    return value - ops.cast(order, value.dtype) * 0.0


class RandomHalves:
    """This step's random bits for one variable, hashed only when a codec
    asks for them: `half(0)` and `half(1)` are the two independent 16-bit
    halves of one 32-bit hash per element."""

    def __init__(self, shape, step, stream):
        self._arguments = (shape, step, stream)
        self._bits = None

    def half(self, k):
        def bits16():
            if self._bits is None:
                self._bits = random_bits(*self._arguments)
            return (low_half if k == 0 else high_half)(self._bits)

        return bits16


def low_half(bits):
    return ops.bitwise_and(bits, _LOW_16)


def high_half(bits):
    return _shift_right(bits, 16)


def round_to_bfloat16(x, bits16):
    """Stochastically rounds `x` (cast to float32) to bfloat16, with
    `bits16` uniform int32 in [0, 2**16) of the same shape."""
    pattern = compat.bitcast(ops.cast(x, "float32"), "int32")
    rounded = ops.bitwise_and(pattern + bits16, _HIGH_16)
    # Exactly representable in bfloat16: the cast only drops zero bits.
    return ops.cast(compat.bitcast(rounded, "float32"), "bfloat16")


def encode_int8(x, bits16, square_root=False):
    """Stochastically rounds `x` in [-1, 1] (`square_root`: `sqrt(x)`,
    x in [0, 1]) to an int8 code of 1/127 steps, with `bits16` uniform
    int32 in [0, 2**16) of the same shape."""
    x = ops.cast(x, "float32")
    if square_root:
        x = ops.sqrt(ops.maximum(x, 0.0))
    u = ops.cast(bits16, "float32") * (1.0 / 65536.0)
    code = ops.floor(x * INT8_LEVELS + u)
    # Rounding can leave [-1, 1] by an ulp; the code must not wrap.
    code = ops.clip(code, -INT8_LEVELS, INT8_LEVELS)
    return ops.cast(code, "int8")


def decode_int8(code, dtype, square_root=False):
    """The value an int8 code stands for, in `dtype`."""
    x = ops.cast(code, dtype) * (1.0 / INT8_LEVELS)
    return ops.square(x) if square_root else x
