"""The argument documentation shared by every optimizer's docstring."""

BASE_ARGUMENTS_DOC = """jit_compile: Whether the update compiles itself with XLA on
            the TensorFlow backend when the surrounding train step is not
            already XLA-compiled. Defaults to `True`; `False` runs plain ops.
        weight_decay: Decoupled weight decay lambda, applied as
            `theta <- theta - learning_rate * lambda * theta`.
        track_statistics: Whether each step counts the zero-confidence
            (`sparsity`) and non-finite (`nonfinite_count`) gradient
            components, exactly, per step. Costs a reduction over the
            gradient per step (about +60% per step on CPU). Non-finite
            components are skipped either way. `AdaptiveConfidence`
            turns it on when it needs the sparsity. The flag is read when
            the update is traced: set after a train function was made, it
            takes effect once that function is made again
            (`model.make_train_function(force=True)`, or a new `compile`),
            and the setter warns so. Defaults to `False`.
        state_dtype: The dtype the per-parameter moments are stored in:
            `None` (default: float32, or float64 for float64 variables),
            `"float32"` or `"bfloat16"`. bfloat16 halves the state's
            memory and bytes moved per step; each moment is still computed
            in float32 and then rounded stochastically (unbiased, with
            random bits hashed from the step and element index, so runs
            repeat exactly and resume exactly). `SignSGD` keeps no state
            and refuses it.
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
        ema_overwrite_frequency, loss_scale_factor,
        gradient_accumulation_steps, name: As in
            `keras.optimizers.Optimizer`."""


def fill_docstring(cls):
    """Class decorator: puts the shared arguments into `{{base_arguments}}`."""
    if cls.__doc__:
        cls.__doc__ = cls.__doc__.replace(
            "{{base_arguments}}", BASE_ARGUMENTS_DOC
        )
    return cls
