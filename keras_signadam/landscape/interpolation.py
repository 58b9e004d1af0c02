"""The loss along the straight line between two weight sets."""

import numpy as np

from keras_signadam.landscape import evaluation


def interpolate(model, start_weights, end_weights, data, num=21,
                alphas=None, batch_size=256):
    """Loss at ``start + a * (end - start)`` for a grid of a.

    Args:
        model: A compiled Keras model.
        start_weights, end_weights: Lists of arrays as from
            `model.get_weights()`.
        data: An ``(x, y)`` tuple or a dataset of ``(x, y)`` batches.
        num: Number of evenly spaced a in [0, 1] (ignored if `alphas`).
        alphas: Explicit grid; values outside [0, 1] extrapolate.
        batch_size: Batch size for tuple data.

    Returns:
        ``(alphas, losses)`` as NumPy arrays. The model's weights are left
        exactly as they were, also when an error is raised.
    """
    alphas = (np.linspace(0.0, 1.0, num) if alphas is None
              else np.asarray(alphas, dtype=np.float64))
    _check_like(model, start_weights, "start_weights")
    _check_like(model, end_weights, "end_weights")
    step = [np.asarray(e) - np.asarray(s)
            for s, e in zip(start_weights, end_weights)]
    points = [evaluation.combine(start_weights, [(step, a)]) for a in alphas]
    return alphas, evaluation.losses_along(model, points, data, batch_size)


def _check_like(model, weights, name):
    reference = model.get_weights()
    shapes = [np.shape(w) for w in weights]
    expected = [w.shape for w in reference]
    if shapes != expected:
        raise ValueError(
            f"Argument `{name}` must match `model.get_weights()`: "
            f"{len(expected)} arrays of shapes {expected}. Received "
            f"{len(shapes)} arrays of shapes {shapes}."
        )
