import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

from tests import helpers  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    # Without Keras's full garbage collection: over a heap that holds
    # TensorFlow it costs 0.3 to 0.8 s a test, a third of the suite, and
    # Python's own collector still frees cycles as the heap grows.
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def run_python():
    """Runs a child Python (`helpers.run_python`): every test that needs a
    fresh process goes through it."""
    return helpers.run_python


@pytest.fixture
def start_python():
    """Starts a child Python without waiting (`helpers.start_python`)."""
    return helpers.start_python
