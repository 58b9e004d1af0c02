"""Chunked top-k with 2-bit values: the compression of `LocalSteps`'
outer="top_k" (SparseLoCo's, Sarfi et al., 2025), for every backend.

A tensor p (a replica's round change plus its residual) is read flat and
cut into chunks of C = min(4096, n) components (the last one padded). In
each chunk the K = ceil(density * C) components of largest magnitude are
kept; each kept component travels as its index in the chunk (16 bits) and
a 2-bit code, a sign bit and a level bit: with m_min and m_max the least
and the largest kept magnitude, the level bit says whether |p_i| >=
(m_min + m_max) / 2, and each of the two levels is the mean magnitude of
the kept components on its side (the least-squares value for that split;
0 where a side is empty). Per chunk, the two levels travel as float32:

    q_i = sign(p_i) * level(i)    (kept i; sign(0) reads as +)
    q_i = 0                       (every other i)

and the residual keeps what q leaves, e = p - q, so nothing is dropped:
a component left out now is sent once its residual grows large enough.

Indices and codes are packed into int32 words (2 indices, or 16 codes,
per word) and the levels bitcast to int32, one vector per variable:
`words(n, density)` words, which the replicas all-gather (sparse sets do
not add up in an all-reduce).
"""

import math

from keras import ops

from keras_signadam.backend.packing import fields_per_word

CHUNK = 4096
INDEX_BITS = 16
CODE_BITS = 2
LEVELS = 2


def layout(size, density):
    """(C, chunks, K): the chunk length, the number of chunks and the
    components kept per chunk of a tensor of `size` components."""
    chunk = max(1, min(CHUNK, size))
    return chunk, -(-size // chunk), min(chunk, math.ceil(density * chunk))


def part_words(size, density):
    """Int32 words of the indices, the codes and the levels one replica
    sends for a tensor of `size` components, in that order (the packing
    of `packing.fields_per_word`)."""
    _, chunks, kept = layout(size, density)
    entries = chunks * kept
    return (-(-entries // fields_per_word(1 << INDEX_BITS)),
            -(-entries // fields_per_word(1 << CODE_BITS)), LEVELS * chunks)


def words(size, density):
    """Int32 words one replica sends for a tensor of `size` components."""
    return sum(part_words(size, density))


def compress(p, density):
    """``(indices, codes, levels)`` of tensor `p`: int32 ``[chunks, K]``
    positions in the chunk, int32 ``[chunks, K]`` codes (bit 0: negative,
    bit 1: the high level) and float32 ``[chunks, 2]`` (low, high)."""
    size = math.prod(p.shape)
    chunk, chunks, kept = layout(size, density)
    flat = ops.cast(ops.reshape(p, [-1]), "float32")
    padding = chunks * chunk - size
    # Padding has magnitude -1: picked only where a short last chunk has
    # fewer than K components, and then read as not kept.
    magnitude = ops.reshape(ops.concatenate(
        [ops.abs(flat), -ops.ones([padding], "float32")]), [chunks, chunk])
    values = ops.reshape(ops.concatenate(
        [flat, ops.zeros([padding], "float32")]), [chunks, chunk])
    top, indices = ops.top_k(magnitude, kept)
    kept_values = ops.take_along_axis(values, indices, axis=1)
    real = top >= 0
    m = ops.abs(kept_values)
    least = ops.min(ops.where(real, m, float("inf")), axis=1, keepdims=True)
    largest = ops.max(ops.where(real, m, 0.0), axis=1, keepdims=True)
    high = ops.logical_and(real, m >= (least + largest) / 2)
    low = ops.logical_and(real, ops.logical_not(high))
    levels = ops.stack([_mean(m, low), _mean(m, high)], axis=1)
    negative = ops.cast(kept_values < 0, "int32")
    codes = negative + 2 * ops.cast(high, "int32")
    return ops.cast(indices, "int32"), codes, levels


def _mean(m, mask):
    count = ops.sum(ops.cast(mask, "float32"), axis=1)
    return ops.sum(ops.where(mask, m, 0.0), axis=1) / ops.maximum(count, 1.0)


def decode(indices, codes, levels, shape, dtype):
    """The dense q (shape `shape`, dtype `dtype`) that `compress`'s
    indices, codes and levels stand for. Entries kept from the padding
    land past the tensor's end and are cut off."""
    size = math.prod(shape)
    chunk, chunks, _ = layout(size, 1.0)
    negative = ops.cast(codes % 2, "float32")
    level = ops.take_along_axis(levels, codes // 2, axis=1)
    value = (1.0 - 2.0 * negative) * level
    rows = ops.arange(chunks, dtype="int32")[:, None] * chunk
    position = ops.reshape(indices + rows, [-1, 1])
    dense = ops.scatter(position, ops.reshape(value, [-1]),
                        [chunks * chunk])
    return ops.cast(ops.reshape(dense[:size], shape), dtype)


def approximate(p, density):
    """``(q, p - q)``: `p` as the replicas receive it, and the residual."""
    q = decode(*compress(p, density), p.shape, p.dtype)
    return q, p - q
