"""Adam's bias corrections, exact for any beta, step count and schedule.

Adam divides its moments by ``1 - prod_k beta_k`` over the steps the
moments have taken. Three things make the textbook ``1 - beta**t`` wrong
in practice, and each is handled here:

- beta close to 1: ``1 - beta**t`` is computed as ``-expm1(t * log beta)``
  with ``log beta`` in double precision (float32 rounding of beta = 1 - 1e-7
  alone moves ``1 - beta`` by 19%);
- beta_1 changed during training (momentum annealing): the product of the
  values actually used is kept as a compensated (Kahan) sum of their
  logarithms, which does not drift over 10**7 steps the way a float32
  running product does;
- the step count: the moments' own count is kept (`MomentHistory.steps`),
  not `optimizer.iterations`, which a warm start or a user may set while the
  moments are still zero (a first step would then be many times `lr`).
"""

import math

from keras import ops

# Below this a decay's logarithm is clamped: exp(-100) is far under the
# smallest float32, and -inf (from beta = 0) would make the sum NaN.
_LOG_FLOOR = -100.0


def log_decay(beta):
    """log(beta) for a float tensor beta in [0, 1), accurate near 1
    (``log1p(beta - 1)``: the subtraction is exact there)."""
    return ops.maximum(ops.log1p(beta - 1.0), _LOG_FLOOR)


def accumulate_log_decay(log_sum, beta):
    """Adds log(beta) to the compensated sum ``log_sum = [sum, carry]``."""
    total, carry = log_sum[0], log_sum[1]
    term = log_decay(beta) - carry
    new_total = total + term
    carry = (new_total - total) - term
    return ops.stack([new_total, carry])


def one_minus_power(log_beta, t):
    """``1 - beta**t`` from a double-precision `log_beta` (Python float)
    and a float step count `t`."""
    return -ops.expm1(t * max(log_beta, _LOG_FLOOR))


def python_log(beta):
    """Double-precision log of a Python float beta in [0, 1)."""
    return math.log(beta) if beta else -math.inf


def corrected_ratio(m, v, beta_1_correction, beta_2_correction, epsilon):
    """Adam's ``m_hat / (sqrt(v_hat) + epsilon)``."""
    m_hat = m / beta_1_correction
    v_hat = v / beta_2_correction
    return m_hat / (ops.sqrt(v_hat) + epsilon)


class MomentHistory:
    """The optimizer variables the corrections read: the compensated sum of
    log beta_1 and the number of steps the moments have taken. One for all
    model variables (they all step together); advanced once per update by
    `advance`, after every variable has read it."""

    def __init__(self, optimizer):
        self.log_beta_1 = optimizer.add_scalar_variable(
            "beta_1_log_product", 0.0, shape=(2,)
        )
        self.steps = optimizer.add_scalar_variable(
            "moment_steps", 0, dtype="int64"
        )

    def step(self, dtype):
        """The 1-based count t of the step being taken."""
        return ops.cast(self.steps + 1, dtype)

    def beta_1_correction(self, beta_1):
        """``1 - prod beta_1`` including this step's beta_1."""
        log_sum = accumulate_log_decay(
            ops.cast(self.log_beta_1, beta_1.dtype), beta_1
        )
        return -ops.expm1(log_sum[0])

    def advance(self, optimizer, beta_1):
        optimizer.assign(
            self.log_beta_1,
            accumulate_log_decay(
                self.log_beta_1, ops.cast(beta_1, self.log_beta_1.dtype)
            ),
        )
        optimizer.assign_add(self.steps, ops.ones((), "int64"))

    def variables(self):
        return [self.log_beta_1, self.steps]

