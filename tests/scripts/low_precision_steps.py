"""Prints a SignAdamPP run with bfloat16 state on the backend Keras runs:
the last 8 parameters after 20 steps."""

import numpy as np
import keras

import keras_signadam as ks

rng = np.random.default_rng(0)
variable = keras.Variable(rng.normal(size=(64,)).astype("float32"))
optimizer = ks.SignAdamPP(learning_rate=1e-2, state_dtype="bfloat16")
for _ in range(20):
    optimizer.apply([rng.normal(0, 1e-2, size=(64,)).astype("float32")],
                    [variable])
print(" ".join(repr(float(x)) for x in
               keras.ops.convert_to_numpy(variable)[-8:]))
