"""Non-finite gradient components never reach parameters or state."""

import keras
import numpy as np
import pytest

import keras_signadam as ks
from tests.helpers import to_numpy

ALL = [ks.SignSGD, ks.Signum, ks.SignAdam, ks.SignAdamPP]


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("cls", ALL)
def test_nonfinite_components_are_skipped_and_counted(cls, jit_compile):
    optimizer = cls(learning_rate=1e-2, jit_compile=jit_compile,
                    track_statistics=True)
    variable = keras.Variable(np.ones((3, 4), "float32"))
    bad = np.full((3, 4), 1e-2, "float32")
    bad[0, 0], bad[1, 2], bad[2, 3] = np.nan, np.inf, -np.inf
    injected = 0
    for step in range(5):
        g = bad if step % 2 else np.full((3, 4), 1e-2, "float32")
        injected += 3 if step % 2 else 0
        optimizer.apply([g], [variable])
    assert optimizer.nonfinite_count == injected
    for v in [variable] + optimizer.variables:
        assert np.all(np.isfinite(to_numpy(v))), v.path

    # A clean twin that saw zero in place of each non-finite component ends
    # exactly where the optimizer did.
    twin_optimizer = cls(learning_rate=1e-2, jit_compile=jit_compile)
    twin = keras.Variable(np.ones((3, 4), "float32"))
    cleaned = np.where(np.isfinite(bad), bad, 0).astype("float32")
    for step in range(5):
        g = cleaned if step % 2 else np.full((3, 4), 1e-2, "float32")
        twin_optimizer.apply([g], [twin])
    np.testing.assert_array_equal(to_numpy(variable), to_numpy(twin))


@pytest.mark.parametrize("cls", [ks.SignSGD, ks.SignAdamPP])
def test_whole_nan_tensor_leaves_parameter_unmoved_at_first_step(cls):
    optimizer = cls(learning_rate=1e-2, track_statistics=True)
    variable = keras.Variable(np.ones(5, "float32"))
    other = keras.Variable(np.ones(5, "float32"))
    optimizer.apply(
        [np.full(5, np.nan, "float32"), np.full(5, 1e-2, "float32")],
        [variable, other],
    )
    np.testing.assert_array_equal(to_numpy(variable), np.ones(5))
    assert not np.allclose(to_numpy(other), 1.0)
    assert optimizer.nonfinite_count == 5


def test_training_continues_after_nan_batch():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=ks.SignAdamPP(learning_rate=1e-2,
                                          track_statistics=True),
                  loss="mse")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    x_bad = x.copy()
    x_bad[:8] = np.nan  # first batch gives NaN gradients
    model.fit(x_bad, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert model.optimizer.nonfinite_count > 0
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


@pytest.mark.parametrize("cls", ALL + [ks.NovoGrad])
def test_without_statistics_nonfinite_is_still_skipped(cls):
    tracked = cls(learning_rate=1e-2, track_statistics=True)
    untracked = cls(learning_rate=1e-2)
    g = np.array([np.nan, 1e-2, -np.inf, 3e-3], "float32")
    a, b = keras.Variable(np.ones(4, "float32")), keras.Variable(
        np.ones(4, "float32"))
    for _ in range(3):
        tracked.apply([g], [a])
        untracked.apply([g], [b])
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert np.all(np.isfinite(to_numpy(b)))
    assert untracked.nonfinite_count is None
    assert untracked.sparsity is None
    assert tracked.nonfinite_count == 6


def test_counts_are_exact_beyond_float32_integer_range():
    # More than 2**24 components: float32 cannot count them one by one.
    n = 2**24 + 5
    g = np.full(n, 1e-2, "float32")
    g[:7] = np.nan
    g[7:1000] = 0.0
    optimizer = ks.SignAdamPP(learning_rate=1e-3, threshold=1e-3,
                              track_statistics=True)
    variable = keras.Variable(np.zeros(n, "float32"))
    optimizer.apply([g], [variable])
    assert optimizer.nonfinite_count == 7
    assert optimizer.sparsity == pytest.approx(1000 / n, abs=0)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_statistics_can_be_turned_on_and_off_between_steps(jit_compile):
    # The flag is read while tracing; the setter must make the compiled
    # update trace again, or the counts would silently stay at zero.
    optimizer = ks.SignAdamPP(learning_rate=1e-2, threshold=1e-3,
                              jit_compile=jit_compile)
    variable = keras.Variable(np.ones(4, "float32"))
    g = np.array([np.nan, 1e-2, 1e-4, -1e-2], "float32")
    optimizer.apply([g], [variable])
    assert optimizer.sparsity is None and optimizer.nonfinite_count is None
    optimizer.track_statistics = True
    optimizer.apply([g], [variable])
    optimizer.apply([g], [variable])
    assert optimizer.nonfinite_count == 2
    assert optimizer.sparsity == 0.5  # the NaN and the 1e-4 component
    optimizer.track_statistics = False
    optimizer.apply([g], [variable])
    assert optimizer.nonfinite_count is None
    optimizer.track_statistics = True
    assert optimizer.nonfinite_count == 2  # the untracked step added none
    with pytest.raises(ValueError, match="`track_statistics`"):
        optimizer.track_statistics = 1


@pytest.mark.parametrize("confidence", ["hard", "soft"])
@pytest.mark.parametrize("jit_compile", [True, False])
def test_counts_are_exact_in_full_rows_and_the_leftover(confidence,
                                                        jit_compile):
    # 2185 components: two full rows of 1024 for the counting product and
    # 137 left over, with non-finite and zero-confidence components in
    # each, counted again at every step; at the last, a whole row of the
    # product is non-finite (the largest row sum of the count's marks).
    rng = np.random.default_rng(3)
    delta = 1e-3
    optimizer = ks.SignAdamPP(learning_rate=1e-3, threshold=delta,
                              confidence=confidence, jit_compile=jit_compile,
                              track_statistics=True)
    variable = keras.Variable(np.zeros((5, 437), "float32"))
    injected = 0
    for step in range(5):
        g = (rng.normal(size=(5, 437)) * 10.0 ** rng.uniform(
            -4.5, -2, size=(5, 437))).astype("float32")
        if step == 4:
            g.reshape(-1)[1024:2048] = rng.choice([np.nan, np.inf, -np.inf],
                                                  1024)
            injected += 1024
        elif step % 2:
            flat = g.reshape(-1)
            chosen = [5, 1500, 2100]  # in each full row and the leftover
            others = np.setdiff1d(np.arange(flat.size), chosen)
            where = np.concatenate([chosen, rng.choice(others, 37,
                                                       replace=False)])
            flat[where] = rng.choice([np.nan, np.inf, -np.inf], 40)
            injected += 40
        optimizer.apply([g], [variable])
        zero = ~np.isfinite(g) | (np.abs(np.nan_to_num(g)) <= delta)
        assert optimizer.sparsity == pytest.approx(zero.sum() / g.size,
                                                   abs=0), step
        assert optimizer.nonfinite_count == injected


def clipped_in_numpy(grads, clip, per_tensor):
    """Keras's clipping by norm in float64, the norms over the finite
    components (non-finite ones stay as they are)."""
    clean = [np.where(np.isfinite(g), g, 0).astype(np.float64)
             for g in grads]
    norms = [np.linalg.norm(c) for c in clean]
    if not per_tensor:
        norms = [np.linalg.norm(norms)] * len(grads)
    return [g * (clip / max(n, clip)) for g, n in zip(grads, norms)]


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("argument", ["clipnorm", "global_clipnorm"])
def test_clipping_by_norm_skips_only_the_nonfinite_components(argument,
                                                              jit_compile):
    """The norms that `clipnorm` and `global_clipnorm` divide by count
    non-finite components as zero: the finite ones are clipped and move,
    at a threshold set between the clipped values; only the non-finite
    ones are skipped and counted. Squares that overflow float32 (1e20)
    still give the norm."""
    rng = np.random.default_rng(5)
    grads = [(rng.normal(size=(3, 40)) * 1e20).astype("float32"),
             rng.normal(size=17).astype("float32")]
    grads[0][0, :2] = [np.nan, np.inf]
    grads[1][4] = -np.inf
    clip = 2.0
    clipped = clipped_in_numpy(grads, clip, argument == "clipnorm")
    # Half the largest finite clipped magnitude, so that some components
    # pass and some do not.
    threshold = 0.5 * max(np.max(np.abs(np.where(np.isfinite(c), c, 0)))
                          for c in clipped)
    optimizer = ks.SignSGD(learning_rate=1.0, threshold=threshold,
                           jit_compile=jit_compile, track_statistics=True,
                           **{argument: clip})
    variables = [keras.Variable(np.zeros(g.shape, "float32")) for g in grads]
    optimizer.apply(grads, variables)
    for variable, c in zip(variables, clipped):
        finite = np.isfinite(c)
        expected = np.where(finite & (np.abs(c) > threshold),
                            -np.sign(np.where(finite, c, 0)), 0)
        np.testing.assert_array_equal(to_numpy(variable), expected)
    assert optimizer.nonfinite_count == 3
    assert 0 < optimizer.sparsity < 1
