"""Hyperparameters held in optimizer variables, with validated writes.

A threshold or beta_1 that a callback changes during training lives in a
variable, so changing it never re-traces the train function. Every write of
a concrete value (``optimizer.threshold.assign(1e-3)``, a callback, loading
a saved model) goes through the same check as the constructor argument, so
a value that would stop learning (a NaN threshold) or corrupt the weights
(beta_1 = 1) is refused where it is written, and every state a model can be
saved in loads again. Values computed inside a traced function cannot be
inspected when they are written; the update rules keep them from corrupting
anything (see each optimizer).
"""

import keras
import numpy as np

from keras_signadam import checks
from keras_signadam import compat
from keras_signadam.optimizers import tracing


def concrete(value):
    """`value` as a NumPy array, or None while it is symbolic (traced)."""
    if tracing.symbolic(value):
        return None
    if isinstance(value, keras.Variable):
        return value_of(value)
    return np.asarray(keras.ops.convert_to_numpy(value))


class HyperparameterVariable(keras.Variable):
    """A scalar optimizer variable whose `assign` validates concrete
    values with `check(name, value)` (`assign_add` / `assign_sub` go
    through `assign`)."""

    def __init__(self, *args, check, argument, **kwargs):
        self._check = check
        self.argument = argument
        super().__init__(*args, **kwargs)

    def assign(self, value):
        array = concrete(value)
        if array is not None and array.size == 1:
            self._check(f"{self.argument} (assigned)",
                        float(array.reshape(())))
        return super().assign(value)

    def check_value(self):
        """Checks the value held now, however it was written."""
        self._check(f"{self.argument} (stored)", read(self))


def add_hyperparameter(optimizer, argument, value, check):
    """Creates, tracks and returns the validated variable `argument` of
    `optimizer`, holding `check(argument, value)`."""
    value = check(argument, value)
    with keras.name_scope(optimizer.name, caller=optimizer):
        variable = HyperparameterVariable(
            initializer=keras.initializers.Constant(value),
            shape=(),
            dtype="float32",
            trainable=False,
            aggregation="only_first_replica",
            name=argument,
            check=check,
            argument=argument,
        )
    compat.track_variable(optimizer, variable)
    return variable


def with_complement(variable, dtype):
    """A decay-rate variable (beta_1, a momentum) in `dtype`, and one
    minus it."""
    beta = keras.ops.cast(variable, dtype)
    return beta, 1.0 - beta


def value_of(variable):
    """A variable's current value as a NumPy array, read without NumPy's
    array protocol on the Keras variable (which warns under NumPy 2)."""
    if keras.backend.backend() == "tensorflow":
        return np.asarray(variable.numpy())
    return np.asarray(keras.ops.convert_to_numpy(
        getattr(variable, "value", variable)))


def read(variable):
    """A hyperparameter variable's current value as a Python float."""
    return float(value_of(variable))


def guard_learning_rate(optimizer):
    """Gives Keras's learning-rate variable (when the learning rate is a
    number) the validated writes of the other hyperparameters, in place: a
    NaN or negative `optimizer.learning_rate.assign(...)` is refused
    there. The variable stays the one Keras made and tracks (checkpoints
    and saved files are unchanged); only its class gains the check."""
    variable = compat.learning_rate_variable(optimizer)
    if variable is None or type(variable) is not keras.Variable:
        return
    variable.__class__ = HyperparameterVariable
    variable._check = checks.check_non_negative
    variable.argument = "learning_rate"


def names(optimizer):
    """The arguments of `optimizer` held in validated variables."""
    return sorted({v.argument for v in optimizer.variables
                   if isinstance(v, HyperparameterVariable)})


def check_all(optimizer):
    for variable in optimizer.variables:
        if isinstance(variable, HyperparameterVariable):
            variable.check_value()
