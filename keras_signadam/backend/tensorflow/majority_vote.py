"""TensorFlow only: sign-compressed gradient aggregation by majority vote.

With `aggregation="majority_vote"` under a `tf.distribute` strategy with
R > 1 replicas, the float32 all-reduce of the gradients is replaced by:

1. Each replica r forms its ternary signal s_r in {-1, 0, +1} per component
   (`optimizer.compressed_signal`: the confidence-filtered sign for
   `SignSGD` and `SignAdamPP`, the sign for `SignAdam` and `Signum`, after
   the replica's own error feedback when it is on) from its share of the
   gradient scaled to a global estimate, ``R * g_r``: with the loss
   averaged over the global batch (Keras does this under a strategy, and
   `tf.nn.compute_average_loss` in custom loops) g = sum_r g_r, so
   ``R * g_r`` has the global gradient's scale and a threshold means the
   same with and without compression.
2. Each variable's signals are packed into 32-bit words as bit fields
   (`backend/packing.py`: 2-bit codes for the all-gather; for the integer
   all-reduce, fields wide enough for the sum of R codes, so that word
   sums never carry between fields and stay below 2**32, exact in two's
   complement int32), and one collective exchanges the words of all
   variables.
3. Every replica forms the same vote V = sign(sum_r s_r), ties giving 0,
   and hands it to the update as its gradient (int8: a quarter of the
   bytes the update reads); the update then uses V as its signal. Integer
   arithmetic only: the replicas stay bit-identical.

Steps 1-2 (signals and packing) and step 3 (unpacking and the vote) are
each one compiled function per replica (`VoteProgram`; XLA unless the
optimizer has `jit_compile=False`), in unsigned 32-bit arithmetic: one
pass over the gradients before the collective and one pass over the words
after it. One function per replica, because each replica's error-feedback
residual is its own variable.

`packing.collective_for(R)` picks the collective that sends fewer bytes per
replica: the all-gather below 4 replicas, the integer all-reduce from 4 on.
"""

import math
import threading

import tensorflow as tf

from keras_signadam.backend.packing import collective_for
from keras_signadam.backend.packing import field_bits
from keras_signadam.backend.packing import fields_per_word
from keras_signadam.backend.packing import radix_for
from keras_signadam.backend.packing import ring_bytes_sent
from keras_signadam.optimizers.reductions import finite_part

__all__ = ["VoteProgram", "collective_for", "fields_per_word", "pack",
           "radix_for", "replicas_in_sync", "ring_bytes_sent", "unpack",
           "voted_gradients"]


def _shifts(radix, axis_length):
    """The bit offset of each field, shaped to broadcast along the
    fields' axis of a [fields, words] array."""
    bits = field_bits(radix)
    return tf.reshape(
        tf.constant([bits * j for j in range(fields_per_word(radix))],
                    tf.uint32), [-1] + [1] * axis_length)


def pack(codes, radix):
    """Packs integer `codes` (flat, n of them, each < radix) into W int32
    words, W = ceil(n / k) for k = `fields_per_word(radix)`: code i goes
    to word i mod W, field i // W (bits b (i // W) .. b (i // W + 1) - 1,
    b = `field_bits(radix)`). Field-major, so that packing and unpacking
    run along contiguous words."""
    per_word = fields_per_word(radix)
    padding = (-codes.shape[0]) % per_word
    fields = tf.reshape(tf.pad(tf.cast(codes, tf.uint32), [[0, padding]]),
                        [per_word, -1])
    # The fields do not overlap: their sum is their bitwise or.
    words = tf.reduce_sum(
        tf.bitwise.left_shift(fields, _shifts(radix, 1)), axis=0)
    return tf.bitcast(words, tf.int32)


def unpack(words, radix, components):
    """Inverse of `pack` along the last axis of `words` (int32)."""
    mask = tf.constant((1 << field_bits(radix)) - 1, tf.uint32)
    words = tf.bitcast(words, tf.uint32)
    # [..., fields, words]: field j of every word, then the next field.
    fields = tf.bitwise.bitwise_and(
        tf.bitwise.right_shift(words[..., None, :],
                               _shifts(radix, 1)), mask)
    shape = tf.concat([tf.shape(words)[:-1], [-1]], axis=0)
    return tf.cast(tf.reshape(fields, shape)[..., :components], tf.int32)


def summed_codes(received, collective, replicas, components):
    """sum_r s_r per component (int32) from the words of one tensor that
    the collective returned: every replica's (all-gather, shape [R, W]) or
    their sum (all-reduce, shape [W])."""
    radix = radix_for(collective, replicas)
    codes = unpack(received, radix, components)
    if collective == "all_gather":
        codes = tf.reduce_sum(codes, axis=0)
    return codes - replicas


def exchange(words, context, collective):
    if collective == "all_gather":
        return context.all_gather(words, axis=0)
    return context.all_reduce(tf.distribute.ReduceOp.SUM, words)


class VoteProgram:
    """One replica's vote for one list of variables: `encode` (gradients
    to packed words, each variable's in words of its own, concatenated)
    and `decode` (what the collective returned to the votes, one int8
    tensor per variable), each one compiled function."""

    def __init__(self, optimizer, variables, replicas, collective):
        self.optimizer = optimizer
        self.variables = list(variables)
        self.replicas = replicas
        self.collective = collective
        self.radix = radix_for(collective, replicas)
        self.shapes = [tuple(v.shape) for v in self.variables]
        self.sizes = [math.prod(s) for s in self.shapes]
        per_word = fields_per_word(self.radix)
        self.words = [-(-size // per_word) for size in self.sizes]
        compile_options = dict(jit_compile=optimizer.jit_compile,
                               autograph=False)
        self.encode = tf.function(self._encode, **compile_options)
        self.decode = tf.function(self._decode, **compile_options)

    def _encode(self, gradients):
        optimizer = self.optimizer
        words = []
        with optimizer.update_scope():
            for gradient, variable in zip(gradients, self.variables):
                _, raw = optimizer.prepare_gradient(gradient, variable)

                # The estimate R * g_r is scaled before its non-finite
                # components are zeroed, so that it is to its raw form
                # what the update's gradient is to its own
                # (`compressed_signal`); formed where it is read, so that
                # XLA does not write it out for a threshold's statistics.
                def estimate(raw=raw):
                    return raw * tf.cast(self.replicas, raw.dtype)

                signal, _ = optimizer.compressed_signal(
                    finite_part(estimate()), estimate, variable)
                codes = tf.reshape(tf.cast(signal, tf.int32), [-1]) + 1
                words.append(pack(codes, self.radix))
            # The error-feedback residual once the words are formed from
            # its old value: otherwise XLA copies it at every step.
            for variable, packed in zip(self.variables, words):
                optimizer.flush_later_writes(variable, after=(packed,))
        return tf.concat(words, axis=0)

    def _decode(self, received):
        if self.collective == "all_gather":
            received = tf.reshape(received, [self.replicas, -1])
        votes, start = [], 0
        for size, count, shape in zip(self.sizes, self.words, self.shapes):
            total = summed_codes(received[..., start:start + count],
                                 self.collective, self.replicas, size)
            votes.append(tf.reshape(tf.cast(tf.sign(total), tf.int8),
                                    shape))
            start += count
        return votes

    def __call__(self, gradients, context):
        words = self.encode(gradients)
        return self.decode(exchange(words, context, self.collective))


_LOCK = threading.Lock()


def _program(optimizer, variables, replicas, collective, context):
    """The `VoteProgram` of this replica, made once per optimizer (a
    plain attribute Keras does not track)."""
    programs = optimizer.__dict__.setdefault("_vote_programs", {})
    replica = tf.get_static_value(context.replica_id_in_sync_group)
    key = (tuple(id(v) for v in variables), replicas, collective,
           None if replica is None else int(replica))
    with _LOCK:
        if key not in programs:
            programs[key] = VoteProgram(optimizer, variables, replicas,
                                        collective)
        return programs[key]


def voted_gradients(optimizer, grads_and_vars, context):
    """Replaces each gradient by the replicas' majority vote (int8 in
    {-1, 0, 1}; the update casts it). Runs in the replica context."""
    replicas = context.num_replicas_in_sync
    pairs = [(g, v) for g, v in grads_and_vars if g is not None]
    if not pairs:
        return list(grads_and_vars)
    components = sum(math.prod(v.shape) for _, v in pairs)
    collective = collective_for(replicas, components)
    program = _program(optimizer, [v for _, v in pairs], replicas,
                       collective, context)
    votes = iter(program([g for g, _ in pairs], context))
    return [(g if g is None else next(votes), v) for g, v in grads_and_vars]


def replicas_in_sync():
    """The number of replicas of the strategy in scope (1 without one), in
    the replica context where gradients are aggregated and in the
    cross-replica context where the update runs alike."""
    return tf.distribute.get_strategy().num_replicas_in_sync
