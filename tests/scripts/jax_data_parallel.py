"""Run in a fresh process: the JAX backend on two host CPU devices.

For each optimizer, trains with `model.fit` on one device and under
`keras.distribution.DataParallel` over both devices (each takes half of
every global batch), and prints one JSON line with the per-batch loss
curves, the largest weight difference, and on how many devices the
optimizer's variables live.
"""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=2"
)

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from same_batches import FACTORIES  # noqa: E402
from same_batches import compiled_model  # noqa: E402
from same_batches import fit  # noqa: E402


def train(name):
    model = compiled_model(FACTORIES[name])
    return model, fit(model)


def main():
    devices = jax.devices("cpu")
    assert len(devices) == 2, devices
    names = sys.argv[1:] or list(FACTORIES)
    for name in names:
        single, single_losses = train(name)
        with keras.distribution.DataParallel(devices=devices).scope():
            model, losses = train(name)
        optimizer = model.optimizer
        print(json.dumps({
            "optimizer": name,
            "devices": len(devices),
            "state_devices": min(len(v.value.sharding.device_set)
                                 for v in optimizer.variables),
            "losses_single": single_losses,
            "losses_parallel": losses,
            "max_weight_difference": max(
                float(np.max(np.abs(a - b)))
                for a, b in zip(single.get_weights(), model.get_weights())),
            "sparsity": optimizer.sparsity,
        }), flush=True)


if __name__ == "__main__":
    main()
