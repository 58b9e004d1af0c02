"""Run in a fresh process: two logical CPUs, MirroredStrategy.

For each optimizer, trains with the optimizer's own XLA update under
MirroredStrategy and on a single device with the same global batch, and
prints one JSON line per optimizer with the largest weight difference, the
largest difference between the two replicas' copies of every variable, and
how many compiled update functions ran.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_signadam as ks  # noqa: E402

FACTORIES = {
    "SignSGD": lambda: ks.SignSGD(1e-3, threshold=1e-4),
    "Signum": lambda: ks.Signum(1e-3),
    "SignAdam": lambda: ks.SignAdam(1e-3),
    "SignAdamPP": lambda: ks.SignAdamPP(1e-3),
    "NovoGrad": lambda: ks.NovoGrad(1e-2),
}


def train(name, strategy):
    (x, y), _ = ks.datasets.load_digits()
    x, y = x[:256], y[:256]
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((8, 8, 1)), keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10),
        ])
        optimizer = FACTORIES[name]()
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    model.fit(x, y, batch_size=64, epochs=2, shuffle=False, verbose=0)
    return model, optimizer


def replica_spread(variables):
    spread = 0.0
    for v in variables:
        v = getattr(v, "value", v)
        values = getattr(v, "values", None)
        if values:
            first = values[0].numpy()
            for other in values[1:]:
                spread = max(spread, float(np.max(np.abs(first
                                                          - other.numpy()))))
    return spread


def main():
    names = sys.argv[1:] or list(FACTORIES)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for name in names:
        single, _ = train(name, tf.distribute.get_strategy())
        model, optimizer = train(name, mirrored)
        difference = max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(single.get_weights(), model.get_weights())
        )
        print(json.dumps({
            "optimizer": name,
            "max_weight_difference": difference,
            "replica_spread": replica_spread(model.trainable_variables
                                             + optimizer.variables),
            "compiled_functions": len(optimizer._xla_updates.functions),
            "replicas": mirrored.num_replicas_in_sync,
        }), flush=True)


if __name__ == "__main__":
    main()
