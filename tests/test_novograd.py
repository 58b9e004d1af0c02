"""NovoGrad against its NumPy reference, its memory, and its arguments."""

import functools

import keras
import numpy as np
import pytest

import keras_signadam as ks
from keras_signadam.comparison import datasets
from tests import reference
from tests.helpers import DTYPES
from tests.helpers import SHAPES
from tests.helpers import apply_steps
from tests.helpers import make_problem
from tests.helpers import tolerance

VARIANTS = {
    "plain": {},
    "grad_averaging": {"grad_averaging": True},
    "decay": {"weight_decay": 1e-2},
    "amsgrad": {"amsgrad": True, "beta_2": 0.5},
    "all": {"grad_averaging": True, "weight_decay": 1e-2,
            "amsgrad": True, "beta_1": 0.8},
}


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_matches_reference(variant, dtype_name, clip):
    kwargs = dict(VARIANTS[variant])
    dtype = DTYPES[dtype_name]
    thetas, grads = make_problem(sorted(VARIANTS).index(variant), dtype)
    clip_kwargs = {"clipvalue": 1e-3} if clip else {}
    # float32 through the XLA-compiled update, bfloat16 through plain ops.
    optimizer = ks.NovoGrad(learning_rate=1e-2, **kwargs, **clip_kwargs,
                            jit_compile=dtype_name == "float32")
    got = apply_steps(optimizer, thetas, grads, dtype_name)
    expected, _ = reference.run(
        functools.partial(reference.NovoGrad, lr=1e-2, **kwargs),
        thetas, grads, dtype, **clip_kwargs,
    )
    for g, e, shape in zip(got, expected, SHAPES):
        assert g.shape == shape
        np.testing.assert_allclose(g, e, **tolerance(dtype_name))


def test_amsgrad_changes_the_trajectory():
    thetas, grads = make_problem(5, np.float32)
    plain = apply_steps(ks.NovoGrad(beta_2=0.5), thetas, grads, "float32")
    ams = apply_steps(ks.NovoGrad(beta_2=0.5, amsgrad=True), thetas, grads,
                      "float32")
    assert any(not np.allclose(a, b) for a, b in zip(plain, ams))


def cnn():
    return keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10),
    ])


def state_bytes(optimizer):
    return sum(
        int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
        for v in optimizer.variables
    )


def test_state_is_at_most_55_percent_of_adam():
    model = cnn()
    sizes = {}
    for name, optimizer in [("adam", keras.optimizers.Adam()),
                            ("novograd", ks.NovoGrad())]:
        optimizer.build(model.trainable_variables)
        sizes[name] = state_bytes(optimizer)
    parameters = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert sizes["adam"] >= 2 * 4 * parameters
    ratio = sizes["novograd"] / sizes["adam"]
    assert ratio <= 0.55, ratio
    assert sizes["novograd"] >= 4 * parameters


def test_weight_decay_is_the_in_moment_decay_under_either_name():
    thetas, grads = make_problem(3, np.float32)
    by_name = apply_steps(ks.NovoGrad(learning_rate=1e-2, weight_decay=0.1),
                          thetas, grads, "float32")
    by_alias = apply_steps(
        ks.NovoGrad(learning_rate=1e-2, momentum_weight_decay=0.1),
        thetas, grads, "float32")
    undecayed = apply_steps(ks.NovoGrad(learning_rate=1e-2), thetas, grads,
                            "float32")
    expected, _ = reference.run(
        functools.partial(reference.NovoGrad, lr=1e-2, weight_decay=0.1),
        thetas, grads, np.float32)
    for a, b, e, _ in zip(by_name, by_alias, expected, undecayed):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, e, **tolerance("float32"))
    assert any(not np.allclose(a, u) for a, u in zip(by_name, undecayed))
    # The config holds one name, and round-trips.
    config = ks.NovoGrad(momentum_weight_decay=0.1).get_config()
    assert config["weight_decay"] == pytest.approx(0.1)
    assert "momentum_weight_decay" not in config
    assert ks.NovoGrad.from_config(config).weight_decay == pytest.approx(0.1)
    with pytest.raises(ValueError, match="momentum_weight_decay"):
        ks.NovoGrad(weight_decay=0.1, momentum_weight_decay=0.2)


@pytest.mark.parametrize("argument,value", [
    ("beta_1", 1.0), ("beta_2", -0.5), ("epsilon", 0.0),
    ("weight_decay", -1e-3), ("momentum_weight_decay", -1e-3),
    ("amsgrad", "yes"),
    ("grad_averaging", 1), ("learning_rate", -0.1),
])
def test_bad_arguments(argument, value):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        ks.NovoGrad(**{argument: value})


def test_nonfinite_and_huge_gradients_keep_state_finite():
    optimizer = ks.NovoGrad(learning_rate=1e-2, track_statistics=True)
    variable = keras.Variable(np.ones(4, "float32"))
    for g in ([np.nan, 1.0, 1.0, 1.0], [1e30, -1e30, 1e30, 1.0],
              [1e-30, 0.0, 0.0, 0.0]):
        optimizer.apply([np.array(g, "float32")], [variable])
    assert optimizer.nonfinite_count == 1
    for v in [variable] + optimizer.variables:
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(v)))


def test_config_round_trip():
    optimizer = ks.NovoGrad(weight_decay=1e-3, amsgrad=True,
                            grad_averaging=True)
    clone = keras.optimizers.deserialize(
        keras.optimizers.serialize(optimizer))
    assert clone.get_config() == optimizer.get_config()


def test_trains_digits():
    (x, y), (x_test, y_test) = datasets.load_digits()
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10)])
    model.compile(
        optimizer=ks.NovoGrad(learning_rate=1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"], jit_compile=True,
    )
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert model.evaluate(x_test, y_test, verbose=0)[1] > 0.9

