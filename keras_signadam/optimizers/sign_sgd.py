import keras
from keras import ops

from keras_signadam.optimizers import base
from keras_signadam.optimizers import checks
from keras_signadam.optimizers import confidence


@keras.saving.register_keras_serializable(package="keras_signadam")
@base.fill_docstring
class SignSGD(base.Optimizer):
    """SignSGD (Bernstein et al., 2018), with an optional dead zone.

    Update rule for parameter `theta` with gradient `g`:

        g <- g + coupled_weight_decay * theta        (if set)
        theta <- theta - lr * 1[|g| > threshold] * sign(g)

    With `threshold = 0` (default) this is plain SignSGD. With
    `threshold > 0` and `coupled_weight_decay` it is exactly the update rule
    of the authors' released signADAM++ code: a ternary, dead-zone SGD in
    which components whose gradient is within `threshold` of zero do not
    move. The threshold is held in an optimizer variable, so
    `keras_signadam.callbacks` can adapt it without re-tracing.

    Args:
        learning_rate: Step size of every moving component. Defaults to
            `1e-3`.
        threshold: Dead-zone half width delta >= 0. Defaults to `0.0`.
        coupled_weight_decay: L2 coefficient added to the gradient before
            thresholding (as in the released code). Defaults to `0.0`.
        {{base_arguments}}

    References:
        - [Bernstein et al., 2018](https://arxiv.org/abs/1802.04434)
        - [Wang et al., 2019, signADAM++](
          https://github.com/DongWanginxdu/signADAM-Learn-by-Confidence)
    """

    tracks_sparsity = True

    def __init__(
        self,
        learning_rate=1e-3,
        threshold=0.0,
        coupled_weight_decay=0.0,
        jit_compile=True,
        name="sign_sgd",
        **kwargs,
    ):
        threshold = checks.check_non_negative("threshold", threshold)
        coupled_weight_decay = checks.check_non_negative(
            "coupled_weight_decay", coupled_weight_decay
        )
        super().__init__(
            learning_rate=learning_rate,
            jit_compile=jit_compile,
            name=name,
            **kwargs,
        )
        self.coupled_weight_decay = coupled_weight_decay
        self.threshold = self.add_scalar_variable("threshold", threshold)

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, "float32")
        g, raw = self.prepare_gradient(gradient)
        if self.coupled_weight_decay:
            g = ops.where(
                ops.isfinite(raw),
                g + self.coupled_weight_decay * ops.cast(variable, "float32"),
                ops.zeros_like(g),
            )
        step, zeros = confidence.confident_sign(
            g, ops.cast(self.threshold, "float32")
        )
        theta = self.decayed_value(variable, learning_rate)
        self.write_variable(variable, theta - lr * step)
        self.record_statistics(variable, raw, zeros)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "threshold": float(ops.convert_to_numpy(self.threshold)),
                "coupled_weight_decay": self.coupled_weight_decay,
            }
        )
        return config
