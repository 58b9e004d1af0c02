"""Keras 3 optimizers driven by the sign of the gradient.

    import keras_signadam as ks
    model.compile(optimizer=ks.SignAdamPP(), loss=..., metrics=[...])
"""

from keras_signadam import callbacks
from keras_signadam import datasets
from keras_signadam import models
from keras_signadam import optimizers
from keras_signadam.optimizers import NovoGrad
from keras_signadam.optimizers import SignAdam
from keras_signadam.optimizers import SignAdamPP
from keras_signadam.optimizers import SignSGD
from keras_signadam.optimizers import Signum

__version__ = "0.1.0"

__all__ = [
    "NovoGrad",
    "SignAdam",
    "SignAdamPP",
    "SignSGD",
    "Signum",
    "callbacks",
    "datasets",
    "models",
    "optimizers",
]
