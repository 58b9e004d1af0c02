"""What the distributed comparison scripts share: the optimizers, the data,
the model and an unshuffled `fit` that records every batch's loss, so a
distributed run and a single-device run see the same global batches.

Imported after each script has chosen its backend and devices.
"""

import keras

import keras_signadam as ks
from keras_signadam.comparison import datasets
from keras_signadam.comparison import models

FACTORIES = {
    "SignSGD": lambda: ks.SignSGD(1e-3, threshold=1e-4),
    "Signum": lambda: ks.Signum(1e-3),
    "SignAdam": lambda: ks.SignAdam(1e-3),
    "SignAdamPP": lambda: ks.SignAdamPP(1e-3, track_statistics=True),
    "NovoGrad": lambda: ks.NovoGrad(1e-2),
    "SignAdamPP bfloat16 state": lambda: ks.SignAdamPP(
        1e-3, state_dtype="bfloat16"),
    "SignAdamPP int8 state": lambda: ks.SignAdamPP(
        1e-3, state_dtype="int8", track_statistics=True),
}
EPOCHS, BATCH = 3, 64


def data():
    (x, y), _ = datasets.load_digits()
    return x[:256], y[:256]


class BatchLosses(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def compiled_model(make_optimizer):
    keras.utils.set_random_seed(0)
    model = models.mlp((8, 8, 1), 10, width=32)
    model.compile(
        optimizer=make_optimizer(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def fit(model, epochs=EPOCHS, initial_epoch=0, examples=None):
    """Trains without shuffling; returns the loss after every batch."""
    x, y = data()
    recorder = BatchLosses()
    model.fit(x[:examples], y[:examples], batch_size=BATCH, epochs=epochs,
              initial_epoch=initial_epoch, shuffle=False, verbose=0,
              callbacks=[recorder])
    return recorder.losses
