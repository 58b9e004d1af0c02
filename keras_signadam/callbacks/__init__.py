"""Keras callbacks that adapt this package's optimizers during training."""

from keras_signadam.callbacks.adaptive_confidence import AdaptiveConfidence
from keras_signadam.callbacks.confidence_scheduler import ConfidenceScheduler

__all__ = ["AdaptiveConfidence", "ConfidenceScheduler"]
