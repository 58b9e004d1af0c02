"""One training run of the quality benchmark, and a pool that runs many.

A run is described by a plain dict (task, optimizer, learning rate,
schedule, seed, study, epochs, data fraction) and returns the same dict
with its measurements added, so runs can be stored one per line and
summarised later. Runs execute in worker processes (under TensorFlow, one
thread each); a worker is replaced after a few dozen runs because
TensorFlow keeps some memory for every model a process builds.
"""

import multiprocessing
import os

RUNS_PER_WORKER = 40

# The threshold study's configurations: a fixed threshold and
# `AdaptiveConfidence()` with an absolute threshold (SignAdamPP's default)
# and a relative one (the recipe), and Adam with ReduceLROnPlateau.
STUDIES = ("fixed", "adaptive", "fixed relative", "adaptive relative",
           "plateau")

_DATA = {}


def _init_worker():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Workers share one GPU: JAX must not reserve most of its memory.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def _data(task, fraction):
    key = (task.name, fraction)
    if key not in _DATA:
        _DATA[key] = task.load(fraction)
    return _DATA[key]


def _callbacks(spec):
    import keras

    import keras_signadam as ks
    from benchmarks.quality import optimizers

    own = optimizers.CALLBACKS.get(spec["optimizer"], list)()
    study = spec.get("study")
    if study in ("adaptive", "adaptive relative"):
        return own + [ks.callbacks.AdaptiveConfidence()]
    if study == "plateau":
        return own + [keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=2)]
    return own


def _optimizer(spec, total_steps):
    from benchmarks.quality import optimizers

    optimizer = optimizers.make(spec["optimizer"], spec["learning_rate"],
                                spec["schedule"], total_steps)
    if spec.get("study") and hasattr(optimizer, "track_statistics"):
        optimizer.track_statistics = True
    return optimizer


def _test_accuracy_recorder(x, y):
    """A callback that evaluates the test split after every epoch (the
    threshold study's figure plots it)."""
    import keras

    class TestAccuracy(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.values = []

        def on_epoch_end(self, epoch, logs=None):
            _, accuracy = self.model.evaluate(x, y, batch_size=1024,
                                              verbose=0)
            self.values.append(float(accuracy))

    return TestAccuracy()


def task_named(name):
    """A task of the quality benchmark or of the paper's reproduction."""
    from benchmarks.paper.tasks import TASKS as PAPER_TASKS
    from benchmarks.quality.tasks import ALL_TASKS

    return {**ALL_TASKS, **PAPER_TASKS}[name]


def run(spec):
    from keras_signadam.comparison.training import train_and_evaluate

    task = task_named(spec["task"])
    train, val, test = _data(task, spec["fraction"])
    steps = -(-len(train[0]) // task.batch_size) * spec["epochs"]
    callbacks = _callbacks(spec)
    test_curve = spec.get("study") or spec.get("test_curve")
    if test_curve:
        tested = _test_accuracy_recorder(*test)
        callbacks.append(tested)
    outcome = train_and_evaluate(
        task.build_model, (train, test), _optimizer(spec, steps),
        spec["epochs"], task.batch_size, seed=spec["seed"],
        callbacks=callbacks, validation=val,
        loss=task.loss() if task.loss else None,
        metric=task.metric() if task.metric else "accuracy",
    )
    history = outcome.history

    def rounded(values):
        return [None if v is None else round(float(v), 5) for v in values]

    record = dict(spec)
    record.update(
        train_accuracy=round(outcome.train_accuracy, 5),
        test_accuracy=round(outcome.test_accuracy, 5),
        val_accuracy=rounded(history["val_accuracy"]),
        accuracy=rounded(history["accuracy"]),
        seconds_per_epoch=round(outcome.seconds_per_epoch, 4),
    )
    if test_curve:
        record["test_accuracy_per_epoch"] = rounded(tested.values)
    if spec.get("study"):
        record["sparsity"] = rounded(outcome.sparsity)
        threshold = getattr(outcome.model.optimizer, "threshold", None)
        if "threshold" in history:
            record["threshold"] = rounded(history["threshold"])
        elif threshold is not None:
            record["threshold"] = rounded([float(threshold)] * spec["epochs"])
        controller = [c for c in callbacks
                      if hasattr(c, "history") and "target" in getattr(
                          c, "history", {})]
        if controller:
            record.update(_controller_end(controller[0].history,
                                          spec["epochs"]))
    return record


def _controller_end(history, epochs):
    """The sparsity `AdaptiveConfidence` observed at the end of training
    (the mean over the second half of the last epoch's observations: one
    step's count is noisy) and the target it aimed at then."""
    last = [i for i, e in enumerate(history["epoch"]) if e == epochs - 1]
    if not last:
        return {}
    second_half = last[len(last) // 2:]
    return dict(
        end_sparsity=round(float(sum(history["sparsity"][i]
                                     for i in second_half)
                                 / len(second_half)), 5),
        end_target=round(float(history["target"][last[-1]]), 5))


class Workers:
    """The worker processes, started at the first run and kept for every
    phase of a benchmark (each started process imports TensorFlow again:
    seconds of CPU)."""

    def __init__(self, workers):
        self.workers = workers
        self.pool = None

    def run_all(self, specs, on_record):
        """Runs every spec, calling `on_record(record)` as each finishes
        (in completion order)."""
        if self.pool is None:
            context = multiprocessing.get_context("spawn")
            self.pool = context.Pool(self.workers, initializer=_init_worker,
                                     maxtasksperchild=RUNS_PER_WORKER)
        for record in self.pool.imap_unordered(run, specs):
            on_record(record)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
