"""Saving and resuming: the optimizer state travels with the model.

Trains for half the epochs, saves to a `.keras` file, loads it back (the
SignAdamPP moments, threshold and step count included) and finishes; the
result equals an uninterrupted run. `keras.callbacks.BackupAndRestore`
does the same automatically when a run is interrupted.

    python examples/save_and_resume.py [--epochs 6] [--folder DIR]
"""

import argparse
import os
import tempfile

import keras
import numpy as np

import keras_signadam as ks
from keras_signadam.comparison import datasets
from keras_signadam.comparison import models


def fresh_model(x):
    keras.utils.set_random_seed(0)
    model = models.mlp(x.shape[1:], 10)
    model.compile(
        optimizer=ks.SignAdamPP(learning_rate=2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def main(epochs, folder):
    (x, y), _ = datasets.load_digits()
    half = epochs // 2

    straight = fresh_model(x)
    straight.fit(x, y, epochs=epochs, shuffle=False, verbose=0)

    first = fresh_model(x)
    first.fit(x, y, epochs=half, shuffle=False, verbose=0)
    path = os.path.join(folder, "digits.keras")
    first.save(path)
    resumed = keras.models.load_model(path)
    print(f"saved after {half} epochs to {path}; optimizer step "
          f"{int(resumed.optimizer.iterations.numpy())}, threshold "
          f"{float(resumed.optimizer.threshold.numpy()):g}")
    resumed.fit(x, y, epochs=epochs - half, shuffle=False, verbose=0)

    difference = max(float(np.max(np.abs(a - b))) for a, b in
                     zip(straight.get_weights(), resumed.get_weights()))
    print(f"largest weight difference, resumed vs uninterrupted: "
          f"{difference:.2e}")
    return difference


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        main(args.epochs, args.folder or scratch)
