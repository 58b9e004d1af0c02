"""Keras callbacks that adapt this package's optimizers during training
and record how training moves."""

from keras_signadam.callbacks.adaptive_confidence import AdaptiveConfidence
from keras_signadam.callbacks.confidence_scheduler import ConfidenceScheduler
from keras_signadam.callbacks.loss_interpolation import LossInterpolation
from keras_signadam.callbacks.momentum_scheduler import MomentumScheduler

__all__ = [
    "AdaptiveConfidence",
    "ConfidenceScheduler",
    "LossInterpolation",
    "MomentumScheduler",
]
