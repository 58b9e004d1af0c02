"""The package's optimizers, one algorithm per module."""

from keras_signadam.optimizers.hybrid import Hybrid
from keras_signadam.optimizers.local_steps import LocalSteps
from keras_signadam.optimizers.novograd import NovoGrad
from keras_signadam.optimizers.sign_adam import SignAdam
from keras_signadam.optimizers.sign_adam_pp import SignAdamPP
from keras_signadam.optimizers.sign_sgd import SignSGD
from keras_signadam.optimizers.signum import Signum

__all__ = ["Hybrid", "LocalSteps", "NovoGrad", "SignAdam", "SignAdamPP",
           "SignSGD", "Signum"]


def _register_short_names():
    """`model.compile(optimizer="SignAdamPP")`, as with Keras's "Adam" and
    "adam".

    Keras resolves a string identifier through the registry of custom
    objects; the decorator registers "keras_signadam>SignAdamPP" (also
    usable as a string), and these entries add the class name and the
    lower-case class and module names ("SignAdamPP", "signadampp",
    "sign_adam_pp"). Configs and saved models keep the full registered
    name.
    """
    import keras

    registry = keras.saving.get_custom_objects()
    for cls in (Hybrid, LocalSteps, NovoGrad, SignAdam, SignAdamPP, SignSGD,
                Signum):
        module_name = cls.__module__.rsplit(".", 1)[-1]
        for alias in (cls.__name__, cls.__name__.lower(), module_name):
            registry.setdefault(alias, cls)


_register_short_names()
