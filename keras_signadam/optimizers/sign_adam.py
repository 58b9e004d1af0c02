import collections

import keras
import numpy as np
from keras import ops

from keras_signadam import checks
from keras_signadam.optimizers import base
from keras_signadam.optimizers import bias_correction
from keras_signadam.optimizers import docs
from keras_signadam.optimizers import hyperparameters
from keras_signadam.optimizers import storage

_StepScalars = collections.namedtuple(
    "_StepScalars",
    ["beta_1", "one_minus_beta_1", "v_range_before", "v_correction",
     "m_correction", "bound", "lower_bound"])


@keras.saving.register_keras_serializable(package="keras_signadam")
@docs.fill_docstring
class SignAdam(base.Optimizer):
    """signADAM: Adam driven by the sign of the gradient.

    Update rule for parameter `theta` with gradient `g`, step t = 1, 2, ...:

        s = sign(g)
        m <- beta_1 * m + (1 - beta_1) * s
        v <- beta_2 * v + (1 - beta_2) * s**2
        m_hat = m / (1 - prod_{k<=t} beta_1_k),  v_hat = v / (1 - beta_2**t)
        theta <- theta - lr * m_hat / (sqrt(v_hat) + epsilon)

    With `aggregation="majority_vote"`, s is the replicas' vote
    sign(sum_r s_r) on their own signals. Because |s| <= 1 a step is about
    `lr` while the signs agree, and |m_hat| measures how consistently a
    component's sign agreed over recent steps. The ratio m_hat / sqrt(v_hat)
    is clipped to the largest value exact moments can reach
    (`bias_correction.py`: about 7.3 at the defaults), which only moments
    read back from rounded state ever meet; `state_dtype="int8"` needs
    beta_1**2 < beta_2, where that bound is finite.
    `beta_1` is held in an optimizer variable and its bias correction uses
    the product of the values actually used, so annealing it during
    training (`keras_signadam.callbacks.MomentumScheduler`) stays exact.
    t counts the steps the moments have taken (see `bias_correction.py`:
    exact for beta close to 1 and any t, independent of `iterations`).

    Args:
        learning_rate: Defaults to `1e-3`.
        beta_1: Decay rate of the first moment, in [0, 1). Defaults to `0.9`.
        beta_2: Decay rate of the second moment, in [0, 1). Defaults to
            `0.999`.
        epsilon: Added to the denominator, > 0. Defaults to `1e-8`.
        {{aggregation_argument}}
        {{error_feedback_argument}}
        {{base_arguments}}

    References:
        - [Wang et al., 2019, signADAM++: Learning Confidences for Deep
          Neural Networks](
          https://github.com/DongWanginxdu/signADAM-Learn-by-Confidence)
        - [Kingma & Ba, 2015](https://arxiv.org/abs/1412.6980)
    """

    capabilities = base.Capabilities(
        # The input is ternary: |m| <= 1 and 0 <= v <= 1 - beta_2**t.
        moments=(storage.Moment("momentum", bounded=True),
                 storage.Moment("velocity", bounded=True,
                                square_root=True)),
        aggregations=("sum", "majority_vote"),
        error_feedback=("sum", "majority_vote"),
        sparsity=True,
        momentum_variable="beta_1",
    )

    def __init__(
        self,
        learning_rate=1e-3,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        aggregation="sum",
        error_feedback=False,
        state_dtype=None,
        track_statistics=False,
        jit_compile=True,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        checks.check_beta("beta_1", beta_1)
        beta_2 = checks.check_beta("beta_2", beta_2)
        epsilon = checks.check_epsilon("epsilon", epsilon)
        super().__init__(
            learning_rate=learning_rate,
            aggregation=aggregation,
            error_feedback=error_feedback,
            state_dtype=state_dtype,
            track_statistics=track_statistics,
            jit_compile=jit_compile,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.beta_1 = self.add_hyperparameter("beta_1", beta_1,
                                              self._check_beta_1)

    def _check_beta_1(self, name, value):
        value = checks.check_beta(name, value)
        if self.state_dtype == "int8" and not bias_correction.bounded_steps(
                float(np.float32(value)), self.beta_2):
            # The bound of m_hat / sqrt(v_hat) grows without limit: 8-bit
            # codes rounded against each other could reach it.
            raise ValueError(
                "`state_dtype='int8'` needs beta_1**2 < beta_2, which keeps "
                "every step bounded when the moments are rounded. Received: "
                f"{name}={value!r} with beta_2={self.beta_2!r}")
        return value

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        moments = self.capabilities.moments
        self._momentums = self.add_moment(var_list, moments[0])
        self._velocities = self.add_moment(var_list, moments[1])
        self._history = bias_correction.MomentHistory(self, self.beta_2)

    def _step_scalars(self, dtype):
        """What every variable's update shares at this step, in `dtype`:
        beta_1 and 1 - beta_1, v's range before the step, both bias
        corrections and the ratio bound."""
        beta_1 = ops.cast(self.beta_1, dtype)
        log_beta_2 = bias_correction.python_log(self.beta_2)
        t = self._history.step(dtype)
        # v lies in [0, 1 - beta_2**t]: its range before and after the step.
        v_range_before = bias_correction.one_minus_power(log_beta_2, t - 1.0)
        v_correction = bias_correction.one_minus_power(log_beta_2, t)
        m_correction = self._history.beta_1_correction(beta_1)
        bound = self._history.ratio_bound(beta_1, m_correction,
                                          v_correction)
        return _StepScalars(beta_1, 1.0 - beta_1, v_range_before,
                            v_correction, m_correction, bound, -bound)

    def update_step(self, gradient, variable, learning_rate):
        g, raw = self.prepare_gradient(gradient, variable)
        dtype = g.dtype
        lr = self.step_size(learning_rate, variable)
        s, zeros = self.sign_signal(g, raw, variable)
        c = self.per_update("step_scalars", dtype,
                            lambda: self._step_scalars(dtype))
        m_old = self.read_moment(self._momentums, variable, dtype)
        v_old = self.read_moment(self._velocities, variable, dtype,
                                 c.v_range_before)
        m_new = c.beta_1 * m_old + c.one_minus_beta_1 * s
        v_new = self.beta_2 * v_old + (1.0 - self.beta_2) * ops.square(s)
        ratio = bias_correction.corrected_ratio(
            m_new, v_new, c.m_correction, c.v_correction, self.epsilon)
        ratio = ops.clip(ratio, c.lower_bound, c.bound)
        theta = self.decayed_value(variable, lr)
        self.write_variable(variable, theta - lr * ratio)
        self.write_moments(variable, (self._momentums, m_new),
                           (self._velocities, v_new, c.v_correction))
        self.record_statistics(variable, raw, zeros)

    def moment_bound(self, name):
        if name != "velocity":
            return 1.0
        steps = float(hyperparameters.value_of(self._history.steps))
        return float(bias_correction.one_minus_power(
            bias_correction.python_log(self.beta_2), np.float32(steps)))

    def finish_step(self):
        self._history.advance(self, self.beta_1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": hyperparameters.read(self.beta_1),
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
            }
        )
        return config
