"""Models saved with these optimizers load under safe_mode=True, and a
tampered optimizer config fails loudly instead of building a wrong
optimizer."""

import keras
import numpy as np
import pytest

import keras_signadam as ks
from keras_signadam.comparison import models
from tests.helpers import tampered
from tests.helpers import to_numpy

ALL = {
    "SignSGD": lambda: ks.SignSGD(threshold=1e-4),
    "Signum": lambda: ks.Signum(),
    "SignAdam": lambda: ks.SignAdam(),
    "SignAdamPP": lambda: ks.SignAdamPP(confidence="soft"),
    "NovoGrad": lambda: ks.NovoGrad(amsgrad=True),
}


def trained_model_file(tmp_path, make_optimizer):
    model = models.mlp((8, 8, 1), 10, width=16)
    model.compile(optimizer=make_optimizer(), loss="mse")
    x = np.random.default_rng(0).uniform(size=(32, 8, 8, 1))
    model.fit(x, np.zeros((32, 10)), epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    return model, path


@pytest.mark.parametrize("name", list(ALL))
def test_safe_mode_load_restores_optimizer(name, tmp_path):
    model, path = trained_model_file(tmp_path, ALL[name])
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


@pytest.mark.parametrize("change,message", [
    (lambda c: c.update(treshold=1e-3), "not recognized"),
    (lambda c: c.update(threshold="big"), "`threshold`"),
    (lambda c: c.update(threshold=-1.0), "`threshold`"),
    (lambda c: c.update(confidence="fuzzy"), "`confidence`"),
    (lambda c: c.update(threshold_mode=3), "`threshold_mode`"),
    (lambda c: c.update(beta_2=0.99), "`beta_2`"),
    (lambda c: c.update(second_moment=True, epsilon=0), "`epsilon`"),
    (lambda c: c.update(second_moment="no"), "`second_moment`"),
    (lambda c: c.update(jit_compile="yes"), "`jit_compile`"),
    (lambda c: c.update(track_statistics=1), "`track_statistics`"),
    (lambda c: c.update(clipnorm="1"), "`clipnorm`"),
    (lambda c: c.update(weight_decay=-0.1), "`weight_decay`"),
])
def test_tampered_config_fails_clearly(change, message, tmp_path):
    _, path = trained_model_file(tmp_path, ALL["SignAdamPP"])
    bad = tampered(path, tmp_path / "bad.keras", change)
    with pytest.raises(ValueError, match=message):
        keras.models.load_model(bad, safe_mode=True)


def test_novograd_tampered_flags_fail(tmp_path):
    _, path = trained_model_file(tmp_path, ALL["NovoGrad"])
    bad = tampered(path, tmp_path / "bad.keras",
                   lambda c: c.update(amsgrad="true"))
    with pytest.raises(ValueError, match="`amsgrad`"):
        keras.models.load_model(bad, safe_mode=True)
