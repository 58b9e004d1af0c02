"""Numerics at the edges: very long runs, beta at 0 and close to 1,
gradients from 1e-30 to 1e30, zero-size and scalar variables, and a
loss-scale overflow under mixed precision."""

import functools
import math

import keras
import numpy as np
import pytest

import keras_signadam as ks
from keras_signadam.comparison import datasets
from keras_signadam.comparison import models
from tests import reference
from tests.helpers import to_numpy

ALL = [ks.SignSGD, ks.Signum, ks.SignAdam, ks.SignAdamPP, ks.NovoGrad]


def finite_everywhere(optimizer, variables):
    return all(np.all(np.isfinite(to_numpy(v)))
               for v in list(variables) + optimizer.variables)


def exact_one_minus(beta, t):
    return -math.expm1(t * math.log(beta)) if beta else 1.0


@pytest.mark.parametrize("beta_1,beta_2", [(0.9, 0.999),
                                           (0.9999999, 0.9999999)])
def test_bias_correction_at_ten_million_steps(beta_1, beta_2):
    import tensorflow as tf

    t = 10**7
    optimizer = ks.SignAdam(learning_rate=1e-3, beta_1=beta_1, beta_2=beta_2,
                            bias_correction=True)
    variable = keras.Variable(np.zeros(3, "float32"))
    optimizer.build([variable])
    # t - 1 steps with zero gradients leave the moments at 0; the shared
    # step state is advanced by the optimizer's own per-step code, t - 1
    # times, in one compiled loop.
    history = optimizer.step_rule.history

    @tf.function(jit_compile=True, autograph=False)
    def advance(n):
        def body(i):
            history.advance(optimizer, optimizer.beta_1)
            return (i + 1,)

        return tf.while_loop(lambda i: i < n, body, (tf.constant(0),))

    advance(tf.constant(t - 1))
    assert int(to_numpy(history.steps)) == t - 1
    g = np.array([1.0, -1.0, 0.0], "float32")
    optimizer.apply([g], [variable])
    b1 = float(np.float32(beta_1))
    m_hat = (1 - b1) * np.sign(g) / exact_one_minus(b1, t)
    v_hat = (1 - beta_2) * np.sign(g) ** 2 / exact_one_minus(beta_2, t)
    expected = -1e-3 * m_hat / (np.sqrt(v_hat) + 1e-8)
    assert finite_everywhere(optimizer, [variable])
    np.testing.assert_allclose(to_numpy(variable), expected, rtol=1e-4)


@pytest.mark.parametrize("cls", ALL)
def test_setting_iterations_does_not_change_the_steps(cls):
    """The bias corrections and NovoGrad's first-step rule count the steps
    the moments took, not `iterations` (which a warm start may set)."""
    rng = np.random.default_rng(4)
    grads = [rng.normal(size=(4, 3)).astype("float32") for _ in range(5)]
    trajectories = []
    for start in (0, 1000):
        optimizer = cls(learning_rate=1e-3)
        variable = keras.Variable(np.zeros((4, 3), "float32"))
        optimizer.build([variable])
        optimizer.iterations.assign(start)
        values = []
        for g in grads:
            optimizer.apply([g], [variable])
            values.append(to_numpy(variable).copy())
        trajectories.append(values)
        # Each step of a sign method moves a component by at most lr
        # (SignAdam's, without bias correction, by up to the ratio bound
        # sqrt(A_t), under 7.3 lr; NovoGrad's by lr times its normalized
        # gradient).
        steps = np.abs(np.diff([np.zeros((4, 3))] + values, axis=0))
        assert steps.max() <= 1.01e-3 * {ks.NovoGrad: np.sqrt(12),
                                         ks.SignAdam: 7.3}.get(cls, 1.0)
    for a, b in zip(*trajectories):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", ALL)
def test_float64_variables_step_in_float64(cls):
    """A step far below float32's resolution is kept, as Keras's SGD
    keeps it."""
    start = 1.0 + 1e-12
    lr = 1e-13
    variable = keras.Variable(np.full(4, start), dtype="float64")
    optimizer = cls(learning_rate=lr)
    optimizer.apply([keras.ops.ones(4, dtype="float64")], [variable])
    sgd_variable = keras.Variable(np.full(4, start), dtype="float64")
    keras.optimizers.SGD(learning_rate=lr).apply(
        [keras.ops.ones(4, dtype="float64")], [sgd_variable])
    got = to_numpy(variable)
    assert got.dtype == np.float64
    assert np.all(got < start)
    # The first step of each rule here is a multiple of lr * sign(g), like
    # SGD's lr * g: NovoGrad's lr * g / ||g|| = lr / 2 for four ones,
    # signADAM++'s momentum (1 - beta) lr, signADAM's without bias
    # correction lr (1 - beta_1) / sqrt(1 - beta_2).
    scale = {ks.NovoGrad: 0.5, ks.SignAdamPP: 0.1,
             ks.SignAdam: 0.1 / np.sqrt(0.001)}.get(cls, 1.0)
    np.testing.assert_allclose(start - got, scale * (start - to_numpy(
        sgd_variable)), rtol=1e-3)
    assert all(v.dtype == "float64" for v in optimizer.variables
               if len(v.shape) and v.shape == variable.shape)


@pytest.mark.parametrize("beta_1,beta_2", [(0.0, 0.0), (0.0, 0.999),
                                           (0.999999, 0.9999999)])
def test_extreme_betas_match_reference(beta_1, beta_2):
    rng = np.random.default_rng(0)
    theta = rng.normal(size=6).astype("float32")
    grads = [[(rng.normal(size=6) * 1e-3).astype("float32")]
             for _ in range(15)]
    optimizer = ks.SignAdamPP(learning_rate=1e-2, threshold=5e-4,
                              beta_1=beta_1, second_moment=True,
                              beta_2=beta_2)
    variable = keras.Variable(theta)
    for (g,) in grads:
        optimizer.apply([g], [variable])
    expected, _ = reference.run(
        functools.partial(reference.AdamOfSigns, lr=1e-2, threshold=5e-4,
                          beta_1=float(np.float32(beta_1)), beta_2=beta_2),
        [theta], grads, np.float32)
    np.testing.assert_allclose(to_numpy(variable), expected[0], rtol=1e-4,
                               atol=1e-6)


def run_scaled(cls, kwargs, scale, steps=6):
    rng = np.random.default_rng(1)
    optimizer = cls(learning_rate=1e-2, **kwargs)
    variable = keras.Variable(np.ones((4, 5), "float32"))
    for _ in range(steps):
        g = rng.normal(size=(4, 5)).astype("float32") * np.float32(scale)
        optimizer.apply([g], [variable])
    assert finite_everywhere(optimizer, [variable])
    return to_numpy(variable)


SCALE_FREE = {
    "SignSGD": (ks.SignSGD, {}),
    "Signum": (ks.Signum, {}),
    "SignAdam": (ks.SignAdam, {}),
    "SignAdamPP relative": (ks.SignAdamPP, dict(threshold=0.5,
                                                threshold_mode="relative")),
}


@pytest.mark.parametrize("name", list(SCALE_FREE))
@pytest.mark.parametrize("scale", [1e-30, 1e-10, 1e10, 1e30])
def test_sign_methods_ignore_gradient_scale(name, scale):
    cls, kwargs = SCALE_FREE[name]
    np.testing.assert_allclose(run_scaled(cls, kwargs, scale),
                               run_scaled(cls, kwargs, 1.0), rtol=1e-5)


@pytest.mark.parametrize("scale", [1e-30, 1e30])
@pytest.mark.parametrize("cls", [ks.NovoGrad, ks.SignAdamPP])
def test_extreme_scales_stay_finite(cls, scale):
    run_scaled(cls, {}, scale)


@pytest.mark.parametrize("cls", ALL)
def test_zero_size_and_scalar_variables(cls):
    kwargs = ({"threshold_mode": "relative", "threshold": 0.5}
              if cls is ks.SignAdamPP else {})
    optimizer = cls(learning_rate=1e-2, **kwargs)
    shapes = [(), (0,), (3, 0), (2,)]
    variables = [keras.Variable(np.ones(s, "float32")) for s in shapes]
    for _ in range(3):
        optimizer.apply([np.full(s, 0.5, "float32") for s in shapes],
                        variables)
    assert finite_everywhere(optimizer, variables)
    assert to_numpy(variables[0]) < 1.0
    assert to_numpy(variables[1]).shape == (0,)


def test_loss_scale_overflow_under_mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        (x, y), _ = datasets.load_digits()
        model = models.mlp((8, 8, 1), 10, width=32)
        optimizer = keras.optimizers.LossScaleOptimizer(
            ks.SignAdamPP(learning_rate=3e-3), initial_scale=2.0**60)
        model.compile(optimizer=optimizer,
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
        history = model.fit(x[:512], y[:512], batch_size=32, epochs=4,
                            verbose=0)
        inner = optimizer.inner_optimizer
        # float16 gradients of a loss scaled by 2**60 overflow: those steps
        # are skipped and the scale halves until gradients fit.
        assert float(to_numpy(optimizer.dynamic_scale)) < 2.0**40
        applied = int(to_numpy(inner.iterations))
        assert 0 < applied < 4 * 16  # 16 batches per epoch; some skipped
        assert finite_everywhere(inner, model.trainable_variables)
        assert history.history["loss"][-1] < history.history["loss"][0]
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e30])
def test_norms_agree_eagerly_and_traced(scale):
    """The norm's rescaled fallback (sums of squares that overflow or
    underflow) against NumPy in float64, run eagerly (Python picks the
    branch) and traced under XLA (a graph conditional)."""
    import tensorflow as tf

    from keras_signadam.optimizers import reductions

    rng = np.random.default_rng(0)
    g = (rng.normal(size=(3, 700)) * scale).astype(np.float32)
    expected = np.linalg.norm(g.astype(np.float64))
    traced = tf.function(reductions.l2_norm, jit_compile=True)
    for norm in (reductions.l2_norm(keras.ops.convert_to_tensor(g)),
                 traced(tf.constant(g))):
        np.testing.assert_allclose(float(norm), expected, rtol=1e-5)


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e30])
@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_standard_deviation_agrees_eagerly_and_traced(scale, offset):
    """The adaptive threshold's deviation, whose centering runs inside the
    norm's sums and its fallback: against NumPy in float64, at scales
    whose squares underflow or overflow and with a mean 1000 times the
    spread."""
    import tensorflow as tf

    from keras_signadam.optimizers import confidence

    rng = np.random.default_rng(1)
    g = ((rng.normal(size=(3, 700)) + offset) * scale).astype(np.float32)
    expected = np.std(g.astype(np.float64))
    traced = tf.function(confidence.standard_deviation, jit_compile=True)
    for std in (confidence.standard_deviation(
                    keras.ops.convert_to_tensor(g)), traced(tf.constant(g))):
        np.testing.assert_allclose(float(std), expected, rtol=1e-4)


def _both_ways(function, x):
    """`function(x)` run eagerly (Python picks a branch) and traced under
    XLA (a graph conditional), as floats."""
    import tensorflow as tf

    traced = tf.function(function, jit_compile=True)
    return [float(function(keras.ops.convert_to_tensor(x))),
            float(traced(tf.constant(x)))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1,), (5,), (4, 1024), (3, 700)])
def test_statistics_count_nonfinite_components_as_zero(dtype, shape):
    """The per-tensor statistics take the raw gradient: its non-finite
    components count as zero (NumPy in float64 on the cleaned tensor),
    in full rows of the reduction and in the leftover."""
    from keras_signadam.optimizers import confidence
    from keras_signadam.optimizers import reductions

    rng = np.random.default_rng(4)
    g = (rng.normal(size=shape) * 1e-3 + 2e-4).astype(dtype)
    flat = g.reshape(-1)
    for clean in (True, False):
        if not clean:
            if flat.size == 1:
                flat[0] = np.nan
            else:
                flat[rng.choice(flat.size, min(flat.size - 1, 9),
                                replace=False)] = np.inf
                flat[-1], flat[0] = np.nan, -np.inf
        cleaned = np.where(np.isfinite(g), g, 0).astype(np.float64)
        expected = {
            reductions.l2_norm: np.linalg.norm(cleaned),
            confidence.root_mean_square: np.sqrt(np.mean(cleaned**2)),
            confidence.standard_deviation: np.std(cleaned),
        }
        for function, value in expected.items():
            for result in _both_ways(function, g):
                np.testing.assert_allclose(result, value, rtol=1e-5,
                                           atol=1e-12, err_msg=(
                                               function.__name__, clean))


def test_standard_deviation_with_an_outlying_first_component():
    """The one-pass deviation is shifted by the first component; with
    that component 1000 spreads away from the mean of 2**20 others, the
    pass would lose most of float32's digits to cancellation, so the
    exact two passes run instead."""
    from keras_signadam.optimizers import confidence

    rng = np.random.default_rng(5)
    g = (1e3 + rng.normal(size=2**20)).astype(np.float32)
    g[0] = 0.0
    expected = np.std(g.astype(np.float64))
    for result in _both_ways(confidence.standard_deviation, g):
        np.testing.assert_allclose(result, expected, rtol=1e-5)


def test_concrete_conditions_run_only_the_chosen_branch():
    """Eagerly only the chosen branch runs (on JAX Python picks it; that
    nothing is compiled there is checked in the JAX process,
    test_other_backends.py); traced, both are built."""
    import tensorflow as tf

    from keras_signadam.optimizers import tracing

    called = []

    def branch(name):
        return lambda: called.append(name) or keras.ops.ones(())

    tracing.cond(keras.ops.convert_to_tensor(False), branch("true"),
                 branch("false"))
    assert called == ["false"]
    called.clear()
    # Traced, both branches are built into the conditional.
    tf.function(lambda p: tracing.cond(p, branch("true"), branch("false")))(
        tf.constant(True))
    assert sorted(called) == ["false", "true"]


@pytest.mark.parametrize("scale", [1e-30, 1e30])
@pytest.mark.parametrize("mode", ["relative", "adaptive"])
def test_coupled_decay_in_the_statistics_fallback_matches_reference(mode,
                                                                     scale):
    """Parameters and gradients at scales whose squares underflow or
    overflow float32 send the threshold's statistics of p = g + lambda
    theta to their rescaled fallback, a graph conditional under XLA that
    forms p anew from the gradient and the parameters: against NumPy."""
    rng = np.random.default_rng(2)
    theta = (rng.normal(size=(4, 300)) * scale).astype("float32")
    grads = [[(rng.normal(size=(4, 300)) * scale).astype("float32")]
             for _ in range(4)]
    kwargs = dict(threshold=0.7, threshold_mode=mode,
                  coupled_weight_decay=0.5)
    # The step scaled with the problem, so that every step's p is.
    lr = float(np.float32(1e-2 * scale))
    optimizer = ks.SignAdamPP(learning_rate=lr, jit_compile=True, **kwargs)
    variable = keras.Variable(theta)
    for (g,) in grads:
        optimizer.apply([g], [variable])
    expected, _ = reference.run(
        functools.partial(reference.SignAdamPP, lr=lr, **kwargs),
        [theta], grads, np.float32)
    got = to_numpy(variable)
    assert not np.allclose(got, theta, rtol=1e-3, atol=0)
    np.testing.assert_allclose(got, expected[0], rtol=2e-5,
                               atol=2e-6 * scale)
