"""Values a hostile (or unlucky) user gives: each is refused by name, or it
trains, saves, loads and trains again. Values that are valid only before
float32 rounding, writes around the checks, saved files whose state does
not match their config, NaN loss scales, gradients of unknown static
shape (a transformer fed sequences of any length), and a property test
over constructor values and later writes for every optimizer."""

import os
import warnings

import hypothesis
import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import strategies as st

import keras_signadam as ks
from tests.helpers import tampered
from tests.helpers import to_numpy

OPTIMIZERS = [ks.SignSGD, ks.Signum, ks.SignAdam, ks.SignAdamPP, ks.NovoGrad]
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def tiny_model(optimizer):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5),
                              keras.layers.Dense(3)])
    model.compile(optimizer=optimizer, loss=LOSS)
    return model


def tiny_data():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(16, 6)).astype("float32"),
            (np.arange(16) % 3).astype("int32"))


# ------------------------------------------- values that round invalid
@pytest.mark.parametrize("make", [
    lambda: ks.SignAdamPP(beta_1=0.99999999),
    lambda: ks.SignAdam(beta_2=0.99999999),
    lambda: ks.NovoGrad(beta_1=0.99999999),
    lambda: ks.Signum(momentum=0.99999999),
    lambda: ks.SignAdamPP(second_moment=True, epsilon=1e-50),
])
def test_a_value_that_rounds_to_an_invalid_one_is_refused(make):
    with pytest.raises(ValueError, match="in float32"):
        make()


def test_writes_that_round_invalid_are_refused_by_name(tmp_path):
    optimizer = ks.SignAdamPP()
    with pytest.raises(ValueError, match="beta_1.*1.0"):
        optimizer.beta_1.assign(0.99999999)
    x, y = tiny_data()
    model = tiny_model(ks.Signum())
    scheduler = ks.callbacks.MomentumScheduler(lambda epoch, b: 0.99999999)
    with pytest.raises(ValueError, match=r"schedule\(epoch\).*in float32"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[scheduler])
    model.save(tmp_path / "still.keras")  # the old value was kept
    keras.models.load_model(tmp_path / "still.keras")


@pytest.mark.parametrize("argument,bad", [("threshold", -1.0),
                                          ("beta_1", 1.0),
                                          ("learning_rate", float("nan"))])
def test_a_write_around_the_checks_is_refused_at_save(argument, bad,
                                                      tmp_path):
    x, y = tiny_data()
    model = tiny_model(ks.SignAdamPP())
    model.fit(x, y, epochs=1, verbose=0)
    getattr(model.optimizer, argument).value.assign(bad)
    path = tmp_path / "bad.keras"
    with pytest.raises(ValueError, match=f"`{argument} \\(stored\\)`"):
        model.save(path)
    with pytest.raises(ValueError, match=argument):
        model.optimizer.get_config()


@pytest.mark.parametrize("bad", [float("nan"), -1.0, float("inf")])
def test_learning_rate_writes_are_checked(bad, tmp_path):
    x, y = tiny_data()
    model = tiny_model(ks.SignAdam(1e-2))
    with pytest.raises(ValueError, match="learning_rate"):
        model.optimizer.learning_rate.assign(bad)
    with pytest.raises(ValueError, match="learning_rate"):
        model.optimizer.learning_rate = bad
    model.optimizer.learning_rate = 3e-3
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "ok.keras")
    loaded = keras.models.load_model(tmp_path / "ok.keras")
    assert float(to_numpy(loaded.optimizer.learning_rate)) == pytest.approx(
        3e-3)


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_nan_loss_scale_factor_is_refused(cls):
    with pytest.raises(ValueError, match="loss_scale_factor"):
        cls(loss_scale_factor=float("nan"))
    config = cls(loss_scale_factor=128.0).get_config()
    config["loss_scale_factor"] = float("nan")
    with pytest.raises(ValueError, match="loss_scale_factor"):
        cls.from_config(config)


# ----------------------------------------- state that does not match
@pytest.mark.parametrize("saved,claimed", [("int8", "bfloat16"),
                                           ("int8", None),
                                           ("bfloat16", "int8"),
                                           (None, "int8")])
def test_state_stored_otherwise_than_the_config_says_is_refused(
        saved, claimed, tmp_path):
    x, y = tiny_data()
    model = tiny_model(ks.SignAdamPP(state_dtype=saved))
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    tampered(path, path, lambda c: c.update(state_dtype=claimed))
    with pytest.raises(ValueError, match="state_dtype"):
        keras.models.load_model(path, safe_mode=True)


# -------------------------------------------- gradients of any shape
@pytest.mark.parametrize("make", [
    lambda: ks.SignSGD(threshold=0.5, threshold_mode="relative",
                       track_statistics=True),
    lambda: ks.Signum(track_statistics=True),
    lambda: ks.SignAdam(track_statistics=True, state_dtype="int8"),
    lambda: ks.SignAdamPP(threshold=0.25, threshold_mode="relative",
                          confidence="soft", track_statistics=True),
    lambda: ks.NovoGrad(track_statistics=True, state_dtype="bfloat16"),
], ids=["SignSGD", "Signum", "SignAdam", "SignAdamPP", "NovoGrad"])
def test_gradients_with_unknown_static_dimensions(make):
    """As Keras hands them over for a Dense kernel fed sequences of
    unknown length: the gradient of a (64, 128) kernel as (None, 128)."""
    variable = keras.Variable(np.zeros((64, 128), np.float32))
    optimizer = make()
    optimizer.build([variable])

    @tf.function(input_signature=[tf.TensorSpec((None, 128))])
    def step(gradient):
        optimizer.apply([gradient], [variable])

    g = np.random.default_rng(0).normal(size=(64, 128)).astype(np.float32)
    g[0, 0] = np.nan
    step(tf.constant(g))
    step(tf.constant(g))
    moved = to_numpy(variable)
    assert np.all(np.isfinite(moved)) and np.abs(moved).max() > 0
    assert moved[0, 0] == 0.0
    assert optimizer.nonfinite_count == 2


def transformer():
    """Embedding, self-attention and a feed-forward block over token
    sequences of any length, as in a small language model."""
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(40, 16)(tokens)
    x = x + keras.layers.MultiHeadAttention(2, 8)(x, x)
    x = keras.layers.LayerNormalization()(x)
    h = keras.layers.Dense(32, activation="gelu")(x)
    x = keras.layers.LayerNormalization()(x + keras.layers.Dense(16)(h))
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(2)(x))


def sequences():
    """A batch of token sequences whose length is unknown to the graph."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 40, (32, 10)).astype("int32")
    y = (x[:, 0] % 2).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16).map(
        lambda a, b: (tf.reshape(a, [tf.shape(a)[0], -1]), b))


# The three features unknown dimensions broke (the relative threshold,
# NovoGrad's norms, the statistics), under the default compile, an
# XLA-compiled train step and mixed precision; every optimizer meets such
# gradients in `test_gradients_with_unknown_static_dimensions`.
@pytest.mark.parametrize("name,make,compile_args", [
    ("SignAdam jit", lambda: ks.SignAdam(track_statistics=True),
     {"jit_compile": True}),
    ("SignAdamPP recipe", lambda: ks.SignAdamPP(
        threshold=0.25, threshold_mode="relative", confidence="soft"), {}),
    ("SignAdamPP adaptive", lambda: ks.SignAdamPP(), {}),
    ("NovoGrad mixed", lambda: ks.NovoGrad(), {"mixed": True}),
])
def test_a_small_transformer_trains(name, make, compile_args):
    mixed = compile_args.pop("mixed", False)
    if mixed:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = transformer()
        model.compile(optimizer=make(), loss=LOSS, **compile_args)
        callbacks = ([ks.callbacks.AdaptiveConfidence()]
                     if "adaptive" in name else [])
        history = model.fit(sequences(), epochs=2, verbose=0,
                            callbacks=callbacks)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.all(np.isfinite(history.history["loss"]))
    if callbacks:
        assert "sparsity" in history.history


def test_get_config_in_a_traced_update_raises_no_numpy_warning():
    x, y = tiny_data()
    model = tiny_model(ks.SignAdamPP(track_statistics=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=1, verbose=0)
        model.optimizer.get_config()
        assert model.optimizer.sparsity is not None
    assert not [w for w in caught if "__array__" in str(w.message)]


# ------------------------------------------------------------ property
WRITES = {
    "threshold": st.one_of(st.floats(-10.0, 10.0),
                           st.sampled_from([0.0, 1e-3, 0.25, float("nan"),
                                            float("inf"), 1e39])),
    "beta_1": st.one_of(st.floats(-0.5, 1.5),
                        st.sampled_from([0.99999999, 0.9999999, 0.5])),
    "momentum": st.one_of(st.floats(-0.5, 1.5),
                          st.sampled_from([0.99999999, 0.0])),
    # Magnitudes a user may mean (a step of 1e38 overflows float32 by
    # design), and the values that must be refused.
    "learning_rate": st.one_of(st.floats(-10.0, 10.0),
                               st.sampled_from([1e-3, 0.0, 1e39,
                                                float("nan"),
                                                float("inf")])),
}
CONSTRUCTOR = {
    "learning_rate": WRITES["learning_rate"],
    "beta_2": st.one_of(st.floats(-0.5, 1.5),
                        st.sampled_from([0.99999999, 0.0, 0.9])),
    "epsilon": st.one_of(st.floats(allow_nan=True),
                         st.sampled_from([1e-50, 1e-8])),
    "weight_decay": st.one_of(st.none(), st.floats(-1.0, 1.0)),
    "loss_scale_factor": st.one_of(st.none(), st.floats(allow_nan=True),
                                   st.sampled_from([0.0, 64.0])),
    "state_dtype": st.sampled_from([None, "float32", "bfloat16", "int8",
                                    "float16"]),
    "aggregation": st.sampled_from(["sum", "majority_vote", "vote"]),
    "error_feedback": st.sampled_from([False, True, "yes"]),
}
SIGN = ("learning_rate", "weight_decay", "loss_scale_factor", "state_dtype",
        "aggregation", "error_feedback")
APPLIES = {
    ks.SignSGD: SIGN,
    ks.Signum: SIGN,
    ks.SignAdam: tuple(CONSTRUCTOR),
    ks.SignAdamPP: tuple(CONSTRUCTOR),
    ks.NovoGrad: tuple(CONSTRUCTOR),
}


@st.composite
def hostile_cases(draw):
    cls = draw(st.sampled_from(OPTIMIZERS))
    arguments = {name: draw(CONSTRUCTOR[name])
                 for name in draw(st.sets(st.sampled_from(APPLIES[cls])))}
    variables = ["learning_rate"] + [
        name for name in ("threshold", "beta_1", "momentum")
        if hasattr(cls(), name)]
    writes = draw(st.lists(st.tuples(st.sampled_from(variables),
                                     st.sampled_from(variables).flatmap(
                                         lambda n: WRITES[n])),
                           max_size=2))
    return cls, arguments, writes


def refused_by_name(error, names):
    return any(f"`{name}" in str(error) or f"{name}=" in str(error)
               for name in names)


@hypothesis.settings(max_examples=25, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(hostile_cases())
# Rounds to -0.0 in float32: once accepted, then failed in the bias
# correction's double-precision log.
@hypothesis.example((ks.SignAdam, {"beta_2": -2.225073858507203e-309}, []))
@hypothesis.example((ks.SignAdamPP, {}, [("beta_1", -5e-324)]))
def test_every_accepted_value_saves_loads_and_steps(tmp_path_factory, case):
    cls, arguments, writes = case
    try:
        optimizer = cls(**arguments)
    except ValueError as error:
        assert refused_by_name(error, arguments), error
        return
    for name, value in writes:
        try:
            getattr(optimizer, name).assign(value)
        except ValueError as error:
            assert refused_by_name(error, [name]), error
    x, y = tiny_data()
    model = tiny_model(optimizer)
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("case") / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    loaded.fit(x, y, epochs=1, verbose=0)
    assert all(np.all(np.isfinite(to_numpy(w))) for w in loaded.weights)
    os.remove(path)
