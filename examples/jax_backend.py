"""The optimizers on the JAX backend.

Keras picks its backend when it is first imported, from `KERAS_BACKEND`.
Every update in this package is written with `keras.ops`, so the same
optimizers run under `jax.jit` in Keras's JAX trainer.

    KERAS_BACKEND=jax python examples/jax_backend.py [--epochs 8]
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402

import keras_signadam as ks  # noqa: E402


def main(epochs):
    print(f"Keras backend: {keras.backend.backend()}")
    (x_train, y_train), (x_test, y_test) = ks.datasets.load_digits()
    results = {}
    for name, optimizer in [
        ("SignAdamPP", ks.SignAdamPP(learning_rate=2e-3)),
        ("NovoGrad", ks.NovoGrad(learning_rate=1e-2)),
        ("Signum", ks.Signum(learning_rate=2e-3)),
    ]:
        keras.utils.set_random_seed(0)
        model = ks.models.mlp(x_train.shape[1:], 10)
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=0)
        _, accuracy = model.evaluate(x_test, y_test, verbose=0)
        results[name] = accuracy
        print(f"{name}: test accuracy {accuracy:.4f}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    main(parser.parse_args().epochs)
