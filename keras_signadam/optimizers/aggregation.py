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

The strategy answers four questions, at the points where they arise:
`aggregate_tf` (which gradients the update receives), `signal` (the
ternary signal the update rule uses), `update_input` (the tensor a rule
that averages the gradient itself, Signum, uses) and
`per_replica_signal` (whether each
replica compresses a signal of its own, so that error feedback keeps a
residual per replica). All read the same fact, the number of replicas in
sync, so they cannot disagree. A new way to aggregate is one new class
with these methods, and one entry in `STRATEGIES`.

Saving with per-replica residuals (`error_feedback=True` with the vote):
`model.save`, `tf.train.Checkpoint` and `BackupAndRestore` read them
outside the replicas, as their mean, and loading gives every replica that
mean. Their sum over the replicas, the part of the gradients the votes
have yet to deliver, is restored exactly; how it was split among the
replicas is not. On one replica the residual is restored exactly.
"""

import keras

from keras_signadam.optimizers import confidence


def replicas_in_sync():
    """Replicas in sync under a `tf.distribute` strategy; 1 on the other
    backends, where nothing is aggregated per replica."""
    if keras.backend.backend() != "tensorflow":
        return 1
    from keras_signadam.backend.tensorflow import majority_vote

    return majority_vote.replicas_in_sync()


class ExactSum:
    name = "sum"

    def aggregate_tf(self, optimizer, keras_sum, grads_and_vars):
        return keras_sum()

    def signal(self, optimizer, g, raw_gradient, variable):
        """``(s, zero indicator)`` of the update rule's ternary signal."""
        return optimizer.compressed_signal(g, raw_gradient, variable)

    def update_input(self, optimizer, g, raw_gradient, variable):
        """What a rule that averages the gradient (not its signal) takes:
        the gradient with the coupled decay (`signal_input`)."""
        return optimizer.signal_input(g, raw_gradient, variable)

    def per_replica_signal(self):
        """The sum compresses (if at all) after aggregation: the same
        signal on every replica."""
        return False


class MajorityVote(ExactSum):
    name = "majority_vote"

    def votes(self):
        """Whether the gradients the update receives are votes."""
        return replicas_in_sync() > 1

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
            return g, confidence.zero_indicator(g)
        return optimizer.compressed_signal(g, raw_gradient, variable)

    def update_input(self, optimizer, g, raw_gradient, variable):
        if self.votes():
            # The vote, formed from each replica's signal input.
            return g
        return optimizer.signal_input(g, raw_gradient, variable)

    def per_replica_signal(self):
        return self.votes()


STRATEGIES = {s.name: s for s in (ExactSum, MajorityVote)}


def strategy(name):
    return STRATEGIES[name]()
