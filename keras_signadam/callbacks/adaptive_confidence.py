import math
import warnings

import keras
import numpy as np

from keras_signadam import checks
from keras_signadam.callbacks import common

# The default upper bound of the threshold by `threshold_mode` (see the
# class docstring).
MAX_THRESHOLDS = {"absolute": 1.0, "relative": 10.0, "adaptive": 10.0}
# A fall of the sparsity smaller than this, while delta was lowered by at
# least SATURATION_FACTOR, counts as none (see
# `AdaptiveConfidence._saturated`).
SATURATION_TOLERANCE = 0.01
SATURATION_FACTOR = math.e


class AdaptiveConfidence(keras.callbacks.Callback):
    """Adapts the signADAM++ confidence threshold delta during training.

    Three mechanisms, each optional, usable together. The paper's own
    adaptive method is (c); (a) and (b) are this package's. With no
    arguments,
    `AdaptiveConfidence()` runs the controller (a) on a rising target, the
    sparsity ramp

        target(epoch) = final_sparsity * epoch / (epochs - 1)

    over the `epochs` of `fit`, from 0 to `final_sparsity=0.9`, with the
    plateau rule (b) off. Early on the target 0 drives delta down to
    `min_threshold`, so every component learns while the model is far from
    a minimum; later the target rises and the optimizer keeps learning
    only from the components whose gradients stand out, so the model stops
    fitting its training set where the signal is weak. In the quality
    benchmark (`benchmarks/results/quality.md`, threshold study) this
    narrowed the train-test gap against SignAdamPP's fixed threshold at
    equal or better test accuracy on three of its four tasks.

    (a) Target-sparsity controller. Every `update_every` batches,

            delta <- delta * exp(gain * (target - observed sparsity))

        where `observed sparsity` is the optimizer's fraction of
        zero-confidence gradient components in the last step. Too few
        suppressed components raise delta, too many lower it.
        `target_sparsity` is `"ramp"` (above), a number in [0, 1), a
        function of the epoch returning one, or `None` (controller off).
        The rule is an integral controller on log(delta): following a
        ramp, it trails the target by about the target's rise per update
        divided by `gain * d(sparsity)/d(log delta)`, so it updates every
        batch by default (every 10 batches, on the quality benchmark's
        tasks of about 30 batches an epoch, it ended 0.02 to 0.36 below
        the ramp's 0.9; every batch, within 0.012 on all seven: see
        docs/quality.md). When delta has been lowered by a factor of e or
        more and the sparsity has not fallen by 0.01, the components still
        filtered have exactly zero gradient (dead units, unused inputs),
        which no delta lets through: delta is held there rather than
        lowered further, since it would have to be raised back decade by
        decade once the target rises above them.

    (b) Plateau rule. When `monitor` (default `val_loss`) has not improved
        for `patience` epochs, `delta <- delta * factor`: once the model
        stops improving, it keeps learning only from the components it is
        most confident about. `patience=None` turns it off. Without
        validation data, the default `val_loss` falls back to `loss` (with
        a warning).

    (c) The paper's adaptive confidence (signADAM++, its section 6.3),
        with `std_multiplier`: at the start of training the optimizer is
        switched to `threshold_mode="adaptive"`, in which every step, per
        tensor, a <- 0.9 a + 0.1 std(g) and delta_t = threshold * a
        (computed inside the compiled update), and its `threshold` is set
        to `std_multiplier` (the paper's 0.999). The train function is made
        again for it. With (a) or (b) as well, those then scale the
        multiplier, within the bounds below. The same rule without the
        callback: `SignAdamPP(threshold_mode="adaptive")`, and with
        decoupled `weight_decay` the paper's signADAM++-AW.

    delta is always kept within `[min_threshold, max_threshold]` (a delta of
    0 is started from `min_threshold`, since the multiplicative rule cannot
    leave 0). The upper bound follows the optimizer's `threshold_mode`: an
    absolute delta is a gradient magnitude, capped at 1.0; a relative one
    multiplies the tensor's gradient RMS, and at delta = 10 at most 1% of a
    tensor's components can exceed delta * RMS (Chebyshev's inequality:
    the fraction above k * RMS is at most 1 / k**2), so every target up to
    0.99 stays reachable; an adaptive one multiplies the running standard
    deviation, and takes the relative mode's bound. The threshold is an
    optimizer variable, so (a) and (b) re-trace nothing.
    `threshold` and `sparsity` are written into `logs` every epoch, so
    `History`, `CSVLogger` and `TensorBoard` show them (place this callback
    before those). The full series of the controller's observations is kept
    in `self.history` (`epoch`, `step`, `threshold`, and the `target` and
    `sparsity` observed before that update). The `sparsity` written into
    `logs` is the last step's. With a target, the callback turns on the
    optimizer's `track_statistics` (and leaves it on, so
    `optimizer.sparsity` stays readable after training); the plateau rule
    alone needs no counts.

    Args:
        target_sparsity: `"ramp"`, float in [0, 1), callable
            `epoch -> float`, or `None` (controller off). Defaults to
            `"ramp"`.
        final_sparsity: The ramp's target at the last epoch, in [0, 1).
            Defaults to `0.9`.
        update_every: Batches between controller updates. Each update
            reads the last step's sparsity on the host; on an accelerator
            a larger value saves those reads, at the price of a longer
            lag behind a rising target. Defaults to `1`.
        gain: Controller gain (> 0). Defaults to `1.0`.
        monitor: Quantity for the plateau rule. Defaults to `"val_loss"`.
        patience: Epochs without improvement before delta is multiplied by
            `factor`; `None` turns the rule off. Defaults to `None`.
        factor: Multiplier applied on a plateau (> 0). Defaults to `4.0`.
        min_delta: Smallest change of `monitor` that counts as improvement.
        mode: `"min"`, `"max"` or `"auto"` (max for names containing
            "acc", else min).
        min_threshold: Lower bound of delta (> 0). Defaults to `1e-6`.
        max_threshold: Upper bound of delta, or `None`: `1.0` for an
            absolute threshold, `10.0` for a relative or adaptive one (see
            above). Defaults to `None`.
        std_multiplier: `None` (default: (c) off), or the number >= 0 the
            paper's adaptive threshold multiplies the running gradient
            standard deviation by (its value: `0.999`).
        verbose: 1 prints plateau changes.
    """

    def __init__(
        self,
        target_sparsity="ramp",
        final_sparsity=0.9,
        update_every=1,
        gain=1.0,
        monitor="val_loss",
        patience=None,
        factor=4.0,
        min_delta=0.0,
        mode="auto",
        min_threshold=1e-6,
        max_threshold=None,
        std_multiplier=None,
        verbose=0,
    ):
        super().__init__()
        self.std_multiplier = None if std_multiplier is None else (
            checks.check_non_negative("std_multiplier", std_multiplier))
        if isinstance(target_sparsity, str):
            checks.check_choice("target_sparsity", target_sparsity,
                                ("ramp",))
        elif target_sparsity is not None and not callable(target_sparsity):
            self._check_target(target_sparsity)
        self.final_sparsity = self._check_target(
            final_sparsity, "final_sparsity")
        if not isinstance(update_every, int) or update_every < 1:
            raise ValueError(
                "Argument `update_every` must be an integer >= 1. "
                f"Received: update_every={update_every!r}"
            )
        if patience is not None and (
            not isinstance(patience, int) or patience < 0
        ):
            raise ValueError(
                "Argument `patience` must be None or an integer >= 0. "
                f"Received: patience={patience!r}"
            )
        self.gain = checks.check_positive("gain", gain)
        self.factor = checks.check_positive("factor", factor)
        self.min_delta = checks.check_non_negative("min_delta", min_delta)
        self.min_threshold = checks.check_positive(
            "min_threshold", min_threshold
        )
        self.max_threshold = None if max_threshold is None else (
            checks.check_positive("max_threshold", max_threshold))
        if max_threshold is not None:
            self._check_bounds(self.max_threshold)
        self.mode = checks.check_choice("mode", mode, ("auto", "min", "max"))
        self.target_sparsity = target_sparsity
        self.update_every = update_every
        self.monitor = monitor
        self.patience = patience
        self.verbose = verbose
        self.history = {"epoch": [], "step": [], "threshold": [],
                        "sparsity": [], "target": []}

    def _check_bounds(self, max_threshold):
        if max_threshold < self.min_threshold:
            raise ValueError(
                "Argument `max_threshold` must be >= `min_threshold`. "
                f"Received: max_threshold={max_threshold!r}, "
                f"min_threshold={self.min_threshold!r}"
            )

    def upper_bound(self, optimizer=None):
        """`max_threshold`, or the default for the optimizer's
        `threshold_mode`."""
        if self.max_threshold is not None:
            return self.max_threshold
        optimizer = optimizer or self._optimizer
        mode = getattr(optimizer, "threshold_mode", "absolute")
        return MAX_THRESHOLDS[mode]

    @staticmethod
    def _check_target(value, name="target_sparsity"):
        value = checks.check_finite_number(name, value)
        if not 0.0 <= value < 1.0:
            raise ValueError(
                f"Argument `{name}` must be in [0, 1). "
                f"Received: {name}={value!r}"
            )
        return value

    def target(self, epoch):
        """The sparsity the controller aims at during `epoch` (0-based)."""
        target = self.target_sparsity
        if target == "ramp":
            epochs = (self.params or {}).get("epochs") or 1
            return self.final_sparsity * epoch / max(epochs - 1, 1)
        if callable(target):
            return self._check_target(target(epoch))
        return target

    def _clip(self, value):
        return min(max(value, self.min_threshold), self._upper)

    @property
    def _optimizer(self):
        # Read through `self.model` at every use: on JAX that moves the
        # state the train function carries into the variables (Keras's
        # `jax_state_sync`), and the next step reads the new threshold.
        return common.threshold_optimizer(self.model, "AdaptiveConfidence")

    # -------------------------------------------------------------- hooks
    def on_train_begin(self, logs=None):
        if self.std_multiplier is not None:
            self._use_std_threshold()
        self._upper = self.upper_bound()
        self._check_bounds(self._upper)
        if self.target_sparsity is not None:
            # The controller reads the last step's sparsity.
            common.enable_statistics(self.model, self._optimizer)
        self._epoch = 0
        self._batches = 0
        self._lowering_from = None
        self._wait = 0
        self._warned = False
        minimize = self.mode == "min" or (
            self.mode == "auto" and "acc" not in self.monitor
        )
        self._better = (
            (lambda a, b: a < b - self.min_delta) if minimize
            else (lambda a, b: a > b + self.min_delta)
        )
        self._best = math.inf if minimize else -math.inf

    def _use_std_threshold(self):
        """(c): the optimizer's adaptive threshold mode at
        `std_multiplier`; its update traces again."""
        optimizer = self._optimizer
        if optimizer.threshold_mode == "adaptive" and math.isclose(
                common.get_threshold(optimizer), self.std_multiplier,
                rel_tol=1e-6):
            return
        optimizer.set_threshold_mode("adaptive", self.std_multiplier)
        if getattr(self.model, "train_function", None) is not None:
            self.model.make_train_function(force=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.target_sparsity is None:
            return
        self._batches += 1
        if self._batches % self.update_every:
            return
        target = self.target(self._epoch)
        observed = self._optimizer.sparsity
        current = common.get_threshold(self._optimizer)
        new = self._clip(
            max(current, self.min_threshold)
            * math.exp(self.gain * (target - observed))
        )
        if new < current:
            if self._saturated(current, observed):
                new = current
        elif new > current:
            self._lowering_from = None
        common.set_threshold(self._optimizer, new)
        self.history["epoch"].append(self._epoch)
        self.history["step"].append(self._batches)
        self.history["threshold"].append(new)
        self.history["sparsity"].append(observed)
        self.history["target"].append(target)

    def _saturated(self, current, observed):
        """Whether lowering delta has stopped lowering the sparsity: since
        the point `(delta, sparsity)` where the lowering began (or last
        took effect), delta fell by `SATURATION_FACTOR` or more and the
        sparsity by less than `SATURATION_TOLERANCE`. Small steps near the
        target never trigger it, as their effect is within one step's
        noise; only a long fall does."""
        if self._lowering_from is None:
            self._lowering_from = (current, observed)
            return False
        start, observed_at_start = self._lowering_from
        if observed < observed_at_start - SATURATION_TOLERANCE:
            self._lowering_from = (current, observed)
            return False
        return current * SATURATION_FACTOR <= start

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.patience is not None:
            self._plateau_rule(epoch, logs)
        common.write_logs(logs, self._optimizer)

    def _plateau_rule(self, epoch, logs):
        value = logs.get(self.monitor)
        if value is None and self.monitor == "val_loss" and "loss" in logs:
            if not self._warned:
                warnings.warn(
                    "AdaptiveConfidence: `val_loss` is not in the logs (no "
                    "validation data?); the plateau rule follows `loss`.",
                    stacklevel=2)
                self._warned = True
            value = logs["loss"]
        if value is None or not np.isfinite(value):
            return
        if self._better(value, self._best):
            self._best = value
            self._wait = 0
            return
        self._wait += 1
        if self._wait >= self.patience:
            self._wait = 0
            current = common.get_threshold(self._optimizer)
            new = self._clip(max(current, self.min_threshold) * self.factor)
            common.set_threshold(self._optimizer, new)
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.monitor} has not improved "
                      f"for {self.patience} epochs; threshold "
                      f"{current:.3g} -> {new:.3g}.")
