import keras
from keras import ops

from keras_signadam import checks
from keras_signadam.optimizers import base
from keras_signadam.optimizers import bias_correction
from keras_signadam.optimizers import docs


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
    sign(sum_r s_r) on their own signals. Because |s| <= 1 each step is bounded by about `lr`, and |m_hat|
    measures how consistently a component's sign agreed over recent steps.
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
        {{base_arguments}}

    References:
        - [Wang et al., 2019, signADAM++: Learning Confidences for Deep
          Neural Networks](
          https://github.com/DongWanginxdu/signADAM-Learn-by-Confidence)
        - [Kingma & Ba, 2015](https://arxiv.org/abs/1412.6980)
    """

    momentum_variable = "beta_1"
    tracks_sparsity = True
    votes_on_signs = True
    # The input is ternary: |m| <= 1 and 0 <= v <= 1.
    bounded_state = True

    def __init__(
        self,
        learning_rate=1e-3,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        jit_compile=True,
        name="sign_adam",
        **kwargs,
    ):
        checks.check_beta("beta_1", beta_1)
        beta_2 = checks.check_beta("beta_2", beta_2)
        epsilon = checks.check_positive("epsilon", epsilon)
        super().__init__(
            learning_rate=learning_rate,
            jit_compile=jit_compile,
            name=name,
            **kwargs,
        )
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.beta_1 = self.add_hyperparameter("beta_1", beta_1,
                                              checks.check_beta)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_state_variables(var_list, "momentum")
        self._velocities = self.add_state_variables(var_list, "velocity",
                                                    square_root=True)
        self._history = bias_correction.MomentHistory(self)

    def update_step(self, gradient, variable, learning_rate):
        g, raw = self.prepare_gradient(gradient, variable)
        dtype = g.dtype
        lr = self.step_size(learning_rate, variable)
        s, zeros = self.sign_signal(g, raw, variable)

        index = self.variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        beta_1 = ops.cast(self.beta_1, dtype)

        log_beta_2 = bias_correction.python_log(self.beta_2)
        t = self._history.step(dtype)
        v_correction = bias_correction.one_minus_power(log_beta_2, t)
        v_old = self.read_state(v, dtype)
        if self.state_dtype == "int8":
            # int8 state keeps v_hat = v / (1 - beta_2**t), near 1 from the
            # first step, where its codes are finest (v itself starts at
            # 1 - beta_2 and would round to a few codes).
            v_old = v_old * bias_correction.one_minus_power(
                log_beta_2, t - 1.0)
        m_new = beta_1 * self.read_state(m, dtype) + (1.0 - beta_1) * s
        v_new = self.beta_2 * v_old + (1.0 - self.beta_2) * ops.square(s)
        ratio = bias_correction.corrected_ratio(
            m_new,
            v_new,
            self._history.beta_1_correction(beta_1),
            v_correction,
            self.epsilon,
        )
        theta = self.decayed_value(variable, lr)
        self.write_variable(variable, theta - lr * ratio)
        if self.state_dtype == "int8":
            v_new = v_new / v_correction
        self.write_states(variable, (m, m_new), (v, v_new))
        self.record_statistics(variable, raw, zeros)

    def finish_step(self):
        self._history.advance(self, self.beta_1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": float(ops.convert_to_numpy(self.beta_1)),
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
            }
        )
        return config
