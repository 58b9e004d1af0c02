import keras
from keras import ops

from keras_signadam import checks
from keras_signadam.optimizers import base
from keras_signadam.optimizers import docs


@keras.saving.register_keras_serializable(package="keras_signadam")
@docs.fill_docstring
class Signum(base.Optimizer):
    """Signum: SignSGD with momentum (Bernstein et al., 2018).

    Update rule for parameter `theta` with gradient `g`:

        m <- momentum * m + (1 - momentum) * g
        theta <- theta - lr * sign(m)

    With `aggregation="majority_vote"` the replicas vote on sign(g) and g
    above is their vote: the momentum, like all state, stays the same on
    every replica. One state tensor per variable. Keras's `Lion` differs: it takes the sign
    of an interpolation with `beta_1` and keeps the state with `beta_2`.
    `momentum` is held in a validated optimizer variable, so it can be
    annealed during training (`keras_signadam.callbacks.MomentumScheduler`).

    Args:
        learning_rate: Step size of every moving component. Defaults to
            `1e-3`.
        momentum: Decay rate beta of the gradient average, in [0, 1).
            Defaults to `0.9`.
        {{aggregation_argument}}
        {{base_arguments}}

    References:
        - [Bernstein et al., 2018](https://arxiv.org/abs/1802.04434)
    """

    momentum_variable = "momentum"
    votes_on_signs = True

    def __init__(
        self,
        learning_rate=1e-3,
        momentum=0.9,
        jit_compile=True,
        name="signum",
        **kwargs,
    ):
        checks.check_beta("momentum", momentum)
        super().__init__(
            learning_rate=learning_rate,
            jit_compile=jit_compile,
            name=name,
            **kwargs,
        )
        self.momentum = self.add_hyperparameter("momentum", momentum,
                                                checks.check_beta)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_state_variables(var_list, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        # With `aggregation="majority_vote"` `gradient` is the replicas'
        # vote on sign(g), which the momentum then averages.
        g, raw = self.prepare_gradient(gradient, variable)
        lr = self.step_size(learning_rate, variable)
        beta = ops.cast(self.momentum, g.dtype)
        m = self._momentums[self.variable_index(variable)]
        m_new = beta * self.read_state(m, g.dtype) + (1.0 - beta) * g
        theta = self.decayed_value(variable, lr)
        self.write_variable(variable, theta - lr * ops.sign(m_new))
        self.write_states(variable, (m, m_new))
        self.record_statistics(variable, raw)

    def get_config(self):
        config = super().get_config()
        config["momentum"] = float(ops.convert_to_numpy(self.momentum))
        return config
