"""What the sign family does with its ternary signal: the step direction
and the state kept for it.

`SignAdam` and `SignAdamPP` form a signal s with |s| <= 1 per component
(sign(g), or the confidence-filtered sign c(g) * sign(g)) and then step by
one of these rules, the parameter moving by ``lr * direction``:

- `MomentumOfSigns` (signADAM++, the paper's Algorithm 3): one moment,

      m <- beta_1 * m + (1 - beta_1) * s,   direction = m,

  with no second moment, no epsilon and no bias correction. |m| <= 1, so
  no component moves by more than lr in one step, and a component that
  passes the confidence with probability p moves about lr * p.
- `AdamOfSigns` (signADAM, the paper's Algorithm 2, and the rule
  `SignAdamPP` had up to 0.5): Adam's moments of s,

      m <- beta_1 * m + (1 - beta_1) * s
      v <- beta_2 * v + (1 - beta_2) * s**2
      direction = m / (sqrt(v) + epsilon)                (the paper's)
      direction = m_hat / (sqrt(v_hat) + epsilon)        (bias-corrected)

  with m_hat = m / (1 - prod beta_1), v_hat = v / (1 - beta_2**t)
  (`bias_correction.py`). Without the corrections the first step is
  0.1 / sqrt(0.001), about 3.16, at the default betas; the direction tends
  to m as v tends to 1 for components whose signal is never 0.

A rule declares its moments (`storage.Moment`, which `state_dtype`
validation reads), adds them in `build`, gives the direction of one
variable and its moments' new values in `direction` (the optimizer writes
them after the variable: `Optimizer.write_moments`), and advances what all
variables share in `finish`. The optimizer holds beta_1 (a validated
variable that `MomentumScheduler` may anneal) and passes it in.
"""

import collections

from keras import ops

from keras_signadam import checks
from keras_signadam.optimizers import bias_correction
from keras_signadam.optimizers import hyperparameters
from keras_signadam.optimizers import storage

MOMENTUM = storage.Moment("momentum", bounded=True)
# v of a ternary input lies in [0, 1 - beta_2**t].
VELOCITY = storage.Moment("velocity", bounded=True, square_root=True)


class MomentumOfSigns:
    """signADAM++'s step (module docstring): one bounded moment."""

    moments = (MOMENTUM,)

    def check_beta_1(self, name, value, state_dtype):
        return checks.check_beta(name, value)

    def build(self, optimizer, var_list):
        self.momentums = optimizer.add_moment(var_list, MOMENTUM)

    def direction(self, optimizer, s, variable):
        dtype = s.dtype
        beta, one_minus_beta = optimizer.per_update(
            "beta_1", dtype,
            lambda: hyperparameters.with_complement(optimizer.beta_1, dtype))
        m = optimizer.read_moment(self.momentums, variable, dtype)
        m_new = beta * m + one_minus_beta * s
        return m_new, ((self.momentums, m_new),)

    def moment_bound(self, name):
        return 1.0

    def finish(self, optimizer):
        pass

    def config(self):
        return {}


_StepScalars = collections.namedtuple(
    "_StepScalars",
    ["beta_1", "one_minus_beta_1", "v_range_before", "v_range",
     "m_correction", "v_correction", "bound"])


class AdamOfSigns:
    """Adam's moments of the signal (module docstring), with or without
    the bias corrections. The ratio m / sqrt(v) (corrected or not) is
    clipped to the largest value exact moments can reach at this step
    (`bias_correction.MomentHistory.ratio_bound`), which only moments read
    back from rounded state ever meet."""

    moments = (MOMENTUM, VELOCITY)

    def __init__(self, beta_2, epsilon, bias_correction):
        self.beta_2 = checks.check_beta("beta_2", beta_2)
        self.epsilon = checks.check_epsilon("epsilon", epsilon)
        self.bias_correction = checks.check_bool("bias_correction",
                                                 bias_correction)

    def check_beta_1(self, name, value, state_dtype):
        value = checks.check_beta(name, value)
        storage.check_ratio_decays(state_dtype, VELOCITY, name, value,
                                   self.beta_2)
        return value

    def build(self, optimizer, var_list):
        self.momentums = optimizer.add_moment(var_list, MOMENTUM)
        self.velocities = optimizer.add_moment(var_list, VELOCITY)
        self.history = bias_correction.MomentHistory(optimizer, self.beta_2)

    def _step_scalars(self, optimizer, dtype):
        """What every variable's update shares at this step, in `dtype`:
        beta_1 and 1 - beta_1, v's range before the step, the bias
        corrections (1 when they are off) and the ratio bound."""
        beta_1 = ops.cast(optimizer.beta_1, dtype)
        log_beta_2 = bias_correction.python_log(self.beta_2)
        t = self.history.step(dtype)
        # v lies in [0, 1 - beta_2**t]: its range before and after the step.
        v_range_before = bias_correction.one_minus_power(log_beta_2, t - 1.0)
        v_range = bias_correction.one_minus_power(log_beta_2, t)
        if self.bias_correction:
            m_correction = self.history.beta_1_correction(beta_1)
            v_correction = v_range
        else:
            m_correction = v_correction = ops.ones((), dtype)
        bound = self.history.ratio_bound(beta_1, m_correction, v_correction)
        return _StepScalars(beta_1, 1.0 - beta_1, v_range_before, v_range,
                            m_correction, v_correction, bound)

    def direction(self, optimizer, s, variable):
        dtype = s.dtype
        c = optimizer.per_update(
            "adam_step_scalars", dtype,
            lambda: self._step_scalars(optimizer, dtype))
        m_old = optimizer.read_moment(self.momentums, variable, dtype)
        v_old = optimizer.read_moment(self.velocities, variable, dtype,
                                      c.v_range_before)
        m_new = c.beta_1 * m_old + c.one_minus_beta_1 * s
        v_new = self.beta_2 * v_old + (1.0 - self.beta_2) * ops.square(s)
        ratio = bias_correction.corrected_ratio(
            m_new, v_new, c.m_correction, c.v_correction, self.epsilon)
        return (ops.clip(ratio, -c.bound, c.bound),
                ((self.momentums, m_new),
                 (self.velocities, v_new, c.v_range)))

    def moment_bound(self, name):
        if name != "velocity":
            return 1.0
        steps = float(hyperparameters.value_of(self.history.steps))
        return float(bias_correction.one_minus_power(
            bias_correction.python_log(self.beta_2), steps))

    def finish(self, optimizer):
        self.history.advance(optimizer, optimizer.beta_1)

    def config(self):
        return {"beta_2": self.beta_2, "epsilon": self.epsilon}
