"""Keras 3 optimizers driven by the sign of the gradient.

    import keras_signadam as ks
    model.compile(optimizer=ks.SignAdamPP(), loss=..., metrics=[...])

Importing the package needs only Keras and NumPy (and the backend Keras
runs on). The comparison program, `keras_signadam.comparison`, needs the
`compare` extra.
"""

import importlib
import os
import sys

from keras_signadam.version import __version__

_EXPORTS = {
    "Hybrid": "keras_signadam.optimizers",
    "LocalSteps": "keras_signadam.optimizers",
    "NovoGrad": "keras_signadam.optimizers",
    "SignAdam": "keras_signadam.optimizers",
    "SignAdamPP": "keras_signadam.optimizers",
    "SignSGD": "keras_signadam.optimizers",
    "Signum": "keras_signadam.optimizers",
    "callbacks": "keras_signadam.callbacks",
    "optimizers": "keras_signadam.optimizers",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def _running_the_program():
    """Whether this process is the comparison program: `python -m
    keras_signadam` (Python sets argv[0] to "-m" while it imports the
    package) or the `keras-signadam` script. The program checks its
    arguments before importing Keras (and so TensorFlow, seconds), then
    imports the optimizers itself."""
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or os.path.basename(first) == "keras-signadam"


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(
            f"module 'keras_signadam' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if module.__name__.endswith(name) else getattr(module,
                                                                  name)
    globals()[name] = value
    return value


if not _running_the_program():
    # Importing the optimizers registers them with Keras, which
    # `keras.models.load_model` needs for a model saved with one of them.
    for _name in _EXPORTS:
        __getattr__(_name)
