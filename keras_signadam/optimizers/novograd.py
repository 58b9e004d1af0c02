import keras
from keras import ops

from keras_signadam import checks
from keras_signadam import compat
from keras_signadam.optimizers import base
from keras_signadam.optimizers import docs
from keras_signadam.optimizers import hyperparameters
from keras_signadam.optimizers import reductions
from keras_signadam.optimizers import storage

# Largest finite float32: a layer's squared gradient norm is clamped to it,
# so an enormous gradient gives a tiny step instead of an infinite state.
_FLOAT32_MAX = 3.4028235e38


@keras.saving.register_keras_serializable(package="keras_signadam")
@docs.fill_docstring
class NovoGrad(base.Optimizer):
    """NovoGrad: SGD with layer-wise second moments (Ginsburg et al., 2019).

    The second moment is one scalar per variable tensor ("layer") l, not
    one per weight, so the optimizer state is about half of Adam's. For a
    tensor with gradient g_l and parameters theta_l:

        v_l <- beta_2 * v_l + (1 - beta_2) * ||g_l||**2
               (first step: v_l = ||g_l||**2)
        m_l <- beta_1 * m_l + a * (g_l / (sqrt(v_l) + epsilon)
                                   + weight_decay * theta_l)
        theta_l <- theta_l - lr * m_l

    with `a = 1 - beta_1` when `grad_averaging=True`, else `a = 1`. With
    `amsgrad=True` the running maximum of v_l is used in the denominator.
    "First step" is the first step the moments take, whatever
    `iterations` holds.

    `weight_decay` is NovoGrad's own decay d, which enters the momentum
    (as in the paper, TF Addons, optax and NeMo). It is not also applied
    the decoupled Keras way; `exclude_from_weight_decay` is honoured.
    `momentum_weight_decay` is an alias of it.

    Args:
        learning_rate: Defaults to `1e-3`.
        beta_1: Momentum decay, in [0, 1). Defaults to `0.95`.
        beta_2: Decay of the layer-wise second moment, in [0, 1). Defaults
            to `0.98`.
        epsilon: Added to the denominator, > 0. Defaults to `1e-8`.
        grad_averaging: Multiply the momentum input by `1 - beta_1`.
            Defaults to `False`.
        amsgrad: Use the running maximum of v_l. Defaults to `False`.
        momentum_weight_decay: Alias of `weight_decay`.
        {{sum_aggregation_argument}}
        {{state_arguments}}
        weight_decay: d >= 0 above (NovoGrad's own decay, inside the
            momentum). Defaults to `None` (0).
        {{keras_arguments}}

    References:
        - [Ginsburg et al., 2019, Stochastic Gradient Methods with
          Layer-wise Adaptive Moments for Training of Deep Networks](
          https://arxiv.org/abs/1905.11286)
    """

    capabilities = base.Capabilities(
        moments=(storage.Moment("momentum"),),
        momentum_variable="beta_1",
    )

    def __init__(
        self,
        learning_rate=1e-3,
        beta_1=0.95,
        beta_2=0.98,
        epsilon=1e-8,
        grad_averaging=False,
        amsgrad=False,
        momentum_weight_decay=None,
        aggregation="sum",
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
        weight_decay = checks.check_optional_non_negative(
            "weight_decay", weight_decay
        )
        momentum_weight_decay = checks.check_optional_non_negative(
            "momentum_weight_decay", momentum_weight_decay
        )
        if momentum_weight_decay is not None:
            if weight_decay not in (None, momentum_weight_decay):
                raise ValueError(
                    "`momentum_weight_decay` is an alias of `weight_decay`; "
                    "give one of them. Received: "
                    f"weight_decay={weight_decay!r}, "
                    f"momentum_weight_decay={momentum_weight_decay!r}"
                )
            weight_decay = momentum_weight_decay
        checks.check_beta("beta_1", beta_1)
        beta_2 = checks.check_beta("beta_2", beta_2)
        epsilon = checks.check_epsilon("epsilon", epsilon)
        checks.check_bool("grad_averaging", grad_averaging)
        checks.check_bool("amsgrad", amsgrad)
        super().__init__(
            learning_rate=learning_rate,
            aggregation=aggregation,
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
        self.grad_averaging = grad_averaging
        self.amsgrad = amsgrad
        self.beta_1 = self.add_hyperparameter("beta_1", beta_1,
                                              checks.check_beta)

    @property
    def momentum_weight_decay(self):
        return self.weight_decay or 0.0

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_moment(var_list,
                                          self.capabilities.moments[0])
        self._layer_velocities = self.add_state_variables(
            var_list, "layer_velocity", shape=(), dtype="float32"
        )
        if self.amsgrad:
            self._max_layer_velocities = self.add_state_variables(
                var_list, "max_layer_velocity", shape=(), dtype="float32"
            )
        self._steps = self.add_scalar_variable("moment_steps", 0,
                                               dtype="int64")

    def update_step(self, gradient, variable, learning_rate):
        g, raw = self.prepare_gradient(gradient, variable)
        dtype = g.dtype
        lr = self.step_size(learning_rate, variable)
        index = self.variable_index(variable)
        v = self._layer_velocities[index]
        beta_1, first_step = self.per_update(
            "step_scalars", dtype,
            lambda: (ops.cast(self.beta_1, dtype), ops.equal(self._steps, 0)))

        # The norm of g, read from the raw gradient (non-finite components
        # count as zero there too) so that g is not written out for it.
        squared_norm = ops.minimum(
            ops.cast(ops.square(reductions.l2_norm(raw)), "float32"),
            _FLOAT32_MAX,
        )
        v_new = ops.where(
            first_step,
            squared_norm,
            self.beta_2 * v + (1.0 - self.beta_2) * squared_norm,
        )
        denominator = v_new
        if self.amsgrad:
            v_max = self._max_layer_velocities[index]
            denominator = ops.maximum(v_max, v_new)
            self.assign(v_max, denominator)

        theta = ops.cast(variable, dtype)
        # One reciprocal per tensor: XLA then recomputes the cheap product
        # in each of its readers instead of writing a quotient out in full.
        direction = g * (1.0 / (ops.cast(ops.sqrt(denominator), dtype)
                                + self.epsilon))
        if self.weight_decay and compat.uses_weight_decay(self, variable):
            direction = direction + self.weight_decay * theta
        if self.grad_averaging:
            direction = (1.0 - beta_1) * direction
        m_new = beta_1 * self.read_moment(self._momentums, variable,
                                          dtype) + direction
        new_value = theta - lr * m_new
        self.write_variable(variable, new_value)
        self.write_moments(variable, (self._momentums, m_new),
                           after=new_value)
        self.assign(v, v_new)
        self.record_statistics(variable, raw)

    def finish_step(self):
        self.assign_add(self._steps, ops.ones((), "int64"))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": hyperparameters.read(self.beta_1),
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "grad_averaging": self.grad_averaging,
                "amsgrad": self.amsgrad,
            }
        )
        return config
