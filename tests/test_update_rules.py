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

PAPER_SIGN_ADAM = functools.partial(reference.AdamOfSigns,
                                    bias_correction=False)

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
    "sign_sgd_adaptive": (
        ks.SignSGD, reference.SignSGD,
        dict(learning_rate=1e-2, threshold_mode="adaptive",
             coupled_weight_decay=5e-4)),
    "signum": (ks.Signum, reference.Signum, dict(learning_rate=1e-2,
                                                 momentum=0.8)),
    "signum_coupled": (ks.Signum, reference.Signum,
                       dict(learning_rate=1e-2, coupled_weight_decay=5e-3)),
    # signADAM, the paper's Algorithm 2: no bias correction (the default).
    "sign_adam": (ks.SignAdam, PAPER_SIGN_ADAM,
                  dict(learning_rate=1e-2, beta_1=0.85, beta_2=0.99)),
    "sign_adam_coupled": (ks.SignAdam, PAPER_SIGN_ADAM,
                          dict(learning_rate=1e-2,
                               coupled_weight_decay=5e-4)),
    "sign_adam_corrected": (ks.SignAdam, reference.AdamOfSigns,
                            dict(learning_rate=1e-2, beta_1=0.85,
                                 beta_2=0.99, bias_correction=True)),
    # signADAM++, the paper's Algorithm 3 (the default).
    "sign_adam_pp_hard": (ks.SignAdamPP, reference.SignAdamPP,
                          dict(learning_rate=1e-2, threshold=5e-4)),
    "sign_adam_pp_defaults": (ks.SignAdamPP, reference.SignAdamPP,
                              dict(learning_rate=1e-2)),
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
    "sign_adam_pp_relative_coupled": (
        ks.SignAdamPP, reference.SignAdamPP,
        dict(learning_rate=1e-2, threshold=0.7, threshold_mode="relative",
             coupled_weight_decay=5e-2)),
    # The paper's adaptive confidence (section 6.3), with its beta_2.
    "sign_adam_pp_adaptive": (
        ks.SignAdamPP, reference.SignAdamPP,
        dict(learning_rate=1e-2, threshold_mode="adaptive", beta_1=0.8)),
    "sign_adam_pp_adaptive_soft": (
        ks.SignAdamPP, reference.SignAdamPP,
        dict(learning_rate=1e-2, threshold=0.5, confidence="soft",
             threshold_mode="adaptive")),
    "sign_adam_pp_coupled": (ks.SignAdamPP, reference.SignAdamPP,
                             dict(learning_rate=1e-2,
                                  coupled_weight_decay=5e-4)),
    # The rule of 0.5: Adam over the filtered signs, bias-corrected.
    "sign_adam_pp_second_moment": (
        ks.SignAdamPP, reference.AdamOfSigns,
        dict(learning_rate=1e-2, threshold=5e-4, second_moment=True,
             beta_2=0.99)),
}

# Arguments named otherwise in the references, or (None) not taken there.
REF_ARGS = {"learning_rate": "lr", "second_moment": None}


def reference_kwargs(kwargs):
    return {REF_ARGS.get(k, k): v for k, v in kwargs.items()
            if REF_ARGS.get(k, k) is not None}


def clipping(dtype_name):
    # Keras clips in the gradient's dtype; a float16 norm of 1e-4-sized
    # components underflows there, so 16-bit cases clip elementwise (exact
    # in any dtype) and float32 cases clip by norm.
    if dtype_name == "float32":
        return {"clipnorm": 0.01}
    return {"clipvalue": 1e-3}


@pytest.mark.parametrize("extras", ["plain", "decay_and_clip"])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case, dtype_name, extras):
    # Decoupled weight decay and clipping act at different points of the
    # step (the update's start, the gradient before it), so one run checks
    # both.
    cls, ref_cls, kwargs = CASES[case]
    dtype = DTYPES[dtype_name]
    weight_decay = 0.05 if extras == "decay_and_clip" else None
    clip_kwargs = clipping(dtype_name) if weight_decay else {}
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
                                  "sign_sgd_adaptive",
                                  "sign_adam_pp_hard",
                                  "sign_adam_pp_soft",
                                  "sign_adam_pp_relative",
                                  "sign_adam_pp_adaptive",
                                  "sign_adam_pp_second_moment"])
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



@pytest.mark.parametrize("second_moment", [False, True])
def test_annealed_beta_1_matches_reference(second_moment):
    """beta_1 changed between steps: the momentum uses each step's value,
    and the second-moment rule's bias correction their product."""
    thetas, grads = make_problem(11, np.float32)
    optimizer = ks.SignAdamPP(learning_rate=1e-2, threshold=1e-4,
                              second_moment=second_moment)
    variables = [keras.Variable(th) for th in thetas]
    ref_cls = (reference.AdamOfSigns if second_moment
               else reference.SignAdamPP)
    refs = [ref_cls(lr=1e-2, threshold=1e-4) for _ in thetas]
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


# ------------------------------------------------------- error feedback
EF_CASES = {
    "sign_sgd_dead_zone": CASES["sign_sgd_dead_zone"],
    "sign_adam": CASES["sign_adam"],
    "sign_adam_pp_hard": CASES["sign_adam_pp_hard"],
    "sign_adam_pp_adaptive": CASES["sign_adam_pp_adaptive"],
    "sign_adam_pp_second_moment": CASES["sign_adam_pp_second_moment"],
    "sign_adam_pp_soft_relative": (
        ks.SignAdamPP, reference.SignAdamPP,
        dict(learning_rate=1e-2, threshold=0.8, confidence="soft",
             threshold_mode="relative")),
}


@pytest.mark.parametrize("decay_and_clip", [False, True])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("case", list(EF_CASES))
def test_error_feedback_matches_reference(case, dtype_name, decay_and_clip):
    """SPEC 3.6 over 12 steps of gradients on both sides of the threshold:
    the residual carries what the signal dropped into later steps."""
    cls, ref_cls, kwargs = EF_CASES[case]
    dtype = DTYPES[dtype_name]
    extra = dict(weight_decay=0.05, **clipping(dtype_name)) if (
        decay_and_clip) else {}
    # With a relative threshold a scalar whose gradient is exactly zero
    # sends the sign of its residual, whatever its size: there the
    # reference's exact zero and float32's rounding residue (1e-14) part
    # ways. Scalars are covered by the absolute cases.
    shapes = SHAPES[1:] if "relative" in case else SHAPES
    thetas, grads = make_problem(20 + sorted(EF_CASES).index(case), dtype,
                                 shapes=shapes)
    optimizer = cls(error_feedback=True, track_statistics=True,
                    jit_compile=dtype_name == "float32", **extra, **kwargs)
    got = apply_steps(optimizer, thetas, grads, dtype_name)
    clip_kwargs = {k: v for k, v in extra.items() if k != "weight_decay"}
    factory = functools.partial(
        ref_cls, weight_decay=extra.get("weight_decay"),
        **reference_kwargs(kwargs))
    expected, refs = reference.run(
        lambda: reference.ErrorFeedback(factory()), thetas, grads, dtype,
        **clip_kwargs)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, **tolerance(dtype_name))
    # Without feedback the same problem ends elsewhere: the residual is
    # not a no-op.
    plain, _ = reference.run(factory, thetas, grads, dtype, **clip_kwargs)
    assert any(np.abs(e - p).max() > 5e-3 for e, p in zip(expected, plain))
    residuals = optimizer.moment_values("residual")
    for r, ref in zip(residuals, refs):
        np.testing.assert_allclose(r, ref.e, rtol=1e-4, atol=1e-6)
    zeros = sum(r.zero_confidence for r in refs)
    assert optimizer.sparsity == pytest.approx(
        zeros / sum(int(np.prod(s)) for s in shapes))


def test_error_feedback_residual_rounds_to_a_bfloat16_neighbour():
    """With `state_dtype="bfloat16"` the residual is stored stochastically
    rounded: after one step each stored value is one of the two bfloat16
    numbers around the float32 residual of the reference."""
    thetas, grads = make_problem(31, np.float32, steps=1)
    optimizer = ks.SignAdamPP(learning_rate=1e-2, error_feedback=True,
                              state_dtype="bfloat16")
    apply_steps(optimizer, thetas, grads, "float32")
    refs = [reference.ErrorFeedback(reference.SignAdamPP(lr=1e-2,
                                                         threshold=5e-4))
            for _ in thetas]
    for ref, theta, g in zip(refs, thetas, grads[0]):
        ref.signal(theta, g)
    stored = [v for v in optimizer.variables
              if v.path.endswith("_residual")]
    assert len(stored) == len(thetas)
    for variable, ref in zip(stored, refs):
        assert keras.backend.standardize_dtype(variable.dtype) == "bfloat16"
        value = to_numpy(keras.ops.cast(variable, "float32"))
        bits = np.ascontiguousarray(ref.e, np.float32).view(np.uint32)
        down = (bits & np.uint32(0xFFFF0000)).view(np.float32)
        up = ((bits & np.uint32(0xFFFF0000)) + np.uint32(0x10000)).view(
            np.float32)
        assert np.all((value == down) | (value == up)), (value, ref.e)


def test_error_feedback_arguments_are_checked_by_name():
    with pytest.raises(ValueError, match="error_feedback"):
        ks.SignAdamPP(error_feedback="yes")
    # Signum averages the gradient itself unless it votes.
    with pytest.raises(ValueError, match="Signum compresses nothing.*"
                                         "majority_vote.*error_feedback"):
        ks.Signum(error_feedback=True)
    ks.Signum(error_feedback=True, aggregation="majority_vote")
    # The residual is not bounded: no 8-bit codes.
    with pytest.raises(ValueError, match="not bounded \\(residual\\).*"
                                         "state_dtype"):
        ks.SignAdamPP(error_feedback=True, state_dtype="int8")
    with pytest.raises(ValueError, match="NovoGrad compresses nothing.*"
                                         "error_feedback=True"):
        ks.NovoGrad(error_feedback=True)
    config = ks.SignAdamPP(error_feedback=True).get_config()
    assert config["error_feedback"] is True
    assert ks.SignAdamPP.from_config(config).error_feedback is True
    assert "error_feedback" not in ks.NovoGrad().get_config()
