"""Helpers shared by the callbacks: finding the hyperparameter a callback
changes, by the capability an optimizer declares, and writing the
confidence figures into `logs`."""

import warnings

from keras_signadam import checks
from keras_signadam.optimizers import hyperparameters


def unwrap(optimizer):
    """The optimizer whose hyperparameters the callbacks change: the one
    inside a `LossScaleOptimizer`, the sign optimizer of a `Hybrid`, or
    the optimizer."""
    for attribute in ("inner_optimizer", "sign_optimizer"):
        inner = getattr(optimizer, attribute, None)
        if inner is not None:
            return unwrap(inner)
    return optimizer


def declared_variable(optimizer, capability):
    """The variable an optimizer declares in its `capabilities` for
    `capability` (`"threshold_variable"` or `"momentum_variable"`), or
    None (also for optimizers from elsewhere)."""
    capabilities = getattr(type(optimizer), "capabilities", None)
    name = getattr(capabilities, capability, None)
    return getattr(optimizer, name) if isinstance(name, str) else None


def threshold_optimizer(model, callback_name):
    optimizer = unwrap(model.optimizer)
    if declared_variable(optimizer, "threshold_variable") is None:
        raise ValueError(
            f"`{callback_name}` needs an optimizer with a confidence "
            "threshold (`SignAdamPP` or `SignSGD` from keras_signadam). "
            f"Received: optimizer={type(optimizer).__name__}"
        )
    return optimizer


def enable_statistics(model, optimizer):
    """Turns on the per-step counts of `optimizer` (the optimizer of
    `model`, possibly inside a `LossScaleOptimizer`). The flag is read while
    tracing, so the train function is made again when it changes."""
    if optimizer.track_statistics:
        return
    with warnings.catch_warnings():
        # Its warning asks for what the next lines do.
        warnings.simplefilter("ignore")
        optimizer.track_statistics = True
    if getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)


def get_threshold(optimizer):
    variable = declared_variable(optimizer, "threshold_variable")
    return hyperparameters.read(variable)


def set_threshold(optimizer, value, name="threshold"):
    value = checks.check_non_negative(name, value)
    declared_variable(optimizer, "threshold_variable").assign(value)
    return value


def write_logs(logs, optimizer):
    if logs is None:
        return
    logs["threshold"] = get_threshold(optimizer)
    sparsity = optimizer.sparsity
    if sparsity is not None:  # None when statistics are not tracked
        logs["sparsity"] = float(sparsity)
