"""The optimizers on the JAX and PyTorch backends.

Keras picks its backend when it is first imported, from `KERAS_BACKEND`.
Every update in this package is written with `keras.ops`, so the same
optimizers run under `jax.jit` in Keras's JAX trainer and eagerly in its
PyTorch trainer. The last runs add `AdaptiveConfidence()` and int8 state,
and a `Hybrid` with Adam on the output layer and the biases.

    python examples/other_backends.py --backend jax [--epochs 8]
    python examples/other_backends.py --backend torch
"""

import argparse
import os


def main(epochs):
    import keras

    import keras_signadam as ks
    from keras_signadam.comparison import datasets
    from keras_signadam.comparison import models

    print(f"Keras backend: {keras.backend.backend()}")
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    results = {}
    for name, optimizer, callbacks in [
        ("SignAdamPP", ks.SignAdamPP(learning_rate=2e-3), []),
        ("SignAdam", ks.SignAdam(learning_rate=2e-3), []),
        ("Signum", ks.Signum(learning_rate=2e-3), []),
        ("SignSGD", ks.SignSGD(learning_rate=2e-3), []),
        ("NovoGrad", ks.NovoGrad(learning_rate=1e-2), []),
        # The callback changes the threshold between jitted steps.
        ("SignAdamPP + AdaptiveConfidence",
         ks.SignAdamPP(learning_rate=2e-3, state_dtype="int8"),
         [ks.callbacks.AdaptiveConfidence()]),
        ("Hybrid", ks.Hybrid(ks.SignAdamPP(learning_rate=2e-3),
                             keras.optimizers.Adam(learning_rate=1e-3)), []),
    ]:
        keras.utils.set_random_seed(0)
        model = models.mlp(x_train.shape[1:], 10)
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        history = model.fit(x_train, y_train, batch_size=32, epochs=epochs,
                            callbacks=callbacks, verbose=0).history
        _, accuracy = model.evaluate(x_test, y_test, verbose=0)
        results[name] = accuracy
        print(f"{name}: test accuracy {accuracy:.4f}")
        if callbacks:
            print(f"{name}: threshold per epoch " + " ".join(
                f"{t:.3g}" for t in history["threshold"]))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["jax", "torch", "tensorflow"],
                        default="jax")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    # Must be set before Keras is first imported.
    os.environ["KERAS_BACKEND"] = args.backend
    main(args.epochs)
