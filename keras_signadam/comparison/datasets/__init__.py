"""Datasets: the bundled digits (no download) and tfds image sets."""

from keras_signadam.comparison.datasets.digits import load_digits
from keras_signadam.comparison.datasets.errors import DatasetError
from keras_signadam.comparison.datasets.errors import DatasetNotPrepared
from keras_signadam.comparison.datasets.errors import NotImageClassification
from keras_signadam.comparison.datasets.errors import UnknownDataset
from keras_signadam.comparison.datasets.tfds_images import (
    load_image_classification,
)

__all__ = [
    "DatasetError",
    "DatasetNotPrepared",
    "NotImageClassification",
    "UnknownDataset",
    "load_digits",
    "load_image_classification",
]
