"""Run in a fresh process: two logical CPUs, MirroredStrategy.

For each optimizer, prints one JSON line comparing `model.fit` under
MirroredStrategy with single-device `fit` on the same global batches:

- the per-batch loss curves and the final weights of both runs, the largest
  difference between the two replicas' copies of every variable, and how
  many compiled update functions ran (one per variable and device);
- for SignAdamPP (float or int8 state) and NovoGrad (the gradient does
  not depend on the
  optimizer beyond the weights it reached), the gradient each setting
  hands the optimizer, recorded at the trained weights: under the
  strategy it is the sum of the two replicas' partial gradients, so it
  differs from the single-device one only by the order of a
  floating-point sum. Only components within that difference of zero
  (or of the confidence threshold) can change sign (or confidence); they
  are counted;
- a checkpoint taken under the strategy after the first epoch, restored
  into a fresh model under a fresh strategy (`model.save` / `load_model`,
  and `tf.train.Checkpoint`), and trained on: the largest difference from
  the uninterrupted run, over weights and every optimizer variable.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402
from same_batches import BATCH  # noqa: E402
from same_batches import EPOCHS  # noqa: E402
from same_batches import FACTORIES  # noqa: E402
from same_batches import compiled_model  # noqa: E402
from same_batches import fit  # noqa: E402

from keras_signadam.optimizers.base import Optimizer  # noqa: E402

DEVICES = ["/cpu:0", "/cpu:1"]
GRADIENT_REPORTS = ("SignAdamPP", "SignAdamPP int8 state", "NovoGrad")


class GradientRecorder(Optimizer):
    """Stores the gradient it is given instead of stepping."""

    def build(self, var_list):
        super().build(var_list)
        self.seen = self.add_state_variables(var_list, "seen",
                                             dtype="float32")

    def update_step(self, gradient, variable, learning_rate):
        self.assign(self.seen[self.variable_index(variable)],
                    ops.cast(gradient, "float32"))


def build(strategy, make_optimizer):
    with strategy.scope():
        return compiled_model(make_optimizer)


def values(variables):
    return [np.array(ops.convert_to_numpy(v)) for v in variables]


def largest_difference(a, b):
    return max(float(np.max(np.abs(p - q), initial=0.0))
               for p, q in zip(a, b))


def replica_spread(variables):
    spread = 0.0
    for v in variables:
        components = getattr(getattr(v, "value", v), "values", None)
        for other in (components or ())[1:]:
            spread = max(spread, float(np.max(np.abs(
                components[0].numpy() - other.numpy()), initial=0.0)))
    return spread


def recorded_gradient(strategy, weights):
    model = build(strategy, lambda: GradientRecorder(learning_rate=0.0))
    recorder = model.optimizer
    model.set_weights(weights)
    fit(model, epochs=1, examples=BATCH)
    return np.concatenate([g.ravel() for g in values(recorder.seen)])


def gradient_report(strategy, weights, threshold):
    single = recorded_gradient(tf.distribute.get_strategy(), weights)
    mirrored = recorded_gradient(strategy, weights)
    difference = np.abs(single - mirrored)
    band = float(difference.max())
    report = {
        "max_gradient_difference": band,
        "gradient_scale": float(np.abs(single).max()),
        "sign_disagreements": int(np.sum(np.sign(single)
                                         != np.sign(mirrored))),
        # Exact zeros (e.g. behind inactive ReLUs) are zero in both sums.
        "nonzero_components_within_difference_of_zero": int(
            np.sum((np.abs(single) <= band) & (single != 0))),
        "sign_disagreements_outside_band": int(np.sum(
            (np.sign(single) != np.sign(mirrored))
            & (np.abs(single) > difference))),
    }
    if threshold is not None:
        report["confidence_disagreements"] = int(np.sum(
            (np.abs(single) > threshold) != (np.abs(mirrored) > threshold)))
    return report


def resumed(name, strategy, uninterrupted, how):
    """Trains one epoch, checkpoints, restores into fresh objects under a
    fresh strategy, trains the rest; returns the largest difference."""
    first = build(strategy, FACTORIES[name])
    fit(first, 1)
    with tempfile.TemporaryDirectory() as folder:
        fresh_strategy = tf.distribute.MirroredStrategy(DEVICES)
        if how == "keras":
            path = os.path.join(folder, "model.keras")
            first.save(path)
            with fresh_strategy.scope():
                model = keras.models.load_model(path)
        else:
            path = tf.train.Checkpoint(
                model=first, optimizer=first.optimizer
            ).save(os.path.join(folder, "ckpt"))
            model = build(fresh_strategy, FACTORIES[name])
            with fresh_strategy.scope():
                model.optimizer.build(model.trainable_variables)
            tf.train.Checkpoint(
                model=model, optimizer=model.optimizer
            ).restore(path).assert_consumed()
        fit(model, EPOCHS, initial_epoch=1)
    return largest_difference(
        values(model.weights + model.optimizer.variables), uninterrupted)


RESUME = {"NovoGrad": "tf_checkpoint"}


def main():
    names = sys.argv[1:] or list(FACTORIES)
    mirrored = tf.distribute.MirroredStrategy(DEVICES)
    for name in names:
        single = build(tf.distribute.get_strategy(), FACTORIES[name])
        single_losses = fit(single, EPOCHS)
        model = build(mirrored, FACTORIES[name])
        mirrored_losses = fit(model, EPOCHS)
        optimizer = model.optimizer
        a, b = single.get_weights(), model.get_weights()
        threshold = getattr(optimizer, "threshold", None)
        row = {
            "optimizer": name,
            "replicas": mirrored.num_replicas_in_sync,
            "steps": int(ops.convert_to_numpy(optimizer.iterations)),
            "learning_rate": float(ops.convert_to_numpy(
                optimizer.learning_rate)),
            "losses_single": single_losses,
            "losses_mirrored": mirrored_losses,
            "max_weight_difference": largest_difference(a, b),
            "components_differing_over_1e-6": int(sum(
                np.sum(np.abs(p - q) > 1e-6) for p, q in zip(a, b))),
            "parameters": int(sum(p.size for p in a)),
            "replica_spread": replica_spread(model.trainable_variables
                                             + optimizer.variables),
            "compiled_functions": len(optimizer._compiled.functions),
        }
        if name.startswith("SignAdamPP"):
            row["sparsity_single"] = single.optimizer.sparsity
            row["sparsity_mirrored"] = optimizer.sparsity
        if name in GRADIENT_REPORTS:
            row.update(gradient_report(
                mirrored, a,
                None if threshold is None
                else float(ops.convert_to_numpy(threshold))))
        uninterrupted = values(model.weights + optimizer.variables)
        # Each way of resuming once: both restore the same variables.
        how = RESUME.get(name, "keras")
        row["resumed_through"] = how
        row["resume_difference"] = resumed(name, mirrored, uninterrupted,
                                           how)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
