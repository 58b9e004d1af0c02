"""TensorFlow only: the outer step of `LocalSteps`, under `tf.distribute`
or on one device.

The inner optimizer has written each replica's own copy of every variable
(the wrapper skipped the gradients' all-reduce). Here, in the
cross-replica context (a `merge_call`, as Keras's own update runs), a
`tf.cond` on the step count runs the round's end only where a round ends,
so the other steps send nothing:

1. Each replica's change a - theta_r is read from its own copies (the
   local components of the variables), on its device; with outer="sign"
   it is compressed there and the replica's residual updated.
2. One collective for all variables (per dtype): the float32 mean of the
   changes, or the packed signs (`majority_vote.pack`, the per-step vote's
   encoding and collective choice) and a second, tiny one for the scales,
   or (outer="top_k") the all-gather of every replica's kept components,
   packed the same way.
3. Every replica takes the same outer step from the same result and
   writes the new anchor into its weights.

A collective cannot sit inside a `tf.cond` in the replica context where
TensorFlow synchronizes replicas by `merge_call` (every CPU strategy):
hence the cross-replica context. Where a strategy runs without
`merge_call` (an XLA-compiled replica function on GPUs), the step stops
with an error that says so.
"""

import math

import keras
import tensorflow as tf

from keras_signadam.backend import top_k_compression
from keras_signadam.backend.packing import collective_for
from keras_signadam.backend.packing import fields_per_word
from keras_signadam.backend.packing import radix_for
from keras_signadam.backend.tensorflow.majority_vote import pack
from keras_signadam.backend.tensorflow.majority_vote import summed_codes
from keras_signadam.backend.tensorflow.majority_vote import unpack


def _tf(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def outer_step(optimizer, variables, states):
    pairs = [(v, s) for v, s in zip(variables, states) if s[0] is not None]
    if not pairs:
        return
    if not tf.distribute.has_strategy():
        _conditional(tf.distribute.get_strategy(), optimizer, pairs)
        return
    tf.__internal__.distribute.interim.maybe_merge_call(
        lambda strategy: _in_cross_replica(strategy, optimizer, pairs),
        tf.distribute.get_strategy())


def _in_cross_replica(strategy, optimizer, pairs):
    if not tf.distribute.in_cross_replica_context():
        raise RuntimeError(
            "`LocalSteps` needs the strategy to synchronize its replicas "
            "by `merge_call`, which it does not do in an XLA-compiled "
            "replica function: run the train step without XLA "
            "(`model.compile(jit_compile=False)`, or no `jit_compile=True` "
            "on the function passed to `strategy.run`).")
    _conditional(strategy, optimizer, pairs)


def _conditional(strategy, optimizer, pairs):
    @tf.autograph.experimental.do_not_convert
    def end_round():
        _end_round(strategy, optimizer, pairs)
        return tf.constant(True)

    tf.cond(tf.convert_to_tensor(optimizer.is_outer_step()), end_round,
            lambda: tf.constant(False))


class _Replicas:
    """The replicas of this worker, as seen from the cross-replica
    context."""

    def __init__(self, strategy):
        self.strategy = strategy
        self.count = strategy.num_replicas_in_sync
        self.local = (len(strategy.extended.worker_devices)
                      if tf.distribute.has_strategy() else 1)

    def copies(self, variable):
        return self.strategy.experimental_local_results(_tf(variable))

    def each(self, fn):
        """A per-replica value: fn(index of the replica on this worker),
        run on that replica's device."""
        devices = (self.strategy.extended.worker_devices
                   if tf.distribute.has_strategy() else (None,))

        def value(context):
            index = context.replica_id_in_sync_group % self.local
            with tf.device(devices[index]):
                return fn(index)

        return self.strategy.experimental_distribute_values_from_function(
            value)

    def reduce(self, op, value):
        if self.count == 1:
            return self.strategy.experimental_local_results(value)[0]
        return self.strategy.reduce(op, value, axis=None)

    def gather(self, value):
        if self.count == 1:
            return self.strategy.experimental_local_results(value)[0]
        return self.strategy.gather(value, axis=0)


def _change(replicas, index, variable, anchor):
    anchor_copy = replicas.copies(anchor)[index]
    return anchor_copy - tf.cast(replicas.copies(variable)[index],
                                 anchor_copy.dtype)


def _by_dtype(pairs):
    groups = {}
    for pair in pairs:
        groups.setdefault(pair[1][0].dtype, []).append(pair)
    return list(groups.values())


def _mean_changes(replicas, pairs):
    """(pair, the replicas' mean change) for every pair, in one
    collective per dtype."""
    changes = []
    for group in _by_dtype(pairs):
        flat = replicas.each(lambda i, group=group: tf.concat(
            [tf.reshape(_change(replicas, i, v, s[0]), [-1])
             for v, s in group], axis=0))
        mean = replicas.reduce(tf.distribute.ReduceOp.MEAN, flat)
        sizes = [math.prod(v.shape) for v, _ in group]
        changes += [(pair, tf.reshape(part, pair[1][0].shape)) for pair, part
                    in zip(group, tf.split(mean, sizes))]
    return changes


def _voted_changes(replicas, optimizer, pairs):
    """The mean scale times the vote of the replicas' signs, per variable;
    each replica's residual keeps what its signs left out."""
    count = replicas.count
    sizes = [math.prod(v.shape) for v, _ in pairs]
    collective = collective_for(count, sum(sizes))
    radix = radix_for(collective, count)

    def encode(index):
        words, scales = [], []
        for variable, (anchor, _, residual) in pairs:
            kept = replicas.copies(residual)[index]
            s, k, left = optimizer.compress(
                _change(replicas, index, variable, anchor),
                tf.cast(kept, anchor.dtype))
            kept.assign(tf.cast(left, kept.dtype))
            words.append(pack(tf.reshape(tf.cast(s, tf.int32), [-1]) + 1,
                              radix))
            scales.append(tf.cast(k, tf.float32))
        return tf.concat(words, axis=0), tf.stack(scales)

    words, scales = replicas.each(encode)
    if collective == "all_gather":
        received = tf.reshape(replicas.gather(words), [count, -1])
    else:
        received = replicas.reduce(tf.distribute.ReduceOp.SUM, words)
    scale = replicas.reduce(tf.distribute.ReduceOp.MEAN, scales)
    changes, start = [], 0
    for j, (pair, size) in enumerate(zip(pairs, sizes)):
        anchor = pair[1][0]
        words_of_pair = -(-size // fields_per_word(radix))
        total = summed_codes(received[..., start:start + words_of_pair],
                             collective, count, size)
        start += words_of_pair
        vote = tf.reshape(tf.cast(tf.sign(total), anchor.dtype),
                          anchor.shape)
        changes.append((pair, tf.cast(scale[j], anchor.dtype) * vote))
    return changes


_INDEX_RADIX = 1 << top_k_compression.INDEX_BITS
_CODE_RADIX = 1 << top_k_compression.CODE_BITS


def _sparse_changes(replicas, optimizer, pairs):
    """The mean over the replicas of their kept components, per variable;
    each replica's residual keeps what it did not send."""
    count, density = replicas.count, optimizer.outer_density
    sizes = [math.prod(v.shape) for v, _ in pairs]

    def encode(index):
        words = []
        for variable, (anchor, _, residual) in pairs:
            kept = replicas.copies(residual)[index]
            p = (_change(replicas, index, variable, anchor)
                 + tf.cast(kept, anchor.dtype))
            indices, codes, levels = top_k_compression.compress(p, density)
            kept.assign(tf.cast(p - top_k_compression.decode(
                indices, codes, levels, p.shape, p.dtype), kept.dtype))
            words += [pack(tf.reshape(indices, [-1]), _INDEX_RADIX),
                      pack(tf.reshape(codes, [-1]), _CODE_RADIX),
                      tf.reshape(tf.bitcast(levels, tf.int32), [-1])]
        return tf.concat(words, axis=0)

    received = tf.reshape(replicas.gather(replicas.each(encode)),
                          [count, -1])
    changes, start = [], 0
    for pair, size in zip(pairs, sizes):
        anchor = pair[1][0]
        _, chunks, kept = top_k_compression.layout(size, density)
        entries = chunks * kept
        parts = []
        for length in top_k_compression.part_words(size, density):
            parts.append(received[:, start:start + length])
            start += length
        indices = tf.reshape(unpack(parts[0], _INDEX_RADIX, entries),
                             [count, chunks, kept])
        codes = tf.reshape(unpack(parts[1], _CODE_RADIX, entries),
                           [count, chunks, kept])
        levels = tf.reshape(tf.bitcast(parts[2], tf.float32),
                            [count, chunks, 2])
        total = tf.add_n([top_k_compression.decode(
            indices[r], codes[r], levels[r], anchor.shape, anchor.dtype)
            for r in range(count)])
        changes.append((pair, total / tf.cast(count, anchor.dtype)))
    return changes


def _end_round(strategy, optimizer, pairs):
    replicas = _Replicas(strategy)
    if optimizer.outer == "sign":
        changes = _voted_changes(replicas, optimizer, pairs)
    elif optimizer.outer == "top_k":
        changes = _sparse_changes(replicas, optimizer, pairs)
    else:
        changes = _mean_changes(replicas, pairs)
    for (variable, (anchor, momentum, _)), change in changes:
        new_anchor, new_momentum = optimizer.new_anchor(
            tf.convert_to_tensor(_tf(anchor)),
            None if momentum is None else tf.convert_to_tensor(_tf(momentum)),
            change)
        if momentum is not None:
            _tf(momentum).assign(new_momentum)
        _tf(anchor).assign(new_anchor)
        _tf(variable).assign(tf.cast(new_anchor, variable.dtype))

