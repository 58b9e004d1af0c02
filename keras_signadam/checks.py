"""Argument checks shared by the optimizers and the callbacks.

Each check raises `ValueError` naming the argument and the value received,
so a typo in a hyperparameter fails where it is made instead of silently
training a wrong model.
"""

import math
import numbers

import numpy as np

# Hyperparameters are used in float32: a larger number would be infinite.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def as_number(value):
    """A Python float from a number or a scalar array/tensor (what a
    schedule may return), or `value` unchanged when it is neither."""
    if _is_real(value):
        return float(value)
    try:
        array = np.asarray(value)
    except Exception:  # symbolic tensors and arbitrary objects
        return value
    if array.shape == () and array.dtype.kind in "fiu":
        return float(array)
    return value


def check_finite_number(name, value):
    value = as_number(value)
    if not _is_real(value) or not math.isfinite(value) or (
        abs(value) > FLOAT32_MAX
    ):
        raise ValueError(
            f"Argument `{name}` must be a finite number (in float32). "
            f"Received: {name}={value!r}"
        )
    return float(value)


def check_non_negative(name, value):
    value = check_finite_number(name, value)
    if value < 0:
        raise ValueError(
            f"Argument `{name}` must be >= 0. Received: {name}={value!r}"
        )
    return value


def _rounding_note(value):
    """Hyperparameters are used (and stored) in float32: a value valid
    only before that rounding is refused, and the message says why."""
    stored = float(np.float32(value))
    return "" if stored == value else (
        f", which is {stored!r} in float32, where it is used")


def check_positive(name, value):
    value = check_finite_number(name, value)
    if not float(np.float32(value)) > 0:
        raise ValueError(
            f"Argument `{name}` must be > 0. Received: {name}={value!r}"
            + _rounding_note(value)
        )
    return value


def check_epsilon(name, value):
    """A positive float32 normal number: a subnormal one reads as 0 where
    subnormals are flushed to zero (XLA and oneDNN on CPU), and the
    update's denominator sqrt(v) + epsilon is then 0 wherever v is."""
    value = check_positive(name, value)
    smallest = float(np.finfo(np.float32).tiny)
    if float(np.float32(value)) < smallest:
        raise ValueError(
            f"Argument `{name}` must be at least {smallest:.6g}, the "
            f"smallest normal float32 (a subnormal value is flushed to 0 "
            f"on some devices). Received: {name}={value!r}"
        )
    return value


def check_beta(name, value):
    """A decay rate must lie in [0, 1): at 1 the average never moves."""
    value = check_finite_number(name, value)
    # The sign is checked before rounding: a tiny negative value rounds
    # to -0.0 in float32, but its double-precision log (the bias
    # corrections) is undefined.
    if not (value >= 0.0 and float(np.float32(value)) < 1.0):
        raise ValueError(
            f"Argument `{name}` must be in the range [0, 1). "
            f"Received: {name}={value!r}" + _rounding_note(value)
        )
    return value


def check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"Argument `{name}` must be one of {sorted(choices)}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(
            f"Argument `{name}` must be True or False. "
            f"Received: {name}={value!r}"
        )
    return value


def check_int(name, value, minimum):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or (
        value < minimum
    ):
        raise ValueError(
            f"Argument `{name}` must be an integer >= {minimum}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def check_learning_rate(value):
    """Numbers must be finite in float32 and >= 0; schedules and callables
    are checked at each step (`base.Optimizer`)."""
    if _is_real(value):
        return check_non_negative("learning_rate", value)
    if value is None or isinstance(value, (str, bytes)) or not (
        callable(value) or hasattr(value, "shape")
    ):
        raise ValueError(
            "Argument `learning_rate` must be a float, a "
            "`keras.optimizers.schedules.LearningRateSchedule` or a callable. "
            f"Received: learning_rate={value!r}"
        )
    return value


def check_optional_non_negative(name, value):
    return None if value is None else check_non_negative(name, value)
