"""TensorFlow only: the optimizers' XLA-compiled update.

Keras does not XLA-compile the train step on CPU-only machines or under
`tf.distribute`, and an uncompiled update runs one small kernel per
operation. So on TensorFlow each optimizer compiles its own update: one
function for all variables, or, under a strategy, one per variable and
device, so that each replica updates its own copy. Inside an XLA-compiled
train step the compiled update simply inlines.
"""

import tensorflow as tf

from keras_signadam import compat


class CompiledUpdates:
    """The compiled update functions of one optimizer.

    The functions close over the optimizer; this holder is a plain object so
    that Keras's attribute tracking does not walk into them, and `clear`
    drops them (and their XLA executables) when the optimizer changes what
    it traces, or is released.
    """

    def __init__(self):
        self.functions = {}

    def clear(self):
        self.functions.clear()

    def get(self, optimizer, variables, device):
        key = (tuple(compat.variable_key(optimizer, v) for v in variables),
               device)
        update = self.functions.get(key)
        if update is None:
            def apply_all(gradients, learning_rate):
                for gradient, variable in zip(gradients, variables):
                    optimizer.update_step(gradient, variable, learning_rate)

            update = tf.function(apply_all, jit_compile=True,
                                 autograph=False)
            self.functions[key] = update
        return update


def distributed_update(optimizer, updates, distribution, grads_and_vars,
                       learning_rate):
    if not tf.distribute.has_strategy():
        # One compiled function for all variables: a single launch.
        variables = [v for _, v in grads_and_vars]
        updates.get(optimizer, variables, "")(
            [tf.convert_to_tensor(g) for g, _ in grads_and_vars],
            tf.convert_to_tensor(learning_rate),
        )
        return

    # Under a strategy each replica's copy is updated on its own device;
    # `variable` is that device's component.
    def update_one(variable, gradient, lr):
        return updates.get(optimizer, [variable], variable.device)(
            [tf.convert_to_tensor(gradient)], tf.convert_to_tensor(lr)
        )

    for gradient, variable in grads_and_vars:
        distribution.extended.update(
            variable, update_one, args=(gradient, learning_rate),
            group=False,
        )


def checked_learning_rate(learning_rate):
    """In a TensorFlow graph, fails the step with a clear error when the
    learning rate (from a schedule) is not a finite number >= 0. XLA
    ignores the assertion inside a compiled train step; there the update
    rules skip the step instead (see `base.Optimizer`)."""
    learning_rate = tf.convert_to_tensor(learning_rate)
    valid = tf.logical_and(tf.math.is_finite(learning_rate),
                           learning_rate >= 0)
    check = tf.debugging.Assert(
        valid,
        ["The learning rate must be a finite number >= 0 at every step; "
         "the learning rate schedule returned", learning_rate],
    )
    with tf.control_dependencies([check]):
        return tf.identity(learning_rate)
