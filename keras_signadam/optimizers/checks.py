"""Argument checks shared by every optimizer and callback.

Each check raises `ValueError` naming the argument and the value received, so
a typo in a hyperparameter fails at construction instead of silently training
a wrong model.
"""

import math
import numbers


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_finite_number(name, value):
    if not _is_real(value) or not math.isfinite(value):
        raise ValueError(
            f"Argument `{name}` must be a finite number. "
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


def check_positive(name, value):
    value = check_finite_number(name, value)
    if value <= 0:
        raise ValueError(
            f"Argument `{name}` must be > 0. Received: {name}={value!r}"
        )
    return value


def check_beta(name, value):
    """A decay rate must lie in [0, 1): at 1 the average never moves."""
    value = check_finite_number(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"Argument `{name}` must be in the range [0, 1). "
            f"Received: {name}={value!r}"
        )
    return value


def check_choice(name, value, choices):
    if value not in choices:
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


def check_learning_rate(value):
    """Plain numbers must be >= 0; schedules and callables are the user's."""
    if _is_real(value):
        return check_non_negative("learning_rate", value)
    if value is None or isinstance(value, (str, bytes)):
        raise ValueError(
            "Argument `learning_rate` must be a float, a "
            "`keras.optimizers.schedules.LearningRateSchedule` or a callable. "
            f"Received: learning_rate={value!r}"
        )
    return value


def check_optional_non_negative(name, value):
    return None if value is None else check_non_negative(name, value)
