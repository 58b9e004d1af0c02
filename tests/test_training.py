"""Real training on the bundled digits, in the default and XLA settings."""

import keras
import numpy as np
import pytest

import keras_signadam as ks
from keras_signadam.comparison import datasets
from tests.helpers import small_model

OPTIMIZERS = {
    "SignAdamPP": lambda: ks.SignAdamPP(learning_rate=3e-3),
    "SignAdam": lambda: ks.SignAdam(learning_rate=3e-3),
    "Signum": lambda: ks.Signum(learning_rate=3e-3),
    "SignSGD": lambda: ks.SignSGD(learning_rate=3e-3, threshold=1e-4),
}


@pytest.fixture(scope="module")
def digits():
    return datasets.load_digits()


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_fit_reaches_accuracy(name, jit_compile, digits):
    (x_train, y_train), (x_test, y_test) = digits
    model = small_model()
    model.compile(
        optimizer=OPTIMIZERS[name](),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    model.fit(x_train, y_train, epochs=8, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy > 0.9, accuracy
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
