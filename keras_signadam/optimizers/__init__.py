"""The package's optimizers, one algorithm per module."""

from keras_signadam.optimizers.novograd import NovoGrad
from keras_signadam.optimizers.sign_adam import SignAdam
from keras_signadam.optimizers.sign_adam_pp import SignAdamPP
from keras_signadam.optimizers.sign_sgd import SignSGD
from keras_signadam.optimizers.signum import Signum

__all__ = ["NovoGrad", "SignAdam", "SignAdamPP", "SignSGD", "Signum"]
