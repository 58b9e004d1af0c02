"""Base class of the package's optimizers.

What every optimizer here shares, written once:

- Decoupled weight decay is fused into the update (one pass over the
  parameters instead of two); the arithmetic is the base class's
  ``theta <- theta - lr * weight_decay * theta``, applied before the step.
- float16 / bfloat16 variables are updated in float32 and cast back; their
  optimizer state is kept in float32 (an exponential average with decay
  0.999 cannot move in bfloat16, whose spacing near 1 is 2**-8).
- Sparse gradients (`tf.IndexedSlices`, from `Embedding` layers) are
  densified: rows that were not looked up get a zero gradient, exactly as
  the dense rule would see them.
- Non-finite gradient components (NaN, +-Inf) are replaced by zero before
  they reach any state. With `track_statistics=True` they are counted
  (`nonfinite_count`), with the zero-confidence components (`sparsity`).
  Counting is opt-in because it is a reduction over the gradient: XLA on
  CPU runs it as a second pass that the element-wise update cannot absorb
  (about +60% per step, `benchmarks/RESULTS.md`).
- On the TensorFlow backend, the update compiles itself with XLA
  (`jit_compile=True`), because Keras does not XLA-compile the train step on
  CPU-only machines or under `tf.distribute`, and an uncompiled update runs
  one small kernel per operation. Inside an XLA-compiled train step the
  compiled update simply inlines.
"""

import math

import keras
from keras import ops

from keras_signadam.optimizers import checks
from keras_signadam.optimizers import reductions

LOW_PRECISION = ("float16", "bfloat16")


def state_dtype(variable):
    """Optimizer state is float32 for 16-bit variables, else the var's dtype."""
    dtype = keras.backend.standardize_dtype(variable.dtype)
    return "float32" if dtype in LOW_PRECISION else dtype


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
            turns it on when it needs the sparsity; it may also be set
            later (`optimizer.track_statistics = True`), which makes the
            update trace again. Defaults to `False`.
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
        ema_overwrite_frequency, loss_scale_factor,
        gradient_accumulation_steps, name: As in
            `keras.optimizers.Optimizer`."""


def fill_docstring(cls):
    if cls.__doc__:
        cls.__doc__ = cls.__doc__.replace(
            "{{base_arguments}}", BASE_ARGUMENTS_DOC
        )
    return cls


class _FunctionCache:
    """Plain holder, so that attribute tracking does not see the functions."""

    def __init__(self):
        self.functions = {}


class Optimizer(keras.optimizers.Optimizer):
    """Shared machinery; subclasses implement `build` and `update_step`."""

    # Subclasses that zero some gradient components set this to True.
    tracks_sparsity = False

    def __init__(self, learning_rate, jit_compile=True,
                 track_statistics=False, **kwargs):
        checks.check_learning_rate(learning_rate)
        # Keras accepts these unchecked; a string here would fail only
        # inside the train step, far from its cause.
        for name in ("clipnorm", "clipvalue", "global_clipnorm"):
            if kwargs.get(name) is not None:
                checks.check_positive(name, kwargs[name])
        if kwargs.get("use_ema"):
            checks.check_bool("use_ema", kwargs["use_ema"])
        checks.check_optional_non_negative(
            "weight_decay", kwargs.get("weight_decay")
        )
        checks.check_bool("jit_compile", jit_compile)
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.jit_compile = jit_compile
        self._xla_updates = _FunctionCache()
        self.track_statistics = track_statistics

    @property
    def track_statistics(self):
        return self._track_statistics

    @track_statistics.setter
    def track_statistics(self, value):
        checks.check_bool("track_statistics", value)
        if value != getattr(self, "_track_statistics", value):
            # The flag is read while tracing: compiled updates must trace
            # again (a Keras train function too; see `enable_statistics`).
            self._xla_updates.functions.clear()
        self._track_statistics = value

    # ----------------------------------------------------------- variables
    def add_scalar_variable(self, name, value, dtype="float32", shape=()):
        """A hyperparameter (or state shared by all variables) held in a
        variable, so callbacks can change it without re-tracing the train
        function."""
        return self.add_variable(
            shape=shape,
            initializer=keras.initializers.Constant(value),
            dtype=dtype,
            aggregation="only_first_replica",
            name=name,
        )

    def add_state_variables(self, var_list, name, shape=None, dtype=None,
                            initializer="zeros"):
        """One optimizer variable per model variable.

        `shape=None` mirrors the model variable's shape; `dtype=None` uses
        `state_dtype`. Variables that Keras overwrites with their gradient
        get `None`, as in `add_optimizer_variables`.
        """
        states = []
        for variable in var_list:
            if self._overwrite_variable_with_gradient(variable):
                states.append(None)
                continue
            path = getattr(variable, "path", None) or str(variable.name)
            path = path.replace("/", "_").replace(":", "_")
            states.append(
                self._colocated(
                    variable,
                    lambda v=variable: self.add_variable(
                        shape=v.shape if shape is None else shape,
                        initializer=initializer,
                        dtype=dtype or state_dtype(v),
                        name=f"{path}_{name}",
                        # A layout fits only state of the variable's shape.
                        layout=(getattr(v, "_layout", None) if shape is None
                                else None),
                    ),
                )
            )
        return states

    def _colocated(self, variable, create):
        strategy = getattr(self, "_distribution_strategy", None)
        if strategy is None:
            return create()
        value = variable.value if isinstance(variable, keras.Variable) else (
            variable
        )
        with strategy.extended.colocate_vars_with(value):
            return create()

    def build(self, var_list):
        super().build(var_list)
        # Per model variable: [zero-confidence components in the last step,
        # non-finite components skipped so far]. Kept per variable so each
        # update writes only its own state (no cross-variable dependency,
        # nothing to reduce across replicas). Built even when statistics
        # are off, so they can be turned on later and checkpoints hold the
        # same variables either way.
        self._counters = self.add_state_variables(
            var_list, "counters", shape=(2,), dtype="int"
        )
        self._variable_sizes = [
            math.prod(v.shape) for v in var_list
        ]

    # ------------------------------------------------------ update helpers
    def prepare_gradient(self, gradient):
        """Returns ``(clean, raw)``: the dense float32 gradient with
        non-finite components zeroed, and as it came (for the counts)."""
        raw = ops.cast(ops.convert_to_tensor(gradient), "float32")
        return ops.where(ops.isfinite(raw), raw, ops.zeros_like(raw)), raw

    def decayed_value(self, variable, learning_rate):
        """float32 value of `variable` after decoupled weight decay."""
        value = ops.cast(variable, "float32")
        if self.weight_decay is None or not self._use_weight_decay(variable):
            return value
        decay = ops.cast(learning_rate, "float32") * self.weight_decay
        return value - decay * value

    def write_variable(self, variable, value):
        self.assign(variable, ops.cast(value, variable.dtype))

    def record_statistics(self, variable, raw_gradient, zero_confidence=None):
        """Counts zero-confidence and non-finite gradient components.

        `zero_confidence` is a float tensor, 1 where the component had zero
        confidence (non-finite ones included), or `None` for optimizers
        without a confidence function.

        XLA on CPU does not fuse a reduction into the element-wise update,
        so each count is an extra pass over the gradient. The common case
        needs one: the indicator plus `0 * raw_gradient` sums to NaN exactly
        when a component is non-finite, and only then are both counted
        separately.
        """
        if not self.track_statistics:
            return
        counters = self._counters[self._get_variable_index(variable)]
        if counters is None:
            return
        dtype = counters.dtype
        nonfinite = ops.logical_not(ops.isfinite(raw_gradient))

        def separate_counts():
            zeros = (
                ops.zeros((), "int32") if zero_confidence is None
                else reductions.count(zero_confidence)
            )
            return zeros, reductions.count(ops.cast(nonfinite, "float32"))

        indicator = (
            ops.zeros_like(raw_gradient) if zero_confidence is None
            else zero_confidence
        )
        rows = reductions.row_sums(indicator + raw_gradient * 0.0)
        zeros, bad = ops.cond(
            ops.all(ops.isfinite(rows)),
            lambda: (ops.sum(ops.cast(rows, "int32")),
                     ops.zeros((), "int32")),
            separate_counts,
        )
        self.assign(
            counters,
            ops.stack(
                [ops.cast(zeros, dtype), counters[1] + ops.cast(bad, dtype)]
            ),
        )

    def step_count(self):
        """The 1-based step count t as float32."""
        return ops.cast(self.iterations + 1, "float32")

    # -------------------------------------------------------- statistics
    @property
    def sparsity(self):
        """Fraction of gradient components with zero confidence in the last
        update of each variable (0 before the first step; `None` for
        optimizers without a confidence function, or when
        `track_statistics=False`)."""
        if not self.tracks_sparsity or not self.track_statistics:
            return None
        if not self.built:
            return 0.0
        zeros = sum(
            int(ops.convert_to_numpy(c)[0])
            for c in self._counters if c is not None
        )
        total = sum(
            n for n, c in zip(self._variable_sizes, self._counters)
            if c is not None
        )
        return zeros / total if total else 0.0

    @property
    def nonfinite_count(self):
        """Total number of non-finite gradient components skipped (`None`
        when `track_statistics=False`; they are skipped all the same)."""
        if not self.track_statistics:
            return None
        if not self.built:
            return 0
        return sum(
            int(ops.convert_to_numpy(c)[1])
            for c in self._counters if c is not None
        )

    # --------------------------------------------------------- the update
    def _apply_weight_decay(self, variables):
        # Fused into `update_step` through `decayed_value`.
        return

    def _backend_update_step(self, grads, trainable_variables,
                             learning_rate):
        super()._backend_update_step(grads, trainable_variables,
                                     learning_rate)
        # After every variable's update has read the shared state (ordered
        # by the variable reads and writes on every backend).
        self.finish_step()

    def finish_step(self):
        """Advances state shared by all variables, once per update."""

    def _distributed_tf_update_step(self, distribution, grads_and_vars,
                                    learning_rate):
        """TensorFlow only: run the updates as XLA-compiled functions."""
        if not self.jit_compile:
            return super()._distributed_tf_update_step(
                distribution, grads_and_vars, learning_rate
            )
        import tensorflow as tf

        if not tf.distribute.has_strategy():
            # One compiled function for all variables: a single launch.
            variables = [v for _, v in grads_and_vars]
            update = self._compiled_update(variables, "")
            update(
                [tf.convert_to_tensor(g) for g, _ in grads_and_vars],
                tf.convert_to_tensor(learning_rate),
            )
            return

        # Under a strategy each replica's copy is updated on its own device;
        # `variable` is that device's component.
        def update_one(variable, gradient, lr):
            update = self._compiled_update([variable], variable.device)
            return update(
                [tf.convert_to_tensor(gradient)], tf.convert_to_tensor(lr)
            )

        for gradient, variable in grads_and_vars:
            distribution.extended.update(
                variable, update_one, args=(gradient, learning_rate),
                group=False,
            )

    def _compiled_update(self, variables, device):
        import tensorflow as tf

        key = (tuple(self._var_key(v) for v in variables), device)
        update = self._xla_updates.functions.get(key)
        if update is None:
            def apply_all(gradients, learning_rate):
                for gradient, variable in zip(gradients, variables):
                    self.update_step(gradient, variable, learning_rate)

            update = tf.function(
                apply_all, jit_compile=True, autograph=False
            )
            self._xla_updates.functions[key] = update
        return update

    def get_config(self):
        config = super().get_config()
        config["jit_compile"] = self.jit_compile
        config["track_statistics"] = self.track_statistics
        return config
