"""Train one model with several optimizers and compare them.

The engine behind ``python -m keras_signadam compare``: same model, same
initial weights, same batches for every optimizer.
"""

import json
import time

import keras
import numpy as np

import keras_signadam as ks
from keras_signadam.models import mlp


def _sgd_momentum(learning_rate):
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)


# name -> (factory taking the learning rate, default learning rate). The
# confidence-filtered optimizers count their statistics for the sparsity
# column.
OPTIMIZERS = {
    "SignAdamPP": (
        lambda lr: ks.SignAdamPP(learning_rate=lr, track_statistics=True),
        1e-3),
    "SignAdam": (lambda lr: ks.SignAdam(learning_rate=lr), 1e-3),
    "Signum": (lambda lr: ks.Signum(learning_rate=lr), 1e-3),
    "SignSGD": (
        lambda lr: ks.SignSGD(learning_rate=lr, track_statistics=True),
        1e-3),
    "NovoGrad": (lambda lr: ks.NovoGrad(learning_rate=lr), 1e-2),
    "Adam": (lambda lr: keras.optimizers.Adam(learning_rate=lr), 1e-3),
    "SGD-momentum": (_sgd_momentum, 1e-2),
    "Lion": (lambda lr: keras.optimizers.Lion(learning_rate=lr), 3e-4),
}


class _EpochRecorder(keras.callbacks.Callback):
    """Epoch wall time, update sparsity and one progress line per epoch."""

    def __init__(self, name, epochs, printer):
        super().__init__()
        self.name, self.epochs, self.printer = name, epochs, printer
        self.seconds, self.sparsity = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        sparsity = getattr(self.model.optimizer, "sparsity", None)
        self.sparsity.append(None if sparsity is None else float(sparsity))
        logs = logs or {}
        self.printer(
            f"  {self.name:<13} epoch {epoch + 1:>3}/{self.epochs}  "
            f"loss {logs.get('loss', float('nan')):.4f}  "
            f"acc {logs.get('accuracy', float('nan')):.4f}  "
            f"test_acc {logs.get('val_accuracy', float('nan')):.4f}  "
            f"{self.seconds[-1]:.2f}s"
        )


def run_comparison(data, optimizers, epochs, batch_size, learning_rates=None,
                   seed=0, printer=print, model_fn=mlp):
    """Trains `model_fn` with each optimizer; returns a results dict."""
    (x_train, y_train), (x_test, y_test) = data
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    learning_rates = learning_rates or {}
    results = {}
    for name in optimizers:
        factory, default_lr = OPTIMIZERS[name]
        lr = learning_rates.get(name, default_lr)
        keras.utils.set_random_seed(seed)
        model = model_fn(x_train.shape[1:], num_classes)
        model.compile(
            optimizer=factory(lr),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        recorder = _EpochRecorder(name, epochs, printer)
        history = model.fit(
            x_train, y_train, batch_size=batch_size, epochs=epochs,
            validation_data=(x_test, y_test), callbacks=[recorder],
            verbose=0,
        )
        h = history.history
        sparsities = [s for s in recorder.sparsity if s is not None]
        results[name] = {
            "learning_rate": lr,
            "history": {k: [float(v) for v in vs] for k, vs in h.items()},
            "train_loss": h["loss"][-1],
            "train_accuracy": h["accuracy"][-1],
            "test_loss": h["val_loss"][-1],
            "test_accuracy": h["val_accuracy"][-1],
            "best_test_accuracy": max(h["val_accuracy"]),
            # The first epoch includes tracing and compilation.
            "seconds_per_epoch": float(np.median(recorder.seconds[1:]
                                                 or recorder.seconds)),
            "sparsity": float(np.mean(sparsities)) if sparsities else None,
        }
    return results


def format_table(results):
    header = (f"{'optimizer':<13} {'lr':>8} {'train loss':>10} "
              f"{'train acc':>9} {'test loss':>9} {'test acc':>8} "
              f"{'best test':>9} {'s/epoch':>7} {'sparsity':>8}")
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        sparsity = "-" if r["sparsity"] is None else f"{r['sparsity']:.3f}"
        lines.append(
            f"{name:<13} {r['learning_rate']:>8.1e} {r['train_loss']:>10.4f} "
            f"{r['train_accuracy']:>9.4f} {r['test_loss']:>9.4f} "
            f"{r['test_accuracy']:>8.4f} {r['best_test_accuracy']:>9.4f} "
            f"{r['seconds_per_epoch']:>7.3f} {sparsity:>8}"
        )
    return "\n".join(lines)


def write_json(results, path, **metadata):
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"metadata": metadata, "results": results}, f, indent=2)


def plot_curves(results, path, title=""):
    """PNG with loss and accuracy per epoch for every optimizer (train
    solid, test dashed). Needs matplotlib (the `plots` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, (name, r) in enumerate(results.items()):
        color = f"C{i % 10}"
        h = r["history"]
        epochs = range(1, len(h["loss"]) + 1)
        loss_axis.plot(epochs, h["loss"], color=color, label=name)
        loss_axis.plot(epochs, h["val_loss"], color=color, linestyle="--")
        acc_axis.plot(epochs, h["accuracy"], color=color, label=name)
        acc_axis.plot(epochs, h["val_accuracy"], color=color, linestyle="--")
    loss_axis.set(xlabel="epoch", ylabel="loss", yscale="log",
                  title="loss (train solid, test dashed)")
    acc_axis.set(xlabel="epoch", ylabel="accuracy",
                 title="accuracy (train solid, test dashed)")
    acc_axis.legend(loc="lower right", fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
