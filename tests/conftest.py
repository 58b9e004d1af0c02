import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.backend.clear_session()
    keras.utils.set_random_seed(1234)
    yield


def small_model(num_classes=10, hidden=32):
    """The package's MLP for the 8x8 digits."""
    from keras_signadam.models import mlp

    return mlp((8, 8, 1), num_classes, width=hidden)


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))
