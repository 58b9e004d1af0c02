"""`state_dtype="bfloat16"` and `"int8"`: moments stored in bfloat16 or
as 8-bit codes with stochastic rounding, checked against the float32 NumPy
references in distribution."""

import functools

import keras
import numpy as np
import pytest

import keras_signadam as ks
from keras_signadam.optimizers import low_precision
from tests import reference
from tests.helpers import digits_like
from tests.helpers import small_model
from tests.helpers import tensors_written_besides
from tests.helpers import to_numpy

WITH_STATE = {
    "SignAdamPP": (ks.SignAdamPP, lambda: reference.SignAdamPP(
        lr=1e-3, threshold=5e-4), ("m",)),
    "SignAdamPP second moment": (
        functools.partial(ks.SignAdamPP, second_moment=True),
        lambda: reference.AdamOfSigns(lr=1e-3, threshold=5e-4),
        ("m", "v")),
    "SignAdam": (ks.SignAdam, lambda: reference.AdamOfSigns(
        lr=1e-3, bias_correction=False), ("m", "v")),
    "Signum": (ks.Signum, lambda: reference.Signum(lr=1e-3), ("m",)),
    "NovoGrad": (ks.NovoGrad, lambda: reference.NovoGrad(lr=1e-3), ("m",)),
}


# The optimizers whose moments are bounded in [-1, 1] (int8 state).
BOUNDED = ("SignAdam", "SignAdamPP", "SignAdamPP second moment")


def moments(optimizer):
    """The per-element state variables, in the order m, v."""
    return [v for v in optimizer.variables
            if v.path.endswith(("_momentum", "_velocity"))
            and not v.path.endswith("layer_velocity")]


def decoded(optimizer, moment):
    """The float64 values the stored moment stands for, as the optimizer's
    codec reads them (the first model variable's)."""
    name = {"m": "momentum", "v": "velocity"}[moment]
    return optimizer.moment_values(name)[0].astype(np.float64)


@pytest.mark.parametrize("name", sorted(WITH_STATE))
@pytest.mark.parametrize("variable_dtype", ["float32", "float64",
                                            "bfloat16"])
def test_state_dtype_of_every_variable(name, variable_dtype):
    cls = WITH_STATE[name][0]
    variable = keras.Variable(np.ones((3, 4)), dtype=variable_dtype)
    cases = [("bfloat16", "bfloat16"), ("float32", "float32"),
             (None, {"float64": "float64"}.get(variable_dtype, "float32"))]
    if name in BOUNDED:
        cases.append(("int8", "int8"))
    for state_dtype, expected in cases:
        optimizer = cls(state_dtype=state_dtype)
        optimizer.apply([np.full((3, 4), 0.1)], [variable])
        state = moments(optimizer)
        assert len(state) == len(WITH_STATE[name][2])
        for v in state:
            assert keras.backend.standardize_dtype(v.dtype) == expected
            assert tuple(v.shape) == (3, 4)
        # Counters, hyperparameters and NovoGrad's per-layer second
        # moment keep their own dtypes.
        ids = {id(v) for v in state}
        others = [v for v in optimizer.variables if id(v) not in ids]
        assert all(keras.backend.standardize_dtype(v.dtype)
                   not in ("bfloat16", "int8") for v in others)


@pytest.mark.parametrize("value", ["float16", "uint8", "float8", "bf16",
                                   16, True])
def test_unsupported_state_dtype_is_refused(value):
    with pytest.raises(ValueError, match="state_dtype"):
        ks.SignAdamPP(state_dtype=value)


@pytest.mark.parametrize("cls", [ks.Signum, ks.NovoGrad])
def test_int8_state_needs_bounded_moments(cls):
    with pytest.raises(ValueError, match=f"{cls.__name__}'s moments are "
                                         "not bounded.*state_dtype"):
        cls(state_dtype="int8")


def test_stateless_optimizer_refuses_state_dtype():
    with pytest.raises(ValueError, match="SignSGD keeps no per-parameter "
                                         "state.*state_dtype"):
        ks.SignSGD(state_dtype="bfloat16")


def bfloat16_neighbours(x):
    """The bfloat16 values just below and above each float32 `x`."""
    x = np.asarray(x, np.float32)
    bits = x.view(np.uint32)
    down = (bits & np.uint32(0xFFFF0000)).view(np.float32)
    up = ((bits & np.uint32(0xFFFF0000)) + np.uint32(0x10000)).view(
        np.float32)
    exact = (bits & np.uint32(0xFFFF)) == 0
    up = np.where(exact, down, up)
    return np.minimum(down, up), np.maximum(down, up)


def test_stochastic_rounding_is_unbiased_and_stays_on_neighbours():
    n = 200_000
    for x in (1.0 / 3.0, -0.7071, 0.999, 3e-5, -123.456):
        values = np.full((n,), x, np.float32)
        bits = low_precision.random_bits((n,), np.int64(17), 3)
        for half in (low_precision.low_half(bits),
                     low_precision.high_half(bits)):
            half_np = to_numpy(half)
            assert half_np.min() >= 0 and half_np.max() < 2**16
            # Uniform 16-bit halves: mean 32767.5, sd 18918 / sqrt(n).
            assert abs(half_np.mean() - 32767.5) < 5 * 18918 / np.sqrt(n)
            rounded = to_numpy(ops_cast(
                low_precision.round_to_bfloat16(values, half), "float32"))
            lo, hi = bfloat16_neighbours(np.float32(x))
            assert set(np.unique(rounded)) <= {lo, hi}
            # Bernoulli(p) between the neighbours: its mean is x.
            spacing = float(hi - lo)
            assert abs(rounded.mean() - np.float32(x)) < (
                5 * 0.5 * spacing / np.sqrt(n))


def ops_cast(x, dtype):
    return keras.ops.cast(x, dtype)


@pytest.mark.parametrize("square_root", [False, True])
def test_int8_codes_are_unbiased_and_stay_on_neighbours(square_root):
    n = 200_000
    values = ((0.0, 1e-4, 1.0 / 3.0, 0.5, 0.999, 1.0) if square_root
              else (-1.0, -0.7071, -1e-3, 0.0, 1.0 / 3.0, 1.0))
    bits = low_precision.high_half(
        low_precision.random_bits((n,), np.int64(5), 2))
    for x in values:
        codes = to_numpy(low_precision.encode_int8(
            np.full((n,), x, np.float32), bits, square_root))
        assert codes.dtype == np.int8
        # The code of y = 127 x (or 127 sqrt(x)) is floor(y) or ceil(y),
        # ceil with probability y - floor(y): its mean is y.
        y = 127.0 * (np.sqrt(x) if square_root else x)
        assert set(np.unique(codes)) <= {np.floor(y), np.ceil(y)}
        assert abs(codes.mean() - y) < 5 * 0.5 / np.sqrt(n) + 1e-4
        back = to_numpy(low_precision.decode_int8(codes, "float64",
                                                  square_root))
        np.testing.assert_allclose(
            back, (codes / 127.0) ** (2 if square_root else 1))


def lowbias32(x):
    """C. Wellons' lowbias32 on uint32."""
    x = np.asarray(x, np.uint32)
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 3, 4, 5)])
def test_random_bits_hash_step_stream_and_flat_index(shape):
    # In uint64, reduced modulo 2**32: the int32 arithmetic that wraps.
    golden, stream_mix, wrap = 0x9E3779B9, 0x3C6EF372, np.uint64(2**32)
    size = int(np.prod(shape))
    for step, stream in ((0, 0), (17, 3), (2**33 + 5, 11)):
        seed = lowbias32([(step * golden + ((stream * stream_mix)
                                            & 0x7FFFFFFF)) % 2**32])[0]
        mixed = (np.arange(size, dtype=np.uint64) * np.uint64(golden)
                 + np.uint64(seed)) % wrap
        expected = lowbias32(mixed).reshape(shape)
        bits = to_numpy(low_precision.random_bits(shape, np.int64(step),
                                                  stream))
        assert bits.dtype == np.int32 and bits.shape == shape
        np.testing.assert_array_equal(bits.view(np.uint32), expected)


def test_random_bits_differ_by_step_variable_and_element():
    a = to_numpy(low_precision.random_bits((4096,), np.int64(1), 0))
    b = to_numpy(low_precision.random_bits((4096,), np.int64(2), 0))
    c = to_numpy(low_precision.random_bits((4096,), np.int64(1), 1))
    again = to_numpy(low_precision.random_bits((4096,), np.int64(1), 0))
    np.testing.assert_array_equal(a, again)
    for other in (b, c):
        assert np.mean(a == other) < 0.01
    assert len(np.unique(a)) > 4000


@pytest.mark.parametrize("name,state_dtype",
                         [(n, "bfloat16") for n in sorted(WITH_STATE)]
                         + [(n, "int8") for n in BOUNDED])
def test_mean_of_rounded_state_matches_float32_reference(name, state_dtype):
    # 16384 copies of one parameter see the same gradients; each rounds
    # with its own bits, so their mean estimates the expected state, which
    # for these linear recursions is the float32 reference's. The
    # gradients decay until SignAdamPP's threshold zeroes them (sparse
    # signs), so v_hat falls to about 0.05, where int8 codes are coarsest
    # relative to it.
    cls, make_reference, names = WITH_STATE[name]
    n, steps, beta_2 = 16384, 60, 0.95
    rng = np.random.default_rng(0)
    magnitudes = 2e-3 * 0.85 ** np.arange(steps)
    grads = [np.full((n,), g, np.float32) for g in
             (rng.choice([-1.0, 1.0], steps) * magnitudes).astype(np.float32)]
    grads[3] = np.zeros((n,), np.float32)
    theta0 = np.full((n,), 0.5, np.float32)
    variable = keras.Variable(theta0)
    extra = {"beta_2": beta_2} if "v" in names else {}
    optimizer = cls(learning_rate=1e-3, state_dtype=state_dtype, **extra)
    for g in grads:
        optimizer.apply([g], [variable])
    ref = make_reference()
    if "v" in names:
        ref.b2 = beta_2
    theta = theta0
    for t, g in enumerate(grads, start=1):
        theta = ref.step(theta, g, t)
    for moment in names:
        stored = decoded(optimizer, moment)
        expected = float(getattr(ref, moment)[0])
        # Each step's rounding errs by under one spacing (bfloat16: at
        # most 2**-7 of the value; int8: 1/127 of the range), with mean 0:
        # over the steps a copy random-walks by about sqrt(steps) / 2
        # spacings, and the mean of n independent copies by that over
        # sqrt(n). Bounds at 5 sigma. int8 keeps sqrt(v_hat), unbiased
        # there: compare there.
        spacing = 2.0 ** -7 * abs(expected)
        if state_dtype == "int8":
            spacing = 1.0 / 127.0
            if moment == "v":
                correction = 1.0 - beta_2 ** steps
                stored = np.sqrt(stored / correction)
                expected = np.sqrt(expected / correction)
                if name == "SignAdamPP second moment":
                    assert expected < 0.3  # a small v_hat
        walk = np.sqrt(steps) * spacing / 2
        assert abs(stored.mean() - expected) < 5 * walk / np.sqrt(n) + 1e-9, (
            moment, stored.mean(), expected)
        assert np.all(np.abs(stored - expected) < 5 * walk + 1e-9)
    moved = theta0[0] - theta[0]
    assert abs(to_numpy(variable).mean() - theta[0]) < 0.02 * abs(moved)


def round_to_nearest_bfloat16(x):
    """float32 -> bfloat16 -> float32, rounding half to even."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    bits = bits + 0x7FFF + ((bits >> 16) & 1)
    return (bits & 0xFFFF0000).astype(np.uint32).view(np.float32)


@pytest.mark.parametrize("state_dtype", ["bfloat16", "int8"])
def test_nothing_stalls_over_ten_thousand_steps(state_dtype):
    import tensorflow as tf

    steps, n, beta_2 = 10_000, 1024, 0.999
    expected_v = 1.0 - beta_2 ** steps
    # What round-to-nearest bfloat16 storage does to the same recursion:
    # v stops where (1 - beta_2) * (1 - v) is under half a spacing.
    v = np.float32(0.0)
    for _ in range(steps):
        v = round_to_nearest_bfloat16(beta_2 * v + (1 - beta_2) * 1.0)
    assert v < 0.5, v

    variable = keras.Variable(np.zeros((n,), np.float32))
    optimizer = ks.SignAdam(learning_rate=1e-4, beta_2=beta_2,
                            bias_correction=True, state_dtype=state_dtype)
    g = tf.ones((n,))

    @tf.function(jit_compile=True)
    def step():
        optimizer.apply([g], [variable])

    for _ in range(steps):
        step()
    stored = decoded(optimizer, "v")
    assert abs(stored.mean() - expected_v) < 2e-3, stored.mean()
    assert stored.min() > 0.98
    # Each step moves every weight by lr * m_hat / sqrt(v_hat), about lr
    # (v_hat of each copy carries its own rounding noise).
    theta = to_numpy(variable)
    assert abs(theta.mean() / (-1e-4 * steps) - 1) < 2e-3, theta.mean()
    np.testing.assert_allclose(theta, -1e-4 * steps, rtol=0.03)


def fitted(optimizer, epochs, model=None):
    x, y = digits_like(96)
    if model is None:
        keras.utils.set_random_seed(0)
        model = small_model(hidden=16)
        model.compile(optimizer=optimizer, loss=keras.losses.
                      SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=epochs, shuffle=False, verbose=0)
    return model


@pytest.mark.parametrize("state_dtype", ["bfloat16", "int8"])
def test_save_load_and_resume_are_exact(tmp_path, state_dtype):
    straight = fitted(ks.SignAdamPP(state_dtype=state_dtype), 4)
    again = fitted(ks.SignAdamPP(state_dtype=state_dtype), 4)
    half = fitted(ks.SignAdamPP(state_dtype=state_dtype), 2)
    path = str(tmp_path / "half.keras")
    half.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.optimizer.state_dtype == state_dtype
    resumed = fitted(None, 2, model=loaded)
    for model in (again, resumed):
        for a, b in zip(straight.weights, model.weights):
            np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
        for a, b in zip(straight.optimizer.variables,
                        model.optimizer.variables):
            np.testing.assert_array_equal(to_numpy(ops_cast(a, "float32")),
                                          to_numpy(ops_cast(b, "float32")))


@pytest.mark.parametrize("state_dtype", ["bfloat16", "int8"])
def test_statistics_and_mixed_precision_with_rounded_state(state_dtype):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        optimizer = ks.SignAdamPP(state_dtype=state_dtype,
                                  track_statistics=True)
        model = fitted(optimizer, 1)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    inner = model.optimizer.inner_optimizer
    assert inner is optimizer
    assert {keras.backend.standardize_dtype(v.dtype)
            for v in moments(inner)} == {state_dtype}
    assert 0.0 <= inner.sparsity <= 1.0
    assert all(np.all(np.isfinite(to_numpy(w))) for w in model.weights)


@pytest.mark.parametrize("cls,state_dtype,kwargs", [
    (cls, dtype, {}) for cls in (ks.SignAdam, ks.SignAdamPP, ks.Signum,
                                 ks.NovoGrad)
    # int8 state holds bounded moments only (the sign family's).
    for dtype in (None, "bfloat16") + (
        ("int8",) if cls in (ks.SignAdam, ks.SignAdamPP) else ())] + [
    (cls, dtype, {"error_feedback": True})
    for cls in (ks.SignSGD, ks.SignAdam, ks.SignAdamPP)
    for dtype in (None, "bfloat16")] + [
    # The thresholds set from per-tensor statistics of p = x + e,
    (ks.SignAdamPP, None, {"error_feedback": True,
                           "threshold_mode": "adaptive"}),
    (ks.SignAdamPP, "bfloat16", {"error_feedback": True,
                                 "threshold_mode": "relative"}),
    (ks.SignSGD, None, {"error_feedback": True,
                        "threshold_mode": "adaptive"}),
    # and of p = g + lambda theta (float32 state: with rounded state the
    # coupled decay still costs a copy of the variable, CHANGELOG).
    (ks.SignAdamPP, None, {"coupled_weight_decay": 1e-2,
                           "threshold_mode": "adaptive"}),
    (ks.SignAdamPP, None, {"coupled_weight_decay": 1e-2,
                           "threshold_mode": "relative"}),
    (ks.SignSGD, None, {"coupled_weight_decay": 1e-2,
                        "threshold_mode": "adaptive"}),
    # Clipping by norm: the norms' squares are summed where they are formed.
    (ks.SignAdamPP, None, {"clipnorm": 1.0}),
    (ks.SignSGD, None, {"global_clipnorm": 1.0, "track_statistics": True})])
def test_compiled_update_writes_only_its_state(cls, state_dtype, kwargs):
    """The update XLA compiles writes no tensor of a variable's shape
    besides the variable and its state: no copy and no temporary.

    The moments are written in place after the variable's update has read
    their old values (`Optimizer.write_moments(after=...)`), and the
    error-feedback residual after both (`write_moments_later`). Without
    that order XLA kept a copy of every stored moment at every step.
    Error feedback's scale is summed over p formed a second time; summed
    over the p and s the update uses, both were written out in full. The
    relative and adaptive thresholds' statistics form p again, in their
    fallback branch too; given p, the branch had it written out. Keras's
    clipping by norm on TensorFlow had the squares written out."""
    import tensorflow as tf

    # Whole rows of `reductions.ROW`: the sums' leftover components (fewer
    # than a row per tensor) may be written out.
    shapes = [(64, 48), (2, 1024)]
    variables = [keras.Variable(np.ones(s, "float32")) for s in shapes]
    grads = [tf.constant(np.full(s, 1e-2, "float32")) for s in shapes]
    optimizer = cls(state_dtype=state_dtype, **kwargs)
    optimizer.build(variables)

    @tf.function(jit_compile=True)
    def apply():
        optimizer.apply(grads, variables)

    hlo = apply.experimental_get_compiler_ir()(stage="optimized_hlo")
    written = tensors_written_besides(hlo, shapes)
    assert not written, written
