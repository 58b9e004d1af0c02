"""`Hybrid`: sign updates for most variables, an adaptive optimizer for
the sensitive ones. Which variable goes where, the steps of each part
against the NumPy references over several steps (XLA and not), saving
and resuming, the learning rate both parts follow, callbacks, mixed
precision, the bytes it sends and the arguments. Under MirroredStrategy
with the vote: test_majority_vote.py; on JAX: test_other_backends.py."""

import keras
import numpy as np
import pytest

import keras_signadam as ks
from keras_signadam.backend import packing
from tests import reference
from tests.helpers import make_problem
from tests.helpers import to_numpy


def transformer_like():
    """An embedding, an attention block with layer normalization, a
    convolution and an output layer."""
    inputs = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(20, 8, name="embed")(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.MultiHeadAttention(2, 4, name="attention")(x, x)
    x = keras.layers.Conv1D(8, 3, name="conv")(x)
    x = keras.layers.BatchNormalization(name="batch_norm")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(5, name="head")(x)
    return keras.Model(inputs, outputs)


def assignment(adaptive, model=None):
    model = model or transformer_like()
    optimizer = ks.Hybrid(adaptive=adaptive)
    optimizer.build(model.trainable_variables)
    return optimizer.assignment


def test_default_keeps_the_output_layer_and_vectors_adaptive():
    parts = assignment(("output", "vectors"))
    adaptive = {p for p, part in parts.items() if part == "adaptive"}
    sign = {p for p, part in parts.items() if part == "sign"}
    assert {"embed/embeddings", "conv/kernel"} <= sign
    assert any(p.startswith("attention/query/kernel") for p in sign)
    assert {"norm/gamma", "norm/beta", "batch_norm/gamma",
            "batch_norm/beta", "conv/bias", "head/kernel",
            "head/bias"} <= adaptive
    # Attention's biases are (heads, size): not vectors, so sign.
    assert all(p.split("/")[-1] != "kernel" or p.startswith("head/")
               for p in adaptive)
    assert ks.Hybrid().adaptive == ("output", "vectors")


def test_selectors_by_name_and_pattern():
    parts = assignment(["output"])
    assert {p for p, k in parts.items() if k == "adaptive"} == {
        "head/kernel", "head/bias"}
    parts = assignment(["embed", "norm/"])
    assert {p for p, k in parts.items() if k == "adaptive"} == {
        "embed/embeddings", "norm/gamma", "norm/beta", "batch_norm/gamma",
        "batch_norm/beta"}
    assert set(assignment([]).values()) == {"sign"}
    assert assignment("vectors")["conv/bias"] == "adaptive"


@pytest.mark.parametrize("mode", ["plain", "own_xla", "xla_step"])
def test_each_part_steps_as_its_reference(mode):
    """Vectors to Keras's Adam, the rest to SignAdamPP's Algorithm 3,
    each against NumPy over 12 steps; a NaN reaches neither part. Run
    eagerly with plain ops, with the sign part compiling its own update,
    and as one XLA-compiled step (what `jit_compile=True` compiles; the
    plain run is the one the JAX and PyTorch tests run too)."""

    shapes = [(5, 3), (7,), (2, 3, 4), ()]
    thetas, grads = make_problem(3, np.float32, shapes=shapes)
    grads[4][1][2] = np.nan  # a vector's component: Adam's part
    grads[6][0][1, 1] = np.inf  # a matrix's: the sign part
    variables = [keras.Variable(t, name=f"w{i}")
                 for i, t in enumerate(thetas)]
    optimizer = ks.Hybrid(
        ks.SignAdamPP(learning_rate=1e-2, threshold=4e-4,
                      jit_compile=mode == "own_xla"),
        keras.optimizers.Adam(learning_rate=3e-3), adaptive="vectors")
    optimizer.build(variables)

    def apply(step):
        optimizer.apply(step, variables)

    convert = keras.ops.convert_to_tensor
    if mode != "plain":
        import tensorflow as tf

        apply = tf.function(apply, jit_compile=mode == "xla_step")
        convert = tf.constant
    for step in grads:
        apply([convert(g) for g in step])
    refs = [reference.SignAdamPP(lr=1e-2, threshold=4e-4)
            if len(s) > 1 else reference.Adam(lr=3e-3) for s in shapes]
    expected = [t.copy() for t in thetas]
    for t, step in enumerate(grads, start=1):
        expected = [r.step(th, reference.clean(g), t) if isinstance(
                        r, reference.Adam) else r.step(th, g, t)
                    for r, th, g in zip(refs, expected, step)]
    for v, e in zip(variables, expected):
        got = to_numpy(v)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, e, rtol=2e-5, atol=2e-6)
    assert int(to_numpy(optimizer.iterations)) == len(grads)
    assert int(to_numpy(optimizer.adaptive_optimizer.iterations)) == len(
        grads)
    # Not the same as one optimizer for all: the parts differ.
    single = [keras.Variable(t) for t in thetas]
    one = ks.SignAdamPP(learning_rate=1e-2, threshold=4e-4)
    for step in grads:
        one.apply([keras.ops.convert_to_tensor(g) for g in step], single)
    assert not np.allclose(to_numpy(single[1]), to_numpy(variables[1]))


def data():
    rng = np.random.default_rng(0)
    return (rng.integers(0, 20, (96, 6)).astype("int32"),
            (np.arange(96) % 5).astype("int32"))


def compiled(optimizer, jit_compile=False):
    keras.utils.set_random_seed(3)
    model = transformer_like()
    model.compile(optimizer=optimizer, jit_compile=jit_compile,
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    return model


def hybrid(**sign):
    return ks.Hybrid(ks.SignAdamPP(learning_rate=2e-3, **sign),
                     keras.optimizers.Adam(learning_rate=1e-3))


@pytest.mark.parametrize("sign", [{}, {"state_dtype": "int8"},
                                  {"error_feedback": True}])
def test_save_load_resume_equals_uninterrupted(sign, tmp_path):
    x, y = data()
    straight = compiled(hybrid(**sign))
    straight.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0)
    first = compiled(hybrid(**sign))
    first.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    path = str(tmp_path / "model.keras")
    first.save(path)
    resumed = keras.models.load_model(path)
    assert isinstance(resumed.optimizer, ks.Hybrid)
    assert resumed.optimizer.get_config() == first.optimizer.get_config()
    assert resumed.optimizer.assignment == first.optimizer.assignment
    resumed.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_learning_rate_callbacks_scale_both_parts():
    x, y = data()
    optimizer = hybrid()
    model = compiled(optimizer, jit_compile=True)
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
              callbacks=[keras.callbacks.LearningRateScheduler(
                  lambda epoch, lr: lr * 0.5)])
    assert float(to_numpy(optimizer.learning_rate)) == pytest.approx(2.5e-4)
    assert float(to_numpy(optimizer.adaptive_optimizer.learning_rate)) == (
        pytest.approx(1.25e-4))


def test_callbacks_and_statistics_act_on_the_sign_part():
    x, y = data()
    optimizer = hybrid()
    model = compiled(optimizer)
    callback = ks.callbacks.AdaptiveConfidence(target_sparsity=0.5)
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0,
                        callbacks=[callback])
    sign = optimizer.sign_optimizer
    assert sign.track_statistics
    assert optimizer.sparsity == sign.sparsity
    assert history.history["threshold"][-1] == pytest.approx(
        float(to_numpy(sign.threshold)))
    assert float(to_numpy(sign.threshold)) != pytest.approx(5e-4)


def test_mixed_precision_wraps_the_hybrid():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        x, y = data()
        model = compiled(hybrid())
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.optimizer.inner_optimizer, ks.Hybrid)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_state_and_bytes_per_parameter():
    """Measured off the variables built for a model whose kernels dwarf
    its vectors: the hybrid keeps close to the sign part's state."""
    variables = [keras.Variable(np.zeros((400, 250), "float32"),
                                name="kernel"),
                 keras.Variable(np.zeros((250,), "float32"), name="bias")]
    parameters = 100_250

    def state_bytes(optimizer):
        optimizer.build(variables)
        per_model = {id(v) for v in variables}
        return sum(np.prod(v.shape) * np.dtype(
            keras.backend.standardize_dtype(v.dtype)).itemsize
            for v in optimizer.variables
            if id(v) not in per_model) / parameters

    adam = state_bytes(keras.optimizers.Adam())
    mixed = ks.Hybrid(ks.SignAdamPP(state_dtype="int8",
                                    aggregation="majority_vote"),
                      adaptive="vectors")
    assert adam == pytest.approx(8.0, abs=0.01)
    assert state_bytes(mixed) == pytest.approx(
        (100_000 * 1 + 250 * 8) / parameters, abs=0.01)
    # One replica's bytes per step at 4 replicas: the kernel's packed
    # votes and the bias in float32, under the ring algorithms.
    expected = (packing.ring_bytes_sent("all_reduce", 100_000, 4)
                + packing.ring_bytes_sent("float32_all_reduce", 250, 4))
    assert mixed.bytes_sent(4) == pytest.approx(expected)
    assert mixed.bytes_sent(4) < 0.13 * packing.ring_bytes_sent(
        "float32_all_reduce", parameters, 4)
    summed = ks.Hybrid(ks.SignAdamPP(), adaptive="vectors")
    summed.build(variables)
    assert summed.bytes_sent(4) == pytest.approx(
        packing.ring_bytes_sent("float32_all_reduce", parameters, 4))


@pytest.mark.parametrize("kwargs,message", [
    (dict(weight_decay=0.1), "does not take `weight_decay`"),
    (dict(sign_optimizer="adam"), "`sign_optimizer` must be a Keras"),
    (dict(adaptive=3), "`adaptive` must be a string or a list"),
    (dict(adaptive=["output", "(unclosed"]), "neither 'output'"),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ks.Hybrid(**kwargs)
    same = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="two optimizers"):
        ks.Hybrid(same, same)


def test_config_round_trip_and_string_identifier():
    optimizer = ks.Hybrid(ks.Signum(learning_rate=3e-4),
                          keras.optimizers.AdamW(learning_rate=1e-3),
                          adaptive=["output", "norm"])
    clone = keras.optimizers.deserialize(
        keras.optimizers.serialize(optimizer))
    assert isinstance(clone.sign_optimizer, ks.Signum)
    assert isinstance(clone.adaptive_optimizer, keras.optimizers.AdamW)
    assert clone.get_config() == optimizer.get_config()
    default = keras.optimizers.get("Hybrid")
    assert isinstance(default.sign_optimizer, ks.SignAdamPP)
    assert isinstance(default.adaptive_optimizer, keras.optimizers.Adam)
