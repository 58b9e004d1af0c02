"""Base class of the package's optimizers.

What every optimizer here shares, written once:

- Decoupled weight decay is fused into the update (one pass over the
  parameters instead of two); the arithmetic is the base class's
  ``theta <- theta - lr * weight_decay * theta``, applied before the step.
- 16-bit variables are stepped in float32 (`state.py`); with
  `state_dtype="bfloat16"` the moments are stored in bfloat16 with
  stochastic rounding, and with `state_dtype="int8"` (moments bounded in
  [-1, 1]) as stochastically rounded 8-bit codes (`low_precision.py`).
- Sparse gradients (`tf.IndexedSlices`, from `Embedding` layers) are
  densified: rows that were not looked up get a zero gradient, exactly as
  the dense rule would see them.
- Non-finite gradient components (NaN, +-Inf) are replaced by zero before
  they reach any state, and counted with `track_statistics=True`
  (`statistics.py`).
- A learning rate that is not a finite number >= 0 (from a schedule) is an
  error at the step where it appears: eagerly a `ValueError`, in a
  TensorFlow graph a failed assertion. Where no error can be raised (inside
  an XLA-compiled or JAX-traced step) that step does not move the weights.
- On the TensorFlow backend the update compiles itself with XLA
  (`backend/tensorflow/optimizer.py`).
- The sign family can aggregate gradients across `tf.distribute` replicas
  by a majority vote of packed ternary signals (1.6 to 4.6 bits per
  component) instead of a float32 sum
  (`aggregation="majority_vote"`, `backend/tensorflow/majority_vote.py`).
"""

import warnings

import keras
import numpy as np
from keras import ops

from keras_signadam import checks
from keras_signadam import compat
from keras_signadam.optimizers import hyperparameters
from keras_signadam.optimizers import low_precision
from keras_signadam.optimizers import state
from keras_signadam.optimizers import statistics

AGGREGATIONS = ("sum", "majority_vote")


class Optimizer(compat.KerasHooks):
    """Shared machinery; subclasses implement `build` and `update_step`."""

    # Capabilities that callbacks look for (instead of attribute names):
    # the names of the confidence-threshold and momentum hyperparameter
    # variables, or None.
    confidence_threshold_variable = None
    momentum_variable = None
    # Whether some gradient components can get zero confidence.
    tracks_sparsity = False
    # Whether the optimizer keeps per-parameter state (`state_dtype`).
    keeps_state = True
    # Whether every moment is bounded in [-1, 1] (`state_dtype="int8"`).
    bounded_state = False
    # Whether the update is driven by a ternary signal of the gradient
    # (`local_signal`), so that replicas can vote on it (`aggregation`).
    votes_on_signs = False

    def __init__(self, learning_rate, jit_compile=True,
                 track_statistics=False, state_dtype=None,
                 aggregation="sum", **kwargs):
        checks.check_learning_rate(learning_rate)
        low_precision.check_state_dtype(state_dtype)
        checks.check_choice("aggregation", aggregation, AGGREGATIONS)
        if aggregation != "sum" and not self.votes_on_signs:
            raise ValueError(
                f"{type(self).__name__} does not update with the sign of "
                "the gradient, so its gradients cannot be aggregated by a "
                "vote; leave `aggregation` at 'sum'. Received: "
                f"aggregation={aggregation!r}")
        if state_dtype is not None and not self.keeps_state:
            raise ValueError(
                f"{type(self).__name__} keeps no per-parameter state, so "
                "`state_dtype` does not apply; leave it None. Received: "
                f"state_dtype={state_dtype!r}")
        if state_dtype == "int8" and not self.bounded_state:
            raise ValueError(
                f"{type(self).__name__}'s moments are not bounded in "
                "[-1, 1], so they cannot be stored as 8-bit codes; "
                "`state_dtype=\"int8\"` is for SignAdam and SignAdamPP. "
                "Use 'bfloat16'. Received: state_dtype='int8'")
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
        self.state_dtype = state_dtype
        # Paths of the state variables int8 state keeps as square roots.
        self._square_rooted = set()
        self.aggregation = aggregation
        # True while the update being traced receives majority votes in
        # place of gradients (set by `aggregate_tf_gradients`).
        self.receives_votes = False
        self._compiled = None
        self._traced = False
        self._track_statistics = checks.check_bool(
            "track_statistics", track_statistics
        )

    # ---------------------------------------------------------- statistics
    @property
    def track_statistics(self):
        return self._track_statistics

    @track_statistics.setter
    def track_statistics(self, value):
        checks.check_bool("track_statistics", value)
        if value == self._track_statistics:
            return
        self._track_statistics = value
        # The flag is read while tracing: our own compiled updates trace
        # again, but a train function Keras already made keeps its update.
        self._release_compiled_updates()
        if self._traced:
            warnings.warn(
                f"`track_statistics={value}` takes effect in train "
                "functions made from now on; the one Keras already made "
                "keeps the update it traced. Call "
                "`model.make_train_function(force=True)` (or `compile` "
                "again) before the next `fit`.",
                stacklevel=2,
            )

    @property
    def sparsity(self):
        """Fraction of gradient components with zero confidence in the last
        update of each variable (0 before the first step; `None` for
        optimizers without a confidence function, or when
        `track_statistics=False`)."""
        if not self.tracks_sparsity or not self.track_statistics:
            return None
        return self._counters.sparsity() if self.built else 0.0

    @property
    def nonfinite_count(self):
        """Total number of non-finite gradient components skipped (`None`
        when `track_statistics=False`; they are skipped all the same)."""
        if not self.track_statistics:
            return None
        return self._counters.nonfinite_count() if self.built else 0

    # ----------------------------------------------------------- variables
    def add_hyperparameter(self, argument, value, check):
        """A hyperparameter held in a variable that validates its writes
        (`hyperparameters.py`), so callbacks can change it without
        re-tracing the train function."""
        return hyperparameters.add_hyperparameter(self, argument, value,
                                                  check)

    def add_scalar_variable(self, name, value, dtype="float32", shape=()):
        """State shared by all model variables (not a hyperparameter)."""
        return self.add_variable(
            shape=shape,
            initializer=keras.initializers.Constant(value),
            dtype=dtype,
            aggregation="only_first_replica",
            name=name,
        )

    def add_state_variables(self, var_list, name, square_root=False,
                            **kwargs):
        """One state variable per model variable (`state.py`).
        `square_root=True` marks a moment in [0, 1] that int8 state keeps
        as the code of its square root."""
        states = state.add_state_variables(self, var_list, name, **kwargs)
        if square_root:
            self._square_rooted.update(
                v.path for v in states if v is not None)
        return states

    def build(self, var_list):
        super().build(var_list)
        self._counters = statistics.Counters(self, var_list)

    # ------------------------------------------------------ update helpers
    def variable_index(self, variable):
        return compat.variable_index(self, variable)

    def prepare_gradient(self, gradient, variable):
        """Returns ``(clean, raw)``: the dense gradient in the variable's
        compute dtype with non-finite components zeroed, and as it came
        (for the counts)."""
        raw = ops.cast(ops.convert_to_tensor(gradient),
                       state.compute_dtype(variable))
        return ops.where(ops.isfinite(raw), raw, ops.zeros_like(raw)), raw

    def step_size(self, learning_rate, variable):
        """The learning rate in the compute dtype; 0 (no step) when it is
        not a finite number >= 0 (see the module docstring)."""
        lr = ops.cast(learning_rate, state.compute_dtype(variable))
        valid = ops.logical_and(ops.isfinite(lr), lr >= 0)
        return ops.where(valid, lr, ops.zeros_like(lr))

    def hyperparameter(self, variable, dtype):
        return ops.cast(variable, dtype)

    def decayed_value(self, variable, lr):
        """Value of `variable` in its compute dtype after decoupled weight
        decay with step size `lr` (from `step_size`)."""
        value = ops.cast(variable, state.compute_dtype(variable))
        if self.weight_decay is None or not compat.uses_weight_decay(
            self, variable
        ):
            return value
        return value - lr * self.weight_decay * value

    def write_variable(self, variable, value):
        self.assign(variable, ops.cast(value, variable.dtype))

    def read_state(self, state_variable, dtype):
        if self.state_dtype == "int8":
            return low_precision.decode_int8(
                state_variable, dtype,
                state_variable.path in self._square_rooted)
        return ops.cast(state_variable, dtype)

    def write_states(self, variable, *moments):
        """Stores up to two moments ``(state_variable, value)`` of
        `variable`. In bfloat16 state each is rounded stochastically, with
        one 16-bit half of this step's random bits for the variable; in
        int8 state each is stored as its rounded code."""
        if self.state_dtype not in low_precision.ROUNDED:
            for state_variable, value in moments:
                self.write_variable(state_variable, value)
            return
        bits = low_precision.random_bits(
            variable.shape, self.iterations, self.variable_index(variable))
        halves = (low_precision.low_half(bits),
                  low_precision.high_half(bits))
        for (state_variable, value), half in zip(moments, halves):
            if self.state_dtype == "int8":
                stored = low_precision.encode_int8(
                    value, half, state_variable.path in self._square_rooted)
            else:
                stored = low_precision.round_to_bfloat16(value, half)
            self.assign(state_variable, stored)

    def local_signal(self, g, raw_gradient, variable):
        """The ternary signal ``(s, zero indicator)`` of one gradient, as
        the update rule forms it (sign family): here sign(g); the
        optimizers with a confidence function filter it."""
        s = ops.sign(g)
        return s, ops.cast(ops.equal(s, 0.0), g.dtype)

    def sign_signal(self, g, raw_gradient, variable):
        """`local_signal`, or, when the replicas voted, the vote itself:
        it arrives in place of the gradient and is already the signal."""
        if self.receives_votes:
            return g, ops.cast(ops.equal(g, 0.0), g.dtype)
        return self.local_signal(g, raw_gradient, variable)

    def record_statistics(self, variable, raw_gradient, zero_confidence=None):
        if self.track_statistics:
            self._counters.record(self, variable, raw_gradient,
                                  zero_confidence)

    # --------------------------------------------------------- the update
    def run_update_step(self, apply, learning_rate):
        """Runs Keras's per-step update `apply(learning_rate)`, then
        `finish_step` (after every variable's update has read the shared
        state; ordered by the variable reads and writes on every backend)."""
        value = hyperparameters.concrete(learning_rate)
        if value is None:
            self._traced = True
            if keras.backend.backend() == "tensorflow":
                from keras_signadam.backend.tensorflow import optimizer

                learning_rate = optimizer.checked_learning_rate(
                    learning_rate
                )
        elif not (np.all(np.isfinite(value)) and np.all(value >= 0)):
            raise ValueError(
                "The learning rate must be a finite number >= 0 at every "
                f"step; at step {int(ops.convert_to_numpy(self.iterations))}"
                f" it is {value!r} (check the learning rate schedule)."
            )
        try:
            apply(learning_rate)
        finally:
            self.receives_votes = False
        self.finish_step()

    def finish_step(self):
        """Advances state shared by all variables, once per update."""

    def aggregate_tf_gradients(self, keras_sum, grads_and_vars):
        """TensorFlow only, in the replica context: the gradients every
        replica's update receives. Keras's float sum, or with
        `aggregation="majority_vote"` and several replicas, the vote."""
        if self.aggregation == "sum":
            return keras_sum()
        from keras_signadam.backend.tensorflow import majority_vote

        context = majority_vote.replica_context()
        if context is None:
            return keras_sum()
        self.receives_votes = True
        return majority_vote.voted_gradients(self, grads_and_vars, context)

    def run_distributed_tf_update(self, keras_update, distribution,
                                  grads_and_vars, learning_rate):
        """TensorFlow only: the update as XLA-compiled functions."""
        if not self.jit_compile:
            return keras_update()
        from keras_signadam.backend.tensorflow import optimizer

        if self._compiled is None:
            self._compiled = optimizer.CompiledUpdates()
        optimizer.distributed_update(self, self._compiled, distribution,
                                     grads_and_vars, learning_rate)

    def _release_compiled_updates(self):
        compiled = getattr(self, "_compiled", None)
        if compiled is not None:
            compiled.clear()

    def get_config(self):
        config = super().get_config()
        config["jit_compile"] = self.jit_compile
        config["state_dtype"] = self.state_dtype
        config["aggregation"] = self.aggregation
        config["track_statistics"] = self.track_statistics
        return config
