import keras
from keras import ops

from keras_signadam import checks
from keras_signadam.optimizers import base
from keras_signadam.optimizers import confidence as confidence_module
from keras_signadam.optimizers import docs


@keras.saving.register_keras_serializable(package="keras_signadam")
@docs.fill_docstring
class SignSGD(base.Optimizer):
    """SignSGD (Bernstein et al., 2018), with an optional confidence filter.

    Update rule for parameter `theta` with gradient `g`:

        g <- g + coupled_weight_decay * theta        (if set)
        theta <- theta - lr * c(g) * sign(g)

    with the confidence c(g) of `SignAdamPP` (`confidence="hard"`:
    c = 1[|g| > threshold]; `"soft"`: a ramp from threshold to twice it;
    `threshold_mode="relative"`: the threshold multiplies the tensor's
    gradient RMS). With `threshold = 0` (default) this is plain SignSGD.
    With hard confidence, `threshold > 0` and `coupled_weight_decay` it is
    exactly the update rule of the authors' released signADAM++ code: a
    ternary, dead-zone SGD in which components whose gradient is within
    `threshold` of zero do not move. With `aggregation="majority_vote"`,
    c(g) * sign(g) is the replicas' vote on their own. The threshold is
    the validated optimizer variable `optimizer.threshold`, so
    `keras_signadam.callbacks` can adapt it without re-tracing.

    Args:
        learning_rate: Step size of every moving component. Defaults to
            `1e-3`.
        threshold: delta >= 0. Defaults to `0.0`.
        confidence: `"hard"` (default) or `"soft"`.
        threshold_mode: `"absolute"` (default) or `"relative"`.
        coupled_weight_decay: L2 coefficient added to the gradient before
            thresholding (as in the released code). Defaults to `0.0`.
        {{aggregation_argument}}
        {{error_feedback_argument}}
        {{base_arguments}}

    References:
        - [Bernstein et al., 2018](https://arxiv.org/abs/1802.04434)
        - [Wang et al., 2019, signADAM++](
          https://github.com/DongWanginxdu/signADAM-Learn-by-Confidence)
    """

    capabilities = base.Capabilities(
        aggregations=("sum", "majority_vote"),
        error_feedback=("sum", "majority_vote"),
        sparsity=True,
        threshold_variable="threshold",
    )

    def __init__(
        self,
        learning_rate=1e-3,
        threshold=0.0,
        confidence="hard",
        threshold_mode="absolute",
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
        coupled_weight_decay = checks.check_non_negative(
            "coupled_weight_decay", coupled_weight_decay
        )
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
        self.coupled_weight_decay = coupled_weight_decay
        self._confidence = confidence_module.ConfidenceArguments(
            self, threshold, confidence, threshold_mode
        )
        self.threshold = self._confidence.threshold
        self.confidence = confidence
        self.threshold_mode = threshold_mode

    def signal_input(self, g, raw_gradient, variable):
        if not self.coupled_weight_decay:
            return g
        return ops.where(
            ops.isfinite(raw_gradient),
            g + self.coupled_weight_decay * ops.cast(variable, g.dtype),
            ops.zeros_like(g),
        )

    def ternary(self, p):
        return self._confidence.signal(self, p)

    def update_step(self, gradient, variable, learning_rate):
        g, raw = self.prepare_gradient(gradient, variable)
        lr = self.step_size(learning_rate, variable)
        step, zeros = self.sign_signal(g, raw, variable)
        theta = self.decayed_value(variable, lr)
        self.write_variable(variable, theta - lr * step)
        self.record_statistics(variable, raw, zeros)

    def get_config(self):
        config = super().get_config()
        config.update(self._confidence.config())
        config["coupled_weight_decay"] = self.coupled_weight_decay
        return config
