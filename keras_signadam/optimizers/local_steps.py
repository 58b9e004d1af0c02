import math

import keras
from keras import ops

from keras_signadam import checks
from keras_signadam import compat
from keras_signadam.backend import top_k_compression
from keras_signadam.optimizers import aggregation
from keras_signadam.optimizers import base
from keras_signadam.optimizers import error_feedback
from keras_signadam.optimizers import state
from keras_signadam.optimizers import wrapping
from keras_signadam.optimizers.hybrid import Hybrid

AVERAGE, SIGN, TOP_K = "average", "sign", "top_k"
OUTER_RULES = (AVERAGE, SIGN, TOP_K)


@keras.saving.register_keras_serializable(package="keras_signadam")
class LocalSteps(keras.optimizers.Optimizer):
    """Local steps with a rare outer step: workers talk once per round.

    Under `tf.distribute` every replica runs `optimizer` (the inner
    optimizer) on the gradient of its own share of the batch, with no
    communication, so the replicas' copies of the weights drift apart. Every
    `steps` steps (a round) they exchange how far they moved and all take
    the same outer step from the weights the round began with, the anchor
    a (DiLoCo, Douillard et al., 2023). For replica r with weights theta_r:

        d_r = a - theta_r                       (the round's change)
        d   = mean_r d_r                        (outer="average", float32)
        u  <- mu * u + d                        (outer momentum)
        a  <- a - eta * (d + mu * u)            (Nesterov; a - eta * u
                                                 with nesterov=False)
        theta_r <- a                            (every replica)

    With `outer="sign"` the change is sent as one vote per component, with
    error feedback kept per replica (as in DeMo and SparseLoCo, which also
    compress the outer change; Karimireddy et al., 2019, for the scaled
    sign):

        p_r = d_r + e_r,   s_r = sign(p_r),   k_r = <p_r, s_r> / <s_r, s_r>
        e_r <- p_r - k_r * s_r                  (the replica's residual)
        d   = mean_r(k_r) * sign(sum_r s_r)     (ties give 0)

    and the outer step above runs on that d. The signs travel packed into
    32-bit words (2 bits per component for an all-gather, or fields wide
    enough for the sum of the codes for an integer all-reduce, the same
    collectives as the per-step majority vote), plus one float32 scale per
    variable: per round, about 1/16 of the float32 all-reduce's bytes at
    2 replicas and 1/8 at 4, and a round is `steps` steps.

    With `outer="top_k"` each replica sends only the largest components
    of p_r, a fraction `outer_density` of each chunk of 4096, with 2-bit
    values (SparseLoCo's compression; `backend/top_k_compression.py` has
    the exact rule):

        p_r = d_r + e_r,   q_r = Q(top_k(p_r)),   e_r <- p_r - q_r
        d   = mean_r q_r

    Each kept component costs a 16-bit index and a 2-bit code, and each
    chunk two float32 levels; the replicas all-gather them. At the
    default density (1/64) that is about 0.3 bits per component and
    replica, against 32 for float32, so rounds can be short: at 4
    replicas and `steps=4`, about 200x fewer bytes than the float32
    all-reduce at every step.

    Each replica's gradient is its share's own mean (Keras averages the
    loss over the global batch under a strategy: the wrapper multiplies by
    the number of replicas), so the inner optimizer's settings mean what
    they mean on one device. Its state (moments) stays each replica's own,
    as in DiLoCo. The replicas are identical after every outer step: the
    exchange gives every replica the same d, and the rest is the same
    arithmetic.

    On one device, and on the JAX and PyTorch backends, where the weights
    have no per-replica copies, d = a - theta: with outer="average",
    `outer_learning_rate=1` and `outer_momentum=0` the outer step changes
    nothing; with the defaults it is a Nesterov step on the round's change
    (a Lookahead-like rule; Zhang et al., 2019).

    What is saved (`model.save`, checkpoints, `BackupAndRestore`): the
    inner optimizer and its iteration count, the anchor, the outer
    momentum and (outer="sign" or "top_k") the residuals, which are read
    as their mean over the replicas. Within a round a checkpoint holds one
    replica's weights (the first's): restored, every replica continues the
    round from them, and the outer step still comes at the same step.
    Saved at the end of a round, training resumes exactly.

    `optimizer.iterations`, `learning_rate` (settable by the learning-rate
    callbacks) and the sign family's figures are the inner optimizer's;
    `optimizer.bytes_sent(replicas)` is what one replica sends per step,
    averaged over a round.

    Args:
        optimizer: The inner optimizer, any Keras optimizer with
            `aggregation="sum"` (the default) where it has that argument.
            Defaults to `None`: `SignAdamPP()`.
        steps: Inner steps per round (H), an integer >= 1. Defaults to 16.
        outer: `"average"` (float32 all-reduce of the change), `"sign"`
            (votes with error feedback) or `"top_k"` (the largest
            components with 2-bit values and error feedback), above.
            Defaults to `"average"`.
        outer_learning_rate: eta, >= 0. Defaults to 0.7 (DiLoCo).
        outer_momentum: mu in [0, 1). Defaults to 0.9 (DiLoCo). With
            `outer="sign"`, `outer_momentum=0.0` and
            `outer_learning_rate=1.0` (SparseLoCo's form: the residuals
            take the momentum's place) did better on the slow-link
            benchmark (`docs/local-steps.md`).
        nesterov: Whether the outer momentum is Nesterov's. Defaults to
            `True`.
        outer_density: With `outer="top_k"`, the fraction of each
            chunk's components sent, in (0, 1]. Defaults to 1/64 (64 of
            4096; SparseLoCo sends 1-3%).
        name: The optimizer's name. Defaults to `None`: a unique name
            from the class name.

    References:
        - [Douillard et al., 2023, DiLoCo: Distributed Low-Communication
          Training of Language Models](https://arxiv.org/abs/2311.08105)
        - [Peng et al., 2024, DeMo: Decoupled Momentum Optimization](
          https://arxiv.org/abs/2411.19870)
        - [Sarfi et al., 2025, Communication Efficient LLM Pre-training
          with SparseLoCo](https://arxiv.org/abs/2508.15706)
        - [Karimireddy et al., 2019, Error Feedback Fixes SignSGD and other
          Gradient Compression Schemes](https://arxiv.org/abs/1901.09847)
    """

    def __init__(self, optimizer=None, steps=16, outer=AVERAGE,
                 outer_learning_rate=0.7, outer_momentum=0.9, nesterov=True,
                 outer_density=1 / 64, name=None, **kwargs):
        wrapping.refuse_keras_arguments("LocalSteps", kwargs,
                                        "the inner `optimizer`")
        super().__init__(learning_rate=0.0, name=name)
        import keras_signadam as ks

        optimizer = (wrapping.check_optimizer("optimizer", optimizer)
                     or ks.SignAdamPP())
        for part in compat.inner_optimizers(optimizer):
            if isinstance(part, LocalSteps):
                raise ValueError("Argument `optimizer` cannot be (or hold) "
                                 "another `LocalSteps`.")
            aggregation = getattr(part, "aggregation", "sum")
            if aggregation != "sum":
                raise ValueError(
                    "Argument `optimizer` must combine gradients with "
                    "aggregation='sum': inner steps are local, so nothing "
                    "is voted on within a round (use outer='sign' to send "
                    f"votes). Received: aggregation={aggregation!r}")
        compat.apply_local_gradients(optimizer)
        self.optimizer = optimizer
        self.steps = checks.check_int("steps", steps, 1)
        self.outer = checks.check_choice("outer", outer, OUTER_RULES)
        self.outer_learning_rate = checks.check_non_negative(
            "outer_learning_rate", outer_learning_rate)
        self.outer_momentum = checks.check_beta("outer_momentum",
                                                outer_momentum)
        self.nesterov = checks.check_bool("nesterov", nesterov)
        self.outer_density = checks.check_positive("outer_density",
                                                   outer_density)
        if self.outer_density > 1:
            raise ValueError("Argument `outer_density` must be in (0, 1]. "
                             f"Received: outer_density={outer_density!r}")

    # ----------------------------------------------------------- Keras
    def build(self, var_list):
        var_list = list(var_list)
        self.optimizer.build(var_list)
        super().build(var_list)
        self.anchors = state.add_state_variables(self, var_list, "anchor")
        for anchor, variable in zip(self.anchors, var_list):
            if anchor is not None:
                # A copy: on JAX a cast to the same dtype would share the
                # weights' buffer, which a compiled step donates.
                anchor.assign(ops.copy(ops.cast(variable, anchor.dtype)))
        self.outer_momenta = (
            state.add_state_variables(self, var_list, "outer_momentum")
            if self.outer_momentum > 0 else [None] * len(var_list))
        self.residuals = (
            state.add_state_variables(self, var_list, "outer_residual",
                                      per_replica=True)
            if self.outer != AVERAGE else [None] * len(var_list))

    @property
    def variables(self):
        return self._variables + self.optimizer.variables

    def apply(self, grads, trainable_variables=None):
        trainable_variables = wrapping.built_for(self, trainable_variables)
        replicas = aggregation.replicas_in_sync()
        # The package's optimizers zero (and count) non-finite components
        # themselves; Keras's are given finite gradients.
        own = isinstance(self.optimizer, (base.Optimizer, Hybrid))
        grads = [None if g is None else _times(
            g if own else wrapping.finite(g), replicas) for g in grads]
        self.optimizer.apply(grads, trainable_variables)
        states = [self._states(v) for v in trainable_variables]
        if keras.backend.backend() == "tensorflow":
            from keras_signadam.backend.tensorflow import local_steps

            local_steps.outer_step(self, trainable_variables, states)
        else:
            self._masked_outer_step(trainable_variables, states)

    def _states(self, variable):
        index = compat.variable_index(self, variable)
        return (self.anchors[index], self.outer_momenta[index],
                self.residuals[index])

    def is_outer_step(self):
        """Whether the step just taken ends a round."""
        return ops.equal(ops.mod(self.optimizer.iterations, self.steps), 0)

    # ------------------------------------------------------ arithmetic
    def compress(self, change, residual):
        """``(s, k, new residual)``: the sign of ``p = change +
        residual``, its least-squares scale and what it leaves."""
        p = change + residual
        s = ops.sign(p)
        k = error_feedback.least_squares_scale(p, s)
        return s, k, p - k * s

    def approximate(self, change, residual):
        """``(what the replicas receive, the new residual)`` for one
        replica's `change` and `residual` (outer="sign" or "top_k")."""
        if self.outer == TOP_K:
            return top_k_compression.approximate(change + residual,
                                                 self.outer_density)
        s, k, left = self.compress(change, residual)
        return k * s, left

    def new_anchor(self, anchor, momentum, change):
        """``(a, u)`` after the outer step on `change` (the docstring)."""
        eta = ops.cast(self.outer_learning_rate, anchor.dtype)
        if momentum is None:
            return anchor - eta * change, None
        mu = ops.cast(self.outer_momentum, anchor.dtype)
        u = mu * momentum + change
        step = change + mu * u if self.nesterov else u
        return anchor - eta * step, u

    def _masked_outer_step(self, variables, states):
        """One copy per variable (one device, JAX, PyTorch): every step
        computes the outer step and keeps it only where a round ends, as
        Keras's own gradient accumulation does, since a conditional
        assignment does not trace on every backend."""
        outer = self.is_outer_step()
        for variable, (anchor, momentum, residual) in zip(variables, states):
            if anchor is None:
                continue
            a = ops.convert_to_tensor(anchor)
            value = ops.cast(variable, anchor.dtype)
            change = a - value
            if residual is not None:
                e = ops.convert_to_tensor(residual)
                change, left = self.approximate(change, e)
                residual.assign(ops.where(outer, left, e))
            u = None if momentum is None else ops.convert_to_tensor(momentum)
            new_a, new_u = self.new_anchor(a, u, change)
            if momentum is not None:
                momentum.assign(ops.where(outer, new_u, u))
            anchor.assign(ops.where(outer, new_a, a))
            variable.assign(ops.cast(ops.where(outer, new_a, value),
                                     variable.dtype))

    # ------------------------------------------------------- the inner
    @property
    def learning_rate(self):
        return self.optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.optimizer.learning_rate = value

    @property
    def iterations(self):
        return self.optimizer.iterations

    @property
    def sparsity(self):
        return getattr(self.optimizer, "sparsity", None)

    @property
    def nonfinite_count(self):
        return getattr(self.optimizer, "nonfinite_count", None)

    def finalize_variable_values(self, var_list):
        self.optimizer.finalize_variable_values(var_list)

    def bytes_sent(self, replicas):
        """Bytes one replica sends per step, averaged over a round, to
        combine the changes of `replicas` replicas (ring algorithms): the
        float32 all-reduce of every variable, the packed votes and one
        float32 scale per variable, or the all-gather of the kept
        components' words, once every `steps` steps."""
        from keras_signadam.backend import packing

        if not self.built:
            raise ValueError("`bytes_sent` needs a built optimizer.")
        if replicas <= 1:
            return 0.0
        sizes = [math.prod(v.shape) for v, a in zip(self._trainable_variables,
                                          self.anchors) if a is not None]
        total = sum(sizes)
        if self.outer == AVERAGE:
            sent = packing.ring_bytes_sent("float32_all_reduce", total,
                                           replicas)
        elif self.outer == TOP_K:
            sent = (replicas - 1) * 4 * sum(top_k_compression.words(
                size, self.outer_density) for size in sizes)
        else:
            collective = packing.collective_for(replicas, total)
            sent = sum(packing.ring_bytes_sent(collective, size, replicas)
                       for size in sizes) + packing.ring_bytes_sent(
                "float32_all_reduce", len(sizes), replicas)
        return sent / self.steps

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.optimizer),
            "steps": self.steps,
            "outer": self.outer,
            "outer_learning_rate": self.outer_learning_rate,
            "outer_momentum": self.outer_momentum,
            "nesterov": self.nesterov,
            "outer_density": self.outer_density,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if config.get("optimizer") is not None:
            config["optimizer"] = keras.saving.deserialize_keras_object(
                config["optimizer"], custom_objects=custom_objects)
        return cls(**config)


def _times(g, replicas):
    if replicas == 1 or "int" in str(g.dtype):
        return g
    return g * ops.cast(replicas, g.dtype)

