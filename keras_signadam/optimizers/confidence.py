"""The confidence function of signADAM++.

Shared by the optimizers that filter the sign of the gradient (`SignSGD`,
`SignAdamPP`), so that the rule for which gradient components count as
"already learned" lives in one place.

For a gradient component g and threshold delta:

- hard confidence: ``c = 1[|g| > delta]``
- soft confidence: ``c = clip(|g| / delta - 1, 0, 1)``, a ramp that is 0 up
  to ``delta`` and 1 from ``2 * delta`` on; at ``delta = 0`` it equals the
  hard rule.
- relative threshold mode: ``delta`` is multiplied by the tensor's gradient
  RMS, so that one value fits layers whose gradients differ in scale.

Non-finite components have been replaced by zero before these functions run
(see `base.Optimizer`), so they get zero confidence like any zero gradient.
"""

import math

from keras import ops

from keras_signadam import checks
from keras_signadam.optimizers import hyperparameters
from keras_signadam.optimizers import reductions

CONFIDENCE_KINDS = ("hard", "soft")
THRESHOLD_MODES = ("absolute", "relative")

# Smallest normal float32: keeps the soft ramp finite when delta is 0.
_TINY = 1.1754944e-38


def root_mean_square(g):
    """RMS of a float tensor, without overflow or underflow."""
    size = math.prod(g.shape)
    if size == 0:
        return ops.zeros((), g.dtype)
    return reductions.l2_norm(g) / math.sqrt(size)


def effective_threshold(g, threshold, mode):
    if mode == "relative":
        return threshold * root_mean_square(g)
    return threshold


def confidence(g, threshold, kind="hard", mode="absolute"):
    """Confidence c(g) in [0, 1] for each component of `g`."""
    delta = effective_threshold(g, threshold, mode)
    magnitude = ops.abs(g)
    if kind == "hard":
        return ops.cast(magnitude > delta, g.dtype)
    ramp = (magnitude - delta) / ops.maximum(delta, _TINY)
    return ops.clip(ramp, 0.0, 1.0)


def confident_sign(g, threshold, kind="hard", mode="absolute"):
    """Returns ``(c * sign(g), zero-confidence indicator)``; the indicator
    is 1.0 where c is 0. A traced update drops it unless statistics are
    counted; run eagerly (PyTorch, or outside a traced function) it is
    computed every step."""
    c = confidence(g, threshold, kind, mode)
    return c * ops.sign(g), ops.cast(ops.equal(c, 0.0), g.dtype)


class ConfidenceArguments:
    """The confidence arguments of an optimizer (`threshold`, `confidence`,
    `threshold_mode`): checked once, held once, configured once."""

    def __init__(self, optimizer, threshold, kind, mode):
        checks.check_choice("confidence", kind, CONFIDENCE_KINDS)
        checks.check_choice("threshold_mode", mode, THRESHOLD_MODES)
        if kind == "soft" and optimizer.aggregation == "majority_vote":
            # A soft confidence is not ternary: it has no 2-bit code.
            raise ValueError(
                "`aggregation='majority_vote'` votes on ternary signals, "
                "which needs confidence='hard'. Received: confidence='soft'")
        self.kind, self.mode = kind, mode
        # A validated variable: callbacks and users change it without
        # re-tracing, and a bad value is refused where it is written.
        self.threshold = optimizer.add_hyperparameter(
            "threshold", threshold, checks.check_non_negative
        )

    def signal(self, optimizer, g):
        threshold = optimizer.per_update(
            "threshold", g.dtype,
            lambda: ops.cast(self.threshold, g.dtype))
        return confident_sign(g, threshold, self.kind, self.mode)

    def config(self):
        return {
            "threshold": hyperparameters.read(self.threshold),
            "confidence": self.kind,
            "threshold_mode": self.mode,
        }

