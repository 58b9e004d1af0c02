"""Property-based tests of the update rules (hypothesis): for random
shapes, gradient scales and hyperparameters, each optimizer agrees with its
NumPy reference, the sign methods' steps stay within the bound their
formula implies, and components with zero confidence never move (apart
from decoupled weight decay)."""

import functools
import math

import keras
import numpy as np
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import keras_signadam as ks
from tests import reference
from tests.helpers import to_numpy

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True)
shapes = st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple)
scales = st.floats(-6, 2).map(lambda e: 10.0**e)
seeds = st.integers(0, 2**31 - 1)
steps = st.integers(1, 6)
betas = st.sampled_from([0.0, 0.5, 0.9, 0.99])


def gradients(seed, shape, scale, n):
    rng = np.random.default_rng(seed)
    return [[(rng.normal(size=shape) * scale).astype("float32")]
            for _ in range(n)]


def apply(optimizer, theta, grads, record=None):
    variable = keras.Variable(theta)
    for (g,) in grads:
        before = to_numpy(variable).copy()
        optimizer.apply([g], [variable])
        if record is not None:
            record.append(to_numpy(variable) - before)
    return to_numpy(variable)


CONFIGS = {
    "SignSGD": (ks.SignSGD, reference.SignSGD),
    "Signum": (ks.Signum, reference.Signum),
    "SignAdam": (ks.SignAdam, functools.partial(reference.AdamOfSigns,
                                                bias_correction=False)),
    "SignAdamPP": (ks.SignAdamPP, reference.SignAdamPP),
    "SignAdamPP adaptive": (ks.SignAdamPP, reference.SignAdamPP),
    "NovoGrad": (ks.NovoGrad, reference.NovoGrad),
}


@SETTINGS
@given(name=st.sampled_from(list(CONFIGS)), shape=shapes, scale=scales,
       seed=seeds, n=steps, lr=st.sampled_from([1e-3, 1e-2, 1e-1]),
       beta=betas, relative_threshold=st.sampled_from([0.0, 0.3, 1.0]),
       soft=st.booleans())
def test_agrees_with_reference(name, shape, scale, seed, n, lr, beta,
                               relative_threshold, soft):
    cls, ref_cls = CONFIGS[name]
    kwargs = {}
    if name == "SignSGD":
        kwargs = {"threshold": relative_threshold * scale}
    elif name == "Signum":
        kwargs = {"momentum": beta}
    elif name == "SignAdam":
        kwargs = {"beta_1": beta}
    elif name.startswith("SignAdamPP"):
        kwargs = {"beta_1": beta, "threshold": relative_threshold,
                  "threshold_mode": name.split()[-1] if " " in name
                  else "relative",
                  "confidence": "soft" if soft else "hard"}
    elif name == "NovoGrad":
        kwargs = {"beta_1": beta, "grad_averaging": soft}
    theta = np.random.default_rng(seed + 1).normal(size=shape).astype(
        "float32")
    grads = gradients(seed, shape, scale, n)
    got = apply(cls(learning_rate=lr, jit_compile=False, **kwargs), theta,
                grads)
    expected, _ = reference.run(
        functools.partial(ref_cls, lr=lr, **kwargs), [theta], grads,
        np.float32)
    np.testing.assert_allclose(got, expected[0], rtol=1e-5, atol=1e-6)


def adam_sign_bound(beta_1, beta_2, t):
    """Largest |m_hat| / sqrt(v_hat) for inputs in [-1, 1] (Cauchy-Schwarz
    on the two exponential averages)."""
    ratio_sum = sum((beta_1**2 / beta_2) ** j for j in range(t))
    return ((1 - beta_1) / (1 - beta_1**t)
            * math.sqrt((1 - beta_2**t) / (1 - beta_2))
            * math.sqrt(ratio_sum))


@SETTINGS
@given(shape=shapes, scale=scales, seed=seeds, n=steps,
       beta_1=st.sampled_from([0.0, 0.5, 0.9]),
       beta_2=st.sampled_from([0.9, 0.99, 0.999]), soft=st.booleans())
def test_sign_adam_step_bound(shape, scale, seed, n, beta_1, beta_2, soft):
    lr = 1e-2
    optimizer = ks.SignAdamPP(
        learning_rate=lr, beta_1=beta_1, second_moment=True, beta_2=beta_2,
        threshold=0.5, threshold_mode="relative",
        confidence="soft" if soft else "hard", jit_compile=False)
    deltas = []
    apply(optimizer, np.zeros(shape, "float32"),
          gradients(seed, shape, scale, n), deltas)
    b1 = float(np.float32(beta_1))
    for t, delta in enumerate(deltas, start=1):
        bound = lr * adam_sign_bound(b1, beta_2, t)
        assert np.all(np.abs(delta) <= bound * (1 + 1e-5) + 1e-7)


@SETTINGS
@given(shape=shapes, scale=scales, seed=seeds, n=steps, beta_1=betas,
       mode=st.sampled_from(["absolute", "relative", "adaptive"]),
       soft=st.booleans())
def test_sign_adam_pp_steps_stay_under_lr(shape, scale, seed, n, beta_1,
                                          mode, soft):
    """Algorithm 3 starts from m = 0 with inputs in [-1, 1]: at step t,
    |m| <= 1 - beta**t, so no component moves by more than that times
    lr."""
    lr = 1e-2
    optimizer = ks.SignAdamPP(
        learning_rate=lr, beta_1=beta_1, threshold_mode=mode,
        threshold=0.5 if mode != "absolute" else 0.5 * scale,
        confidence="soft" if soft else "hard", jit_compile=False)
    deltas = []
    apply(optimizer, np.zeros(shape, "float32"),
          gradients(seed, shape, scale, n), deltas)
    b = float(np.float32(beta_1))
    for t, delta in enumerate(deltas, start=1):
        assert np.all(np.abs(delta) <= lr * (1 - b**t) * (1 + 1e-5) + 1e-9)


@SETTINGS
@given(shape=shapes, scale=scales, seed=seeds, n=steps,
       which=st.sampled_from(["SignSGD", "Signum"]))
def test_sign_sgd_steps_are_exactly_lr_or_zero(shape, scale, seed, n,
                                               which):
    lr = 2.0**-7  # exactly representable, so each move is exactly lr
    cls = ks.SignSGD if which == "SignSGD" else ks.Signum
    deltas = []
    apply(cls(learning_rate=lr, jit_compile=False),
          np.zeros(shape, "float32"), gradients(seed, shape, scale, n),
          deltas)
    for delta in deltas:
        assert np.all(np.isin(np.abs(delta), [0.0, lr]))


@SETTINGS
@given(shape=st.lists(st.integers(2, 6), min_size=1, max_size=2).map(tuple),
       seed=seeds, n=steps, weight_decay=st.sampled_from([None, 0.1]),
       cls=st.sampled_from([ks.SignSGD, ks.SignAdamPP]))
def test_zero_confidence_components_never_move(shape, seed, n, weight_decay,
                                               cls):
    lr, delta = 1e-2, 1e-3
    rng = np.random.default_rng(seed)
    quiet = rng.uniform(size=shape) < 0.5  # always below the threshold
    grads = []
    for _ in range(n):
        g = rng.normal(size=shape) * 1e-2
        g = np.where(quiet, rng.uniform(-0.9, 0.9, size=shape) * delta, g)
        grads.append([g.astype("float32")])
    theta = rng.normal(size=shape).astype("float32")
    got = apply(cls(learning_rate=lr, threshold=delta,
                    weight_decay=weight_decay, jit_compile=False),
                theta, grads)
    expected = theta * np.float32(1 - lr * (weight_decay or 0)) ** n
    np.testing.assert_allclose(got[quiet], expected[quiet], rtol=1e-6)
    if weight_decay is None:
        np.testing.assert_array_equal(got[quiet], theta[quiet])
