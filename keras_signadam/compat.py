"""Every use of a private Keras name, in one place.

Keras 3 has no public hooks for what an optimizer package needs beyond
`build` / `update_step`: which variables Keras overwrites with their
gradient, a variable's index in the optimizer, whether weight decay applies
to it, and the points where the base class applies weight decay and runs
the per-step update (and, on TensorFlow, its `tf.distribute` update). They
are read here and nowhere else, so a Keras release that renames one breaks
this module only. `MINIMUM_KERAS` is the oldest release they were tested
with (`make test-floor`).
"""

import keras

MINIMUM_KERAS = "3.10.0"


def overwrites_with_gradient(optimizer, variable):
    """Whether Keras writes this variable's gradient into it directly
    (`variable.overwrite_with_gradient`): it then has no optimizer state."""
    return optimizer._overwrite_variable_with_gradient(variable)


def variable_index(optimizer, variable):
    return optimizer._get_variable_index(variable)


def variable_key(optimizer, variable):
    return optimizer._var_key(variable)


def uses_weight_decay(optimizer, variable):
    return optimizer._use_weight_decay(variable)


def track_variable(optimizer, variable):
    optimizer._track_variable(variable)


def learning_rate_variable(optimizer):
    """Keras's learning-rate variable, or None for a schedule."""
    value = getattr(optimizer, "_learning_rate", None)
    return value if isinstance(value, keras.Variable) else None


def distribution_strategy(optimizer):
    """The `tf.distribute` strategy the optimizer was made under, if any."""
    return getattr(optimizer, "_distribution_strategy", None)


def variable_layout(variable):
    return getattr(variable, "_layout", None)


def bitcast(x, dtype):
    """The bits of `x` read as `dtype` (same width): `keras.ops.view`
    where Keras has it (3.10 does not), else the backend's own bitcast."""
    from keras import ops

    if hasattr(ops, "view"):
        return ops.view(x, dtype)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.bitcast(x, dtype)
    if backend == "jax":
        import jax

        return jax.lax.bitcast_convert_type(x, dtype)
    if backend == "torch":
        import torch

        return x.view(getattr(torch, dtype))
    return ops.convert_to_tensor(
        ops.convert_to_numpy(x).view(dtype))


class KerasHooks(keras.optimizers.Optimizer):
    """Overrides of the base class's private hooks, forwarded to public
    methods of this package's base class:

    - `_apply_weight_decay` -> nothing (decay is fused into `update_step`),
    - `_backend_update_step` -> `run_update_step`,
    - `_distributed_tf_update_step` -> `run_distributed_tf_update`,
    - `_all_reduce_sum_gradients` -> `aggregate_tf_gradients`.
    """

    def _apply_weight_decay(self, variables):
        return

    def _backend_update_step(self, grads, trainable_variables,
                             learning_rate):
        self.run_update_step(
            lambda lr: super(KerasHooks, self)._backend_update_step(
                grads, trainable_variables, lr
            ),
            learning_rate,
        )

    def _distributed_tf_update_step(self, distribution, grads_and_vars,
                                    learning_rate):
        return self.run_distributed_tf_update(
            lambda: super(KerasHooks, self)._distributed_tf_update_step(
                distribution, grads_and_vars, learning_rate
            ),
            distribution, grads_and_vars, learning_rate,
        )

    def _all_reduce_sum_gradients(self, grads_and_vars):
        grads_and_vars = list(grads_and_vars)
        return self.aggregate_tf_gradients(
            lambda: super(KerasHooks, self)._all_reduce_sum_gradients(
                grads_and_vars
            ),
            grads_and_vars,
        )


def inner_optimizers(optimizer):
    """`optimizer` and the optimizers it applies through (a `Hybrid`'s
    two parts), depth first."""
    found = [optimizer]
    for name in ("sign_optimizer", "adaptive_optimizer", "optimizer"):
        part = getattr(optimizer, name, None)
        if isinstance(part, keras.optimizers.Optimizer):
            found += inner_optimizers(part)
    return found


def apply_local_gradients(optimizer):
    """From now on each replica applies the gradients of its own share of
    the batch: the all-reduce Keras runs on TensorFlow under
    `tf.distribute` (`_all_reduce_sum_gradients`) is skipped, for
    `optimizer` and the optimizers it applies through, and the update
    writes each replica's own copy of every variable. Set once, for good
    (the replicas' threads apply at once)."""
    for part in inner_optimizers(optimizer):
        # Past Keras's attribute tracking: a plain override.
        object.__setattr__(part, "_all_reduce_sum_gradients", list)
