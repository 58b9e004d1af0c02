"""Prints a SignAdamPP run with rounded state (argv[1]: bfloat16 or int8)
on the backend Keras runs: the last 8 parameters after 20 steps."""

import sys

import keras
import numpy as np

import keras_signadam as ks

rng = np.random.default_rng(0)
variable = keras.Variable(rng.normal(size=(64,)).astype("float32"))
optimizer = ks.SignAdamPP(learning_rate=1e-2, state_dtype=sys.argv[1])
for _ in range(20):
    optimizer.apply([rng.normal(0, 1e-2, size=(64,)).astype("float32")],
                    [variable])
print(" ".join(repr(float(x)) for x in
               keras.ops.convert_to_numpy(variable)[-8:]))
