"""A custom training loop: `tf.GradientTape` and `optimizer.apply`.

SignAdamPP on the bundled digits, with the confidence threshold and the
sparsity of each step visible as the loop runs.

    python examples/custom_training_loop.py [--epochs 10]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf

import keras_signadam as ks
from keras_signadam.comparison import datasets
from keras_signadam.comparison import models


def main(epochs):
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    keras.utils.set_random_seed(0)
    model = models.mlp(x_train.shape[1:], 10)
    optimizer = ks.SignAdamPP(learning_rate=2e-3, threshold=5e-4,
                              track_statistics=True)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    dataset = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
               .shuffle(2048, seed=0).batch(32))

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(gradients, model.trainable_variables)
        return loss

    for epoch in range(epochs):
        losses = [float(train_step(x, y)) for x, y in dataset]
        accuracy = np.mean(
            np.argmax(model.predict(x_test, verbose=0), axis=1) == y_test)
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}, test accuracy "
              f"{accuracy:.4f}, sparsity {optimizer.sparsity:.3f}, threshold "
              f"{float(optimizer.threshold.numpy()):.1e}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    main(parser.parse_args().epochs)
