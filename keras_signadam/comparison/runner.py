"""Train one model with several optimizers and compare them.

The engine behind ``python -m keras_signadam compare``: same model, same
initial weights, same batches for every optimizer.
"""

import json
import math
import os
import tempfile

import keras
import numpy as np

import keras_signadam as ks
from keras_signadam.comparison import choices
from keras_signadam.comparison.models import mlp
from keras_signadam.comparison.training import train_and_evaluate

# name -> factory taking the learning rate. The confidence-filtered
# optimizers count their statistics for the sparsity column.
FACTORIES = {
    "SignAdamPP": lambda lr: ks.SignAdamPP(learning_rate=lr,
                                           track_statistics=True),
    "SignAdam": lambda lr: ks.SignAdam(learning_rate=lr),
    "Signum": lambda lr: ks.Signum(learning_rate=lr),
    "SignSGD": lambda lr: ks.SignSGD(learning_rate=lr,
                                     track_statistics=True),
    "NovoGrad": lambda lr: ks.NovoGrad(learning_rate=lr),
    # SignAdamPP on the kernels, Adam on the output layer and the vectors.
    "Hybrid": lambda lr: ks.Hybrid(
        ks.SignAdamPP(learning_rate=lr, track_statistics=True),
        keras.optimizers.Adam(learning_rate=lr)),
    "Adam": lambda lr: keras.optimizers.Adam(learning_rate=lr),
    "SGD-momentum": lambda lr: keras.optimizers.SGD(learning_rate=lr,
                                                    momentum=0.9),
    "Lion": lambda lr: keras.optimizers.Lion(learning_rate=lr),
}
assert set(FACTORIES) == set(choices.DEFAULT_LEARNING_RATES)


def run_comparison(data, optimizers, epochs, batch_size, learning_rates=None,
                   seed=0, printer=print, model_fn=mlp, on_result=None,
                   callbacks=()):
    """Trains `model_fn` with each optimizer; returns a results dict.

    `on_result(results)` is called after each optimizer finishes (to save
    what is done so far); `callbacks` join every `fit`.
    """
    learning_rates = learning_rates or {}
    results = {}
    for name in optimizers:
        lr = learning_rates.get(name, choices.DEFAULT_LEARNING_RATES[name])

        def progress(epoch, logs, seconds, name=name):
            printer(
                f"  {name:<13} epoch {epoch + 1:>3}/{epochs}  "
                f"loss {logs.get('loss', float('nan')):.4f}  "
                f"acc {logs.get('accuracy', float('nan')):.4f}  "
                f"test_acc {logs.get('val_accuracy', float('nan')):.4f}  "
                f"{seconds:.2f}s"
            )

        outcome = train_and_evaluate(
            model_fn, data, FACTORIES[name](lr), epochs, batch_size,
            seed=seed, on_epoch=progress, callbacks=callbacks,
        )
        sparsities = [s for s in outcome.sparsity if s is not None]
        results[name] = {
            "learning_rate": lr,
            "history": outcome.history,
            "train_loss": outcome.train_loss,
            "train_accuracy": outcome.train_accuracy,
            "test_loss": outcome.test_loss,
            "test_accuracy": outcome.test_accuracy,
            "best_test_accuracy": max(outcome.history["val_accuracy"]),
            "seconds_per_epoch": outcome.seconds_per_epoch,
            "sparsity": float(np.mean(sparsities)) if sparsities else None,
        }
        if on_result is not None:
            on_result(results)
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


def _strict(value):
    """JSON has no NaN or infinity (a diverged run's loss): null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def write_json(results, path, **metadata):
    """Writes strict JSON atomically: the file is either the previous one
    or the new one, never a partial write."""
    text = json.dumps(_strict({"metadata": metadata, "results": results}),
                      indent=2, allow_nan=False)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".results-",
                                         suffix=".json")
    try:
        # mkstemp makes the file 0600; a results file gets the mode any
        # new file would (the umask's).
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(handle, 0o666 & ~umask)
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
