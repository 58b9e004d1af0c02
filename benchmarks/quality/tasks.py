"""The four tasks of the quality benchmark, all offline.

Each task has a training, a validation and a test split. The validation
split chooses the learning rate and draws the per-epoch curves; the test
split is evaluated once, at the end, and is what the tables report.

- ``digits_mlp``: the UCI digits bundled with scikit-learn (8x8 images,
  10 classes), a one-hidden-layer MLP.
- ``shapes_cnn``: generated 16x16 images of four shapes (bar, cross, ring,
  disc) at random positions and sizes under heavy noise, a two-block CNN.
- ``keywords_text``: generated token sequences whose class is the topic
  whose keywords occur most often among Zipf-distributed filler words, with
  keywords of a distractor topic; an Embedding + Conv1D text model.
- ``tabular_mlp``: scikit-learn's ``make_classification`` (20 features,
  4 classes, 5% flipped labels), a two-hidden-layer MLP.
"""

import dataclasses

import keras
import numpy as np
from keras import layers


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    description: str
    build_model: callable   # (input_shape, num_classes) -> logits model
    load: callable          # (size_fraction) -> (train, val, test) splits
    epochs: int
    batch_size: int


def _split(x, y, seed, val_fraction=0.2, test_fraction=0.2):
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(val_fraction * len(x)))
    n_test = int(round(test_fraction * len(x)))
    val, test = order[:n_val], order[n_val:n_val + n_test]
    train = order[n_val + n_test:]
    return (x[train], y[train]), (x[val], y[val]), (x[test], y[test])


def _subsample(x, y, fraction, seed):
    if fraction >= 1.0:
        return x, y
    keep = np.random.default_rng(seed + 1).permutation(len(x))
    keep = keep[:max(40, int(fraction * len(x)))]
    return x[keep], y[keep]


# ---------------------------------------------------------------- digits
def load_digits(fraction=1.0):
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.images.astype("float32") / 16.0)[..., None]
    y = bunch.target.astype("int32")
    return _split(*_subsample(x, y, fraction, 0), seed=0)


def mlp(input_shape, num_classes, widths=(128,)):
    return keras.Sequential(
        [keras.Input(input_shape), layers.Flatten()]
        + [layers.Dense(w, activation="relu") for w in widths]
        + [layers.Dense(num_classes)]
    )


# ---------------------------------------------------------------- shapes
def _shape_image(kind, rng, size=16):
    yy, xx = np.mgrid[:size, :size].astype("float32")
    cy, cx = rng.uniform(4, size - 4, 2)
    r = rng.uniform(2.5, 4.5)
    if kind == 0:      # bar, horizontal or vertical
        along = xx if rng.random() < 0.5 else yy
        across = yy if along is xx else xx
        centre = cx if along is xx else cy
        other = cy if along is xx else cx
        image = (np.abs(along - centre) <= r) & (np.abs(across - other) <= 0.8)
    elif kind == 1:    # cross
        image = ((np.abs(xx - cx) <= 0.8) & (np.abs(yy - cy) <= r)) | (
            (np.abs(yy - cy) <= 0.8) & (np.abs(xx - cx) <= r))
    else:
        distance = np.hypot(xx - cx, yy - cy)
        if kind == 2:  # ring
            image = np.abs(distance - r) <= 0.7
        else:          # disc
            image = distance <= r * 0.8
    return image.astype("float32")


def load_shapes(fraction=1.0, n=3000, noise=0.4):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, n).astype("int32")
    x = np.stack([_shape_image(k, rng) for k in y])
    x = x * rng.uniform(0.6, 1.0, (n, 1, 1)).astype("float32")
    x = x + noise * rng.standard_normal(x.shape).astype("float32")
    return _split(*_subsample(x[..., None], y, fraction, 1), seed=1)


def cnn(input_shape, num_classes, width=16):
    return keras.Sequential([
        keras.Input(input_shape),
        layers.Conv2D(width, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(num_classes),
    ])


# --------------------------------------------------------------- keywords
def load_keywords(fraction=1.0, n=4000, length=32, vocabulary=400,
                  topics=4, keywords_per_topic=6, label_noise=0.05):
    rng = np.random.default_rng(2)
    # Tokens 1 .. topics * keywords_per_topic are keywords; the rest fill.
    first_filler = 1 + topics * keywords_per_topic
    fillers = np.arange(first_filler, vocabulary)
    zipf = 1.0 / np.arange(1, len(fillers) + 1)
    x = rng.choice(fillers, size=(n, length), p=zipf / zipf.sum())
    y = rng.integers(0, topics, n)
    for row, topic in enumerate(y):
        distractor = (topic + rng.integers(1, topics)) % topics
        own = rng.integers(2, 5)
        other = rng.integers(0, own)
        words = np.concatenate([
            1 + topic * keywords_per_topic
            + rng.integers(0, keywords_per_topic, own),
            1 + distractor * keywords_per_topic
            + rng.integers(0, keywords_per_topic, other),
        ])
        x[row, rng.choice(length, len(words), replace=False)] = words
    flip = rng.random(n) < label_noise
    y[flip] = rng.integers(0, topics, flip.sum())
    return _split(*_subsample(x.astype("int32"), y.astype("int32"),
                              fraction, 2), seed=2)


def text_model(input_shape, num_classes, vocabulary=400, width=32):
    return keras.Sequential([
        keras.Input(input_shape, dtype="int32"),
        layers.Embedding(vocabulary, width),
        layers.Conv1D(width, 3, padding="same", activation="relu"),
        layers.GlobalAveragePooling1D(),
        layers.Dense(num_classes),
    ])


# ---------------------------------------------------------------- tabular
def load_tabular(fraction=1.0, n=4000):
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=n, n_features=20, n_informative=8, n_redundant=4,
        n_classes=4, n_clusters_per_class=2, class_sep=0.9, flip_y=0.05,
        random_state=3,
    )
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    return _split(*_subsample(x, y.astype("int32"), fraction, 3), seed=3)


TASKS = {
    task.name: task for task in [
        Task("digits_mlp", "bundled UCI digits, 8x8, MLP 128",
             mlp, load_digits, epochs=20, batch_size=32),
        Task("shapes_cnn", "generated noisy 16x16 shapes, 2-block CNN",
             cnn, load_shapes, epochs=12, batch_size=64),
        Task("keywords_text", "generated keyword-topic text, "
             "Embedding + Conv1D", text_model, load_keywords,
             epochs=12, batch_size=64),
        Task("tabular_mlp", "make_classification, 20 features, MLP 64-64",
             lambda shape, classes: mlp(shape, classes, (64, 64)),
             load_tabular, epochs=20, batch_size=64),
    ]
}
