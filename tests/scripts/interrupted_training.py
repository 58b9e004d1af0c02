"""Child process for the interruption tests.

    interrupted_training.py WORKDIR RUN [RUN ...] [--pause-at EPOCH:BATCH]

Each RUN is MODE=OPTIMIZERS, run in turn. MODE `fit` trains with
`model.fit` and `keras.callbacks.BackupAndRestore` (a backup every epoch),
one optimizer; MODE `loop` trains custom loops with a
`tf.train.CheckpointManager` each (a checkpoint every 5 steps), for the
comma-separated OPTIMIZERS in lockstep: one model per optimizer, step by
step, so one kill interrupts all of them mid-epoch. Either way a run
resumes from its backups in WORKDIR/MODE if there are any. With
--pause-at (one RUN) the process prints PAUSED and sleeps at that point
(epoch and batch, 0-based; for `loop`, the global step), so the parent can
kill it mid-epoch at a moment far from any save. At the end of each run
the weights and every optimizer variable are written to
WORKDIR/MODE/final.npz, keyed by optimizer.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_signadam as ks  # noqa: E402
from keras_signadam.comparison import datasets  # noqa: E402
from keras_signadam.comparison import models  # noqa: E402

EPOCHS = 4
BATCH = 64
OPTIMIZERS = {
    "SignSGD": lambda: ks.SignSGD(2e-3, threshold=1e-4),
    "Signum": lambda: ks.Signum(2e-3),
    "SignAdam": lambda: ks.SignAdam(2e-3, weight_decay=1e-3),
    "SignAdamPP": lambda: ks.SignAdamPP(2e-3),
    "NovoGrad": lambda: ks.NovoGrad(1e-2),
}


def pause():
    print("PAUSED", flush=True)
    time.sleep(600)


def build(name):
    keras.utils.set_random_seed(0)
    model = models.mlp((8, 8, 1), 10, width=32)
    model.compile(
        optimizer=OPTIMIZERS[name](),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.build((None, 8, 8, 1))
    return model


class PauseAt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.target = (epoch, batch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.target:
            pause()


def run_fit(models_by_name, x, y, workdir, pause_at):
    (name, model), = models_by_name.items()
    callbacks = [keras.callbacks.BackupAndRestore(
        os.path.join(workdir, name, "backup"), double_checkpoint=True,
        delete_checkpoint=False)]
    if pause_at:
        callbacks.append(PauseAt(*pause_at))
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False,
              verbose=0, callbacks=callbacks)


class Loop:
    """One model's custom loop with its own checkpoints."""

    def __init__(self, model, folder):
        self.model, self.optimizer = model, model.optimizer
        self.optimizer.build(model.trainable_variables)
        self.checkpoint = tf.train.Checkpoint(model=model,
                                              optimizer=self.optimizer)
        self.manager = tf.train.CheckpointManager(self.checkpoint, folder,
                                                  max_to_keep=2)
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(
                self.manager.latest_checkpoint).assert_consumed()
        loss_fn = model.loss

        @tf.function
        def train_step(xb, yb):
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            self.optimizer.apply(grads, model.trainable_variables)

        self.train_step = train_step

    def step(self):
        return int(self.optimizer.iterations.numpy())


def run_loop(models_by_name, x, y, workdir, pause_at):
    loops = [Loop(model, os.path.join(workdir, name, "ckpt"))
             for name, model in models_by_name.items()]
    steps_per_epoch = -(-len(x) // BATCH)
    total = EPOCHS * steps_per_epoch
    # The data order is a function of the step, so a restored run sees
    # exactly the batches the uninterrupted one would; every loop was
    # saved at the same steps.
    while (step := min(loop.step() for loop in loops)) < total:
        start = (step % steps_per_epoch) * BATCH
        for loop in loops:
            if loop.step() == step:
                loop.train_step(x[start:start + BATCH],
                                y[start:start + BATCH])
                if (step + 1) % 5 == 0:
                    loop.manager.save(checkpoint_number=step + 1)
        if pause_at and step == pause_at[1]:
            pause()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir")
    parser.add_argument("runs", nargs="+", metavar="MODE=OPTIMIZERS")
    parser.add_argument("--pause-at", default=None)
    args = parser.parse_args()
    pause_at = (tuple(int(v) for v in args.pause_at.split(":"))
                if args.pause_at else None)
    if pause_at and len(args.runs) != 1:
        parser.error("--pause-at: one run only")
    (x, y), _ = datasets.load_digits()
    x, y = x[:640], y[:640]
    for run in args.runs:
        mode, _, optimizers = run.partition("=")
        names = optimizers.split(",")
        unknown = set(names) - set(OPTIMIZERS)
        if (mode not in ("fit", "loop") or unknown
                or (mode == "fit" and len(names) != 1)):
            parser.error(f"runs: {run!r}")
        workdir = os.path.join(args.workdir, mode)
        os.makedirs(workdir, exist_ok=True)
        models_by_name = {name: build(name) for name in names}
        train = run_fit if mode == "fit" else run_loop
        train(models_by_name, x, y, workdir, pause_at)
        arrays = {}
        for name, model in models_by_name.items():
            arrays.update({f"{name}/weight_{i}": w
                           for i, w in enumerate(model.get_weights())})
            arrays.update({f"{name}/optimizer_{i}": v.numpy()
                           for i, v in enumerate(model.optimizer.variables)})
        np.savez(os.path.join(workdir, "final.npz"), **arrays)
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
