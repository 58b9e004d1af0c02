"""TensorFlow only: sign-compressed gradient aggregation by majority vote.

With `aggregation="majority_vote"` under a `tf.distribute` strategy with
R > 1 replicas, the float32 all-reduce of the gradients is replaced by:

1. Each replica r forms its local signal s_r in {-1, 0, +1} per component
   (`optimizer.local_signal`: the confidence-filtered sign for `SignSGD` and
   `SignAdamPP`, the sign for `SignAdam` and `Signum`) from its share of
   the gradient scaled to a global estimate, ``R * g_r``: with the loss
   averaged over the global batch (Keras does this under a strategy, and
   `tf.nn.compute_average_loss` in custom loops) g = sum_r g_r, so
   ``R * g_r`` has the global gradient's scale and a threshold means the
   same with and without compression.
2. The signals of all variables go into one flat vector, packed into 32-bit
   words (`backend/packing.py`: base 3 for the all-gather, base 2R + 1 for
   the integer all-reduce, whose word sums never carry between digits and
   stay below 2**32, exact in two's complement int32), and one collective
   exchanges them.
3. Every replica forms the same vote V = sign(sum_r s_r), ties giving 0,
   and hands it to the update as its gradient; the update then uses V as
   its signal. Integer arithmetic only: the replicas stay bit-identical.

`packing.collective_for(R)` picks the collective that sends fewer bytes per
replica: the all-gather below 4 replicas, the integer all-reduce from 4 on.
"""

import math

import tensorflow as tf

from keras_signadam.backend.packing import collective_for
from keras_signadam.backend.packing import digits_per_word
from keras_signadam.backend.packing import radix_for
from keras_signadam.backend.packing import ring_bytes_sent

__all__ = ["collective_for", "digits_per_word", "pack", "radix_for",
           "replicas_in_sync", "ring_bytes_sent", "unpack", "vote",
           "voted_gradients"]


def pack(codes, radix):
    """Packs int32 `codes` (each < radix) into int32 words: digit j of a
    word (its value times radix**j) holds code j."""
    per_word = digits_per_word(radix)
    padding = (-codes.shape[0]) % per_word
    codes = tf.reshape(tf.pad(tf.cast(codes, tf.int64), [[0, padding]]),
                       [-1, per_word])
    powers = tf.constant([radix ** j for j in range(per_word)], tf.int64)
    words = tf.reduce_sum(codes * powers, axis=1)  # < 2**32
    return tf.bitcast(tf.cast(words, tf.uint32), tf.int32)


def unpack(words, radix, components):
    """Inverse of `pack` along the last axis of `words`."""
    per_word = digits_per_word(radix)
    powers = tf.constant([radix ** j for j in range(per_word)], tf.int64)
    unsigned = tf.cast(tf.bitcast(words, tf.uint32), tf.int64)
    digits = (unsigned[..., None] // powers) % radix
    shape = tf.concat([tf.shape(words)[:-1], [-1]], axis=0)
    return tf.cast(tf.reshape(digits, shape)[..., :components], tf.int32)


def vote(signals, context, collective):
    """The majority vote, as int32 in {-1, 0, 1}, of this replica's int32
    `signals` (flat, in {-1, 0, 1}) and the other replicas'."""
    replicas = context.num_replicas_in_sync
    components = signals.shape[0]
    codes = signals + 1
    radix = radix_for(collective, replicas)
    if collective == "all_gather":
        gathered = context.all_gather(pack(codes, radix), axis=0)
        per_replica = unpack(tf.reshape(gathered, [replicas, -1]), radix,
                             components)
        total = tf.reduce_sum(per_replica - 1, axis=0)
    elif collective == "all_reduce":
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                    pack(codes, radix))
        total = unpack(summed, radix, components) - replicas
    else:
        raise ValueError(f"Unknown collective: {collective!r}")
    return tf.sign(total)


def voted_gradients(optimizer, grads_and_vars, context):
    """Replaces each gradient by the replicas' majority vote (in the
    variable's compute dtype). Runs in the replica context."""
    replicas = context.num_replicas_in_sync
    pairs = [(g, v) for g, v in grads_and_vars if g is not None]
    signals, shapes, dtypes = [], [], []
    for gradient, variable in pairs:
        clean, raw = optimizer.prepare_gradient(gradient, variable)
        estimate = clean * tf.cast(replicas, clean.dtype)
        signal, _ = optimizer.local_signal(estimate, raw, variable)
        signals.append(tf.reshape(tf.cast(signal, tf.int32), [-1]))
        shapes.append(clean.shape)
        dtypes.append(clean.dtype)
    if not signals:
        return list(grads_and_vars)
    flat = tf.concat(signals, axis=0)
    collective = collective_for(replicas, flat.shape[0])
    voted = vote(flat, context, collective)
    sizes = [math.prod(shape) for shape in shapes]
    votes = iter(
        tf.reshape(tf.cast(part, dtype), shape)
        for part, shape, dtype in zip(tf.split(voted, sizes), shapes,
                                      dtypes))
    return [(g if g is None else next(votes), v) for g, v in grads_and_vars]


def replicas_in_sync():
    """The number of replicas of the strategy in scope (1 without one), in
    the replica context where gradients are aggregated and in the
    cross-replica context where the update runs alike."""
    return tf.distribute.get_strategy().num_replicas_in_sync

