"""The optimizers' own XLA update: same numbers and counts as plain ops.
(Per replica under MirroredStrategy: `test_distributed.py`.)"""

import numpy as np
import pytest

import keras_signadam as ks
from tests.helpers import apply_steps
from tests.helpers import make_problem

ALL = {
    "SignSGD": dict(threshold=2e-4, coupled_weight_decay=1e-2),
    "Signum": dict(),
    "SignAdam": dict(weight_decay=1e-2),
    "SignAdamPP": dict(confidence="soft", threshold_mode="relative",
                       threshold=0.5),
    "NovoGrad": dict(amsgrad=True, weight_decay=1e-3),
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


@pytest.mark.parametrize("name", list(ALL))
def test_xla_and_plain_paths_count_the_same(name):
    cls = getattr(ks, name)
    thetas, grads = make_problem(len(name), np.float32)
    grads[3][3] = grads[3][3].copy()
    grads[3][3].flat[:3] = [np.nan, np.inf, -np.inf]
    counts = []
    for jit_compile in (True, False):
        optimizer = cls(jit_compile=jit_compile, track_statistics=True,
                        **ALL[name])
        apply_steps(optimizer, thetas, grads, "float32")
        counts.append((optimizer.sparsity, optimizer.nonfinite_count))
    assert counts[0] == counts[1]
    assert counts[0][1] == 3
    if cls.tracks_sparsity:
        assert 0.0 < counts[0][0] < 1.0


def test_compiled_update_is_used_and_cached():
    optimizer = ks.SignAdamPP()
    thetas, grads = make_problem(1, np.float32)
    apply_steps(optimizer, thetas, grads, "float32")
    functions = list(optimizer._compiled.functions.values())
    assert len(functions) == 1
    assert functions[0].experimental_get_tracing_count() == 1
    plain = ks.SignAdamPP(jit_compile=False)
    apply_steps(plain, thetas, grads, "float32")
    assert plain._compiled is None
