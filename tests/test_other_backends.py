"""The JAX and PyTorch backends, one child process each (Keras picks its
backend once per process), which runs in turn: the NumPy-reference tests
of the update rules, `examples/other_backends.py`, SignAdamPP with
rounded state, and on JAX the compilations of eager steps, the
update-step benchmark's in-place step, the comparison with optax and
`keras.distribution.DataParallel` over two host devices."""

import json
import os
import re

import numpy as np
import pytest

from tests.helpers import ROOT
from tests.helpers import Sections
from tests.helpers import module_at
from tests.helpers import start_scripts

SCRIPTS = os.path.join(ROOT, "tests", "scripts")
BACKENDS = {"jax": ["float32", "bfloat16"], "torch": ["float32", "bfloat16"]}
STATE_DTYPES = ("bfloat16", "int8")
# One case per code path of the rules: coupled decay with a hard absolute
# threshold, soft relative confidence, momentum of the raw gradient, the
# uncorrected ratio and its bound, the momentum of the confidence-filtered
# signal, the adaptive threshold's state, the bias-corrected ratio.
RULE_CASES = ("sign_sgd_dead_zone", "sign_sgd_soft_relative", "signum",
              "sign_adam", "sign_adam_pp_hard", "sign_adam_pp_adaptive",
              "sign_adam_pp_second_moment")


def reference_tests(backend, dtypes):
    """Node ids of the NumPy-reference tests of one case per code path,
    each with decoupled weight decay and clipping on (both paths in one
    run), in `dtypes`; NovoGrad with every option; error feedback; the
    sparsity and annealed beta_1 tests."""
    ids = [f"tests/test_update_rules.py::test_matches_reference"
           f"[{case}-{dtype}-decay_and_clip]"
           for case in RULE_CASES for dtype in dtypes]
    ids += ["tests/test_novograd.py::test_matches_reference"
            f"[all-{dtype}-True]" for dtype in dtypes]
    ids += ["tests/test_update_rules.py::test_error_feedback_matches_"
            "reference[sign_adam_pp_soft_relative-float32-True]",
            "tests/test_update_rules.py::test_sparsity_counts_zero_confidence"
            "[sign_adam_pp_relative]",
            "tests/test_update_rules.py::"
            "test_annealed_beta_1_matches_reference[True]",
            "tests/test_hybrid.py::test_each_part_steps_as_its_reference"
            "[plain]",
            "tests/test_local_steps.py::test_one_device_follows_the_"
            "reference[True-sign]",
            "tests/test_local_steps.py::test_one_device_follows_the_"
            "reference[False-average]",
            "tests/test_local_steps.py::test_one_device_follows_the_"
            "reference[True-top_k]",
            "tests/test_local_steps.py::test_non_finite_gradients_reach_"
            "nothing"]
    # On PyTorch a compiled step is `torch.compile`'s, about 13 s of
    # compiling per model on two cores: the rule with the most operations
    # (the chunks' top-k and their 2-bit values) stands for both there.
    ids += [f"tests/test_local_steps.py::test_compiled_train_step_takes_"
            f"the_same_steps[{outer}]"
            for outer in (("sign", "top_k") if backend == "jax"
                          else ("top_k",))]
    return ids


def scripts(backend):
    groups = [
        ["-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider",
         *reference_tests(backend, BACKENDS[backend])],
        [os.path.join(ROOT, "examples", "other_backends.py"), "--backend",
         backend, "--epochs", "2"],
        [os.path.join(SCRIPTS, "low_precision_steps.py"), *STATE_DTYPES],
    ]
    if backend == "jax":
        groups += [[os.path.join(SCRIPTS, "eager_compiles.py")],
                   [os.path.join(SCRIPTS, "jax_in_place.py")],
                   [os.path.join(SCRIPTS, "against_optax.py")],
                   [os.path.join(SCRIPTS, "jax_data_parallel.py")]]
    return groups


@pytest.fixture(scope="module")
def outputs():
    """{backend: what each script printed}; both children run at once."""
    env = {
        # jax_data_parallel.py: two host devices, set before JAX starts
        # (added to the flags `make test` sets).
        "jax": {"XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
                + " --xla_force_host_platform_device_count=2"},
        # PyTorch's OpenMP threads spin while they wait for work: beside
        # other busy processes on two cores the child took half as much
        # CPU time again (28 against 18 CPU-s, measured side by side).
        "torch": {"OMP_NUM_THREADS": "1"},
    }
    children = {backend: start_scripts(scripts(backend), backend=backend,
                                       cwd=ROOT, env=env[backend])
                for backend in BACKENDS}
    return {backend: Sections(child) for backend, child in children.items()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_update_rules_match_the_references(outputs, backend):
    counts = outputs[backend]["pytest"].strip().splitlines()[-1]
    ids = reference_tests(backend, BACKENDS[backend])
    assert "skipped" not in counts and "deselected" not in counts, counts
    assert re.match(rf"{len(ids)} passed\b", counts), counts


def numbers_after(label, text):
    return [float(v) for v in re.findall(label + r" ([0-9.e+-]+)", text)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_example_trains_every_optimizer(outputs, backend):
    out = outputs[backend]["other_backends.py"]
    assert f"Keras backend: {backend}" in out
    for name in ("SignAdamPP", "SignAdam", "Signum", "SignSGD", "NovoGrad",
                 "SignAdamPP \\+ AdaptiveConfidence", "Hybrid"):
        assert numbers_after(f"{name}: test accuracy", out)[0] > 0.8
    # The sparsity ramp moved the threshold from its default 5e-4 (down
    # first, then up).
    line = re.search(r"threshold per epoch (.*)", out).group(1)
    thresholds = [float(t) for t in line.split()]
    assert len(thresholds) == 2
    assert thresholds[0] < 5e-4 < thresholds[-1]


def test_rounded_state_steps_alike_on_every_backend(outputs):
    """SignAdamPP with bfloat16 and int8 state: the same parameters after
    20 steps on JAX and PyTorch as on TensorFlow (this process)."""
    script = module_at(os.path.join(SCRIPTS, "low_precision_steps.py"))
    for backend in BACKENDS:
        lines = [line.split() for line in outputs[backend][
            "low_precision_steps.py"].splitlines() if line.strip()]
        assert [line[0] for line in lines] == list(STATE_DTYPES)
        for dtype, *values in lines:
            got = np.array(values, dtype=np.float64)
            assert got.shape == (8,)
            np.testing.assert_allclose(got, script.run(dtype), rtol=1e-5,
                                       atol=1e-7, err_msg=f"{backend} {dtype}")


def test_eager_jax_steps_compile_nothing_after_the_first(outputs):
    """Run eagerly, JAX compiles each operation once per shape; NovoGrad's
    norm and the statistics' counts (conditionals whose branches were new
    closures every step) were compiled again at every step, 400 ms a step
    on 4 variables."""
    counts = json.loads(outputs["jax"]["eager_compiles.py"].strip()
                        .splitlines()[-1])
    assert counts == {"NovoGrad": 0, "SignAdamPP statistics": 0}


def test_jax_benchmark_step_updates_in_place(outputs):
    """The update-step benchmark times the JAX step as Keras's trainer
    runs it: each new value in its own input's donated buffer. In
    `stateless_apply`'s order a new parameter took a moment's buffer and
    XLA copied 16 bytes per parameter of Adam's step to keep the old
    values."""
    found = json.loads(outputs["jax"]["jax_in_place.py"].strip()
                       .splitlines()[-1])
    assert set(found) == {"keras Adam", "SignAdamPP", "Signum", "NovoGrad"}
    for name, program in found.items():
        assert program["outputs"] > 3 and program["in_order"], name
        # Small per-variable counters may be copied, never a tensor's
        # worth (one float32 copy of the smallest tensor is 0.05).
        assert program["copied_per_parameter"] < 0.02, (name, program)


@pytest.mark.parametrize("rule", ["sign_sgd", "signum", "novograd"])
def test_same_parameters_as_optax(outputs, rule):
    """SignSGD, Signum and NovoGrad against optax's, an independent
    implementation, over 15 steps on JAX."""
    report = json.loads(outputs["jax"]["against_optax.py"].strip()
                        .splitlines()[-1])
    # Both moved the parameters by far more than they differ.
    assert report[rule]["moved"] > 0.05
    assert report[rule]["difference"] <= 1e-5 * max(
        1.0, report[rule]["moved"]), report[rule]


def test_jax_data_parallel_matches_single_device(outputs):
    rows = [json.loads(line) for line in outputs["jax"][
        "jax_data_parallel.py"].splitlines() if line.startswith("{")]
    assert {r["optimizer"] for r in rows} == {
        "SignSGD", "Signum", "SignAdam", "SignAdamPP", "NovoGrad",
        "SignAdamPP bfloat16 state", "SignAdamPP int8 state"}
    for row in rows:
        assert row["devices"] == 2
        assert row["state_devices"] == 2, row  # state lives on both
        np.testing.assert_allclose(row["losses_parallel"],
                                   row["losses_single"], rtol=1e-5,
                                   err_msg=row["optimizer"])
        assert row["max_weight_difference"] < 1e-5, row
        if row["optimizer"] == "SignAdamPP":
            assert 0.0 < row["sparsity"] < 1.0
