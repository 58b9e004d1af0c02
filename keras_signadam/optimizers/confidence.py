"""The confidence function of signADAM++.

Shared by the optimizers that filter the sign of the gradient (`SignSGD`,
`SignAdamPP`), so that the rule for which gradient components count as
"already learned" lives in one place.

For a gradient component g and threshold delta:

- hard confidence: ``c = 1[|g| > delta]``
- soft confidence: ``c = clip(|g| / delta - 1, 0, 1)``, a ramp that is 0 up
  to ``delta`` and 1 from ``2 * delta`` on; at ``delta = 0`` it equals the
  hard rule.
- relative threshold mode: ``delta`` is multiplied by the tensor's gradient
  RMS, so that one value fits layers whose gradients differ in scale.
- adaptive threshold mode (signADAM++'s adaptive confidence, the paper's
  section 6.3): ``delta`` is multiplied by a running average of the
  tensor's gradient standard deviation, updated at every step before it is
  used, ``a <- 0.9 a + 0.1 std(g)`` (a starts at 0: the threshold grows
  to its level over the first tens of steps). `a` is one float32 scalar
  of state per tensor; where each replica forms a signal of its own (the
  majority vote), each keeps its own.

Non-finite components have been replaced by zero before the confidence is
formed (see `base.Optimizer`), so they get zero confidence like any zero
gradient; the per-tensor statistics may be given the raw gradient and count
them as zero.
"""

import functools
import math

from keras import ops

from keras_signadam import checks
from keras_signadam.optimizers import hyperparameters
from keras_signadam.optimizers import reductions
from keras_signadam.optimizers import tracing

CONFIDENCE_KINDS = ("hard", "soft")
THRESHOLD_MODES = ("absolute", "relative", "adaptive")
# The decay of the running standard deviation, and the threshold the
# adaptive mode multiplies it by unless told otherwise (the paper's beta_1
# and beta_2 of section 6.3).
STD_DECAY = 0.9
ADAPTIVE_THRESHOLD = 0.999

# Smallest normal float32: keeps the soft ramp finite when delta is 0.
_TINY = 1.1754944e-38
# The one-pass deviation's limits (`standard_deviation`): the share of
# its mean square that the variance must keep (at most 8 bits lost to
# cancellation), and a mean square far enough above float32's subnormals
# that its squares kept their digits.
_MOST_CANCELLED = 2.0**-8
_SMALLEST_MEAN_SQUARE = 2.0**-100


def root_mean_square(x):
    """RMS of a float tensor, its non-finite components counted as zero,
    without overflow or underflow. `x` as `reductions.l2_norm` takes it."""
    value = reductions.formed(x)
    size = math.prod(value.shape)
    if size == 0:
        return ops.zeros((), value.dtype)
    return reductions.l2_norm(x) / math.sqrt(size)


def standard_deviation(x):
    """Population standard deviation of a float tensor's components, its
    non-finite ones counted as zero.

    One pass over `x`, shifted by its first component k:

        var = mean((x - k)**2) - mean(x - k)**2

    The shift keeps the cancellation small however far the mean is from
    zero; the pass is used when it cost at most 8 bits (of float32's 24)
    to cancellation (var >= 2**-8 * mean((x - k)**2)) and its sums are
    finite (so is every component then) and well above underflow.
    Otherwise (a non-finite component, a first component far out in the
    tails, overflow, underflow) two passes over the finite part run in a
    conditional branch: the mean, then the norm about it
    (`reductions.l2_norm`). As there, pass the raw tensor, or a function
    that forms an expression from tensors in memory: only they and
    scalars enter the branch.
    """
    value = reductions.formed(x)
    size = math.prod(value.shape)
    if size == 0:
        return ops.zeros((), value.dtype)
    shift = ops.reshape(value, (-1,))[0]
    mean_shifted = ops.sum(reductions.row_sums(value - shift)) / size
    mean_square = ops.sum(
        reductions.row_sums(ops.square(value - shift))) / size
    variance = mean_square - ops.square(mean_shifted)
    usable = ops.logical_and(
        ops.logical_and(ops.isfinite(mean_square),
                        mean_square >= _SMALLEST_MEAN_SQUARE),
        variance >= mean_square * _MOST_CANCELLED)

    def two_passes():
        clean = reductions.finite_part(reductions.formed(x))
        mean = ops.sum(reductions.row_sums(clean)) / size
        return reductions.l2_norm(clean, center=mean) / math.sqrt(size)

    return tracing.cond(usable, lambda: ops.sqrt(variance), two_passes)


def confidence(g, delta, kind="hard"):
    """Confidence c(g) in [0, 1] for each component of `g`, at threshold
    `delta` (a magnitude)."""
    magnitude = ops.abs(g)
    if kind == "hard":
        return ops.cast(magnitude > delta, g.dtype)
    ramp = (magnitude - delta) / ops.maximum(delta, _TINY)
    return ops.clip(ramp, 0.0, 1.0)


def zero_indicator(x):
    """1.0 where `x` is zero, else 0.0: the components a ternary signal
    leaves still, counted by the sparsity statistics and the vote."""
    return ops.cast(ops.equal(x, 0.0), x.dtype)


def confident_sign(g, delta, kind="hard"):
    """Returns ``(c * sign(g), zero-confidence indicator)``; the indicator
    is 1.0 where c is 0. A traced update drops it unless statistics are
    counted; run eagerly (PyTorch, or outside a traced function) it is
    computed every step."""
    c = confidence(g, delta, kind)
    return c * ops.sign(g), zero_indicator(c)


class ConfidenceArguments:
    """The confidence arguments of an optimizer (`threshold`, `confidence`,
    `threshold_mode`): checked once, held once, configured once, with the
    state of the adaptive mode. `threshold=None` is `default_threshold`,
    or `ADAPTIVE_THRESHOLD` in the adaptive mode."""

    def __init__(self, optimizer, threshold, kind, mode, default_threshold):
        checks.check_choice("confidence", kind, CONFIDENCE_KINDS)
        checks.check_choice("threshold_mode", mode, THRESHOLD_MODES)
        self._default = default_threshold
        if threshold is None:
            threshold = self.default_for(mode)
        if kind == "soft" and optimizer.aggregation == "majority_vote":
            # A soft confidence is not ternary: it has no 2-bit code.
            raise ValueError(
                "`aggregation='majority_vote'` votes on ternary signals, "
                "which needs confidence='hard'. Received: confidence='soft'")
        self.kind, self.mode = kind, mode
        # A validated variable: callbacks and users change it without
        # re-tracing, and a bad value is refused where it is written.
        self.threshold = optimizer.add_hyperparameter(
            "threshold", threshold, checks.check_non_negative
        )
        self._stds = None

    def default_for(self, mode):
        """The threshold `None` stands for in `mode`."""
        return ADAPTIVE_THRESHOLD if mode == "adaptive" else self._default

    def build(self, optimizer, var_list):
        """The adaptive mode's running standard deviations (called last in
        the optimizer's `build`, so that a mode switched to after it adds
        them in the same place)."""
        if self.mode == "adaptive" and self._stds is None:
            self._stds = optimizer.add_state_variables(
                var_list, "gradient_std", shape=(), dtype="float32",
                per_replica=(
                    optimizer.aggregation_strategy.per_replica_signal()))

    def rule(self, optimizer, p, variable, source=None):
        """This step's ternary rule (`Optimizer.ternary_rule`): the
        confidence-filtered sign at the threshold set from `p`. `source`,
        when given, equals `p` once its non-finite components are zeroed
        and is in memory already (the raw gradient), or is a function
        that forms `p` anew from tensors in memory (the gradient and the
        variable for the coupled decay, error feedback's gradient and
        residual, or the vote's scaled gradient share): the
        per-tensor statistics of the relative and adaptive modes read it,
        so that XLA does not write `p` out for their conditional branch."""
        delta = optimizer.per_update(
            "threshold", p.dtype,
            lambda: ops.cast(self.threshold, p.dtype))
        statistics_of = p if source is None else source
        if self.mode == "relative":
            delta = delta * root_mean_square(statistics_of)
        elif self.mode == "adaptive":
            a = self._stds[optimizer.variable_index(variable)]
            a_new = (STD_DECAY * ops.cast(a, p.dtype)
                     + (1.0 - STD_DECAY) * standard_deviation(statistics_of))
            optimizer.assign(a, ops.cast(a_new, a.dtype))
            delta = delta * a_new
        return functools.partial(confident_sign, delta=delta,
                                 kind=self.kind)

    def switch_mode(self, optimizer, mode, threshold):
        """Changes the threshold mode (and sets `threshold`) of an
        optimizer that may be built; its updates trace again."""
        checks.check_choice("threshold_mode", mode, THRESHOLD_MODES)
        self.threshold.assign(threshold)
        self.mode = mode
        if optimizer.built:
            self.build(optimizer, optimizer._trainable_variables)

    def config(self):
        return {
            "threshold": hyperparameters.read(self.threshold),
            "confidence": self.kind,
            "threshold_mode": self.mode,
        }



class Confident:
    """Mixin of the optimizers with a confidence function (`SignSGD`,
    `SignAdamPP`), before their base class: the confidence arguments, the
    adaptive mode's state (built after every other state), the ternary
    signal and the configuration."""

    def init_confidence(self, threshold, kind, mode, default_threshold):
        self._confidence = ConfidenceArguments(self, threshold, kind, mode,
                                               default_threshold)
        self.threshold = self._confidence.threshold
        self.confidence = kind
        self.threshold_mode = mode

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._confidence.build(self, var_list)

    def ternary_rule(self, p, variable, source=None):
        return self._confidence.rule(self, p, variable, source)

    def set_threshold_mode(self, mode, threshold=None):
        """Switches the confidence threshold to `mode` (see
        `threshold_mode`), with `threshold` (`None`: the mode's default).
        Updates made from now on use it; a train function Keras already
        made keeps the update it traced
        (`model.make_train_function(force=True)` makes it again, as
        `AdaptiveConfidence` does)."""
        if threshold is None:
            threshold = self._confidence.default_for(mode)
        self._confidence.switch_mode(self, mode, threshold)
        self.threshold_mode = mode
        self._release_compiled_updates()

    def get_config(self):
        config = super().get_config()
        config.update(self._confidence.config())
        return config
