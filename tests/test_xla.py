"""The optimizers' own XLA update: same numbers as plain ops, and working
per replica under MirroredStrategy."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_signadam as ks
from tests.test_update_rules import apply_steps
from tests.test_update_rules import make_problem

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ALL = {
    "SignSGD": dict(threshold=2e-4, coupled_weight_decay=1e-2),
    "Signum": dict(),
    "SignAdam": dict(weight_decay=1e-2),
    "SignAdamPP": dict(confidence="soft", threshold_mode="relative",
                       threshold=0.5),
    "NovoGrad": dict(amsgrad=True, momentum_weight_decay=1e-3),
}


@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", list(ALL))
def test_xla_and_plain_paths_agree(name, dtype_name):
    cls = getattr(ks, name)
    thetas, grads = make_problem(len(name), np.float32)
    fast = apply_steps(cls(jit_compile=True, **ALL[name]), thetas, grads,
                       dtype_name)
    plain = apply_steps(cls(jit_compile=False, **ALL[name]), thetas, grads,
                        dtype_name)
    tolerance = 1e-6 if dtype_name == "float32" else 1e-2
    for a, b in zip(fast, plain):
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance / 10)


def test_compiled_update_is_used_and_cached():
    optimizer = ks.SignAdamPP()
    thetas, grads = make_problem(1, np.float32)
    apply_steps(optimizer, thetas, grads, "float32")
    functions = list(optimizer._xla_updates.functions.values())
    assert len(functions) == 1
    assert functions[0].experimental_get_tracing_count() == 1
    plain = ks.SignAdamPP(jit_compile=False)
    apply_steps(plain, thetas, grads, "float32")
    assert not plain._xla_updates.functions


def test_xla_update_under_mirrored_strategy():
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "scripts",
                                      "mirrored_xla.py")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()
            if line.startswith("{")]
    assert {r["optimizer"] for r in rows} == set(ALL)
    for row in rows:
        assert row["replicas"] == 2
        # One compiled function per (variable, device).
        assert row["compiled_functions"] == 2 * 4, row
        assert row["replica_spread"] == 0.0, row
        assert row["max_weight_difference"] < 1e-5, row
