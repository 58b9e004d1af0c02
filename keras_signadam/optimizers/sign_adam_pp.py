import dataclasses

import keras

from keras_signadam.optimizers import confidence as confidence_module
from keras_signadam.optimizers import docs
from keras_signadam.optimizers.sign_adam import SignAdam


@keras.saving.register_keras_serializable(package="keras_signadam")
@docs.fill_docstring
class SignAdamPP(SignAdam):
    """signADAM++: SignAdam filtered by a confidence function.

    Components whose gradient is small (already learned) get zero
    confidence and add nothing to the moments; large, informative ones keep
    their sign. Update rule for parameter `theta` with gradient `g`:

        s = c(g) * sign(g)
        m <- beta_1 * m + (1 - beta_1) * s
        v <- beta_2 * v + (1 - beta_2) * s**2
        theta <- theta - lr * m_hat / (sqrt(v_hat) + epsilon)

    with the bias corrections of `SignAdam` and the confidence c(g):

    - `confidence="hard"`: c = 1[|g| > delta]
    - `confidence="soft"`: c = clip(|g| / delta - 1, 0, 1), a ramp from
      delta to 2 * delta.
    - `threshold_mode="absolute"`: delta is compared with |g| as is;
      `"relative"`: delta multiplies the tensor's gradient RMS, so one value
      fits every layer's scale.

    With `aggregation="majority_vote"`, s is the replicas' vote
    sign(sum_r s_r) on their own confidence-filtered signs. `threshold=0`
    gives `SignAdam`. The threshold is the optimizer variable
    `optimizer.threshold`; `optimizer.threshold.assign(value)` changes it
    without re-tracing and refuses values that are not finite numbers >= 0.
    With `track_statistics=True`, `optimizer.sparsity` is the fraction of
    gradient components with zero confidence in the last step, and
    `optimizer.nonfinite_count` the non-finite components skipped so far.
    `keras_signadam.callbacks.AdaptiveConfidence` adapts the threshold
    during training.

    Args:
        learning_rate: Defaults to `1e-3`.
        threshold: delta >= 0. Defaults to `5e-4`, the authors' released
            default.
        confidence: `"hard"` (default) or `"soft"`.
        threshold_mode: `"absolute"` (default) or `"relative"`.
        beta_1: Defaults to `0.9`.
        beta_2: Defaults to `0.999`.
        epsilon: Defaults to `1e-8`.
        {{aggregation_argument}}
        {{error_feedback_argument}}
        {{base_arguments}}

    References:
        - [Wang et al., 2019, signADAM++: Learning Confidences for Deep
          Neural Networks](
          https://github.com/DongWanginxdu/signADAM-Learn-by-Confidence)
    """

    capabilities = dataclasses.replace(SignAdam.capabilities,
                                       threshold_variable="threshold")

    def __init__(
        self,
        learning_rate=1e-3,
        threshold=5e-4,
        confidence="hard",
        threshold_mode="absolute",
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
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
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
        self._confidence = confidence_module.ConfidenceArguments(
            self, threshold, confidence, threshold_mode
        )
        self.threshold = self._confidence.threshold
        self.confidence = confidence
        self.threshold_mode = threshold_mode

    def ternary(self, p):
        return self._confidence.signal(self, p)

    def get_config(self):
        config = super().get_config()
        config.update(self._confidence.config())
        return config
