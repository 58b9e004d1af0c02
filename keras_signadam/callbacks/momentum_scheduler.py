import keras

from keras_signadam import checks
from keras_signadam.callbacks import common
from keras_signadam.optimizers import hyperparameters


class MomentumScheduler(keras.callbacks.Callback):
    """Anneals the momentum (beta_1) once per epoch from a schedule.

    Momentum helps SGD escape saddle points but hurts its convergence near
    an optimum unless it is annealed (Liu et al., 2018). At the start of
    each epoch, `momentum = schedule(epoch, momentum)`, in the manner of
    `keras.callbacks.LearningRateScheduler`; the value is written into
    `logs["momentum"]` at the end of the epoch.

    - `SignAdam`, `SignAdamPP`, `NovoGrad` (`beta_1`) and `Signum`
      (`momentum`) hold it in an optimizer variable: changing it never
      re-traces, and the Adam-type bias correction stays exact (it sums
      the logarithms of the values actually used).
    - Keras's `SGD` keeps `momentum` as a Python number that is fixed into
      the traced train step, so for it the train function is re-traced
      (and, under XLA, re-compiled) whenever the value changes. SGD built
      with `momentum=0` has no momentum state and cannot be annealed.

    Args:
        schedule: Function `(epoch: int, momentum: float) -> float` in
            [0, 1).
        verbose: 1 prints each change.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise ValueError(
                "Argument `schedule` must be a callable "
                f"(epoch, momentum) -> momentum. Received: "
                f"schedule={schedule!r}"
            )
        self.schedule = schedule
        self.verbose = verbose

    def _optimizer(self):
        optimizer = common.unwrap(self.model.optimizer)
        variable = common.declared_variable(optimizer, "momentum_variable")
        if variable is not None:
            return optimizer, variable
        if isinstance(optimizer, keras.optimizers.SGD):
            if not optimizer.momentum:
                raise ValueError(
                    "`MomentumScheduler` cannot anneal a Keras SGD built "
                    "with momentum=0: it has no momentum state. Build it "
                    "with the initial momentum instead."
                )
            return optimizer, None
        raise ValueError(
            "`MomentumScheduler` needs one of this package's momentum "
            "optimizers or keras.optimizers.SGD. Received: "
            f"optimizer={type(optimizer).__name__}"
        )

    def current(self):
        optimizer, variable = self._optimizer()
        if variable is None:
            return float(optimizer.momentum)
        return hyperparameters.read(variable)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer, variable = self._optimizer()
        current = self.current()
        value = checks.check_beta("schedule(epoch)",
                                  self.schedule(epoch, current))
        if value == current:
            return
        if variable is not None:
            variable.assign(value)
        else:
            optimizer.momentum = value
            self.model.make_train_function(force=True)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: MomentumScheduler sets the "
                  f"momentum to {value:.4g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["momentum"] = self.current()
