"""Run in a fresh process: two logical CPUs, a MirroredStrategy over both
and one over the first, `model.fit` with `LocalSteps` (rounds of 4
steps).

For each outer rule of argv[1] (comma-separated), each strategy and each
epoch length (6 steps: an epoch ends mid-round; 8, for the first rule
only: at a round's end), prints one JSON line:

- `spread_mid`, `spread_end`: the largest difference between the two
  replicas' copies of the weights after the first epoch and after the
  last (2 epochs);
- `resumed`: the largest difference, over weights and every optimizer
  variable, between the uninterrupted run and a run stopped after its
  first epoch and resumed in a new model by `BackupAndRestore`, and the
  resumed run's iteration count and replica spread; `restored`: the
  largest difference between what the stopped run held (as saving reads
  it) and what the new model held once restored;
- `reloaded`: after `model.save` and `keras.models.load_model` under the
  strategy, the largest difference over weights and optimizer variables,
  and whether the optimizer's config came back equal.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_signadam as ks  # noqa: E402

STRATEGIES = {2: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
              1: tf.distribute.MirroredStrategy(["/cpu:0"])}
STRATEGY = STRATEGIES[2]
BATCH, ROUND, EPOCHS = 16, 4, 2


def compiled(outer):
    keras.utils.set_random_seed(0)
    with STRATEGY.scope():
        model = keras.Sequential([keras.Input((8,)),
                                  keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(3)])
        model.compile(
            optimizer=ks.LocalSteps(ks.SignAdamPP(0.01), steps=ROUND,
                                    outer=outer),
            loss=keras.losses.SparseCategoricalCrossentropy(
                from_logits=True))
    return model


def spread(model):
    return max(float(np.max(np.abs(
        copies[0].numpy() - copies[-1].numpy())))
        for copies in (STRATEGY.experimental_local_results(v.value)
                       for v in model.trainable_variables))


def values(model):
    return [v.numpy() for v in model.weights] + [
        np.asarray(v.numpy()) for v in model.optimizer.variables]


def difference(a, b):
    return max(float(np.max(np.abs(np.asarray(x, np.float64)
                                   - np.asarray(y, np.float64))))
               if np.size(x) else 0.0 for x, y in zip(a, b))


class Spread(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.after_epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.after_epoch.append(spread(self.model))


class Capture(keras.callbacks.Callback):
    """What the model holds as training begins (after a restore by a
    callback listed before this one)."""

    def on_train_begin(self, logs=None):
        self.values = values(self.model)


class Stop(keras.callbacks.Callback):
    """Fails the run as the second epoch begins (after the backup)."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("stopped")


def run(outer, steps_per_epoch):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(BATCH * steps_per_epoch, 8)).astype("float32")
    y = rng.integers(0, 3, size=len(x))
    model = compiled(outer)
    record = Spread()
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False,
              verbose=0, callbacks=[record])
    straight = values(model)
    with tempfile.TemporaryDirectory() as folder:
        backup = os.path.join(folder, "backup")
        first = compiled(outer)
        try:
            first.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False,
                      verbose=0,
                      callbacks=[keras.callbacks.BackupAndRestore(backup),
                                 Stop()])
        except RuntimeError:
            pass
        stopped = values(first)
        resumed = compiled(outer)
        capture = Capture()
        resumed.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False,
                    verbose=0,
                    callbacks=[keras.callbacks.BackupAndRestore(backup),
                               capture])
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with STRATEGY.scope():
            loaded = keras.models.load_model(path)
    return dict(
        outer=outer, steps_per_epoch=steps_per_epoch,
        spread_mid=record.after_epoch[0], spread_end=record.after_epoch[-1],
        iterations=int(model.optimizer.iterations.numpy()),
        replicas=STRATEGY.num_replicas_in_sync,
        restored=difference(stopped, capture.values),
        resumed=dict(difference=difference(straight, values(resumed)),
                     iterations=int(resumed.optimizer.iterations.numpy()),
                     spread=spread(resumed)),
        reloaded=dict(difference=difference(straight, values(loaded)),
                      same_config=(loaded.optimizer.get_config()
                                   == model.optimizer.get_config()),
                      type=type(loaded.optimizer).__name__,
                      inner=type(loaded.optimizer.optimizer).__name__))


if __name__ == "__main__":
    # What an epoch ending at a round's end adds (a backup taken between
    # rounds) does not depend on the outer rule; that every rule leaves
    # the replicas equal at a round's end, the 6-step runs check at their
    # last step (12, three rounds). Each run is four fits and a load.
    for index, outer in enumerate(sys.argv[1].split(",")):
        for count in STRATEGIES:
            STRATEGY = STRATEGIES[count]
            for steps_per_epoch in (6, 8) if index == 0 else (6,):
                print(json.dumps(run(outer, steps_per_epoch)), flush=True)
