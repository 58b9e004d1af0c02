"""Mixed precision: float16 compute, float32 weights, loss scaling.

Under the `mixed_float16` policy, `model.compile` wraps the optimizer in a
`keras.optimizers.LossScaleOptimizer`, which scales the loss up so small
float16 gradients do not underflow and skips the steps whose gradients
overflow. Here the wrapper is written out to show it; the optimizer inside
receives unscaled float32 gradients.

    python examples/mixed_precision.py [--epochs 10]
"""

import argparse

import keras

import keras_signadam as ks
from keras_signadam.comparison import datasets
from keras_signadam.comparison import models


def main(epochs):
    keras.mixed_precision.set_global_policy("mixed_float16")
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    keras.utils.set_random_seed(0)
    model = models.cnn(x_train.shape[1:], 10, width=16)
    optimizer = keras.optimizers.LossScaleOptimizer(
        ks.SignAdamPP(learning_rate=2e-3, track_statistics=True))
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=2)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    inner = optimizer.inner_optimizer
    print(f"test accuracy {accuracy:.4f}; loss scale "
          f"{float(optimizer.dynamic_scale.numpy()):g}; weights "
          f"{model.trainable_variables[0].dtype}, compute "
          f"{model.layers[0].compute_dtype}; non-finite gradient components "
          f"skipped inside the optimizer: {inner.nonfinite_count}")
    keras.mixed_precision.set_global_policy("float32")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    main(parser.parse_args().epochs)
