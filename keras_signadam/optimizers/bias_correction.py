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

`MomentHistory.ratio_bound` also bounds the step a consistent pair of
moments can produce. With inputs s_k of |s_k| <= 1 (or any s_k),

    m_t = sum_k w_k s_k,  w_k = (1 - beta_1,k) prod_{i=k+1..t} beta_1,i
    v_t = sum_k (1 - beta_2) beta_2**(t-k) s_k**2

and by the Cauchy-Schwarz inequality m_t**2 <= A_t v_t with

    A_t = sum_k w_k**2 / ((1 - beta_2) beta_2**(t-k))
        = (beta_1,t**2 / beta_2) A_{t-1} + (1 - beta_1,t)**2 / (1 - beta_2),

so |m_hat| / sqrt(v_hat) <= sqrt(A_t (1 - beta_2**t)) / (1 - prod beta_1).
Exact moments never exceed it (it is reached at t = 1, where the ratio is
1); moments read back from rounded storage can (a v stored as 0 beside an
m that is not would give m / epsilon), and are clipped to it. A_t stays
finite when beta_1**2 < beta_2 (it tends to (1 - beta_1)**2 /
((1 - beta_2) (1 - beta_1**2 / beta_2)), a bound of about 7.3 at the
defaults 0.9 and 0.999); otherwise it grows without limit, which is why
8-bit state refuses such pairs.
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


# Exact moments meet the bound at t = 1 up to rounding; the clip must not
# touch them.
_BOUND_MARGIN = 1.0 + 1e-4


def bounded_steps(beta_1, beta_2):
    """Whether `ratio_bound` stays finite for these decay rates (constant
    beta_1)."""
    return beta_2 > 0 and beta_1 * beta_1 < beta_2


class MomentHistory:
    """The optimizer variables the corrections read: the compensated sum of
    log beta_1, the number of steps the moments have taken, and A_t of the
    ratio bound (module docstring). One for all model variables (they all
    step together); advanced once per update by `advance`, after every
    variable has read it."""

    def __init__(self, optimizer, beta_2):
        self.beta_2 = beta_2
        self.log_beta_1 = optimizer.add_scalar_variable(
            "beta_1_log_product", 0.0, shape=(2,)
        )
        self.steps = optimizer.add_scalar_variable(
            "moment_steps", 0, dtype="int64"
        )
        self.bound_sum = optimizer.add_scalar_variable("ratio_bound_sum",
                                                       0.0)

    def _next_bound_sum(self, beta_1):
        a = ops.cast(self.bound_sum, beta_1.dtype)
        if self.beta_2 == 0:  # v holds only the last input: no bound
            return a + float("inf")
        return (ops.square(beta_1) * (a / self.beta_2)
                + ops.square(1.0 - beta_1) / (1.0 - self.beta_2))

    def ratio_bound(self, beta_1, beta_1_correction, beta_2_correction):
        """The largest |m_hat| / sqrt(v_hat) exact moments can reach at
        this step (with this step's beta_1 and corrections)."""
        a = self._next_bound_sum(beta_1)
        return (ops.sqrt(a * beta_2_correction) / beta_1_correction
                * _BOUND_MARGIN)

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
        beta_1 = ops.cast(beta_1, "float32")
        optimizer.assign(self.bound_sum, self._next_bound_sum(beta_1))
        optimizer.assign(
            self.log_beta_1,
            accumulate_log_decay(
                self.log_beta_1, ops.cast(beta_1, self.log_beta_1.dtype)
            ),
        )
        optimizer.assign_add(self.steps, ops.ones((), "int64"))

    def variables(self):
        return [self.log_beta_1, self.steps, self.bound_sum]

