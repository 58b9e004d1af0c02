"""Base class of the package's optimizers.

What every optimizer here shares, written once:

- Decoupled weight decay is fused into the update (one pass over the
  parameters instead of two); the arithmetic is the base class's
  ``theta <- theta - lr * weight_decay * theta``, applied before the step.
- What an optimizer supports is declared once, in its `capabilities`
  (`Capabilities` below): its per-parameter states, the aggregations it
  allows, and the variables callbacks may change. Validation reads it.
- 16-bit variables are stepped in float32 (`state.py`). Each state is
  read and written through the codec `state_dtype` chose for it in `build`
  (`storage.py`: exact, stochastically rounded bfloat16, or 8-bit codes for
  bounded moments), so no update rule knows how its state is stored.
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
- Gradients are combined across `tf.distribute` replicas by the
  optimizer's aggregation strategy (`aggregation.py`): the exact float32
  sum, or for the sign family a majority vote of packed ternary signals
  (`aggregation="majority_vote"`; its bits per component by replica
  count are `backend.packing.bits_per_component`).
- The sign family's ternary signal is formed by the step's `ternary_rule`
  (set once per variable and step) from `signal_input`, and passes
  through the optimizer's error-feedback form (`error_feedback.py`: none,
  or the scaled-sign residual), wherever the aggregation strategy
  compresses it.
"""

import contextlib
import dataclasses
import warnings

import keras
import numpy as np
from keras import ops

from keras_signadam import checks
from keras_signadam import compat
from keras_signadam.optimizers import aggregation as aggregation_module
from keras_signadam.optimizers import confidence
from keras_signadam.optimizers import error_feedback as feedback_module
from keras_signadam.optimizers import hyperparameters
from keras_signadam.optimizers import low_precision
from keras_signadam.optimizers import per_update
from keras_signadam.optimizers import reductions
from keras_signadam.optimizers import state
from keras_signadam.optimizers import statistics
from keras_signadam.optimizers import storage


def plain_sign(p):
    """``(sign(p), zero indicator)``: the ternary rule without a
    confidence function."""
    s = ops.sign(p)
    return s, confidence.zero_indicator(s)


def dense(gradient):
    """`gradient` as a dense tensor: TensorFlow's sparse gradients
    (`tf.IndexedSlices`, from `Embedding` layers) get zeros in the rows
    that were not looked up (for the update and for clipping by norm)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(gradient, tf.IndexedSlices):
            return tf.convert_to_tensor(gradient)
    return ops.convert_to_tensor(gradient)


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What an optimizer supports, declared once per class.

    moments: its per-parameter states (`storage.Moment`), in the order
        `build` adds them; `state_dtype` applies when there is one, and
        "int8" when all are bounded.
    aggregations: the `aggregation` values it accepts
        (`aggregation.STRATEGIES`).
    error_feedback: the `aggregation` values under which its signal is a
        compression that `error_feedback=True` can feed back (empty: the
        argument is refused).
    sparsity: whether some gradient components can get zero confidence
        (`optimizer.sparsity`).
    threshold_variable, momentum_variable: the attributes holding the
        hyperparameter variables that callbacks change (the confidence
        threshold; beta_1 or the momentum), or None.
    coupled_weight_decay: whether it takes `coupled_weight_decay`, the L2
        term added to the gradient before its signal is formed (the sign
        family).
    """

    moments: tuple = ()
    aggregations: tuple = ("sum",)
    error_feedback: tuple = ()
    sparsity: bool = False
    threshold_variable: str = None
    momentum_variable: str = None
    coupled_weight_decay: bool = False


class Optimizer(compat.KerasHooks):
    """Shared machinery; subclasses declare `capabilities` and implement
    `build` and `update_step`."""

    capabilities = Capabilities()
    # Arguments added in 0.6, with the value a config saved by 0.5 (which
    # lacks them) was trained with (`from_config`).
    config_defaults_before_0_6 = {}

    def __init__(
        self,
        learning_rate,
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
        moments=None,
        **kwargs,
    ):
        checks.check_learning_rate(learning_rate)
        # `moments`: the states this instance keeps, where its update rule
        # is chosen by an argument (`sign_family.py`).
        capabilities = self.capabilities
        if moments is not None:
            capabilities = dataclasses.replace(capabilities,
                                               moments=tuple(moments))
        coupled_weight_decay = checks.check_non_negative(
            "coupled_weight_decay", coupled_weight_decay)
        if coupled_weight_decay and not capabilities.coupled_weight_decay:
            raise ValueError(
                f"{type(self).__name__} does not take "
                "`coupled_weight_decay`. Received: "
                f"coupled_weight_decay={coupled_weight_decay!r}")
        checks.check_choice("aggregation", aggregation,
                            tuple(aggregation_module.STRATEGIES))
        if aggregation not in capabilities.aggregations:
            raise ValueError(
                f"{type(self).__name__} does not update with the sign of "
                "the gradient, so its gradients cannot be aggregated by a "
                "vote; leave `aggregation` at 'sum'. Received: "
                f"aggregation={aggregation!r}")
        checks.check_bool("error_feedback", error_feedback)
        if error_feedback and aggregation not in capabilities.error_feedback:
            raise ValueError(
                f"{type(self).__name__} compresses nothing with "
                f"`aggregation={aggregation!r}`, so there is no residual "
                "to feed back"
                + (f"; it does with aggregation="
                   f"{capabilities.error_feedback[0]!r}"
                   if capabilities.error_feedback else "")
                + ". Received: error_feedback=True")
        feedback = feedback_module.form(error_feedback)
        storage.check_state_dtype(
            state_dtype, capabilities.moments + feedback.moments,
            type(self).__name__)
        # Keras accepts these unchecked; a string here would fail only
        # inside the train step, far from its cause, and a NaN loss scale
        # would make every gradient non-finite (a silent no-op).
        for argument, value in (("clipnorm", clipnorm),
                                ("clipvalue", clipvalue),
                                ("global_clipnorm", global_clipnorm),
                                ("loss_scale_factor", loss_scale_factor)):
            if value is not None:
                checks.check_positive(argument, value)
        checks.check_bool("use_ema", use_ema)
        checks.check_optional_non_negative("weight_decay", weight_decay)
        checks.check_bool("jit_compile", jit_compile)
        super().__init__(
            learning_rate=learning_rate,
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
        hyperparameters.guard_learning_rate(self)
        self.capabilities = capabilities
        self.coupled_weight_decay = coupled_weight_decay
        self.jit_compile = jit_compile
        self.state_dtype = state_dtype
        self.aggregation = aggregation
        self.error_feedback = error_feedback
        self.feedback = feedback
        self.aggregation_strategy = aggregation_module.strategy(aggregation)
        self._stored = {}
        self._per_update = per_update.PerUpdate()
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
        if not self.capabilities.sparsity or not self.track_statistics:
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

    @property
    def state_moments(self):
        """The per-parameter states this optimizer keeps: those its class
        declares, and its error-feedback residual."""
        return self.capabilities.moments + self.feedback.moments

    def add_moment(self, var_list, moment, per_replica=False):
        """The state `moment` (one of `state_moments`) of every variable in
        `var_list`, stored through the codec `state_dtype` picks for it
        (`storage.py`); `per_replica`: each replica keeps its own
        (`state.py`)."""
        if moment not in self.state_moments:
            raise ValueError(
                f"{type(self).__name__} adds the state {moment.name!r} but "
                "does not declare it in `capabilities.moments`, which "
                "`state_dtype` validation reads.")
        codec = storage.codec_for(self.state_dtype, moment)
        variables = state.add_state_variables(self, var_list, moment.name,
                                              dtype=codec.dtype,
                                              per_replica=per_replica)
        stored = storage.StoredMoment(moment, codec, variables)
        self._stored[moment.name] = stored
        return stored

    def moment_bound(self, name):
        """The range the update rule gives moment `name` now (see
        `storage.py`); 1 unless the optimizer says otherwise."""
        return 1.0

    def moment_values(self, name):
        """The current values of moment `name` (one of
        `capabilities.moments`), decoded from storage: one float32 NumPy
        array per model variable (None where it keeps no state)."""
        stored = self._stored[name]
        bound = self.moment_bound(name)
        return [None if v is None else hyperparameters.value_of(
                    stored.codec.decode(ops.convert_to_tensor(v.value),
                                        "float32", bound))
                for v in stored]

    def add_state_variables(self, var_list, name, **kwargs):
        """One plain state variable per model variable (`state.py`), for
        state that no codec stores (per-layer scalars, counters)."""
        return state.add_state_variables(self, var_list, name, **kwargs)

    def build(self, var_list):
        super().build(var_list)
        self._counters = statistics.Counters(self, var_list)
        self.feedback.build(self, var_list)

    def apply(self, grads, trainable_variables=None):
        if (not self.built and trainable_variables is not None
                and len(grads) and keras.backend.backend() == "tensorflow"):
            from keras_signadam.backend.tensorflow import optimizer

            # Keras builds the optimizer in its first call, which `fit`
            # traces when there is no distribution strategy. Built there,
            # each state variable gets a conditional initializer that
            # TensorFlow then lifts out of the graph again: a quarter to a
            # third of a small model's first epoch (benchmarks/first_fit.py).
            # Built eagerly instead, as Keras does under a strategy.
            trainable_variables = list(trainable_variables)
            with optimizer.outside_traces():
                with keras.name_scope(self.name, caller=self):
                    self.build(trainable_variables)
                self.built = True
        return super().apply(grads, trainable_variables)

    def _clip_by_norm(self, values, axes=None):
        """Keras's `clipnorm`, ``g * clipnorm / max(norm(g), clipnorm)``
        per tensor, with the norm of `reductions.l2_norm`: non-finite
        components count as zero there (they stay non-finite, and the
        update zeroes and counts them, where Keras's norm made every
        component of the tensor NaN), a norm whose square overflows is
        still right (Keras's was inf, and the clipped gradient 0), and XLA
        sums the squares in rows instead of writing them out on CPU."""
        if axes is not None:
            return super()._clip_by_norm(values, axes)
        values = dense(values)
        norm = reductions.l2_norm(values)
        return values * self.clipnorm / ops.maximum(norm, self.clipnorm)

    def _clip_gradients(self, grads):
        """Keras's `global_clipnorm` with the norms of `_clip_by_norm`:
        every gradient times ``min(1, global_clipnorm / global norm)``,
        non-finite components counting as zero in the norm (Keras's made
        every gradient NaN, so one such component lost the whole step)."""
        if self.clipnorm or not self.global_clipnorm:
            return super()._clip_gradients(grads)
        grads = [None if g is None else dense(g) for g in grads]
        norms = [ops.cast(reductions.l2_norm(g), "float32")
                 for g in grads if g is not None]
        if not norms:
            return grads
        total = reductions.l2_norm(ops.stack(norms))
        clip = self.global_clipnorm
        scale = clip * ops.minimum(1.0 / total, 1.0 / clip)
        return [None if g is None else g * ops.cast(scale, g.dtype)
                for g in grads]

    def load_own_variables(self, store):
        """Refuses a file whose state is stored otherwise than this
        optimizer stores it (int8 codes read as moments, or the reverse),
        naming `state_dtype`, instead of loading codes as values."""
        if len(store.keys()) == len(self.variables):
            for i, variable in enumerate(self.variables):
                saved = np.dtype(np.asarray(store[str(i)]).dtype).name
                expected = keras.backend.standardize_dtype(variable.dtype)
                if (saved == "int8") != (expected == "int8"):
                    raise ValueError(
                        f"The saved state of optimizer {self.name!r} does "
                        f"not match its `state_dtype={self.state_dtype!r}`: "
                        f"variable {variable.path!r} is {expected} here but "
                        f"{saved} in the file. Load it with the "
                        "`state_dtype` it was saved with.")
        super().load_own_variables(store)

    # ------------------------------------------------------ update helpers
    def variable_index(self, variable):
        return compat.variable_index(self, variable)

    def compute_dtype(self, variable):
        """The dtype `variable`'s update is computed in (`state.py`)."""
        return state.compute_dtype(variable)

    def prepare_gradient(self, gradient, variable):
        """Returns ``(clean, raw)``: the dense gradient in the variable's
        compute dtype and the variable's static shape (some gradients
        arrive with unknown dimensions), with non-finite components zeroed,
        and as it came (for the counts)."""
        raw = ops.cast(dense(gradient), state.compute_dtype(variable))
        raw = ops.reshape(raw, tuple(variable.shape))
        return reductions.finite_part(raw), raw

    def per_update(self, name, dtype, compute):
        """`compute()`, once per update and `dtype` for all variables
        (`per_update.py`): for values that depend only on the step."""
        return self._per_update.get(name, dtype, compute)

    @contextlib.contextmanager
    def update_scope(self):
        """A context in which `per_update` values are shared: one update,
        or one traced function that runs the variables' updates. Every
        write left in it (`write_moments_later`) must have been made."""
        with self._per_update.scope():
            yield
            if self._later_writes():
                raise RuntimeError(
                    f"{type(self).__name__}'s update left state writes "
                    "(`write_moments_later`) that no `flush_later_writes` "
                    "made: the error-feedback residual would keep its "
                    "value.")

    def step_size(self, learning_rate, variable):
        """The learning rate in the compute dtype; 0 (no step) when it is
        not a finite number >= 0 (see the module docstring)."""
        dtype = state.compute_dtype(variable)

        def checked():
            lr = ops.cast(learning_rate, dtype)
            valid = ops.logical_and(ops.isfinite(lr), lr >= 0)
            return ops.where(valid, lr, ops.zeros_like(lr))

        return self.per_update("learning_rate", dtype, checked)

    def decayed_value(self, variable, lr):
        """Value of `variable` in its compute dtype after decoupled weight
        decay with step size `lr` (from `step_size`)."""
        dtype = state.compute_dtype(variable)
        value = ops.cast(variable, dtype)
        if self.weight_decay is None or not compat.uses_weight_decay(
            self, variable
        ):
            return value
        decay = self.per_update("weight_decay", dtype,
                                lambda: lr * self.weight_decay)
        return value - decay * value

    def write_variable(self, variable, value):
        self.assign(variable, ops.cast(value, variable.dtype))
        self._written(variable, value)

    def write_moments_later(self, variable, *updates, stream=0):
        """`write_moments` at `flush_later_writes`, for state the update
        does not read (the error-feedback residual): once `variable` and
        its moments are written, ordered after all of them. The update
        reads the state's old value; without an order between the two,
        XLA keeps a copy of it (or of what it was computed from) at every
        step. Outside an update scope (`update_scope`) there is nothing
        to order against: it writes now."""
        later = self._later_writes()
        if later is None:
            self.write_moments(variable, *updates, stream=stream)
            return
        writes, _ = later.setdefault(self.variable_index(variable), ([], []))
        writes.append((updates, stream))

    def flush_later_writes(self, variable, after=()):
        """Makes `variable`'s pending `write_moments_later`, each value
        made to depend on every value written for `variable` since they
        were left, and on the tensors in `after` (what a function that
        writes no variable computes from the state's old value), without
        a change of its bits."""
        later = self._later_writes()
        writes, written = (later or {}).pop(self.variable_index(variable),
                                            ((), ()))
        anchors = [*written, *after]
        for updates, stream in writes:
            if anchors:
                updates = [(moment, low_precision.ordered_after(value,
                                                                anchors),
                            *bound) for moment, value, *bound in updates]
            self.write_moments(variable, *updates, stream=stream)

    def _later_writes(self):
        """Variable index -> (pending writes, values written since), for
        this update scope (per thread: a replica traces in its own)."""
        return self._per_update.kept("later writes", dict)

    def _written(self, variable, value):
        later = self._later_writes()
        index = self.variable_index(variable)
        if later and index in later:
            later[index][1].append(value)

    def read_moment(self, moment, variable, dtype, bound=1.0):
        """The value of `moment` (a `StoredMoment`) for `variable`;
        `bound` is the moment's known range before this step."""
        stored = moment[self.variable_index(variable)]
        return moment.codec.decode(stored, dtype, bound)

    def write_moments(self, variable, *updates, stream=0, after=None):
        """Stores up to two updates ``(moment, value[, bound])`` of
        `variable`'s moments through their codecs. Codecs that round
        stochastically share one hash of (step, variable, element) per
        variable and `stream`, one 16-bit half each.

        `after`: the variable's new value, written already. The random
        bits then depend on it, so that XLA writes the moments in place
        only after the variable's update has read their old values.
        Without that order it copies the old moments of every variable at
        every step (`SignAdam(state_dtype="bfloat16")`'s XLA step on 10M
        parameters took 2.7x as long on 2 CPU cores: CHANGELOG, 0.6.0)."""
        index = self.variable_index(variable)
        step = self.iterations
        if after is not None:
            step = step + low_precision.order_after(after, step.dtype)
        noise = low_precision.RandomHalves(
            variable.shape, step,
            index if stream == 0 else stream * (index + 1))
        for k, (moment, value, *bound) in enumerate(updates):
            stored = moment[index]
            encoded = moment.codec.encode(value, noise.half(k), *bound,
                                          dtype=stored.dtype)
            self.assign(stored, encoded)
            self._written(variable, encoded)

    def signal_input(self, g, raw_gradient, variable):
        """The tensor whose ternary signal the update rule forms (sign
        family): the gradient plus the coupled L2 term
        ``coupled_weight_decay * theta`` (0 where the gradient is not
        finite, so such a component gets no signal)."""
        return self._with_coupled_term(g, raw_gradient, variable, ops.add)

    def signal_input_again(self, raw_gradient, variable):
        """`signal_input` formed anew from `raw_gradient` (a tensor or a
        function that forms it) and `variable`: the same bits, as another
        expression. Per-tensor statistics read it; given the signal input
        itself, XLA writes it out in full, as a tensor that feeds both a
        sum and an element-wise use of the sum's result, and as one their
        fallback branch takes (`reductions.l2_norm`)."""
        raw = reductions.formed(raw_gradient)
        # g - (-d) has the bits of g + d.
        return self._with_coupled_term(
            reductions.finite_part(raw), raw, variable,
            lambda g, d: g - ops.negative(d))

    def _with_coupled_term(self, g, raw_gradient, variable, add):
        """``add(g, coupled_weight_decay * theta)``, 0 where the gradient is
        not finite; `g` itself without the coupled decay."""
        if not self.coupled_weight_decay:
            return g
        return ops.where(
            ops.isfinite(raw_gradient),
            add(g, self.coupled_weight_decay * ops.cast(variable, g.dtype)),
            ops.zeros_like(g),
        )

    def ternary_rule(self, p, variable, source=None):
        """This step's ternary rule for `variable`, a function from a
        tensor to its ternary signal and zero indicator ``(s, zeros)``,
        set from `p`, the signal input of `variable`'s gradient: here the
        sign; the optimizers with a confidence function filter it at a
        threshold that may depend on `p`. Called once per variable and
        step (the adaptive threshold advances its state here); the rule
        may be applied more than once. `source`: the raw gradient when `p`
        is it with non-finite components zeroed, or a function that forms
        `p` anew from tensors in memory (per-tensor statistics read it
        instead of `p`: `ConfidenceArguments.rule`)."""
        return plain_sign

    def ternary(self, p, variable, source=None):
        """The ternary signal ``(s, zero indicator)`` of `p` by this step's
        `ternary_rule`."""
        return self.ternary_rule(p, variable, source)(p)

    def local_signal(self, g, raw_gradient, variable):
        """The ternary signal of one gradient, as the update rule forms
        it, before error feedback (`raw_gradient` as `compressed_signal`
        takes it)."""
        p = self.signal_input(g, reductions.formed(raw_gradient), variable)
        if p is g:
            # p is the raw gradient with non-finite components zeroed;
            # statistics of the raw one need no copy of p.
            return self.ternary(p, variable, source=raw_gradient)
        return self.ternary(
            p, variable,
            source=lambda: self.signal_input_again(raw_gradient, variable))

    def compressed_signal(self, g, raw_gradient, variable):
        """The ternary signal of one gradient through the optimizer's
        error-feedback form (`error_feedback.py`). `g` must be
        `raw_gradient` with its non-finite components zeroed (as
        `prepare_gradient` returns them): statistics read the raw one.
        `raw_gradient` may be a function that forms it from tensors in
        memory (the vote's estimate R g_r), so that the statistics'
        branch does not take it (`reductions.l2_norm`)."""
        return self.feedback.signal(self, g, raw_gradient, variable)

    def sign_signal(self, g, raw_gradient, variable):
        """The signal the update rule uses, from the aggregation strategy:
        `compressed_signal`, or the replicas' vote that arrived in place of
        the gradient."""
        return self.aggregation_strategy.signal(self, g, raw_gradient,
                                                variable)

    def averaged_input(self, g, raw_gradient, variable):
        """What a rule that averages the gradient itself (not its signal)
        takes, from the aggregation strategy: the gradient with the
        coupled decay, or the replicas' vote that arrived in its place."""
        return self.aggregation_strategy.update_input(self, g, raw_gradient,
                                                      variable)

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
                f"step; at step "
                f"{int(hyperparameters.value_of(self.iterations))}"
                f" it is {value!r} (check the learning rate schedule)."
            )
        with self.update_scope():
            apply(learning_rate)
        self.finish_step()

    def finish_step(self):
        """Advances state shared by all variables, once per update."""

    def aggregate_tf_gradients(self, keras_sum, grads_and_vars):
        """TensorFlow only, in the replica context: the gradients every
        replica's update receives, from the aggregation strategy."""
        return self.aggregation_strategy.aggregate_tf(self, keras_sum,
                                                      grads_and_vars)

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

    def traced_settings(self):
        """The configuration an update is traced with: everything but the
        name and the values held in variables (which may change without
        re-tracing). Optimizers whose settings agree share a compiled
        update (`backend/tensorflow/optimizer.py`)."""
        config = self.get_config()
        for name in ("name", "learning_rate",
                     *hyperparameters.names(self)):
            config.pop(name, None)
        return config

    def get_config(self):
        # A value written around the checks (through `variable.value`, or
        # computed in a traced function) is refused here, by name, rather
        # than saved into a file that will not load.
        hyperparameters.check_all(self)
        config = super().get_config()
        if self.capabilities.coupled_weight_decay:
            config["coupled_weight_decay"] = self.coupled_weight_decay
        config["aggregation"] = self.aggregation
        if self.capabilities.error_feedback:
            config["error_feedback"] = self.error_feedback
        config["state_dtype"] = self.state_dtype
        config["track_statistics"] = self.track_statistics
        config["jit_compile"] = self.jit_compile
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # A saved config (`get_config` always writes the name and the
        # learning rate) that lacks an argument added in 0.6 was saved by
        # 0.5, and loads into the rule it was trained with. A partial
        # config (`"SignAdamPP"` as a string identifier is `{}`) gets the
        # present defaults.
        if "name" in config and "learning_rate" in config:
            config = {**cls.config_defaults_before_0_6, **config}
        return super().from_config(config, custom_objects=custom_objects)
