"""Image classification data sets through `tensorflow_datasets`."""

import socket

import numpy as np

from keras_signadam.comparison.datasets import errors

# tfds fetches prepared data from Google Cloud Storage, and most image sets'
# sources are there too. When a set is not prepared locally and this host
# cannot be reached, tfds would retry for minutes before failing.
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
PROBE_SECONDS = 5.0


def _arrays(dataset):
    tfds = _tfds()
    images, labels = [], []
    for x, y in tfds.as_numpy(dataset.batch(4096)):
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def _can_download(host=None):
    try:
        with socket.create_connection(host or DOWNLOAD_HOST,
                                      timeout=PROBE_SECONDS):
            return True
    except OSError:
        return False


def _tfds():
    """tensorflow_datasets, or a `DatasetError` that says it is missing or
    broken (it is imported only for a tfds data set)."""
    try:
        import tensorflow_datasets as tfds
    except Exception as error:
        text = (str(error).strip().splitlines() or [""])[0]
        raise errors.DatasetError(
            "tensorflow_datasets, which loads every data set but the "
            f"bundled digits, failed to import ({type(error).__name__}: "
            f"{text}); install or repair it (the package's 'compare' "
            "extra), or use --dataset digits") from error
    return tfds


def _builder(name, data_dir):
    import logging

    tfds = _tfds()

    # Looking for prepared data, tfds warns about version folders that do
    # not exist; the program's own line says what is missing instead.
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        return tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises several types for bad names
        raise errors.UnknownDataset(
            f"unknown dataset {name!r}: not 'digits' and not a "
            "tensorflow_datasets name (e.g. mnist, fashion_mnist, cifar10)"
        ) from error
    finally:
        absl.setLevel(level)


def _not_prepared_message(name, builder):
    return (
        f"dataset {name!r} is not prepared in {builder.data_dir} and "
        f"{DOWNLOAD_HOST[0]} cannot be reached to download it. On a "
        "connected machine run: python -c \"import tensorflow_datasets as "
        f"tfds; tfds.builder('{name}').download_and_prepare()\", then copy "
        "its tensorflow_datasets folder here (~/tensorflow_datasets, or the "
        "folder named by TFDS_DATA_DIR)."
    )


def load_image_classification(name, data_dir=None, seed=0):
    """Loads tfds data set `name` as ``(x_train, y_train), (x_test, y_test)``.

    Images become float32 in [0, 1] (unsigned-integer images are divided by
    their maximum value), labels int32. The test split is `test`, else
    `validation`, else the last 20% of a shuffled `train`.

    Raises `UnknownDataset`, `NotImageClassification`, `DatasetNotPrepared`
    (not on this machine, and the download host cannot be reached: found
    in seconds), or `DatasetError` (the download or preparation failed).
    """
    builder = _builder(name, data_dir)
    info = builder.info
    if info.supervised_keys != ("image", "label") or "image" not in (
        info.features
    ):
        raise errors.NotImageClassification(
            f"dataset {name!r} is not an image classification dataset "
            "(it needs 'image' and 'label' features)"
        )
    if not builder.is_prepared() and not _can_download():
        raise errors.DatasetNotPrepared(_not_prepared_message(name, builder))
    try:
        builder.download_and_prepare()
        splits = set(builder.info.splits.keys())
        test_split = next(
            (s for s in ("test", "validation") if s in splits), None
        )
        if test_split is None:
            train = _arrays(builder.as_dataset(split="train",
                                               as_supervised=True))
            order = np.random.default_rng(seed).permutation(len(train[0]))
            cut = int(0.8 * len(order))
            test = (train[0][order[cut:]], train[1][order[cut:]])
            train = (train[0][order[:cut]], train[1][order[:cut]])
        else:
            train_ds, test_ds = builder.as_dataset(
                split=["train", test_split], as_supervised=True
            )
            train, test = _arrays(train_ds), _arrays(test_ds)
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [repr(error)])[0]
        raise errors.DatasetError(
            f"could not download or prepare dataset {name!r} through "
            f"tensorflow_datasets: {first_line}"
        ) from error

    def scale(x):
        if np.issubdtype(x.dtype, np.integer):
            return x.astype("float32") / float(np.iinfo(x.dtype).max)
        return x.astype("float32")

    return ((scale(train[0]), train[1].astype("int32")),
            (scale(test[0]), test[1].astype("int32")))
