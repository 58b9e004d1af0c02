"""Prints, per optimizer, the resident memory this process keeps per model
it builds with that optimizer, fits once and discards (after
`keras.backend.clear_session()`), in MiB: one line `KIND MIB` each, the
optimizers in turn.

    python tests/scripts/memory_per_model.py adam,signadampp [MODELS]

The first few models of each optimizer warm caches and are not counted."""

import gc
import os
import sys

import keras
import numpy as np

import keras_signadam as ks
from keras_signadam.comparison.models import mlp

WARM_UP = 4


def resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(kind, models):
    make = {"signadampp": ks.SignAdamPP, "adam": keras.optimizers.Adam}[kind]
    x = np.random.default_rng(0).random((64, 8, 8, 1), dtype=np.float32)
    y = np.arange(64) % 10
    for index in range(WARM_UP + models):
        if index == WARM_UP:
            start = resident_mib()
        model = mlp((8, 8, 1), 10, width=64)
        model.compile(optimizer=make(), loss=keras.losses.
                      SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
        del model
        keras.backend.clear_session()
        gc.collect()
    return (resident_mib() - start) / models


if __name__ == "__main__":
    for kind in sys.argv[1].split(","):
        print(kind, main(kind, int(sys.argv[2]) if len(sys.argv) > 2
                         else 16), flush=True)
