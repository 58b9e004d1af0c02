"""Each optimizer against the independent NumPy reference over 12 steps,
for several shapes at once, float32 / bfloat16 / float16 variables, with and
without decoupled weight decay and clipping."""

import functools

import keras
import numpy as np
import pytest

import keras_signadam as ks
from tests import reference
from tests.helpers import DTYPES
from tests.helpers import SHAPES
from tests.helpers import apply_steps
from tests.helpers import make_problem
from tests.helpers import to_numpy
from tests.helpers import tolerance

CASES = {
    "sign_sgd": (ks.SignSGD, reference.SignSGD, dict(learning_rate=1e-2)),
    "sign_sgd_dead_zone": (
        ks.SignSGD,
        reference.SignSGD,
        dict(learning_rate=1e-2, threshold=4e-4, coupled_weight_decay=5e-2),
    ),
    "sign_sgd_soft_relative": (
        ks.SignSGD,
        reference.SignSGD,
        dict(learning_rate=1e-2, threshold=0.8, confidence="soft",
             threshold_mode="relative"),
    ),
    "signum": (ks.Signum, reference.Signum, dict(learning_rate=1e-2,
                                                 momentum=0.8)),
    "sign_adam": (ks.SignAdam, reference.SignAdamPP,
                  dict(learning_rate=1e-2, beta_1=0.85, beta_2=0.99)),
    "sign_adam_pp_hard": (ks.SignAdamPP, reference.SignAdamPP,
                          dict(learning_rate=1e-2, threshold=5e-4)),
    "sign_adam_pp_soft": (
        ks.SignAdamPP,
        reference.SignAdamPP,
        dict(learning_rate=1e-2, threshold=5e-4, confidence="soft"),
    ),
    "sign_adam_pp_relative": (
        ks.SignAdamPP,
        reference.SignAdamPP,
        dict(learning_rate=1e-2, threshold=0.7, threshold_mode="relative"),
    ),
}

REF_ARGS = {"learning_rate": "lr"}


def reference_kwargs(kwargs):
    return {REF_ARGS.get(k, k): v for k, v in kwargs.items()}


def clipping(dtype_name):
    # Keras clips in the gradient's dtype; a float16 norm of 1e-4-sized
    # components underflows there, so 16-bit cases clip elementwise (exact
    # in any dtype) and float32 cases clip by norm.
    if dtype_name == "float32":
        return {"clipnorm": 0.01}
    return {"clipvalue": 1e-3}


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("weight_decay", [None, 0.05])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case, dtype_name, weight_decay, clip):
    cls, ref_cls, kwargs = CASES[case]
    dtype = DTYPES[dtype_name]
    clip_kwargs = clipping(dtype_name) if clip else {}
    thetas, grads = make_problem(sorted(CASES).index(case), dtype)
    # float32 runs through the optimizer's XLA-compiled update, 16-bit
    # variables through plain ops (the rule is the same code; compiling
    # each case costs more than all its steps).
    optimizer = cls(weight_decay=weight_decay, **clip_kwargs,
                    jit_compile=dtype_name == "float32", **kwargs)
    got = apply_steps(optimizer, thetas, grads, dtype_name)
    factory = functools.partial(
        ref_cls, weight_decay=weight_decay, **reference_kwargs(kwargs)
    )
    expected, _ = reference.run(factory, thetas, grads, dtype, **clip_kwargs)
    for g, e, shape in zip(got, expected, SHAPES):
        assert g.shape == shape
        np.testing.assert_allclose(g, e, **tolerance(dtype_name))
    # The parameters moved: a rule that did nothing would not pass above
    # unless the reference did nothing too.
    assert any(
        not np.allclose(g, reference.store(t, dtype))
        for g, t in zip(got, thetas)
    )


@pytest.mark.parametrize("case", ["sign_sgd_dead_zone",
                                  "sign_sgd_soft_relative",
                                  "sign_adam_pp_hard",
                                  "sign_adam_pp_soft",
                                  "sign_adam_pp_relative"])
def test_sparsity_counts_zero_confidence(case):
    cls, ref_cls, kwargs = CASES[case]
    thetas, grads = make_problem(7, np.float32)
    optimizer = cls(track_statistics=True, **kwargs)
    apply_steps(optimizer, thetas, grads, "float32")
    _, refs = reference.run(
        functools.partial(ref_cls, **reference_kwargs(kwargs)),
        thetas, grads, np.float32,
    )
    zeros = sum(r.zero_confidence for r in refs)
    total = sum(int(np.prod(s)) for s in SHAPES)
    assert 0 < zeros < total
    assert optimizer.sparsity == pytest.approx(zeros / total)



def test_annealed_beta_1_keeps_exact_bias_correction():
    thetas, grads = make_problem(11, np.float32)
    optimizer = ks.SignAdamPP(learning_rate=1e-2, threshold=1e-4)
    variables = [keras.Variable(th) for th in thetas]
    refs = [reference.SignAdamPP(lr=1e-2, threshold=1e-4) for _ in thetas]
    expected = [th.copy() for th in thetas]
    for t, step in enumerate(grads, start=1):
        beta_1 = 0.9 if t <= 4 else 0.5 + 0.03 * t
        optimizer.beta_1.assign(beta_1)
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in step],
                        variables)
        expected = [r.step(th, g, t, beta_1=beta_1)
                    for r, th, g in zip(refs, expected, step)]
    for v, e in zip(variables, expected):
        np.testing.assert_allclose(to_numpy(v), e, rtol=2e-5, atol=2e-6)
