import keras
from keras import ops

from keras_signadam import checks
from keras_signadam.optimizers import base
from keras_signadam.optimizers import docs
from keras_signadam.optimizers import hyperparameters
from keras_signadam.optimizers import storage


@keras.saving.register_keras_serializable(package="keras_signadam")
@docs.fill_docstring
class Signum(base.Optimizer):
    """Signum: SignSGD with momentum (Bernstein et al., 2018).

    Update rule for parameter `theta` with gradient `g`:

        g <- g + coupled_weight_decay * theta        (if set)
        m <- momentum * m + (1 - momentum) * g
        theta <- theta - lr * sign(m)

    With `aggregation="majority_vote"` the replicas vote on sign(g) (with
    the coupled decay) and g above is their vote: the momentum, like all
    state, stays the same on every replica. One state tensor per
    variable. Keras's `Lion` differs: it takes the sign of an
    interpolation with `beta_1` and keeps the state with `beta_2`.
    `momentum` is held in a validated optimizer variable, so it can be
    annealed during training (`keras_signadam.callbacks.MomentumScheduler`).

    Args:
        learning_rate: Step size of every moving component. Defaults to
            `1e-3`.
        momentum: Decay rate beta of the gradient average, in [0, 1).
            Defaults to `0.9`.
        {{coupled_weight_decay_argument}}
        {{aggregation_argument}}
        {{vote_error_feedback_argument}}
        {{base_arguments}}

    References:
        - [Bernstein et al., 2018](https://arxiv.org/abs/1802.04434)
    """

    capabilities = base.Capabilities(
        moments=(storage.Moment("momentum"),),
        aggregations=("sum", "majority_vote"),
        # Only the vote compresses: on one device the momentum averages g.
        error_feedback=("majority_vote",),
        momentum_variable="momentum",
        coupled_weight_decay=True,
    )

    def __init__(
        self,
        learning_rate=1e-3,
        momentum=0.9,
        coupled_weight_decay=0.0,
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
        checks.check_beta("momentum", momentum)
        super().__init__(
            learning_rate=learning_rate,
            coupled_weight_decay=coupled_weight_decay,
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
        self.momentum = self.add_hyperparameter("momentum", momentum,
                                                checks.check_beta)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_moment(var_list,
                                          self.capabilities.moments[0])

    def update_step(self, gradient, variable, learning_rate):
        g, raw = self.prepare_gradient(gradient, variable)
        g = self.averaged_input(g, raw, variable)
        lr = self.step_size(learning_rate, variable)
        beta, one_minus_beta = self.per_update(
            "momentum", g.dtype,
            lambda: hyperparameters.with_complement(self.momentum, g.dtype))
        m = self.read_moment(self._momentums, variable, g.dtype)
        m_new = beta * m + one_minus_beta * g
        theta = self.decayed_value(variable, lr)
        new_value = theta - lr * ops.sign(m_new)
        self.write_variable(variable, new_value)
        self.write_moments(variable, (self._momentums, m_new),
                           after=new_value)
        self.record_statistics(variable, raw)

    def get_config(self):
        config = super().get_config()
        config["momentum"] = hyperparameters.read(self.momentum)
        return config
