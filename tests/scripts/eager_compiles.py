"""On the JAX backend, run eagerly (no `jax.jit`): prints as JSON, per
optimizer, how many XLA compilations its steps after the first three
caused. JAX compiles each operation once per shape and dtype; anything
compiled again at every step (a conditional whose branches are new
closures each time) shows here.

    KERAS_BACKEND=jax python tests/scripts/eager_compiles.py
"""

import json

import jax.monitoring
import keras
import numpy as np

import keras_signadam as ks

OPTIMIZERS = {
    "NovoGrad": lambda: ks.NovoGrad(1e-2),
    "SignAdamPP statistics": lambda: ks.SignAdamPP(
        1e-2, track_statistics=True),
}
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def compiles_after_warm_up(make):
    compiles = []

    def listener(event, duration, **kwargs):
        if event == COMPILE_EVENT:
            compiles.append(duration)

    rng = np.random.default_rng(0)
    shapes = [(64, 32), (32,), ()]
    variables = [keras.Variable(rng.normal(size=s).astype("float32"))
                 for s in shapes]
    optimizer = make()
    # Sums of squares in range, underflowing and overflowing: both
    # branches of NovoGrad's norm, in the warm-up and again counted.
    scales = [1e-2, 1e-30, 1e30] * 2
    steps = [[(rng.normal(size=s) * scale).astype("float32")
              for s in shapes] for scale in scales]
    for gradients in steps[:3]:
        optimizer.apply(gradients, variables)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        for gradients in steps[3:]:
            optimizer.apply(gradients, variables)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return len(compiles)


if __name__ == "__main__":
    assert keras.backend.backend() == "jax", keras.backend.backend()
    print(json.dumps({name: compiles_after_warm_up(make)
                      for name, make in OPTIMIZERS.items()}))
