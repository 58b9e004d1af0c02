"""Optimizer state: its dtypes, and one state variable per model variable.

16-bit (float16 / bfloat16) variables are stepped in float32 and their state
is float32: an exponential average with decay 0.999 cannot move in
bfloat16, whose spacing near 1 is 2**-8. float32 and float64 variables are
stepped and kept in their own dtype, so a float64 parameter keeps steps far
below float32's resolution, as Keras's own optimizers do.
"""

import functools

import keras

from keras_signadam import compat

LOW_PRECISION = ("float16", "bfloat16")


def compute_dtype(variable):
    """The dtype a variable's update is computed in (and its state kept)."""
    dtype = keras.backend.standardize_dtype(variable.dtype)
    return "float32" if dtype in LOW_PRECISION else dtype


def add_state_variables(optimizer, var_list, name, shape=None, dtype=None,
                        initializer="zeros", per_replica=False):
    """One optimizer variable per model variable.

    `shape=None` mirrors the model variable's shape; `dtype=None` is the
    model variable's `compute_dtype`.
    Variables that Keras overwrites with their gradient get `None`, as in
    `add_optimizer_variables`. Under `tf.distribute` each is placed with
    its model variable; `per_replica=True` makes it a variable whose
    replicas hold values of their own (`synchronization="on_read"`), read
    outside the replicas (saving, checkpoints) as their mean and written
    there to every replica.
    """
    add = (functools.partial(_per_replica_variable, optimizer)
           if per_replica else optimizer.add_variable)
    states = []
    for variable in var_list:
        if compat.overwrites_with_gradient(optimizer, variable):
            states.append(None)
            continue
        path = getattr(variable, "path", None) or str(variable.name)
        path = path.replace("/", "_").replace(":", "_")
        states.append(
            _colocated(
                optimizer,
                variable,
                lambda v=variable, path=path: add(
                    shape=v.shape if shape is None else shape,
                    initializer=initializer,
                    dtype=dtype or compute_dtype(v),
                    name=f"{path}_{name}",
                    # A layout fits only state of the variable's shape.
                    layout=(compat.variable_layout(v) if shape is None
                            else None),
                ),
            )
        )
    return states


def _per_replica_variable(optimizer, shape, initializer, dtype, name,
                          layout=None):
    """`optimizer.add_variable`, with values of each replica's own."""
    with keras.name_scope(optimizer.name, caller=optimizer):
        variable = keras.Variable(
            initializer=keras.initializers.get(initializer), shape=shape,
            dtype=dtype, trainable=False, aggregation="mean",
            synchronization="on_read", name=name)
    compat.track_variable(optimizer, variable)
    return variable


def _colocated(optimizer, variable, create):
    strategy = compat.distribution_strategy(optimizer)
    if strategy is None:
        return create()
    value = variable.value if isinstance(variable, keras.Variable) else (
        variable
    )
    with strategy.extended.colocate_vars_with(value):
        return create()
