"""1-D and 2-D slices of the loss along filter-normalized directions.

A random direction is rescaled filter by filter (each output unit of a
kernel) to the norm of the weights it perturbs, so that slices of
networks, or of layers, with different weight scales are comparable (Li et
al., 2018, "Visualizing the Loss Landscape of Neural Nets"). Biases and
normalization parameters (1-D weights) are not perturbed.
"""

import numpy as np

from keras_signadam.landscape import evaluation


def filter_normalized_direction(weights, seed=0):
    rng = np.random.default_rng(seed)
    direction = []
    for w in weights:
        w = np.asarray(w)
        if w.ndim <= 1:
            direction.append(np.zeros_like(w))
            continue
        d = rng.normal(size=w.shape).astype(w.dtype)
        axes = tuple(range(w.ndim - 1))
        w_norm = np.sqrt(np.sum(np.square(w), axis=axes, keepdims=True))
        d_norm = np.sqrt(np.sum(np.square(d), axis=axes, keepdims=True))
        direction.append(d * w_norm / np.maximum(d_norm, 1e-12))
    return direction


def slice_1d(model, data, direction=None, radius=1.0, num=21, seed=0,
             batch_size=256):
    """Loss at ``theta + a * d`` for a in [-radius, radius].

    Returns ``(alphas, losses)``; `direction` defaults to a
    filter-normalized random one. The weights are restored afterwards.
    """
    center = model.get_weights()
    if direction is None:
        direction = filter_normalized_direction(center, seed)
    alphas = np.linspace(-radius, radius, num)
    points = [evaluation.combine(center, [(direction, a)]) for a in alphas]
    return alphas, evaluation.losses_along(model, points, data, batch_size)


def slice_2d(model, data, directions=None, radius=1.0, num=11, seed=0,
             batch_size=256):
    """Loss on the plane ``theta + a * d1 + b * d2``.

    Returns ``(alphas, betas, losses)`` with ``losses[i, j]`` at
    ``(alphas[i], betas[j])``. The weights are restored afterwards.
    """
    center = model.get_weights()
    if directions is None:
        directions = (filter_normalized_direction(center, seed),
                      filter_normalized_direction(center, seed + 1))
    d1, d2 = directions
    alphas = np.linspace(-radius, radius, num)
    betas = np.linspace(-radius, radius, num)
    points = [evaluation.combine(center, [(d1, a), (d2, b)])
              for a in alphas for b in betas]
    losses = evaluation.losses_along(model, points, data, batch_size)
    return alphas, betas, losses.reshape(num, num)
