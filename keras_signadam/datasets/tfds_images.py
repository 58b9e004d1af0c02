"""Image classification data sets through `tensorflow_datasets`."""

import numpy as np


class DatasetError(RuntimeError):
    """A data set could not be found or loaded; the message says why."""


def _arrays(dataset):
    import tensorflow_datasets as tfds

    images, labels = [], []
    for x, y in tfds.as_numpy(dataset.batch(4096)):
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def load_image_classification(name, data_dir=None, seed=0):
    """Loads tfds data set `name` as ``(x_train, y_train), (x_test, y_test)``.

    Images become float32 in [0, 1] (unsigned-integer images are divided by
    their maximum value), labels int32. The test split is `test`, else
    `validation`, else the last 20% of a shuffled `train`.

    Raises `DatasetError` for unknown names, data sets that are not image
    classification, and failed downloads.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises several types for bad names
        raise DatasetError(
            f"unknown dataset {name!r}: not 'digits' and not a "
            "tensorflow_datasets name (e.g. mnist, fashion_mnist, cifar10)"
        ) from error
    features = builder.info.features
    if builder.info.supervised_keys != ("image", "label") or "image" not in (
        features
    ):
        raise DatasetError(
            f"dataset {name!r} is not an image classification dataset "
            "(it needs 'image' and 'label' features)"
        )
    splits = set(builder.info.splits.keys())
    test_split = next((s for s in ("test", "validation") if s in splits),
                      "test" if not splits else None)
    try:
        if test_split is None:
            train = _arrays(tfds.load(name, split="train", as_supervised=True,
                                      data_dir=data_dir))
            order = np.random.default_rng(seed).permutation(len(train[0]))
            cut = int(0.8 * len(order))
            test = (train[0][order[cut:]], train[1][order[cut:]])
            train = (train[0][order[:cut]], train[1][order[:cut]])
        else:
            train_ds, test_ds = tfds.load(
                name, split=["train", test_split], as_supervised=True,
                data_dir=data_dir,
            )
            train, test = _arrays(train_ds), _arrays(test_ds)
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [repr(error)])[0]
        raise DatasetError(
            f"could not download or prepare dataset {name!r} through "
            f"tensorflow_datasets (is this machine offline?): {first_line}"
        ) from error

    def scale(x):
        if np.issubdtype(x.dtype, np.integer):
            return x.astype("float32") / float(np.iinfo(x.dtype).max)
        return x.astype("float32")

    return ((scale(train[0]), train[1].astype("int32")),
            (scale(test[0]), test[1].astype("int32")))
