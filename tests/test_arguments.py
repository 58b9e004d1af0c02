"""Bad arguments raise ValueError naming the argument and the value."""

import pytest

import keras_signadam as ks

BAD = [
    (ks.SignSGD, "learning_rate", -1e-3),
    (ks.SignSGD, "threshold", -1.0),
    (ks.SignSGD, "threshold", float("nan")),
    (ks.SignSGD, "coupled_weight_decay", -0.1),
    (ks.Signum, "momentum", 1.0),
    (ks.Signum, "momentum", -0.1),
    (ks.SignAdam, "beta_1", 1.5),
    (ks.SignAdam, "beta_2", 1.0),
    (ks.SignAdam, "epsilon", 0.0),
    (ks.SignAdam, "epsilon", -1e-8),
    # Subnormal in float32: flushed to 0 under XLA and oneDNN on CPU.
    (ks.SignAdamPP, "epsilon", 1.1616953136458666e-39),
    (ks.NovoGrad, "epsilon", 1e-40),
    (ks.SignAdam, "weight_decay", -0.01),
    (ks.SignAdamPP, "threshold", -5e-4),
    (ks.SignAdamPP, "confidence", "medium"),
    (ks.SignAdamPP, "threshold_mode", "percent"),
    (ks.SignAdamPP, "beta_1", "0.9"),
    (ks.SignAdamPP, "jit_compile", "yes"),
    (ks.SignAdamPP, "learning_rate", "fast"),
]


@pytest.mark.parametrize("cls,argument,value", BAD)
def test_bad_argument_is_named(cls, argument, value):
    with pytest.raises(ValueError) as error:
        cls(**{argument: value})
    message = str(error.value)
    assert f"`{argument}`" in message
    assert repr(value) in message or str(value) in message


def test_unknown_keyword_is_rejected():
    with pytest.raises(ValueError, match="not recognized"):
        ks.SignAdamPP(treshold=1e-3)


@pytest.mark.parametrize("cls", [ks.SignSGD, ks.Signum, ks.SignAdam,
                                 ks.SignAdamPP])
def test_defaults_construct(cls):
    assert cls().get_config()["learning_rate"] == pytest.approx(1e-3)


def test_signadampp_defaults():
    config = ks.SignAdamPP().get_config()
    assert config["threshold"] == pytest.approx(5e-4)
    assert config["confidence"] == "hard"
    assert config["threshold_mode"] == "absolute"
    assert config["beta_1"] == pytest.approx(0.9)
    # The paper's Algorithm 3: no second moment.
    assert config["second_moment"] is False
    assert config["beta_2"] is None and config["epsilon"] is None
