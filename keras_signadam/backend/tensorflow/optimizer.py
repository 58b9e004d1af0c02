"""TensorFlow only: the optimizers' XLA-compiled update.

Keras does not XLA-compile the train step on CPU-only machines or under
`tf.distribute`, and an uncompiled update runs one small kernel per
operation. So on TensorFlow the optimizers compile their update: one
function for all variables, or, under a strategy, one per variable and
device, so that each replica updates its own copy. Inside an XLA-compiled
train step the compiled update simply inlines.

TensorFlow keeps every XLA executable for the life of the process. On one
device, optimizers of the same structure (class, the settings fixed when
the update is traced, the shapes and dtypes of their variables) therefore
share one compiled function that takes all variables as arguments: a
learning-rate sweep compiles once instead of once per run. Hyperparameters
that change (learning rate, threshold, beta_1) are arguments or variables,
never part of the structure.
"""

import contextlib
import json
import threading

import tensorflow as tf

from keras_signadam import compat

# Structure -> the compiled update shared by the optimizers of that
# structure; bounded by the number of distinct structures in a process.
_SHARED = {}
# The optimizer whose call may trace a shared function (read only while
# tracing; calls are serialized by the lock).
_TRACING = threading.local()
_LOCK = threading.Lock()


def _structure(optimizer, variables):
    with tf.init_scope():  # the config reads variables: eagerly
        settings = optimizer.traced_settings()
    return (
        type(optimizer),
        json.dumps(settings, sort_keys=True, default=repr),
        tuple((tuple(v.shape), str(v.dtype),
               compat.uses_weight_decay(optimizer, v),
               compat.overwrites_with_gradient(optimizer, v))
              for v in variables),
        tuple((tuple(v.shape), str(v.dtype)) for v in optimizer.variables),
    )


def _apply_shared(gradients, learning_rate, values):
    # `values` holds every variable the update reads or writes: passed as
    # arguments (not captured), they are inputs of the trace, so the same
    # trace serves another optimizer's variables of the same structure;
    # reaching them below through the optimizer resolves to these inputs.
    del values
    optimizer, variables = _TRACING.current
    with optimizer.update_scope():
        for gradient, variable in zip(gradients, variables):
            optimizer.update_step(gradient, variable, learning_rate)


class _SharedUpdate:
    """Calls the shared compiled update with one optimizer's variables."""

    def __init__(self, optimizer, variables):
        key = _structure(optimizer, variables)
        function = _SHARED.get(key)
        if function is None:
            function = tf.function(_apply_shared, jit_compile=True,
                                   autograph=False)
            _SHARED[key] = function
        self.function = function
        self.optimizer = optimizer
        self.variables = list(variables)

    def __call__(self, gradients, learning_rate):
        values = list(self.variables) + [v.value for v in
                                          self.optimizer.variables]
        with _LOCK:
            _TRACING.current = (self.optimizer, self.variables)
            traces = self.function.experimental_get_tracing_count()
            try:
                result = self.function(gradients, learning_rate, values)
                if self.function.experimental_get_tracing_count() != traces:
                    self._forget_traced_variables(gradients, learning_rate,
                                                  values)
                return result
            finally:
                _TRACING.current = None

    def _forget_traced_variables(self, gradients, learning_rate, values):
        """A trace keeps weak references to the variables it read, and a
        later call under a tape or inside a graph touches them: once the
        optimizer that traced is gone, that fails. They all reach the trace
        as arguments (its inputs), which is what orders and feeds the call,
        and nothing differentiates through an update, so the trace keeps no
        list of them."""
        concrete = self.function.get_concrete_function(gradients,
                                                       learning_rate, values)
        concrete.graph.variables = ()


class CompiledUpdates:
    """The compiled update functions of one optimizer.

    A plain object, so that Keras's attribute tracking does not walk into
    them; `clear` drops them when the optimizer changes what it traces.
    """

    def __init__(self):
        self.functions = {}

    def clear(self):
        self.functions.clear()

    def get(self, optimizer, variables, device):
        key = (tuple(compat.variable_key(optimizer, v) for v in variables),
               device)
        update = self.functions.get(key)
        if update is None and not device:
            update = _SharedUpdate(optimizer, variables)
            self.functions[key] = update
        elif update is None:
            def apply_all(gradients, learning_rate):
                with optimizer.update_scope():
                    for gradient, variable in zip(gradients, variables):
                        optimizer.update_step(gradient, variable,
                                              learning_rate)

            update = tf.function(apply_all, jit_compile=True,
                                 autograph=False)
            self.functions[key] = update
        return update


def outside_traces():
    """Where an optimizer first called inside a traced function creates its
    variables: eagerly (`tf.init_scope`), unless a distribution strategy
    is in scope (its replicas' copies are made in the strategy's own
    context, and Keras builds there before tracing anyway)."""
    if tf.executing_eagerly() or tf.distribute.has_strategy():
        return contextlib.nullcontext()
    return tf.init_scope()


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
