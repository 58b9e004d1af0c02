"""The core's seams: storage codecs and aggregation strategies that update
rules never branch on, capabilities declared once, every argument in the
signature, Keras's naming, and the step bound that keeps 8-bit state
safe (checked against NumPy's sum of the Cauchy-Schwarz bound)."""

import inspect
import re

import keras
import numpy as np
import pytest
from keras import ops

import keras_signadam as ks
from keras_signadam.backend import packing
from keras_signadam.optimizers import aggregation
from keras_signadam.optimizers import base
from keras_signadam.optimizers import storage
from tests.helpers import to_numpy

OPTIMIZERS = [ks.SignSGD, ks.Signum, ks.SignAdam, ks.SignAdamPP, ks.NovoGrad]
# Keras's own arguments, in the order of `keras.optimizers.Adam`.
KERAS_TAIL = ["weight_decay", "clipnorm", "clipvalue", "global_clipnorm",
              "use_ema", "ema_momentum", "ema_overwrite_frequency",
              "loss_scale_factor", "gradient_accumulation_steps", "name"]
PACKAGE_ARGUMENTS = ["aggregation", "error_feedback", "state_dtype",
                     "track_statistics", "jit_compile"]


def package_arguments(cls):
    """The package's arguments `cls` takes: `error_feedback` only where
    its signal is a compression."""
    return [a for a in PACKAGE_ARGUMENTS
            if a != "error_feedback" or cls.capabilities.error_feedback]
STORAGE_WORDS = re.compile(r"state_dtype|int8|bfloat16|float16|"
                           r"aggregation|vote|replica")


def conditions(function):
    """The conditions (if, elif, conditional expressions, `where`) in a
    function's code, comments left out."""
    code = [line.split("#")[0] for line in
            inspect.getsource(function).splitlines()]
    return [line for line in code
            if re.search(r"\bif\b|\belif\b|\bwhere\(|\bcond\(", line)]


# ------------------------------------------------------------- the seams
@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_update_rules_do_not_ask_how_state_is_stored_or_aggregated(cls):
    for method in ("update_step", "build", "local_signal", "ternary",
                   "signal_input", "signal_input_again",
                   "_with_coupled_term"):
        code = "\n".join(
            line.split("#")[0]
            for line in inspect.getsource(getattr(cls, method)).splitlines())
        assert not STORAGE_WORDS.search(code), (cls.__name__, method)


def test_base_class_helpers_do_not_branch_on_storage_or_votes():
    for method in ("read_moment", "write_moments", "sign_signal",
                   "prepare_gradient", "aggregate_tf_gradients",
                   "run_update_step", "build", "add_moment"):
        for line in conditions(getattr(base.Optimizer, method)):
            assert not STORAGE_WORDS.search(line), (method, line)


class Float16Codec:
    """A codec written as a user would: float16 storage, round to nearest
    (no random bits)."""

    dtype = "float16"

    def decode(self, stored, dtype, bound=1.0):
        return ops.cast(stored, dtype)

    def encode(self, value, random_bits, bound=1.0, dtype=None):
        return ops.cast(value, "float16")


def test_a_new_codec_is_one_class(monkeypatch):
    monkeypatch.setattr(storage, "codec_for",
                        lambda state_dtype, moment: Float16Codec())
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(40,)).astype(np.float32)
    grads = [rng.normal(size=(40,)).astype(np.float32) for _ in range(6)]
    variable = keras.Variable(theta)
    optimizer = ks.SignAdam(learning_rate=1e-2, bias_correction=True)
    for g in grads:
        optimizer.apply([g], [variable])
    kinds = {keras.backend.standardize_dtype(v.dtype)
             for v in optimizer.variables if v.path.endswith(
                 ("_momentum", "_velocity"))}
    assert kinds == {"float16"}
    # Against NumPy with float16 moments, the formulas of SPEC 3.3.
    m = v = np.zeros(40, np.float16)
    expected = theta.astype(np.float64)
    for t, g in enumerate(grads, start=1):
        s = np.sign(g)
        m = (0.9 * m.astype(np.float32) + 0.1 * s).astype(np.float32)
        v = (0.999 * v.astype(np.float32) + 0.001 * s * s).astype(np.float32)
        ratio = (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        expected = expected - 1e-2 * ratio
        m, v = m.astype(np.float16), v.astype(np.float16)
    np.testing.assert_allclose(to_numpy(variable), expected, atol=2e-4)


class HalfSum(aggregation.ExactSum):
    """An aggregation written as a user would: the sum, halved."""

    name = "half_sum"

    def signal(self, optimizer, g, raw_gradient, variable):
        s, zeros = optimizer.local_signal(g, raw_gradient, variable)
        return 0.5 * s, zeros


def test_a_new_aggregation_is_one_class():
    variable = keras.Variable(np.zeros((8,), np.float32))
    optimizer = ks.SignSGD(learning_rate=1.0)
    optimizer.aggregation_strategy = HalfSum()
    optimizer.apply([np.linspace(-1, 1, 8).astype(np.float32)], [variable])
    np.testing.assert_array_equal(to_numpy(variable),
                                  -0.5 * np.sign(np.linspace(-1, 1, 8)))


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_declared_moments_are_the_state_built(cls):
    variable = keras.Variable(np.ones((3, 2), np.float32))
    optimizer = cls()
    optimizer.build([variable])
    declared = [m.name for m in cls.capabilities.moments]
    built = sorted({v.path.rsplit("_", 1)[-1] for v in optimizer.variables
                    if v.shape == (3, 2)})
    assert sorted(declared) == built
    assert set(optimizer._stored) == set(declared)


def test_an_undeclared_moment_is_refused():
    class Sloppy(ks.Signum):
        def build(self, var_list):
            super().build(var_list)
            self.add_moment(var_list, storage.Moment("extra"))

    with pytest.raises(ValueError, match="capabilities.moments"):
        Sloppy().build([keras.Variable(np.ones(3, np.float32))])


def test_capabilities_drive_validation():
    for cls in OPTIMIZERS:
        caps = cls.capabilities
        if not caps.moments:
            with pytest.raises(ValueError, match="state_dtype"):
                cls(state_dtype="bfloat16")
        elif all(m.bounded for m in caps.moments):
            cls(state_dtype="int8")
        else:
            with pytest.raises(ValueError, match="state_dtype"):
                cls(state_dtype="int8")
        if "majority_vote" in caps.aggregations:
            cls(aggregation="majority_vote")
        else:
            with pytest.raises(ValueError, match="aggregation"):
                cls(aggregation="majority_vote")


# ---------------------------------------------------- arguments, naming
@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_every_argument_is_in_the_signature_in_keras_order(cls):
    parameters = list(inspect.signature(cls.__init__).parameters)
    assert parameters[0] == "self" and parameters[1] == "learning_rate"
    assert parameters[-1] == "kwargs"
    named = parameters[1:-1]
    assert named[-len(KERAS_TAIL):] == KERAS_TAIL
    expected = package_arguments(cls)
    package = named[-len(KERAS_TAIL) - len(expected):-len(KERAS_TAIL)]
    assert package == expected
    # Every config key is an argument, and every argument is documented,
    # in the signature's order.
    config = cls().get_config()
    assert set(config) <= set(named), set(config) - set(named)
    doc = cls.__doc__.split("Args:")[1].split("References:")[0]
    positions = []
    for name in named:
        match = re.search(rf"(^\s+|, ){name}[:,]", doc, re.M)
        assert match, f"{cls.__name__} does not document {name}"
        positions.append(match.start())
    assert positions == sorted(positions), cls.__name__


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_names_are_unique_as_with_keras(cls):
    names = [cls().name for _ in range(3)]
    assert len(set(names)) == 3
    adam = [keras.optimizers.Adam().name for _ in range(2)]
    assert adam[0] != adam[1]
    assert cls(name="mine").name == "mine"
    restored = cls.from_config(cls(name="kept").get_config())
    assert restored.name == "kept"


def test_two_learning_rates_stay_apart_under_multi_optimizer_names():
    first, second = ks.SignAdamPP(1e-3), ks.SignAdamPP(2e-3)
    assert first.name != second.name
    assert first.learning_rate.path != second.learning_rate.path


def test_vote_docstring_quotes_the_packing_arithmetic():
    doc = ks.SignAdamPP.__doc__
    assert packing.bits_table() in " ".join(doc.split())
    # Independent of the packing code: the all-gather sends 2-bit codes;
    # the all-reduce, fields of the power of two (from 2) bits that holds
    # 0..2R, 32 // that many to a word; each replica count uses the one
    # that sends fewer bytes under the ring algorithms ((R - 1) n against
    # 2 (R - 1) / R n).
    for replicas in (2, 3, 4, 12, 64, 128, 1024, 32768):
        field = 2 ** int(np.ceil(np.log2(max(2.0, np.log2(
            2 * replicas + 1)))))
        reduce_bits = 32 / (32 // field)
        gather_sent = (replicas - 1) * 2
        reduce_sent = 2 * (replicas - 1) / replicas * reduce_bits
        expected = 2 if gather_sent < reduce_sent else reduce_bits
        assert packing.bits_per_component(replicas) == pytest.approx(
            expected), replicas
        # float32 all-reduce bits per component sent, over the vote's.
        float_sent = 2 * (replicas - 1) / replicas * 32
        vote_sent = min(gather_sent, reduce_sent)
        assert packing.fewer_bytes(replicas) == pytest.approx(
            float_sent / vote_sent, rel=1e-3), replicas
    assert "16x at 2, 8x at 4, 4x at 8 replicas" in " ".join(doc.split())
    assert packing.bits_per_component(2) == 2
    assert packing.bits_per_component(4) == 4
    assert packing.bits_per_component(8) == 8
    assert packing.bits_per_component(32768) == 32


# ------------------------------------------------ the bound of the step
def numpy_ratio_bound(beta_1s, beta_2, corrected=True):
    """max |m_hat| / sqrt(v_hat) (uncorrected: |m| / sqrt(v)) after
    len(beta_1s) steps, by Cauchy-Schwarz over the explicit weights of m
    and v."""
    t = len(beta_1s)
    weights = []
    for k in range(t):
        w = 1.0 - beta_1s[k]
        for i in range(k + 1, t):
            w *= beta_1s[i]
        weights.append(w)
    a = sum(w * w / ((1 - beta_2) * beta_2 ** (t - 1 - k))
            for k, w in enumerate(weights))
    if not corrected:
        return np.sqrt(a)
    return np.sqrt(a * (1 - beta_2 ** t)) / (1 - np.prod(beta_1s))


def float_steps(beta_1, beta_2, grads):
    """|step| / lr per step of SignAdam with exact float64 moments."""
    m = v = 0.0
    steps = []
    for t, g in enumerate(grads, start=1):
        s = np.sign(g)
        m = beta_1 * m + (1 - beta_1) * s
        v = beta_2 * v + (1 - beta_2) * s * s
        steps.append(abs(m / (1 - beta_1 ** t))
                     / (np.sqrt(v / (1 - beta_2 ** t)) + 1e-8))
    return np.array(steps)


def test_numpy_bound_holds_for_exact_moments():
    rng = np.random.default_rng(0)
    for beta_1, beta_2 in ((0.9, 0.999), (0.9, 0.9), (0.5, 0.3)):
        grads = np.concatenate([np.ones(30), np.zeros(200),
                                rng.choice([-1, 0, 1], 100)])
        steps = float_steps(beta_1, beta_2, grads)
        bounds = [numpy_ratio_bound([beta_1] * t, beta_2)
                  for t in range(1, len(grads) + 1)]
        assert np.all(steps <= np.array(bounds) * (1 + 1e-9))


@pytest.mark.parametrize("beta_1,beta_2", [(0.99, 0.9), (0.9, 0.8),
                                           (0.5, 0.0)])
def test_int8_refuses_pairs_without_a_finite_bound(beta_1, beta_2):
    with pytest.raises(ValueError, match="beta_1.*beta_2"):
        ks.SignAdam(beta_1=beta_1, beta_2=beta_2, state_dtype="int8")
    optimizer = ks.SignAdamPP(beta_1=0.5, second_moment=True,
                              beta_2=max(beta_2, 0.3), state_dtype="int8")
    with pytest.raises(ValueError, match="beta_1"):
        optimizer.beta_1.assign(0.999)
    # Float state accepts them, as Adam does.
    ks.SignAdam(beta_1=beta_1, beta_2=beta_2)


@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("state_dtype", ["int8", "bfloat16"])
def test_tampered_codes_move_no_further_than_the_bound(state_dtype,
                                                       bias_correction):
    """m at its largest code and v at zero: an unclipped step would be
    m_hat / epsilon (9e4 lr after 200 steps)."""
    lr, steps = 1e-3, 200
    variable = keras.Variable(np.zeros((64,), np.float32))
    optimizer = ks.SignAdam(learning_rate=lr, state_dtype=state_dtype,
                            bias_correction=bias_correction)
    for _ in range(steps):
        optimizer.apply([np.ones(64, np.float32)], [variable])
    m, v = (optimizer._stored[n][0] for n in ("momentum", "velocity"))
    m.assign(ops.cast(ops.ones(m.shape) * (127 if state_dtype == "int8"
                                           else 1.0), m.dtype))
    v.assign(ops.zeros(v.shape, v.dtype))
    before = to_numpy(variable).copy()
    optimizer.apply([np.zeros(64, np.float32)], [variable])
    moved = np.abs(to_numpy(variable) - before) / lr
    bound = numpy_ratio_bound([0.9] * (steps + 1), 0.999, bias_correction)
    assert 1.0 < bound < 7.3
    assert moved.max() <= bound * 1.001, moved.max()
    assert moved.min() > 0.5 * bound


def test_sparse_decaying_gradients_int8_steps_stay_within_float_reach():
    """30 steps of gradient 1, then decaying gradients that fall under the
    threshold (sparse signs, small v_hat): every int8 step stays under the
    NumPy bound, and the largest is no larger than the float32 state's
    largest step by more than the rounding of m."""
    lr, n = 1e-3, 4096
    rng = np.random.default_rng(1)
    grads = [np.ones(n, np.float32)] * 30 + [
        (rng.normal(size=n) * 2e-3 * 0.97 ** k).astype(np.float32)
        for k in range(300)]
    largest = {}
    for state_dtype in (None, "int8"):
        variable = keras.Variable(np.zeros((n,), np.float32))
        optimizer = ks.SignAdamPP(learning_rate=lr, second_moment=True,
                                  beta_2=0.99, state_dtype=state_dtype)
        biggest = 0.0
        for t, g in enumerate(grads, start=1):
            before = to_numpy(variable).copy()
            optimizer.apply([g], [variable])
            step = np.abs(to_numpy(variable) - before).max() / lr
            assert step <= numpy_ratio_bound([0.9] * t, 0.99) * 1.001
            biggest = max(biggest, step)
        largest[state_dtype] = biggest
    assert largest["int8"] <= largest[None] * 1.1 + 0.05, largest


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_compile_accepts_the_class_name_as_keras_does(cls):
    module = cls.__module__.rsplit(".", 1)[-1]
    for identifier in (cls.__name__, cls.__name__.lower(), module,
                       f"keras_signadam>{cls.__name__}"):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer=identifier, loss="mse")
        assert type(model.optimizer) is cls, identifier
    assert type(keras.optimizers.get("Adam")) is keras.optimizers.Adam


def test_a_residual_left_for_after_the_variable_must_be_written():
    """An update that leaves the error-feedback residual's write for after
    the variable (`write_moments_later`) and never flushes it is an error,
    not a residual silently kept from the step before."""

    class Forgetful(ks.SignSGD):
        def update_step(self, gradient, variable, learning_rate):
            g, raw = self.prepare_gradient(gradient, variable)
            step, _ = self.sign_signal(g, raw, variable)
            self.assign(variable, variable - learning_rate * step)

    variable = keras.Variable(np.ones((3, 4), "float32"))
    optimizer = Forgetful(error_feedback=True, jit_compile=False)
    with pytest.raises(RuntimeError, match="flush_later_writes"):
        optimizer.apply([ops.ones((3, 4))], [variable])
    # A complete update writes it: the residual starts at zero, and the
    # scaled signs of 0..11 leave some of each gradient behind.
    complete = ks.SignSGD(error_feedback=True, jit_compile=False)
    target = keras.Variable(np.ones((3, 4), "float32"))
    complete.apply([ops.convert_to_tensor(np.arange(12.0).reshape(3, 4),
                                          "float32")], [target])
    residual = [v for v in complete.variables if "residual" in v.path][0]
    assert np.any(to_numpy(residual) != 0.0)
