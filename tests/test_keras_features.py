"""Everything Keras's base optimizer offers keeps working."""


import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_signadam as ks
from tests import reference
from tests.helpers import small_model
from tests.helpers import to_numpy

ALL = [ks.SignSGD, ks.Signum, ks.SignAdam, ks.SignAdamPP]


def grads_sequence(shape, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype("float32") * 1e-2
            for _ in range(steps)]


def test_learning_rate_schedule_is_followed():
    schedule = keras.optimizers.schedules.ExponentialDecay(
        1e-2, decay_steps=1, decay_rate=0.5
    )
    optimizer = ks.SignSGD(learning_rate=schedule)
    variable = keras.Variable(np.zeros(5, "float32"))
    grads = grads_sequence((5,), 6)
    expected = np.zeros(5, "float32")
    for t, g in enumerate(grads):
        optimizer.apply([g], [variable])
        expected = expected - np.float32(1e-2 * 0.5**t) * np.sign(g)
    np.testing.assert_allclose(to_numpy(variable), expected, rtol=1e-6)


def test_gradient_accumulation_matches_reference():
    steps = 3
    optimizer = ks.SignAdamPP(learning_rate=1e-2, threshold=2e-3,
                              gradient_accumulation_steps=steps)
    variable = keras.Variable(np.ones(6, "float32"))
    grads = grads_sequence((6,), 4 * steps, seed=1)
    for g in grads:
        optimizer.apply([g], [variable])
    ref = reference.SignAdamPP(lr=1e-2, threshold=2e-3)
    theta = np.ones(6, "float32")
    for t in range(4):
        g = np.mean(grads[t * steps:(t + 1) * steps], axis=0)
        theta = ref.step(theta, g, t + 1)
    np.testing.assert_allclose(to_numpy(variable), theta, rtol=1e-5,
                               atol=1e-6)


def test_ema_tracks_the_average():
    optimizer = ks.Signum(learning_rate=1e-2, use_ema=True, ema_momentum=0.5)
    variable = keras.Variable(np.zeros(4, "float32"))
    values = []
    for g in grads_sequence((4,), 5, seed=2):
        optimizer.apply([g], [variable])
        values.append(to_numpy(variable).copy())
    average = values[0]
    for value in values[1:]:
        average = 0.5 * average + 0.5 * value
    np.testing.assert_allclose(
        to_numpy(optimizer._model_variables_moving_average[0]), average,
        rtol=1e-6, atol=1e-7,
    )


@pytest.mark.parametrize("clip", [{"clipvalue": 1e-3},
                                  {"global_clipnorm": 5e-3}])
def test_clipping_options_change_the_thresholded_update(clip):
    # Clipping shrinks gradients below the threshold: fewer components move.
    g = np.array([5e-3, -2e-3, 1e-4, 8e-3], "float32")
    plain = keras.Variable(np.zeros(4, "float32"))
    clipped = keras.Variable(np.zeros(4, "float32"))
    ks.SignSGD(learning_rate=1.0, threshold=1.5e-3).apply([g], [plain])
    ks.SignSGD(learning_rate=1.0, threshold=1.5e-3, **clip).apply(
        [g], [clipped]
    )
    g_clipped = (np.clip(g, -1e-3, 1e-3) if "clipvalue" in clip
                 else g * 5e-3 / max(np.linalg.norm(g), 5e-3))
    expected = -np.sign(g_clipped) * (np.abs(g_clipped) > 1.5e-3)
    np.testing.assert_array_equal(to_numpy(clipped), expected)
    assert np.count_nonzero(to_numpy(plain)) > np.count_nonzero(expected)



@pytest.mark.parametrize("clip", [{"clipnorm": 5e-3},
                                  {"global_clipnorm": 5e-3}])
def test_clipping_by_norm_densifies_sparse_gradients(clip):
    """An `Embedding`'s sparse gradient is clipped as its dense form is:
    the rows not looked up count as zero in the norm and do not move."""
    rows = np.array([[5e-3, -2e-3], [1e-4, 8e-3]], "float32")
    sparse = tf.IndexedSlices(tf.constant(rows), tf.constant([0, 2]),
                              tf.constant([4, 2]))
    as_dense = np.zeros((4, 2), "float32")
    as_dense[[0, 2]] = rows
    moved = []
    for gradient in (sparse, as_dense):
        variable = keras.Variable(np.zeros((4, 2), "float32"))
        ks.SignSGD(learning_rate=1.0, threshold=1.5e-3, **clip).apply(
            [gradient], [variable])
        moved.append(to_numpy(variable))
    clipped = as_dense * 5e-3 / max(np.linalg.norm(as_dense), 5e-3)
    expected = -np.sign(clipped) * (np.abs(clipped) > 1.5e-3)
    for value in moved:
        np.testing.assert_array_equal(value, expected)

@pytest.mark.parametrize("cls", ALL)
def test_weight_decay_respects_exclusions(cls):
    optimizer = cls(learning_rate=0.1, weight_decay=0.5)
    decayed = keras.Variable(np.ones(3, "float32"), name="kernel")
    kept = keras.Variable(np.ones(3, "float32"), name="bias")
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    zero = np.zeros(3, "float32")
    optimizer.apply([zero, zero], [decayed, kept])
    np.testing.assert_allclose(to_numpy(decayed), 1 - 0.1 * 0.5)
    np.testing.assert_allclose(to_numpy(kept), 1.0)


@pytest.mark.parametrize("cls", ALL)
def test_loss_scale_optimizer_unscales_and_skips_overflow(cls):
    inner = cls(learning_rate=1e-2)
    optimizer = keras.optimizers.LossScaleOptimizer(
        inner, initial_scale=1024.0
    )
    variable = keras.Variable(np.ones(4, "float32"))
    reference_var = keras.Variable(np.ones(4, "float32"))
    g = np.array([1e-2, -1e-2, 2e-2, -3e-2], "float32")
    optimizer.apply([g * 1024.0], [variable])
    cls(learning_rate=1e-2).apply([g], [reference_var])
    np.testing.assert_allclose(to_numpy(variable), to_numpy(reference_var),
                               rtol=1e-6)
    before = to_numpy(variable).copy()
    optimizer.apply([np.array([np.inf, 1, 1, 1], "float32")], [variable])
    np.testing.assert_array_equal(to_numpy(variable), before)
    assert float(to_numpy(optimizer.dynamic_scale)) == 512.0


@pytest.mark.parametrize("cls", ALL)
def test_sparse_embedding_gradient_equals_dense(cls):
    rng = np.random.default_rng(3)
    table = rng.normal(size=(10, 4)).astype("float32")
    rows = np.array([1, 4, 4, 7])
    values = rng.normal(size=(4, 4)).astype("float32") * 1e-2
    sparse = tf.IndexedSlices(tf.constant(values), tf.constant(rows),
                              tf.constant([10, 4]))
    dense = tf.convert_to_tensor(sparse)
    a, b = keras.Variable(table), keras.Variable(table)
    opt_a, opt_b = cls(learning_rate=1e-2), cls(learning_rate=1e-2)
    for _ in range(3):
        opt_a.apply([sparse], [a])
        opt_b.apply([dense], [b])
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-6)
    assert not np.allclose(to_numpy(a), table)


def test_embedding_model_trains():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 50, size=(256, 5))
    y = (x.sum(axis=1) % 2).astype("int32")
    model = keras.Sequential([
        keras.Input((5,), dtype="int32"),
        keras.layers.Embedding(50, 8),
        keras.layers.Flatten(),
        keras.layers.Dense(2),
    ])
    model.compile(
        optimizer=ks.SignAdamPP(learning_rate=1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_mixed_precision_policy_trains():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = small_model()
        model.compile(
            optimizer=ks.SignAdamPP(),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        x = np.random.default_rng(0).uniform(size=(64, 8, 8, 1))
        y = np.arange(64) % 10
        before = [w.copy() for w in model.get_weights()]
        model.fit(x, y, epochs=2, verbose=0)
        after = model.get_weights()
        assert all(w.dtype == np.float32 for w in after)
        assert any(not np.allclose(a, b) for a, b in zip(before, after))
    finally:
        keras.mixed_precision.set_global_policy("float32")
