"""The argument documentation shared by every optimizer's docstring, in
the order of the signatures: the algorithm's own arguments (in each
docstring), then `{{aggregation_argument}}`, then `{{base_arguments}}`
(this package's, then Keras's). NovoGrad, whose `weight_decay` is its own,
uses `{{state_arguments}}`, its own line, then `{{keras_arguments}}`."""

from keras_signadam.backend import packing

_BITS = packing.bits_table()
_FEWER = ", ".join(f"{packing.fewer_bytes(r):.0f}x at {r}"
                   for r in (2, 4, 8))

AGGREGATION_DOC = f"""aggregation: How the replicas of a `tf.distribute`
            strategy combine their gradients. `"sum"` (default): Keras's exact
            float32 all-reduce. `"majority_vote"`: each replica sends only
            the ternary signal of its own gradient share (its hard
            confidence-filtered sign, compared with the threshold after
            scaling the share by the number of replicas R to the global
            gradient's scale), packed into 32-bit words at {_BITS}
            bits per component (by number of replicas); every replica
            applies the same update with sign(sum of the signals) in place
            of the signal, so replicas stay identical. Fewer bytes than the
            float32 all-reduce: {_FEWER} replicas
            (`benchmarks/results/communication.md`). Needs
            `confidence="hard"`. With `track_statistics=True`, `sparsity`
            is the fraction of zero votes; non-finite components are zeroed
            on each replica before its signal is formed, but not counted.
            No effect on one device, outside `tf.distribute`, or on the JAX
            and PyTorch backends."""

ERROR_FEEDBACK_DOC = """error_feedback: Whether to keep a residual of what
            the ternary signal drops and add it to the next gradient
            (Karimireddy et al., 2019): p = g + e, s = c(p) sign(p),
            e <- p - a s with a = <p, s> / <s, s> per tensor
            (`keras_signadam.optimizers.error_feedback`). One more state
            tensor per parameter (float32 or bfloat16, not int8). With
            `aggregation="majority_vote"` under several replicas each
            replica keeps its own residual for the signal it sends; saving
            keeps their mean (their sum is restored exactly). Defaults to
            `False`."""

VOTE_ONLY_ERROR_FEEDBACK_DOC = """error_feedback: With
            `aggregation="majority_vote"`: whether each replica keeps a
            residual of what its sign drops and adds it to its next
            gradient share before voting (Karimireddy et al., 2019):
            p = g + e, s = sign(p), e <- p - a s with
            a = <p, s> / <s, s> per tensor. On one device the momentum
            averages the gradient itself, which drops nothing: there it
            has no effect. Saving keeps the replicas' mean residual (their
            sum is restored exactly). Defaults to `False`."""

COUPLED_WEIGHT_DECAY_DOC = """coupled_weight_decay: L2 coefficient lambda >= 0
            whose term lambda * theta is added to the gradient before its
            sign (and confidence) is taken, as in the paper's runs without
            decoupled decay (5e-4 there) and the authors' released code.
            Unlike `weight_decay`, it acts through the sign: a component
            moves toward 0 only where the decay outweighs its gradient.
            Defaults to `0.0`."""

SUM_ONLY_AGGREGATION_DOC = """aggregation: How the replicas of a
            `tf.distribute` strategy combine their gradients: only
            `"sum"` (Keras's exact float32 all-reduce), since the update
            does not use the sign of the gradient."""

STATE_ARGUMENTS_DOC = """state_dtype: The dtype the per-parameter moments are
            stored in: `None` (default: float32, or float64 for float64
            variables), `"float32"`, `"bfloat16"` or `"int8"`. bfloat16
            halves the state's memory and bytes moved per step; each
            moment is still computed in float32 and then rounded
            stochastically (unbiased,
            with random bits hashed from the step and element index, so
            runs repeat exactly and resume exactly). `"int8"` (SignAdam
            and SignAdamPP, whose moments are bounded) stores 8-bit codes
            in steps of 1/127 of the moment's range, the second moment as
            its square root, rounded the same way: a quarter of float32
            state. A saved model loads only with the `state_dtype` it was
            saved with. `SignSGD` keeps no state and refuses it.
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
        jit_compile: Whether the update compiles itself with XLA on
            the TensorFlow backend when the surrounding train step is not
            already XLA-compiled. Defaults to `True`; `False` runs plain
            ops."""

WEIGHT_DECAY_DOC = """weight_decay: Decoupled weight decay lambda >= 0, applied
            as `theta <- theta - learning_rate * lambda * theta`. Defaults to
            `None` (none)."""

KERAS_ARGUMENTS_DOC = """clipnorm: Clip each gradient to this norm (> 0), as in
            `keras.optimizers.Optimizer`.
        clipvalue: Clip each gradient component to this magnitude (> 0).
        global_clipnorm: Clip all gradients to this global norm (> 0).
        use_ema: Keep an exponential moving average of the weights.
        ema_momentum: Its momentum.
        ema_overwrite_frequency: How often (in steps) the average
            overwrites the weights.
        loss_scale_factor: A factor (> 0) the loss is multiplied by and
            the gradients divided by.
        gradient_accumulation_steps: Accumulate gradients over this many
            steps (>= 2) before each update.
        name: The optimizer's name. Defaults to `None`: a unique name
            from the class name, as Keras names its own optimizers."""

BASE_ARGUMENTS_DOC = "\n        ".join(
    [STATE_ARGUMENTS_DOC, WEIGHT_DECAY_DOC, KERAS_ARGUMENTS_DOC])

_TEMPLATES = {
    "{{aggregation_argument}}": AGGREGATION_DOC,
    "{{coupled_weight_decay_argument}}": COUPLED_WEIGHT_DECAY_DOC,
    "{{sum_aggregation_argument}}": SUM_ONLY_AGGREGATION_DOC,
    "{{error_feedback_argument}}": ERROR_FEEDBACK_DOC,
    "{{vote_error_feedback_argument}}": VOTE_ONLY_ERROR_FEEDBACK_DOC,
    "{{base_arguments}}": BASE_ARGUMENTS_DOC,
    "{{state_arguments}}": STATE_ARGUMENTS_DOC,
    "{{keras_arguments}}": KERAS_ARGUMENTS_DOC,
}


def fill_docstring(cls):
    """Class decorator: puts the shared argument documentation into the
    docstring's templates."""
    if cls.__doc__:
        for template, text in _TEMPLATES.items():
            cls.__doc__ = cls.__doc__.replace(template, text)
    return cls
