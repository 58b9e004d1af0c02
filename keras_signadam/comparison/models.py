"""Small image classifiers for comparisons and tutorials.

Each builder takes the input shape and the number of classes and returns an
uncompiled `keras.Model` that outputs logits.
"""

import keras
from keras import layers


def mlp(input_shape, num_classes, width=128):
    """Flatten, one hidden ReLU layer, logits."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Flatten(),
            layers.Dense(width, activation="relu"),
            layers.Dense(num_classes),
        ],
        name="mlp",
    )


def cnn(input_shape, num_classes, width=32):
    """Two conv blocks with max pooling, then a dense head."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(width, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(num_classes),
        ],
        name="cnn",
    )


def vgg_style(input_shape, num_classes, width=64, blocks=(2, 2, 3, 3)):
    """VGG-style network: blocks of 3x3 conv + batch norm + ReLU, each
    followed by max pooling (skipped once the feature map is 1x1)."""
    inputs = keras.Input(input_shape)
    x = inputs
    for i, repeats in enumerate(blocks):
        for _ in range(repeats):
            x = layers.Conv2D(width * 2**i, 3, padding="same",
                              use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        if x.shape[1] > 1 and x.shape[2] > 1:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name="vgg_style")


def _basic_block(x, filters, stride):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same",
                      use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride,
                                 use_bias=False)(shortcut)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.ReLU()(layers.Add()([y, shortcut]))


def resnet18_style(input_shape, num_classes, width=64):
    """ResNet-18 layout for small images: a 3x3 stem, four stages of two
    basic blocks (widths w, 2w, 4w, 8w; stride 2 from the second stage)."""
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(width, 3, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for stage in range(4):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, width * 2**stage, stride)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name="resnet18_style")


# The names in `choices.MODELS`.
MODELS = {
    "mlp": mlp,
    "cnn": cnn,
    "vgg": vgg_style,
    "resnet18": resnet18_style,
}


def default_model_name(input_shape):
    """The MLP for tiny images (8x8 digits), a small CNN otherwise."""
    return "mlp" if min(input_shape[:2]) < 16 else "cnn"
