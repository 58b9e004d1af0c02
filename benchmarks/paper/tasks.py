"""The paper's tasks, on data that needs no download.

Its Table 2 trains a LeNet and a 2-layer LSTM on MNIST; here both train on
the bundled 8x8 UCI digits (scikit-learn's copy, 1,797 images: 60% train,
20% validation, 20% test), the LSTM reading an image row by row. Its Table
3 trains VGG-19 on CIFAR-100, 500 images per class; here a VGG-style CNN
(two blocks of two 3x3 convolutions with batch normalization) trains on
the digits with 30 training images per class (`digits_few`: 30 per class
for validation too, the remaining 1,197 images for the test). Batch 128
as in the authors' code for Table 2; 32 for the 300 images of Table 3.
"""

import keras
import numpy as np
from keras import layers

from benchmarks.quality.tasks import Task
from benchmarks.quality.tasks import load_digits


def lenet(input_shape, num_classes):
    """LeNet-5's layout at 8x8: two convolution-pool blocks, 120-84."""
    return keras.Sequential([
        keras.Input(input_shape),
        layers.Conv2D(6, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(120, activation="relu"),
        layers.Dense(84, activation="relu"),
        layers.Dense(num_classes),
    ])


def lstm(input_shape, num_classes, units=64):
    """Two stacked LSTMs over the image's rows."""
    rows, columns = input_shape[0], input_shape[1]
    return keras.Sequential([
        keras.Input(input_shape),
        layers.Reshape((rows, columns)),
        layers.LSTM(units, return_sequences=True),
        layers.LSTM(units),
        layers.Dense(num_classes),
    ])


def vgg(input_shape, num_classes, width=32):
    def block(filters):
        return [layers.Conv2D(filters, 3, padding="same", use_bias=False),
                layers.BatchNormalization(), layers.ReLU()]

    return keras.Sequential(
        [keras.Input(input_shape)]
        + block(width) + block(width) + [layers.MaxPooling2D()]
        + block(2 * width) + block(2 * width) + [layers.MaxPooling2D()]
        + [layers.Flatten(), layers.Dense(128, activation="relu"),
           layers.Dense(num_classes)])


def load_digits_few(fraction=1.0, per_class=30):
    """`per_class` training and validation images of each digit; the rest
    is the test split (`fraction` is unused: the split is already small)."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.images.astype("float32") / 16.0)[..., None]
    y = bunch.target.astype("int32")
    rng = np.random.default_rng(5)
    train, val, test = [], [], []
    for label in range(10):
        members = rng.permutation(np.flatnonzero(y == label))
        train += list(members[:per_class])
        val += list(members[per_class:2 * per_class])
        test += list(members[2 * per_class:])
    return tuple((x[np.sort(i)], y[np.sort(i)]) for i in (train, val, test))


TASKS = {
    task.name: task for task in [
        Task("lenet_digits", "bundled digits, LeNet (6-16 convolutions, "
             "120-84), the paper's MNIST LeNet", lenet, load_digits,
             epochs=100, batch_size=128),
        Task("lstm_digits", "bundled digits read row by row, two LSTMs "
             "of 64, the paper's MNIST LSTM", lstm, load_digits,
             epochs=100, batch_size=128),
        Task("digits_few", "30 digits per class, VGG-style CNN (32-32, "
             "64-64, batch normalization), the paper's CIFAR-100 VGG-19",
             vgg, load_digits_few, epochs=100, batch_size=32),
    ]
}
