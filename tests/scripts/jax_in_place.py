"""Compiles the update-step benchmark's JAX step (`benchmarks/update_step.py`)
for a few optimizers on small variables and prints as JSON, per optimizer,
whether every output buffer is its own input's (updated in place, as in
Keras's JAX trainer) and the bytes per parameter of the arrays the compiled
program copies.

    KERAS_BACKEND=jax python tests/scripts/jax_in_place.py
"""

import json
import os
import re
import sys

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_signadam as ks  # noqa: E402
from benchmarks import update_step  # noqa: E402

OPTIMIZERS = {
    "keras Adam": keras.optimizers.Adam,
    "SignAdamPP": ks.SignAdamPP,
    "Signum": ks.Signum,
    "NovoGrad": ks.NovoGrad,
}
SHAPES = [(64, 32), (32,), (3, 3, 4, 8)]


def compiled(make):
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=s).astype("float32"))
                 for s in SHAPES]
    grads = [keras.ops.convert_to_tensor(
        rng.normal(size=s).astype("float32")) for s in SHAPES]
    optimizer = make()
    optimizer.build(variables)
    step = update_step.make_step(optimizer, grads, variables, True)
    step()
    return step.program


def main():
    n = sum(int(np.prod(s)) for s in SHAPES)
    found = {}
    for name, make in OPTIMIZERS.items():
        program = compiled(make)
        aliases = re.search(r"input_output_alias=\{(.*?)\}, entry",
                            program.as_text()).group(1)
        pairs = re.findall(r"\{(\d+)\}: \((\d+), \{\}", aliases)
        found[name] = {
            "outputs": len(pairs),
            "in_order": all(a == b for a, b in pairs),
            "copied_per_parameter": update_step.compiled_traffic(
                program, n)[1],
        }
    print(json.dumps(found))


if __name__ == "__main__":
    main()
