"""How the replicas of a `tf.distribute` strategy combine their gradients:
one strategy object per optimizer, chosen by the `aggregation` argument.

- `ExactSum` ("sum", the default): Keras's float32 all-reduce; every
  optimizer supports it.
- `MajorityVote` ("majority_vote", the sign family): each replica sends the
  ternary signal of its own gradient share, packed; every replica receives
  the same vote sign(sum_r s_r) in place of its gradient
  (`backend/tensorflow/majority_vote.py`). On one replica, outside
  `tf.distribute`, or on the JAX and PyTorch backends nothing is voted on
  and the update forms its signal from the gradient, as with the sum.

The strategy answers two questions, at the two points where they arise:
`aggregate_tf` (which gradients the update receives) and `signal` (the
ternary signal the update rule uses). Both read the same fact, the number
of replicas in sync, so they cannot disagree. A new way to aggregate is one
new class with these two methods, and one entry in `STRATEGIES`.
"""

import keras
from keras import ops


def _replicas_in_sync():
    if keras.backend.backend() != "tensorflow":
        return 1
    from keras_signadam.backend.tensorflow import majority_vote

    return majority_vote.replicas_in_sync()


def _zero_indicator(s):
    return ops.cast(ops.equal(s, 0.0), s.dtype)


class ExactSum:
    name = "sum"

    def aggregate_tf(self, optimizer, keras_sum, grads_and_vars):
        return keras_sum()

    def signal(self, optimizer, g, raw_gradient, variable):
        """``(s, zero indicator)`` of the update rule's ternary signal."""
        return optimizer.local_signal(g, raw_gradient, variable)


class MajorityVote(ExactSum):
    name = "majority_vote"

    def votes(self):
        """Whether the gradients the update receives are votes."""
        return _replicas_in_sync() > 1

    def aggregate_tf(self, optimizer, keras_sum, grads_and_vars):
        if not self.votes():
            return keras_sum()
        import tensorflow as tf

        from keras_signadam.backend.tensorflow import majority_vote

        return majority_vote.voted_gradients(
            optimizer, grads_and_vars, tf.distribute.get_replica_context())

    def signal(self, optimizer, g, raw_gradient, variable):
        if self.votes():
            # The vote arrived in place of the gradient: it is the signal.
            return g, _zero_indicator(g)
        return optimizer.local_signal(g, raw_gradient, variable)


STRATEGIES = {s.name: s for s in (ExactSum, MajorityVote)}


def strategy(name):
    return STRATEGIES[name]()
