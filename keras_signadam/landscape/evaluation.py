"""Shared pieces of the landscape tools: weight bookkeeping that always
restores the model, batched loss evaluation, and the valley floor."""

import contextlib

import keras
import numpy as np
from keras import ops


@contextlib.contextmanager
def restored_weights(model):
    """Runs the block, then puts back exactly the weights found, even when
    the block raises."""
    saved = model.get_weights()
    try:
        yield saved
    finally:
        model.set_weights(saved)


def combine(base, directions_and_coefficients):
    """``base + sum(c * d)`` per weight array."""
    result = [np.array(w, copy=True) for w in base]
    for direction, coefficient in directions_and_coefficients:
        for r, d in zip(result, direction):
            r += np.asarray(coefficient * d, dtype=r.dtype)
    return result


def batches(data, batch_size):
    """Yields ``(x, y)`` batches from an ``(x, y)`` tuple of arrays, a
    `tf.data.Dataset` of ``(x, y)`` pairs, or any iterable of pairs."""
    if isinstance(data, tuple) and len(data) == 2:
        x, y = data
        n = len(x)
        for start in range(0, n, batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]
        return
    for item in data:
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError(
                "Argument `data` must be an (x, y) tuple or a dataset of "
                f"(x, y) pairs. Received an element: {type(item).__name__}"
            )
        yield item[0], item[1]


def loss_function(model):
    """``f(x, y)`` -> mean loss of the compiled model at its current
    weights, inference mode, regularization losses included (what
    `model.evaluate` reports, without touching its metrics)."""
    if getattr(model, "loss", None) is None:
        raise ValueError(
            "The model must be compiled with a loss before its loss "
            "landscape can be evaluated: call `model.compile(loss=...)`."
        )
    loss = keras.losses.get(model.loss)

    def evaluate(x, y):
        value = ops.mean(loss(y, model(x, training=False)))
        if model.losses:
            value = value + ops.sum(ops.stack(model.losses))
        return float(ops.convert_to_numpy(value))

    return evaluate


def dataset_loss(model, data, batch_size=256):
    """Mean loss over `data`, each batch weighted by its size."""
    evaluate = loss_function(model)
    total, count = 0.0, 0
    for x, y in batches(data, batch_size):
        n = len(x)
        total += evaluate(x, y) * n
        count += n
    if not count:
        raise ValueError("Argument `data` holds no examples.")
    return total / count


def losses_along(model, points, data, batch_size=256):
    """Loss at each list of weights in `points`; restores the model."""
    with restored_weights(model):
        losses = []
        for weights in points:
            model.set_weights(weights)
            losses.append(dataset_loss(model, data, batch_size))
    return np.array(losses)


def valley_floor(alphas, losses):
    """Position and height of the minimum of a sampled 1-D loss curve.

    The grid minimum is refined with the parabola through it and its two
    neighbours, so a quadratic curve gives its exact vertex.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    i = int(np.argmin(losses))
    if 0 < i < len(losses) - 1:
        a0, a1, a2 = alphas[i - 1:i + 2]
        l0, l1, l2 = losses[i - 1:i + 2]
        denominator = (a0 - a1) * (a0 - a2) * (a1 - a2)
        curvature = (a2 * (l1 - l0) + a1 * (l0 - l2) + a0 * (l2 - l1))
        if denominator and curvature / denominator > 0:
            slope = (a2**2 * (l0 - l1) + a1**2 * (l2 - l0)
                     + a0**2 * (l1 - l2))
            vertex = -slope / (2 * curvature)
            a, b = curvature / denominator, slope / denominator
            c = l0 - a * a0**2 - b * a0
            return float(vertex), float(a * vertex**2 + b * vertex + c)
    return float(alphas[i]), float(losses[i])
