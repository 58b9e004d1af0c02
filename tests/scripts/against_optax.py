"""Runs this package's optimizers and optax's on the same gradients, on the
JAX backend, and prints the largest parameter difference per rule as JSON.

optax is an independent implementation of the rules where they coincide:
sign_sgd = SignSGD, signum = Signum (optax keeps a trace g + beta * m,
whose sign equals that of the average used here), novograd = NovoGrad
(same first step, in-moment weight decay)."""

import json
import os

os.environ["KERAS_BACKEND"] = "jax"

import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import keras_signadam as ks  # noqa: E402

SHAPES = [(7,), (5, 3), (2, 3, 4)]
STEPS = 15
RULES = {
    "sign_sgd": (lambda: ks.SignSGD(learning_rate=1e-2),
                 lambda: optax.sign_sgd(1e-2)),
    "signum": (lambda: ks.Signum(learning_rate=1e-2, momentum=0.8),
               lambda: optax.signum(1e-2, beta=0.8)),
    "novograd": (
        lambda: ks.NovoGrad(learning_rate=1e-2, beta_1=0.9, beta_2=0.5,
                            epsilon=1e-6, weight_decay=1e-2),
        lambda: optax.novograd(1e-2, b1=0.9, b2=0.5, eps=1e-6,
                               weight_decay=1e-2)),
}


def main():
    rng = np.random.default_rng(0)
    thetas = [rng.normal(size=s).astype("float32") for s in SHAPES]
    grads = [[(rng.normal(size=s) * 10.0 ** rng.uniform(-3, 0, size=s))
              .astype("float32") for s in SHAPES] for _ in range(STEPS)]
    report = {}
    for name, (ours, theirs) in RULES.items():
        variables = [keras.Variable(t) for t in thetas]
        optimizer = ours()
        params = [jnp.asarray(t) for t in thetas]
        transform = theirs()
        state = transform.init(params)
        moved = 0.0
        for step in grads:
            optimizer.apply([jnp.asarray(g) for g in step], variables)
            updates, state = transform.update(
                [jnp.asarray(g) for g in step], state, params)
            params = optax.apply_updates(params, updates)
        differences = []
        for v, p, t in zip(variables, params, thetas):
            got = np.asarray(keras.ops.convert_to_numpy(v))
            differences.append(float(np.max(np.abs(got - np.asarray(p)))))
            moved = max(moved, float(np.max(np.abs(got - t))))
        report[name] = {"difference": max(differences), "moved": moved}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
