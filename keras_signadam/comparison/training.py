"""Train one model with one optimizer and evaluate it: the loop shared by
the comparison program and the benchmarks."""

import dataclasses
import time

import keras
import numpy as np


@dataclasses.dataclass
class Outcome:
    model: keras.Model
    history: dict
    # Per epoch: wall seconds, and the optimizer's sparsity (None when it
    # does not count it).
    seconds: list
    sparsity: list
    # Loss and accuracy of the final weights on both splits.
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float

    @property
    def seconds_per_epoch(self):
        """Median epoch time; the first epoch includes tracing."""
        return float(np.median(self.seconds[1:] or self.seconds))


class _EpochRecorder(keras.callbacks.Callback):
    def __init__(self, on_epoch):
        super().__init__()
        self.on_epoch = on_epoch
        self.seconds, self.sparsity = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        optimizer = getattr(self.model.optimizer, "inner_optimizer",
                            self.model.optimizer)
        sparsity = getattr(optimizer, "sparsity", None)
        self.sparsity.append(None if sparsity is None else float(sparsity))
        if self.on_epoch is not None:
            self.on_epoch(epoch, logs or {}, self.seconds[-1])


def num_classes(data):
    (_, y_train), (_, y_test) = data
    return int(max(y_train.max(), y_test.max())) + 1


def train_and_evaluate(model_fn, data, optimizer, epochs, batch_size,
                       seed=0, callbacks=(), on_epoch=None, validation=None,
                       loss=None, metric="accuracy"):
    """Seeds, builds ``model_fn(input_shape, num_classes)`` (logits),
    compiles it with `optimizer` and `loss` (by default sparse
    cross-entropy on logits) and `metric`, fits it with `validation` (an
    ``(x, y)`` pair; by default the test split) as validation data, and
    evaluates the final weights on the training and test splits.

    The metric's values are reported as the outcome's `*_accuracy` and
    the history's ``"accuracy"`` and ``"val_accuracy"`` (for a regression,
    pass ``metric=keras.metrics.R2Score(name="accuracy")``).
    `on_epoch(epoch, logs, seconds)` is called after each epoch.
    """
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    model = model_fn(x_train.shape[1:], num_classes(data))
    model.compile(
        optimizer=optimizer,
        loss=loss or keras.losses.SparseCategoricalCrossentropy(
            from_logits=True),
        metrics=[metric],
    )
    recorder = _EpochRecorder(on_epoch)
    history = model.fit(
        x_train, y_train, batch_size=batch_size, epochs=epochs,
        validation_data=validation or (x_test, y_test),
        callbacks=[*callbacks, recorder], verbose=0,
    )
    train_loss, train_accuracy = model.evaluate(
        x_train, y_train, batch_size=1024, verbose=0)
    test_loss, test_accuracy = model.evaluate(
        x_test, y_test, batch_size=1024, verbose=0)
    return Outcome(
        model=model,
        history={k: [float(v) for v in vs]
                 for k, vs in history.history.items()},
        seconds=recorder.seconds,
        sparsity=recorder.sparsity,
        train_loss=float(train_loss),
        train_accuracy=float(train_accuracy),
        test_loss=float(test_loss),
        test_accuracy=float(test_accuracy),
    )
