"""Majority-vote aggregation under MirroredStrategy on logical CPUs.

    majority_vote.py steps REPLICAS INPUT.npz OUTPUT.npz [FIT.json]
    majority_vote.py fit REPLICAS OUTPUT.json

(`steps` with FIT.json also does what `fit` does, in the same process.)

One replica count per process: TensorFlow keys collective groups per
process, and a group of one size cannot be joined later at another.

`steps`: INPUT holds, per case (those at REPLICAS run), the optimizer, the
number of replicas, the collective (or "sum"), the variables' dtype, the
initial values of two variables and the gradients of every replica at
every step; each case runs in a custom `strategy.run` loop
(`optimizer.apply` in the replica context) with the collective forced
to all-gather or all-reduce, and OUTPUT gets every replica's copy of the
variables and optimizer variables after each step, and the tensors each
collective call received and returned.

`fit`: trains the digits MLP with `model.fit` at REPLICAS replicas with each
sign optimizer voting, and reports how far the replicas' copies differ.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 4)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_signadam as ks  # noqa: E402
from keras_signadam.backend.tensorflow import majority_vote  # noqa: E402

FACTORIES = {
    "SignSGD": lambda: ks.SignSGD(1e-2, threshold=5e-4,
                                  coupled_weight_decay=0.1,
                                  aggregation="majority_vote"),
    "Signum": lambda: ks.Signum(1e-2, weight_decay=0.01,
                                aggregation="majority_vote"),
    "SignAdam": lambda: ks.SignAdam(1e-2, aggregation="majority_vote"),
    "SignAdamPP": lambda: ks.SignAdamPP(1e-2, threshold=5e-4,
                                        aggregation="majority_vote"),
    "SignAdamPP relative": lambda: ks.SignAdamPP(
        1e-2, threshold=0.5, threshold_mode="relative",
        aggregation="majority_vote", track_statistics=True),
    "SignAdamPP adaptive": lambda: ks.SignAdamPP(
        1e-2, threshold_mode="adaptive", aggregation="majority_vote"),
    "SignAdamPP second moment": lambda: ks.SignAdamPP(
        1e-2, threshold=5e-4, second_moment=True,
        aggregation="majority_vote"),
    "Signum coupled": lambda: ks.Signum(1e-2, coupled_weight_decay=0.1,
                                        aggregation="majority_vote"),
    # Each replica with its own residual.
    "SignAdamPP EF": lambda: ks.SignAdamPP(1e-2, threshold=5e-4,
                                           aggregation="majority_vote",
                                           error_feedback=True),
    "Signum EF": lambda: ks.Signum(1e-2, aggregation="majority_vote",
                                   error_feedback=True),
    # The vote on the matrix only; the vector's float32 sum to Adam.
    "Hybrid": lambda: ks.Hybrid(
        ks.SignAdamPP(1e-2, threshold=5e-4, aggregation="majority_vote"),
        keras.optimizers.Adam(1e-2), adaptive="vectors"),
    # The exact float32 sum, for the bytes it moves.
    "SignAdamPP sum": lambda: ks.SignAdamPP(1e-2, threshold=5e-4),
}
# The vote and the update compile with XLA for these; the other cases run
# the same code as plain TensorFlow ops (compiling every case for every
# replica would cost more than all their steps).
COMPILED = ("SignAdamPP", "SignAdamPP EF")


def make(name):
    optimizer = FACTORIES[name]()
    getattr(optimizer, "sign_optimizer", optimizer).jit_compile = (
        name in COMPILED)
    return optimizer


def strategy_for(replicas):
    return tf.distribute.MirroredStrategy(
        [f"/cpu:{i}" for i in range(replicas)])


_STEP_STRATEGIES = {}


def step_strategy(replicas):
    """One strategy for every case and fit of a replica count: a new
    strategy numbers its collectives from the start again, and TensorFlow
    refuses a number an earlier case used for a float all-reduce of
    another shape (the hybrid's, the exact sum's)."""
    if replicas not in _STEP_STRATEGIES:
        _STEP_STRATEGIES[replicas] = strategy_for(replicas)
    return _STEP_STRATEGIES[replicas]


class CollectiveLog:
    """Records the tensors the replica-context collectives receive and
    return (patched in, so the bytes are read off the tensors moved)."""

    def __init__(self):
        self.calls = []
        context = tf.distribute.ReplicaContext
        self.originals = (context.all_reduce, context.all_gather)
        log = self

        def all_reduce(self, reduce_op, value, options=None):
            result = log.originals[0](self, reduce_op, value, options)
            log.record("all_reduce", value, result)
            return result

        def all_gather(self, value, axis, options=None):
            result = log.originals[1](self, value, axis, options)
            log.record("all_gather", value, result)
            return result

        context.all_reduce, context.all_gather = all_reduce, all_gather

    def record(self, name, sent, received):
        def size(values):
            return sum(v.shape.num_elements() * v.dtype.size
                       for v in tf.nest.flatten(values))

        self.calls.append({
            "collective": name,
            "dtypes": sorted({v.dtype.name for v in tf.nest.flatten(sent)}),
            "sent": size(sent), "received": size(received)})


def run_steps(case, arrays, log):
    replicas = int(arrays[f"{case}/replicas"])
    name = str(arrays[f"{case}/optimizer"])
    collective = str(arrays[f"{case}/collective"])
    dtype = str(arrays[f"{case}/dtype"])
    steps = int(arrays[f"{case}/steps"])
    majority_vote.collective_for = lambda r, components=0: collective
    strategy = step_strategy(replicas)
    with strategy.scope():
        variables = [keras.Variable(arrays[f"{case}/theta{i}"], dtype=dtype)
                     for i in range(2)]
        optimizer = make(name)
        optimizer.build(variables)

    @tf.function
    def train_step(grads):
        strategy.run(lambda g: optimizer.apply(g, variables), args=(grads,))

    out = {}
    for step in range(steps):
        def local(context, step=step):
            r = context.replica_id_in_sync_group
            return [tf.cast(arrays[f"{case}/grad{i}"][step, r], dtype)
                    for i in range(2)]

        start = len(log.calls)
        train_step(strategy.experimental_distribute_values_from_function(
            local))
        if step == 0:
            out[f"{case}/calls"] = json.dumps(log.calls[start:])
        for i, v in enumerate(variables):
            out[f"{case}/theta{i}/step{step}"] = np.stack(
                [tf.cast(c, "float32").numpy() for c in v.value.values])
    for i, v in enumerate(optimizer.variables):
        copies = getattr(v.value, "values", (v.value,))
        out[f"{case}/optimizer{i}"] = np.stack(
            [tf.cast(c, "float64").numpy() for c in copies])
    out[f"{case}/optimizer_paths"] = np.array(
        [v.path for v in optimizer.variables])
    if getattr(optimizer, "sign_optimizer", optimizer).track_statistics:
        out[f"{case}/sparsity"] = np.array(optimizer.sparsity)
    return out


# Resumed exactly, and resumed with per-replica residuals as their mean
# (the other optimizers' votes and updates are checked step by step).
FIT_OPTIMIZERS = ("SignAdamPP", "SignAdamPP EF", "Hybrid")


def residuals(optimizer):
    """Every replica's copy of each error-feedback residual."""
    return [np.stack([keras.ops.convert_to_numpy(c) for c in
                      getattr(v.value, "values", (v.value,))])
            for v in optimizer.variables if v.path.endswith("_residual")]


def fit_rows(replicas):
    import tempfile

    from keras_signadam.comparison import datasets
    from keras_signadam.comparison import models

    (x, y), _ = datasets.load_digits()

    def fit(model, epochs, initial_epoch=0):
        return model.fit(x[:512], y[:512], batch_size=64, epochs=epochs,
                         initial_epoch=initial_epoch, shuffle=False,
                         verbose=0).history["loss"]

    def copies(v):
        return [keras.ops.convert_to_numpy(c).astype(np.float64)
                for c in getattr(v.value, "values", (v.value,))]

    rows = []
    strategy = step_strategy(replicas)
    for name in FIT_OPTIMIZERS:
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = models.mlp((8, 8, 1), 10, width=32)
            model.compile(
                optimizer=make(name),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
        first = fit(model, 1)
        saved_residuals = residuals(model.optimizer)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.keras")
            model.save(path)
            losses = first + fit(model, 2, initial_epoch=1)
            # Resumed from the file: the same run (per-replica residuals
            # come back as their mean).
            with strategy.scope():
                resumed = keras.models.load_model(path)
            loaded_residuals = residuals(resumed.optimizer)
            fit(resumed, 2, initial_epoch=1)
        shared = [v for v in model.weights + model.optimizer.variables
                  if not v.path.endswith("_residual")]
        spread = max(float(np.max(np.abs(c - copies(v)[0])))
                     for v in shared for c in copies(v))
        resumed_shared = [v for v in resumed.weights
                          + resumed.optimizer.variables
                          if not v.path.endswith("_residual")]
        resume_difference = max(
            float(np.max(np.abs(a - b)))
            for v, w in zip(shared, resumed_shared)
            for a, b in zip(copies(v), copies(w)))
        residual_rows = [{
            "replicas_differ": bool(np.any(saved[0] != saved[-1])),
            "loaded_minus_mean": float(np.max(np.abs(
                loaded - saved.mean(axis=0, dtype=np.float64)))),
            "loaded_copies": int(loaded.shape[0]),
            "scale": float(np.max(np.abs(saved))),
        } for saved, loaded in zip(saved_residuals, loaded_residuals)]
        rows.append({"optimizer": name, "replicas": replicas,
                     "copies": len(copies(model.weights[0])),
                     "aggregation": getattr(
                         resumed.optimizer, "sign_optimizer",
                         resumed.optimizer).aggregation,
                     "spread": spread, "resume_difference": resume_difference,
                     "residuals": residual_rows, "loss": losses})
    return rows


def main():
    mode, replicas = sys.argv[1], int(sys.argv[2])
    if mode == "steps":
        arrays = dict(np.load(sys.argv[3]))
        cases = sorted(k.split("/")[0] for k in arrays
                       if k.endswith("/replicas")
                       and int(arrays[k]) == replicas)
        log = CollectiveLog()
        out = {}
        for case in cases:
            out.update(run_steps(case, arrays, log))
        np.savez(sys.argv[4], **out)
        if len(sys.argv) > 5:
            with open(sys.argv[5], "w") as f:
                json.dump(fit_rows(replicas), f)
    elif mode == "fit":
        with open(sys.argv[3], "w") as f:
            json.dump(fit_rows(replicas), f)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
