import keras

from keras_signadam.callbacks import common


class ConfidenceScheduler(keras.callbacks.Callback):
    """Sets the confidence threshold delta from a schedule, once per epoch.

    In the manner of `keras.callbacks.LearningRateScheduler`: at the start
    of each epoch, `delta = schedule(epoch, delta)`. The threshold is an
    optimizer variable, so the change needs no re-tracing. `threshold` and
    `sparsity` are written into `logs` at the end of each epoch (place this
    callback before `CSVLogger` / `TensorBoard` in the list).

    Args:
        schedule: Function `(epoch: int, threshold: float) -> float`, the
            new threshold (>= 0).
        verbose: 1 prints each change.

    Example:

    ```python
    def halve_every_ten(epoch, threshold):
        return threshold * 0.5 if epoch and epoch % 10 == 0 else threshold

    model.fit(x, y, epochs=30,
              callbacks=[ks.callbacks.ConfidenceScheduler(halve_every_ten)])
    ```
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise ValueError(
                "Argument `schedule` must be a callable "
                f"(epoch, threshold) -> threshold. Received: "
                f"schedule={schedule!r}"
            )
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = common.threshold_optimizer(self.model,
                                               "ConfidenceScheduler")
        current = common.get_threshold(optimizer)
        value = common.set_threshold(
            optimizer, self.schedule(epoch, current), "schedule(epoch)"
        )
        if self.verbose and value != current:
            print(f"\nEpoch {epoch + 1}: ConfidenceScheduler sets the "
                  f"threshold to {value:.3g}.")

    def on_epoch_end(self, epoch, logs=None):
        common.write_logs(logs, common.unwrap(self.model.optimizer))
