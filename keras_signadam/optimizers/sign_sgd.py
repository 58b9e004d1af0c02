import keras

from keras_signadam.optimizers import base
from keras_signadam.optimizers import confidence as confidence_module
from keras_signadam.optimizers import docs


@keras.saving.register_keras_serializable(package="keras_signadam")
@docs.fill_docstring
class SignSGD(confidence_module.Confident, base.Optimizer):
    """SignSGD (Bernstein et al., 2018), with an optional confidence filter.

    Update rule for parameter `theta` with gradient `g`:

        g <- g + coupled_weight_decay * theta        (if set)
        theta <- theta - lr * c(g) * sign(g)

    with the confidence c(g) of `SignAdamPP` (`confidence="hard"`:
    c = 1[|g| > threshold]; `"soft"`: a ramp from threshold to twice it;
    `threshold_mode="relative"`: the threshold multiplies the tensor's
    gradient RMS; `"adaptive"`: it multiplies a running average of the
    tensor's gradient standard deviation, signADAM++'s adaptive
    confidence). With `threshold = 0` (default) this is plain SignSGD.
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
        threshold: delta >= 0. Defaults to `None`: `0.0` in the absolute
            and relative modes, `0.999` in the adaptive mode.
        confidence: `"hard"` (default) or `"soft"`.
        threshold_mode: `"absolute"` (default), `"relative"` or
            `"adaptive"`.
        {{coupled_weight_decay_argument}}
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
        coupled_weight_decay=True,
    )

    def __init__(
        self,
        learning_rate=1e-3,
        threshold=None,
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
        self.init_confidence(threshold, confidence, threshold_mode,
                             default_threshold=0.0)

    def update_step(self, gradient, variable, learning_rate):
        g, raw = self.prepare_gradient(gradient, variable)
        lr = self.step_size(learning_rate, variable)
        step, zeros = self.sign_signal(g, raw, variable)
        theta = self.decayed_value(variable, lr)
        self.write_variable(variable, theta - lr * step)
        self.flush_later_writes(variable)
        self.record_statistics(variable, raw, zeros)
