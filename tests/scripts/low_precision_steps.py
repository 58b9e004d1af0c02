"""Prints, per state dtype given (bfloat16, int8), a SignAdamPP run with
rounded state on the backend Keras runs: one line `DTYPE` and the last 8
parameters after 20 steps.

    python tests/scripts/low_precision_steps.py DTYPE [DTYPE ...]
"""

import sys

import keras
import numpy as np

import keras_signadam as ks


def run(state_dtype):
    rng = np.random.default_rng(0)
    variable = keras.Variable(rng.normal(size=(64,)).astype("float32"))
    optimizer = ks.SignAdamPP(learning_rate=1e-2, state_dtype=state_dtype)
    for _ in range(20):
        optimizer.apply([rng.normal(0, 1e-2, size=(64,)).astype("float32")],
                        [variable])
    return keras.ops.convert_to_numpy(variable)[-8:]


if __name__ == "__main__":
    for state_dtype in sys.argv[1:]:
        print(state_dtype, " ".join(repr(float(x))
                                    for x in run(state_dtype)))
