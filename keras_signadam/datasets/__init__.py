"""Datasets that need no download."""

from keras_signadam.datasets.digits import load_digits

__all__ = ["load_digits"]
