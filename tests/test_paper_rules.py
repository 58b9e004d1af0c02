"""The paper's rules as the defaults (SPEC 3.3-3.4): signADAM++'s
Algorithm 3 is `SignAdamPP()`, signADAM's Algorithm 2 is `SignAdam()`, the
adaptive confidence of its section 6.3 is a threshold mode; the rules of
0.5 stay reachable, and files saved by 0.5.0 resume the rule they were
trained with. The step-by-step comparisons with the NumPy references are
in test_update_rules.py."""

import os
import sys

import keras
import numpy as np
import pytest

import keras_signadam as ks
from tests import reference
from tests.helpers import ROOT
from tests.helpers import to_numpy

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "v0_5_0")


def first_step(optimizer, g):
    variable = keras.Variable(np.zeros_like(g))
    optimizer.apply([g], [variable])
    return to_numpy(variable)


def test_sign_adam_pp_defaults_are_algorithm_3():
    optimizer = ks.SignAdamPP()
    config = optimizer.get_config()
    assert config["second_moment"] is False
    assert config["threshold"] == pytest.approx(5e-4)
    assert config["beta_1"] == pytest.approx(0.9)
    assert config["beta_2"] is None and config["epsilon"] is None
    # A component above the threshold moves (1 - beta) lr at the first
    # step, one below it not at all.
    g = np.array([1e-3, -2e-3, 4e-4, 0.0], np.float32)
    np.testing.assert_allclose(first_step(optimizer, g),
                               [-1e-4, 1e-4, 0.0, 0.0], rtol=1e-6)
    # Then m keeps |m| <= 1: a hundred agreeing steps stay under lr each.
    variable = keras.Variable(np.zeros(1, np.float32))
    optimizer = ks.SignAdamPP()
    for _ in range(100):
        before = to_numpy(variable).copy()
        optimizer.apply([np.ones(1, np.float32)], [variable])
        assert 0 < (before - to_numpy(variable))[0] <= 1e-3 * (1 + 1e-6)


def test_sign_adam_defaults_are_algorithm_2():
    g = np.array([3.0, -1e-9, 0.0], np.float32)
    # The paper's first step: lr * 0.1 / sqrt(0.001), about 3.16 lr.
    expected = -1e-3 * 0.1 / np.sqrt(0.001) * np.sign(g)
    np.testing.assert_allclose(first_step(ks.SignAdam(), g), expected,
                               rtol=1e-5)
    # Bias-corrected, the first step is lr.
    np.testing.assert_allclose(
        first_step(ks.SignAdam(bias_correction=True), g),
        -1e-3 * np.sign(g), rtol=1e-5)


def test_second_moment_is_the_rule_of_0_5():
    g = np.array([1e-3, -2e-3, 4e-4], np.float32)
    np.testing.assert_allclose(
        first_step(ks.SignAdamPP(second_moment=True), g),
        [-1e-3, 1e-3, 0.0], rtol=1e-5)
    config = ks.SignAdamPP(second_moment=True).get_config()
    assert (config["beta_2"], config["epsilon"]) == (0.999, 1e-8)


@pytest.mark.parametrize("argument", ["beta_2", "epsilon"])
def test_second_moment_arguments_need_the_second_moment(argument):
    with pytest.raises(ValueError, match=f"`{argument}` applies only with "
                                         "`second_moment=True`"):
        ks.SignAdamPP(**{argument: 0.99})
    with pytest.raises(ValueError, match="second_moment"):
        ks.SignAdamPP(second_moment="yes")
    with pytest.raises(ValueError, match="bias_correction"):
        ks.SignAdam(bias_correction=1)


@pytest.mark.parametrize("cls", [ks.SignAdamPP, ks.SignSGD])
def test_unknown_threshold_mode_is_refused(cls):
    with pytest.raises(ValueError, match="threshold_mode.*std"):
        cls(threshold_mode="std")


@pytest.mark.parametrize("cls,kwargs,state_bytes", [
    (ks.SignAdamPP, {}, 4),
    (ks.SignAdamPP, dict(state_dtype="bfloat16"), 2),
    (ks.SignAdamPP, dict(state_dtype="int8"), 1),
    (ks.SignAdamPP, dict(threshold_mode="adaptive"), 4),
    (ks.SignAdamPP, dict(second_moment=True), 8),
    (ks.SignAdam, {}, 8),
    (ks.SignSGD, dict(threshold_mode="adaptive"), 0),
])
def test_state_bytes_per_parameter(cls, kwargs, state_bytes):
    """Measured off the variables the optimizer builds for a 100,000
    parameter model: the per-tensor scalars (the adaptive mode's running
    deviation, the counters) and the shared ones are a rounding error."""
    variables = [keras.Variable(np.zeros((250, 200), np.float32)),
                 keras.Variable(np.zeros((50_000,), np.float32))]
    optimizer = cls(**kwargs)
    optimizer.build(variables)
    total = sum(np.prod(v.shape) * np.dtype(
        keras.backend.standardize_dtype(v.dtype)).itemsize
        for v in optimizer.variables)
    assert total / 100_000 == pytest.approx(state_bytes, abs=0.01)


# ---------------------------------------------------- adaptive confidence
@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("cls,ref_cls", [
    (ks.SignAdamPP, reference.SignAdamPP),
    (ks.SignSGD, reference.SignSGD)])
def test_adaptive_threshold_follows_the_running_deviation(cls, ref_cls,
                                                          jit_compile):
    """a <- 0.9 a + 0.1 std(g) per tensor, threshold 0.999 a: the state
    after each step and the components that moved, against NumPy, for
    tensors whose gradient scale changes between steps."""
    rng = np.random.default_rng(3)
    shapes = [(40,), (6, 7)]
    variables = [keras.Variable(np.zeros(s, np.float32)) for s in shapes]
    optimizer = cls(learning_rate=1e-2, threshold_mode="adaptive",
                    track_statistics=True, jit_compile=jit_compile)
    refs = [ref_cls(lr=1e-2, threshold_mode="adaptive") for _ in shapes]
    thetas = [np.zeros(s, np.float32) for s in shapes]
    sparsities = []
    for t in range(1, 9):
        scale = 10.0 ** (-4 + (t % 3))
        grads = [(rng.normal(size=s) * scale).astype(np.float32)
                 for s in shapes]
        optimizer.apply(grads, variables)
        thetas = [r.step(th, g, t) for r, th, g in zip(refs, thetas, grads)]
        stds = [v for v in optimizer.variables
                if v.path.endswith("_gradient_std")]
        assert len(stds) == len(shapes)
        for v, r in zip(stds, refs):
            np.testing.assert_allclose(to_numpy(v), r.conf.a, rtol=1e-5)
        for v, th in zip(variables, thetas):
            np.testing.assert_allclose(to_numpy(v), th, rtol=1e-5,
                                       atol=1e-7)
        zeros = sum(r.zero_confidence for r in refs)
        assert optimizer.sparsity == pytest.approx(zeros / 82)
        sparsities.append(optimizer.sparsity)
    # The threshold lags the scale: after a tenfold rise most components
    # pass it, after a hundredfold fall almost none do.
    assert min(sparsities) < 0.3 and max(sparsities) > 0.7


def test_threshold_mode_switch_on_a_built_optimizer(tmp_path):
    """`set_threshold_mode` (what `AdaptiveConfidence(std_multiplier=...)`
    calls) builds the running deviations where `build` would have, so a
    switched optimizer saves and loads as one made in that mode."""
    variable = keras.Variable(np.zeros((5, 4), np.float32))
    optimizer = ks.SignAdamPP(learning_rate=1e-2)
    g = np.linspace(-1, 1, 20).reshape(5, 4).astype(np.float32)
    optimizer.apply([g], [variable])
    optimizer.set_threshold_mode("adaptive")
    assert optimizer.threshold_mode == "adaptive"
    assert float(to_numpy(optimizer.threshold)) == pytest.approx(0.999)
    optimizer.apply([g], [variable])
    fresh = ks.SignAdamPP(learning_rate=1e-2, threshold_mode="adaptive")
    fresh.build([keras.Variable(np.zeros((5, 4), np.float32))])

    def kinds(o):
        return [(v.path.split("/")[-1].split("_")[-1], tuple(v.shape))
                for v in o.variables]

    assert kinds(optimizer) == kinds(fresh)
    std = [v for v in optimizer.variables
           if v.path.endswith("_gradient_std")][0]
    np.testing.assert_allclose(to_numpy(std), 0.1 * np.std(g), rtol=1e-5)
    with pytest.raises(ValueError, match="threshold_mode"):
        optimizer.set_threshold_mode("rms")
    assert not hasattr(ks.Signum(), "set_threshold_mode")


# -------------------------------------------------- files saved by 0.5.0
sys.path.insert(0, FIXTURES)
import make as fixtures  # noqa: E402

sys.path.remove(FIXTURES)


@pytest.mark.parametrize("name", sorted(fixtures.SETTINGS))
def test_files_saved_by_0_5_0_resume_their_rule(name):
    """Each file holds a model after two epochs; 0.5.0 itself went on one
    more epoch to the weights beside it. Loaded now, the optimizer is the
    rule it was trained with and takes the same steps (bit for bit with
    XLA's default settings; within float32 rounding under the suite's
    quick ones, which fuse otherwise). Algorithm 3 would move each weight
    by a tenth of these steps or less: 6 steps of lr = 2e-3."""
    model = keras.models.load_model(os.path.join(FIXTURES,
                                                 f"{name}.keras"))
    config = model.optimizer.get_config()
    if isinstance(model.optimizer, ks.SignAdamPP):
        assert config["second_moment"] is True
        assert (config["beta_2"], config["epsilon"]) == (0.999, 1e-8)
    else:
        assert config["bias_correction"] is True
    x, y = fixtures.data()
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    expected = np.load(os.path.join(FIXTURES, f"{name}_next.npz"))
    weights = model.get_weights()
    assert len(weights) == len(expected.files)
    for i, w in enumerate(weights):
        np.testing.assert_allclose(w, expected[f"arr_{i}"], rtol=1e-5,
                                   atol=1e-7)


def test_a_partial_config_gets_the_present_defaults():
    """A string identifier (a config of no arguments) is the paper's
    rule; only a saved config (with name and learning rate) that lacks
    the new arguments is read as 0.5's."""
    assert keras.optimizers.get("SignAdamPP").second_moment is False
    assert keras.optimizers.get("SignAdam").bias_correction is False
    saved = ks.SignAdamPP().get_config()
    del saved["second_moment"], saved["beta_2"], saved["epsilon"]
    assert ks.SignAdamPP.from_config(saved).second_moment is True
