"""Saving and loading restore the optimizer with its state, so training
resumes exactly as if uninterrupted."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_signadam as ks
from tests.helpers import small_model
from tests.helpers import to_numpy

OPTIMIZERS = {
    "SignSGD": lambda: ks.SignSGD(learning_rate=2e-3, threshold=1e-4,
                                  coupled_weight_decay=1e-3),
    "Signum": lambda: ks.Signum(learning_rate=2e-3, momentum=0.8),
    "SignAdam": lambda: ks.SignAdam(learning_rate=2e-3, weight_decay=1e-2),
    "SignAdamPP": lambda: ks.SignAdamPP(
        learning_rate=2e-3, threshold=0.5, confidence="soft",
        threshold_mode="relative",
    ),
    # The residual is state like the moments: restored exactly, here
    # through bfloat16 storage.
    "SignAdamPP error feedback": lambda: ks.SignAdamPP(
        learning_rate=2e-3, error_feedback=True, state_dtype="bfloat16"),
}


def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(96, 8, 8, 1)).astype("float32")
    return x, (np.arange(96) % 10).astype("int32")


def compiled(optimizer):
    keras.utils.set_random_seed(5)
    model = small_model()
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_save_load_resume_equals_uninterrupted(name, tmp_path):
    x, y = data()
    straight = compiled(OPTIMIZERS[name]())
    straight.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0)

    first = compiled(OPTIMIZERS[name]())
    first.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    path = str(tmp_path / "model.keras")
    first.save(path)
    resumed = keras.models.load_model(path)
    assert type(resumed.optimizer) is type(first.optimizer)
    assert resumed.optimizer.get_config() == first.optimizer.get_config()
    for a, b in zip(first.optimizer.variables, resumed.optimizer.variables):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    resumed.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)

    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(straight.optimizer.variables,
                    resumed.optimizer.variables):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-6,
                                   atol=1e-7)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_config_round_trip(name):
    optimizer = OPTIMIZERS[name]()
    config = keras.optimizers.serialize(optimizer)
    clone = keras.optimizers.deserialize(config)
    assert type(clone) is type(optimizer)
    assert clone.get_config() == optimizer.get_config()


def test_changed_threshold_is_saved(tmp_path):
    model = compiled(ks.SignAdamPP())
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    model.optimizer.threshold.assign(2e-3)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert float(to_numpy(loaded.optimizer.threshold)) == pytest.approx(2e-3)


def test_tf_train_checkpoint_restores_state(tmp_path):
    x, y = data()
    model = compiled(ks.SignAdamPP(learning_rate=2e-3))
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    path = checkpoint.save(str(tmp_path / "ckpt"))
    saved = [to_numpy(v).copy() for v in model.optimizer.variables]
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    checkpoint.restore(path).assert_consumed()
    for a, b in zip(saved, model.optimizer.variables):
        np.testing.assert_array_equal(a, to_numpy(b))
