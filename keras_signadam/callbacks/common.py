"""Helpers shared by the callbacks: finding the optimizer's threshold and
writing the confidence figures into `logs`."""

import keras
from keras import ops

from keras_signadam.optimizers import checks


def unwrap(optimizer):
    """The optimizer inside a `LossScaleOptimizer`, or the optimizer."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def threshold_optimizer(model, callback_name):
    optimizer = unwrap(model.optimizer)
    threshold = getattr(optimizer, "threshold", None)
    if not isinstance(threshold, keras.Variable):
        raise ValueError(
            f"`{callback_name}` needs an optimizer whose confidence threshold "
            "is a variable (`SignAdamPP` or `SignSGD` from keras_signadam). "
            f"Received: optimizer={type(optimizer).__name__}"
        )
    return optimizer


def enable_statistics(model, optimizer):
    """Turns on the per-step counts of `optimizer` (the optimizer of
    `model`, possibly inside a `LossScaleOptimizer`). The flag is read while
    tracing, so the train function is made again when it changes."""
    if optimizer.track_statistics:
        return
    optimizer.track_statistics = True
    if getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)


def get_threshold(optimizer):
    return float(ops.convert_to_numpy(optimizer.threshold))


def set_threshold(optimizer, value, name="threshold"):
    value = checks.check_non_negative(name, value)
    optimizer.threshold.assign(value)
    return value


def write_logs(logs, optimizer):
    if logs is None:
        return
    logs["threshold"] = get_threshold(optimizer)
    sparsity = optimizer.sparsity
    if sparsity is not None:  # None when statistics are not tracked
        logs["sparsity"] = float(sparsity)
