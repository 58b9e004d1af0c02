"""The UCI handwritten digits bundled with scikit-learn (no download).

1,797 grey-scale 8x8 images of the digits 0-9, pixel values 0..16.
"""

import numpy as np


def load_digits(test_fraction=0.25, train_fraction=None, seed=0):
    """Returns ``(x_train, y_train), (x_test, y_test)``.

    Images are float32 of shape (8, 8, 1) scaled to [0, 1]; labels int32.
    The split is stratified-free but seeded and shuffled. `train_fraction`
    (of the whole set) makes a smaller training split, e.g. to study
    overfitting; by default the training split is all that is not test.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            "Argument `test_fraction` must be in (0, 1). "
            f"Received: test_fraction={test_fraction!r}"
        )
    bunch = sklearn_digits()
    x = (bunch.images.astype("float32") / 16.0)[..., None]
    y = bunch.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    if train_fraction is not None:
        n_train = int(round(train_fraction * len(x)))
        if not 0 < n_train <= len(train):
            raise ValueError(
                "Argument `train_fraction` must leave a non-empty training "
                f"split within the non-test data. Received: "
                f"train_fraction={train_fraction!r}"
            )
        train = train[:n_train]
    return (x[train], y[train]), (x[test], y[test])
