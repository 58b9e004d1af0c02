"""The confidence function of signADAM++ and the bias correction of Adam.

Shared by every sign-based optimizer of the package, so that the rule for
which gradient components count as "already learned" lives in one place.

For a gradient component g and threshold delta (both float32):

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

from keras_signadam.optimizers import reductions

CONFIDENCE_KINDS = ("hard", "soft")
THRESHOLD_MODES = ("absolute", "relative")

# Smallest normal float32: keeps the soft ramp finite when delta is 0.
_TINY = 1.1754944e-38


def root_mean_square(g):
    """RMS of a float32 tensor, without overflow or underflow."""
    size = math.prod(g.shape)
    if size == 0:
        return ops.zeros((), g.dtype)
    return reductions.l2_norm(g) / math.sqrt(size)


def effective_threshold(g, threshold, mode):
    if mode == "relative":
        return threshold * root_mean_square(g)
    return threshold


def confidence(g, threshold, kind="hard", mode="absolute"):
    """Confidence c(g) in [0, 1] for each component of float32 tensor `g`."""
    delta = effective_threshold(g, threshold, mode)
    magnitude = ops.abs(g)
    if kind == "hard":
        return ops.cast(magnitude > delta, g.dtype)
    ramp = (magnitude - delta) / ops.maximum(delta, _TINY)
    return ops.clip(ramp, 0.0, 1.0)


def confident_sign(g, threshold, kind="hard", mode="absolute"):
    """Returns ``(c * sign(g), zero-confidence indicator)``; the indicator
    is 1.0 where c is 0 (it is only evaluated if statistics are counted)."""
    c = confidence(g, threshold, kind, mode)
    return c * ops.sign(g), ops.cast(ops.equal(c, 0.0), g.dtype)


# Below this a decay's logarithm is clamped: exp(-100) is far under the
# smallest float32, and -inf (from beta = 0) would make the sum NaN.
_LOG_FLOOR = -100.0


def log_decay(beta):
    """log(beta) for a float32 tensor beta in [0, 1), accurate near 1
    (``log1p(beta - 1)``: the subtraction is exact there)."""
    return ops.maximum(ops.log1p(beta - 1.0), _LOG_FLOOR)


def accumulate_log_decay(log_sum, beta):
    """Adds log(beta) to a compensated (Kahan) sum.

    `log_sum` is a float32 tensor ``[sum, compensation]``. The sum of the
    logs of the beta_1 values used so far is log(prod beta_1): kept this
    way, the bias correction ``1 - prod beta_1 = -expm1(sum)`` is exact
    when beta_1 is annealed, and does not drift over 10**7 steps the way a
    float32 running product does.
    """
    total, compensation = log_sum[0], log_sum[1]
    term = log_decay(beta) - compensation
    new_total = total + term
    compensation = (new_total - total) - term
    return ops.stack([new_total, compensation])


def one_minus_power(log_beta, t):
    """``1 - beta**t`` from a double-precision ``log_beta`` (Python float)
    and float32 step `t`, accurate for beta close to 1 and any t."""
    return -ops.expm1(t * max(log_beta, _LOG_FLOOR))


def bias_corrected_ratio(m, v, beta_1_correction, beta_2_correction,
                         epsilon):
    """Adam's ``m_hat / (sqrt(v_hat) + epsilon)`` with
    ``m_hat = m / beta_1_correction`` and ``v_hat = v / beta_2_correction``
    (the corrections being ``1 - prod beta``)."""
    m_hat = m / beta_1_correction
    v_hat = v / beta_2_correction
    return m_hat / (ops.sqrt(v_hat) + epsilon)
