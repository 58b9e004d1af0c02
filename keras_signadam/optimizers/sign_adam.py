import keras

from keras_signadam.optimizers import base
from keras_signadam.optimizers import docs
from keras_signadam.optimizers import sign_family
from keras_signadam.optimizers import sign_steps


@keras.saving.register_keras_serializable(package="keras_signadam")
@docs.fill_docstring
class SignAdam(sign_family.SignalStepOptimizer):
    """signADAM: Adam driven by the sign of the gradient.

    Update rule for parameter `theta` with gradient `g`, step t = 1, 2, ...
    (the paper's Algorithm 2 with `bias_correction=False`, the default):

        s = sign(g + coupled_weight_decay * theta)
        m <- beta_1 * m + (1 - beta_1) * s
        v <- beta_2 * v + (1 - beta_2) * s**2
        theta <- theta - lr * m / (sqrt(v) + epsilon)

    The paper's rule has no bias correction: its first step is
    lr * 0.1 / sqrt(0.001), about 3.16 lr, at the default betas, and as v
    tends to 1 the rule tends to `theta <- theta - lr * m`. With
    `bias_correction=True` the moments are corrected as in Adam,
    m_hat = m / (1 - prod_{k<=t} beta_1_k), v_hat = v / (1 - beta_2**t),
    and the step is lr * m_hat / (sqrt(v_hat) + epsilon): about lr while
    the signs agree (the rule of this class up to version 0.5).

    With `aggregation="majority_vote"`, s is the replicas' vote
    sign(sum_r s_r) on their own signals. The ratio of the moments is
    clipped to the largest value exact moments can reach
    (`bias_correction.py`; about 7.3 at the defaults with the
    corrections), which only moments read back from rounded state ever
    meet; `state_dtype="int8"` needs beta_1**2 < beta_2, where that bound
    is finite. `beta_1` is held in an optimizer variable and its bias
    correction uses the product of the values actually used, so annealing
    it during training (`keras_signadam.callbacks.MomentumScheduler`)
    stays exact. t counts the steps the moments have taken (see
    `bias_correction.py`: exact for beta close to 1 and any t,
    independent of `iterations`).

    Args:
        learning_rate: Defaults to `1e-3`.
        beta_1: Decay rate of the first moment, in [0, 1). Defaults to `0.9`.
        beta_2: Decay rate of the second moment, in [0, 1). Defaults to
            `0.999`.
        epsilon: Added to the denominator, > 0. Defaults to `1e-8`.
        bias_correction: Whether to divide the moments by their bias
            corrections. Defaults to `False`, the paper's Algorithm 2.
        {{coupled_weight_decay_argument}}
        {{aggregation_argument}}
        {{error_feedback_argument}}
        {{base_arguments}}

    References:
        - [Wang et al., 2019, signADAM++: Learning Confidences for Deep
          Neural Networks](https://arxiv.org/abs/1907.09008)
        - [Kingma & Ba, 2015](https://arxiv.org/abs/1412.6980)
    """

    capabilities = base.Capabilities(
        moments=sign_steps.AdamOfSigns.moments,
        aggregations=("sum", "majority_vote"),
        error_feedback=("sum", "majority_vote"),
        sparsity=True,
        momentum_variable="beta_1",
        coupled_weight_decay=True,
    )
    # What a config without the argument was saved with: version 0.5
    # corrected the bias.
    config_defaults_before_0_6 = {"bias_correction": True}

    def __init__(
        self,
        learning_rate=1e-3,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        bias_correction=False,
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
        step_rule = sign_steps.AdamOfSigns(beta_2, epsilon, bias_correction)
        super().__init__(
            learning_rate=learning_rate,
            step_rule=step_rule,
            beta_1=beta_1,
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
        self.beta_2 = step_rule.beta_2
        self.epsilon = step_rule.epsilon
        self.bias_correction = bias_correction

    def get_config(self):
        config = super().get_config()
        config["bias_correction"] = self.bias_correction
        return config
