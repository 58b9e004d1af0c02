import keras

from keras_signadam import checks
from keras_signadam.optimizers import base
from keras_signadam.optimizers import confidence as confidence_module
from keras_signadam.optimizers import docs
from keras_signadam.optimizers import sign_family
from keras_signadam.optimizers import sign_steps


@keras.saving.register_keras_serializable(package="keras_signadam")
@docs.fill_docstring
class SignAdamPP(confidence_module.Confident,
                 sign_family.SignalStepOptimizer):
    """signADAM++: momentum of confidence-filtered signs.

    Components whose gradient is small (already learned) get zero
    confidence and neither move nor add to the momentum; large,
    informative ones keep their sign. Update rule for parameter `theta`
    with gradient `g` (the paper's Algorithm 3; its delta is
    `learning_rate`, its alpha `threshold`, its beta `beta_1`):

        p = g + coupled_weight_decay * theta
        s = c(p) * sign(p)
        m <- beta_1 * m + (1 - beta_1) * s
        theta <- theta - lr * m

    One state tensor, no second moment, no epsilon, no bias correction:
    |m| <= 1, so no component moves by more than lr in a step, and one
    whose gradient passes the threshold with probability p moves about
    lr * p. The confidence c:

    - `confidence="hard"`: c = 1[|p| > delta]
    - `confidence="soft"`: c = clip(|p| / delta - 1, 0, 1), a ramp from
      delta to 2 * delta.

    and the threshold delta, by `threshold_mode`:

    - `"absolute"`: delta = `threshold`, compared with |p| as is.
    - `"relative"`: delta = `threshold` * RMS(p) over the tensor, so one
      value fits every layer's scale.
    - `"adaptive"` (the paper's adaptive confidence, its section 6.3): per
      tensor, a <- 0.9 * a + 0.1 * std(p) at every step (a starts at 0),
      and delta = `threshold` * a, with `threshold` 0.999 (the paper's
      beta_2) by default. With decoupled `weight_decay` and no
      `coupled_weight_decay` this is the paper's signADAM++-AW.

    `second_moment=True` gives the rule of this class up to version 0.5:
    Adam over the filtered signs, with v <- beta_2 * v + (1 - beta_2) * s**2
    and theta <- theta - lr * m_hat / (sqrt(v_hat) + epsilon), both moments
    bias-corrected (`SignAdam` with `bias_correction=True` on s). A model
    saved by 0.5 loads into that rule.

    With `aggregation="majority_vote"`, s is the replicas' vote
    sign(sum_r s_r) on their own confidence-filtered signs. `threshold=0`
    gives Signum-like momentum of plain signs. The threshold is the
    optimizer variable `optimizer.threshold`;
    `optimizer.threshold.assign(value)` changes it without re-tracing and
    refuses values that are not finite numbers >= 0. With
    `track_statistics=True`, `optimizer.sparsity` is the fraction of
    gradient components with zero confidence in the last step, and
    `optimizer.nonfinite_count` the non-finite components skipped so far.
    `keras_signadam.callbacks.AdaptiveConfidence` adapts the threshold
    during training.

    Args:
        learning_rate: The step size (the paper's delta). Defaults to
            `1e-3`.
        threshold: The confidence threshold (the paper's alpha), >= 0:
            a gradient magnitude (`"absolute"`) or a multiple of the
            tensor's gradient RMS (`"relative"`) or of its running
            gradient standard deviation (`"adaptive"`). Defaults to
            `None`: `5e-4` (the authors' released default) in the
            absolute and relative modes, `0.999` in the adaptive mode.
        confidence: `"hard"` (default) or `"soft"`.
        threshold_mode: `"absolute"` (default), `"relative"` or
            `"adaptive"`.
        beta_1: Decay rate of the momentum (the paper's beta), in
            [0, 1). Defaults to `0.9`.
        second_moment: Whether to divide by the square root of a second
            moment, as Adam and this class up to 0.5 did (above). Defaults
            to `False`, the paper's Algorithm 3.
        beta_2: With `second_moment=True`: the second moment's decay rate,
            in [0, 1). Defaults to `None` (`0.999` there); refused
            without it.
        epsilon: With `second_moment=True`: added to the denominator,
            > 0. Defaults to `None` (`1e-8` there); refused without it.
        {{coupled_weight_decay_argument}}
        {{aggregation_argument}}
        {{error_feedback_argument}}
        {{base_arguments}}

    References:
        - [Wang et al., 2019, signADAM++: Learning Confidences for Deep
          Neural Networks](https://arxiv.org/abs/1907.09008); the
          authors' code:
          https://github.com/DongWanginxdu/signADAM-Learn-by-Confidence
    """

    capabilities = base.Capabilities(
        moments=sign_steps.MomentumOfSigns.moments,
        aggregations=("sum", "majority_vote"),
        error_feedback=("sum", "majority_vote"),
        sparsity=True,
        threshold_variable="threshold",
        momentum_variable="beta_1",
        coupled_weight_decay=True,
    )
    # Version 0.5 divided by the bias-corrected second moment.
    config_defaults_before_0_6 = {"second_moment": True}

    def __init__(
        self,
        learning_rate=1e-3,
        threshold=None,
        confidence="hard",
        threshold_mode="absolute",
        beta_1=0.9,
        second_moment=False,
        beta_2=None,
        epsilon=None,
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
        checks.check_bool("second_moment", second_moment)
        if second_moment:
            step_rule = sign_steps.AdamOfSigns(
                0.999 if beta_2 is None else beta_2,
                1e-8 if epsilon is None else epsilon,
                bias_correction=True)
        else:
            for argument, value in (("beta_2", beta_2),
                                    ("epsilon", epsilon)):
                if value is not None:
                    raise ValueError(
                        f"Argument `{argument}` applies only with "
                        "`second_moment=True` (the paper's signADAM++ "
                        f"keeps no second moment). Received: "
                        f"{argument}={value!r}")
            step_rule = sign_steps.MomentumOfSigns()
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
        self.init_confidence(threshold, confidence, threshold_mode,
                             default_threshold=5e-4)
        self.second_moment = second_moment
        self.beta_2 = getattr(step_rule, "beta_2", None)
        self.epsilon = getattr(step_rule, "epsilon", None)

    def get_config(self):
        config = super().get_config()
        config.update({"second_moment": self.second_moment,
                       "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
