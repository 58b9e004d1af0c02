"""How sharp a minimum is."""

import numpy as np

from keras_signadam.landscape import evaluation
from keras_signadam.landscape import slices


def sharpness(model, data, radius=0.05, samples=10, seed=0,
              batch_size=256):
    """Largest rise of the loss under filter-normalized perturbations of
    relative size `radius`: ``max_i L(theta + radius * d_i) - L(theta)``.

    Flat minima rise little; sharp ones rise a lot. Backend-independent.
    The weights are restored afterwards.
    """
    center = model.get_weights()
    points = [center] + [
        evaluation.combine(
            center, [(slices.filter_normalized_direction(center, seed + i),
                      radius)])
        for i in range(samples)
    ]
    losses = evaluation.losses_along(model, points, data, batch_size)
    return float(np.max(losses[1:]) - losses[0])


def hessian_top_eigenvalue(model, data, iterations=30, seed=0,
                           batch_size=256):
    """Largest-magnitude eigenvalue of the Hessian of the loss with respect
    to the trainable weights, by power iteration on Hessian-vector
    products (TensorFlow backend).
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise NotImplementedError(
            "hessian_top_eigenvalue needs the TensorFlow backend; "
            "`sharpness` works on every backend."
        )
    import tensorflow as tf

    evaluate = evaluation.loss_function(model)  # checks the loss exists
    del evaluate
    loss = keras.losses.get(model.loss)
    variables = model.trainable_variables
    rng = np.random.default_rng(seed)
    vector = [rng.normal(size=v.shape).astype("float32") for v in variables]

    def hessian_vector_product(vector):
        total, count = None, 0
        for x, y in evaluation.batches(data, batch_size):
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    value = tf.reduce_mean(loss(y, model(x, training=False)))
                    if model.losses:
                        value += tf.add_n(model.losses)
                grads = inner.gradient(value, variables)
                dot = tf.add_n([tf.reduce_sum(g * v)
                                for g, v in zip(grads, vector)])
            product = outer.gradient(dot, variables)
            n = len(x)
            product = [p.numpy() * n for p in product]
            total = product if total is None else [
                a + b for a, b in zip(total, product)]
            count += n
        return [p / count for p in total]

    eigenvalue = 0.0
    for _ in range(iterations):
        norm = np.sqrt(sum(float(np.sum(v * v)) for v in vector))
        vector = [v / norm for v in vector]
        product = hessian_vector_product(vector)
        eigenvalue = sum(float(np.sum(p * v))
                         for p, v in zip(product, vector))
        vector = product
    return eigenvalue
