"""The seven tasks of the quality benchmark, all offline.

Each task has a training, a validation and a test split. The validation
split chooses the learning rate and draws the per-epoch curves; the test
split is evaluated once, at the end, and is what the tables report. The
score is the accuracy, or R^2 (the fraction of the variance explained) for
the autoencoder.

- ``digits_mlp``: the UCI digits bundled with scikit-learn (8x8 images,
  10 classes), a one-hidden-layer MLP.
- ``shapes_cnn``: generated 16x16 images of four shapes (bar, cross, ring,
  disc) at random positions and sizes under heavy noise, a two-block CNN.
- ``keywords_text``: generated token sequences whose class is the topic
  whose keywords occur most often among Zipf-distributed filler words, with
  keywords of a distractor topic; an Embedding + Conv1D text model.
- ``tabular_mlp``: scikit-learn's ``make_classification`` (20 features,
  4 classes, 5% flipped labels), a two-hidden-layer MLP.
- ``tabular_large_batch``: a larger ``make_classification`` (40,000
  samples, 40 features, 8 classes) at batch 1024, the regime where sign
  methods are reported to do well.
- ``digits_autoencoder``: the digits reconstructed through a 16-unit
  bottleneck, mean squared error; a regression loss, scored by R^2 over
  all pixels (variance-weighted).
- ``digits_mlp_long``: ``digits_mlp`` with 4x the epochs (80).

Beside the seven, run only when named (``--tasks``):

- ``char_transformer``: a character-level language model, a two-block
  causal transformer, on the docstrings of 30 standard-library modules of
  the Python that runs it (about 320,000 characters, 100 distinct):
  next-character accuracy on the last tenth of the text.
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
    # The loss (None: sparse cross-entropy on logits) and the metric the
    # score is (None: accuracy).
    loss: callable = None
    metric: callable = None
    score: str = "accuracy"


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


# ------------------------------------------------------ large batches
def load_large_tabular(fraction=1.0, n=40000):
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=n, n_features=40, n_informative=16, n_redundant=8,
        n_classes=8, n_clusters_per_class=2, class_sep=1.0, flip_y=0.05,
        random_state=4,
    )
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    return _split(*_subsample(x, y.astype("int32"), fraction, 4), seed=4)


# ------------------------------------------------------------ regression
def load_digits_reconstruction(fraction=1.0):
    """Digits as inputs and as targets (flattened)."""
    (x_train, _), (x_val, _), (x_test, _) = load_digits(fraction)
    return tuple((x, x.reshape(len(x), -1)) for x in (x_train, x_val,
                                                       x_test))


def autoencoder(input_shape, num_classes, bottleneck=16):
    size = 1
    for dim in input_shape:
        size *= dim
    return keras.Sequential([
        keras.Input(input_shape), layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(bottleneck, activation="relu"),
        layers.Dense(128, activation="relu"),
        layers.Dense(size),
    ])


def _r2():
    # Weighted by each pixel's variance: the digits' always-blank corner
    # pixels have none, and an unweighted mean of per-pixel R^2 would be
    # dominated by them.
    return keras.metrics.R2Score(
        class_aggregation="variance_weighted_average", name="accuracy")


# ------------------------------------------------------ language model
# Modules of the standard library whose docstrings form the text, in this
# order (relative to the folder of `os.py`).
TEXT_MODULES = (
    "argparse", "collections/__init__", "difflib", "functools", "inspect",
    "logging/__init__", "pathlib", "subprocess", "textwrap", "typing",
    "unittest/case", "json/__init__", "email/message", "http/client",
    "tarfile", "zipfile", "shutil", "calendar", "decimal", "fractions",
    "statistics", "string", "pprint", "heapq", "bisect", "random",
    "datetime", "csv", "configparser", "optparse")
CONTEXT = 64


def python_docstrings():
    """The docstrings of `TEXT_MODULES` (modules, classes, functions), in
    source order, separated by blank lines."""
    import ast
    import os

    folder = os.path.dirname(os.__file__)
    docs = []
    for module in TEXT_MODULES:
        path = os.path.join(folder, module + ".py")
        if not os.path.exists(path):  # another Python's library
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        docs += [ast.get_docstring(node) for node in ast.walk(tree)
                 if isinstance(node, (ast.Module, ast.ClassDef,
                                      ast.FunctionDef, ast.AsyncFunctionDef))
                 and ast.get_docstring(node)]
    return "\n\n".join(docs)


def load_characters(fraction=1.0):
    """Windows of CONTEXT characters and the characters that follow each
    (the targets, shifted by one); the first 80% of the text trains, the
    next 10% validates, the last 10% tests."""
    text = python_docstrings()
    text = text[:max(CONTEXT * 40, int(len(text) * fraction))]
    alphabet = sorted(set(text))
    codes = np.array([alphabet.index(c) for c in text], "int32")
    windows = (len(codes) - 1) // CONTEXT
    x = codes[:windows * CONTEXT].reshape(windows, CONTEXT)
    y = codes[1:windows * CONTEXT + 1].reshape(windows, CONTEXT)
    cut = [int(0.8 * windows), int(0.9 * windows)]
    return ((x[:cut[0]], y[:cut[0]]), (x[cut[0]:cut[1]], y[cut[0]:cut[1]]),
            (x[cut[1]:], y[cut[1]:]))


def char_transformer(input_shape, num_classes, width=64, blocks=2,
                     heads=4):
    """Token and position embeddings, pre-norm causal self-attention and
    MLP blocks, a final normalization and the output layer. The alphabet
    is the targets' largest code + 1, at least 100."""
    length = input_shape[0]
    vocabulary = max(num_classes, 100)
    tokens = keras.Input(input_shape, dtype="int32")
    x = layers.Embedding(vocabulary, width)(tokens)
    positions = layers.Embedding(length, width)(
        keras.ops.arange(length, dtype="int32"))
    x = x + positions
    for _ in range(blocks):
        h = layers.LayerNormalization()(x)
        h = layers.MultiHeadAttention(heads, width // heads)(
            h, h, use_causal_mask=True)
        x = x + h
        h = layers.LayerNormalization()(x)
        h = layers.Dense(2 * width, activation="gelu")(h)
        x = x + layers.Dense(width)(h)
    x = layers.LayerNormalization()(x)
    return keras.Model(tokens, layers.Dense(vocabulary)(x))


EXTRA_TASKS = {
    "char_transformer": Task(
        "char_transformer", "character-level language model on the "
        "docstrings of 30 standard-library modules, two-block causal "
        "transformer (width 64, 4 heads), context 64, score next-character "
        "accuracy", char_transformer, load_characters, epochs=10,
        batch_size=64),
}

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
        Task("tabular_large_batch", "make_classification, 40,000 samples, "
             "40 features, 8 classes, MLP 128-128, batch 1024",
             lambda shape, classes: mlp(shape, classes, (128, 128)),
             load_large_tabular, epochs=30, batch_size=1024),
        Task("digits_autoencoder", "digits through a 16-unit bottleneck, "
             "MLP 128-16-128, mean squared error, score R^2",
             autoencoder, load_digits_reconstruction, epochs=30,
             batch_size=32, loss=keras.losses.MeanSquaredError, metric=_r2,
             score="R^2"),
        Task("digits_mlp_long", "digits_mlp with 4x the epochs",
             mlp, load_digits, epochs=80, batch_size=32),
    ]
}

# Every task the benchmark can run: the seven, and those run when named.
ALL_TASKS = {**TASKS, **EXTRA_TASKS}
