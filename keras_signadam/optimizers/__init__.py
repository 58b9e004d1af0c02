"""The package's optimizers, one algorithm per module."""

from keras_signadam.optimizers.sign_adam import SignAdam
from keras_signadam.optimizers.sign_adam_pp import SignAdamPP
from keras_signadam.optimizers.sign_sgd import SignSGD
from keras_signadam.optimizers.signum import Signum

__all__ = ["SignAdam", "SignAdamPP", "SignSGD", "Signum"]
