"""Datasets: the bundled digits (no download) and tfds image sets."""

from keras_signadam.datasets.digits import load_digits
from keras_signadam.datasets.tfds_images import DatasetError
from keras_signadam.datasets.tfds_images import load_image_classification

__all__ = ["DatasetError", "load_digits", "load_image_classification"]
