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
    if cls.capabilities.sparsity:
        assert 0.0 < counts[0][0] < 1.0


def test_compiled_update_is_used_and_cached():
    optimizer = ks.SignAdamPP()
    thetas, grads = make_problem(1, np.float32)
    apply_steps(optimizer, thetas, grads, "float32")
    functions = list(optimizer._compiled.functions.values())
    assert len(functions) == 1
    assert functions[0].function.experimental_get_tracing_count() == 1
    plain = ks.SignAdamPP(jit_compile=False)
    apply_steps(plain, thetas, grads, "float32")
    assert plain._compiled is None


def test_optimizers_of_one_structure_share_one_compiled_update():
    """A second optimizer of the same structure (other hyperparameter
    values) reuses the first one's trace, and still follows its own
    values: the reference for each."""
    import functools

    from tests import reference

    thetas, grads = make_problem(2, np.float32)
    settings = [dict(learning_rate=1e-2, threshold=4e-4, beta_1=0.9),
                dict(learning_rate=3e-3, threshold=1e-3, beta_1=0.7)]
    optimizers = [ks.SignAdamPP(**kw) for kw in settings]
    results = [apply_steps(o, thetas, grads, "float32") for o in optimizers]
    updates = [list(o._compiled.functions.values())[0] for o in optimizers]
    assert updates[0].function is updates[1].function
    assert updates[0].function.experimental_get_tracing_count() == 1
    for kw, got in zip(settings, results):
        expected, _ = reference.run(
            functools.partial(reference.SignAdamPP, lr=kw["learning_rate"],
                              threshold=kw["threshold"],
                              beta_1=kw["beta_1"]),
            thetas, grads, np.float32)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-6)
    # A setting fixed at tracing time makes a different structure.
    other = ks.SignAdamPP(confidence="soft")
    apply_steps(other, thetas, grads, "float32")
    assert list(other._compiled.functions.values())[0].function is not (
        updates[0].function)


def traced_op_types(optimizer, shapes):
    """The types of the operations one traced update holds (the compiled
    update's own function included), for variables of `shapes`."""
    import collections

    import keras
    import tensorflow as tf

    variables = [keras.Variable(np.ones(s, np.float32), name=f"v{i}")
                 for i, s in enumerate(shapes)]
    optimizer.build(variables)
    gradients = [tf.fill(s, 1e-2) for s in shapes]

    @tf.function(autograph=False)
    def step():
        optimizer.apply(gradients, variables)

    graph = step.get_concrete_function().graph.as_graph_def()
    nodes = list(graph.node)
    for function in graph.library.function:
        nodes += list(function.node_def)
    return collections.Counter(node.op for node in nodes)


# Operations only the per-step scalars use: the bias corrections (Expm1,
# Log1p, Pack), the learning-rate check (GreaterEqual).
STEP_ONLY = ("Expm1", "Log1p", "Pack", "GreaterEqual")


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("name", list(ALL))
def test_per_step_values_are_traced_once_per_update(name, jit_compile):
    """The learning rate check and the bias corrections are computed once
    per update, not once per variable: four more variables add none of
    their operations."""
    cls = getattr(ks, name)
    counts = [traced_op_types(cls(jit_compile=jit_compile, **ALL[name]),
                              [(3, 2)] * n) for n in (1, 5)]
    assert sum(counts[0][op] for op in STEP_ONLY) > 0
    added = counts[1] - counts[0]
    for op in STEP_ONLY:
        assert added[op] == 0, (op, counts)


def test_per_update_values_are_kept_per_scope_and_thread():
    import threading

    from keras_signadam.optimizers import per_update

    shared = per_update.PerUpdate()
    computed = []

    def compute():
        computed.append(len(computed))
        return computed[-1]

    def get(dtype="float32"):
        return shared.get("value", dtype, compute)

    assert [get(), get()] == [0, 1]  # outside a scope nothing is kept
    with shared.scope():
        kept = get()
        assert get() == kept
        assert get("float64") != kept  # one value per dtype
        with shared.scope():  # a nested trace starts afresh
            assert get() != kept
        assert get() == kept
        other_thread = []
        thread = threading.Thread(target=lambda: other_thread.append(get()))
        thread.start()
        thread.join()
        assert other_thread[0] != kept
    assert get() != kept
    assert get() != get()


@pytest.mark.parametrize("state_dtype", ["bfloat16", "int8"])
def test_compiled_update_holds_no_constant_of_a_parameter_size(state_dtype):
    """The random bits of stochastic rounding hash each element's index:
    the compiled update must build the indices, not read them from a
    constant of 4 bytes per parameter."""
    import re

    import keras
    import tensorflow as tf

    shapes = [(3, 3, 8, 16), (40, 24), (24,)]
    variables = [keras.Variable(np.ones(s, np.float32)) for s in shapes]
    gradients = [tf.fill(s, 1e-2) for s in shapes]
    optimizer = ks.SignAdamPP(state_dtype=state_dtype)
    optimizer.build(variables)

    @tf.function(jit_compile=True)
    def step():
        optimizer.apply(gradients, variables)

    program = step.experimental_get_compiler_ir()(stage="optimized_hlo")
    sizes = [int(np.prod([int(d) for d in dims.split(",") if d]))
             for dims in re.findall(r"= \w+\[([\d,]*)\]\S* constant\(",
                                    program)]
    assert sizes, "no constants found: the pattern no longer matches"
    assert max(sizes) < min(int(np.prod(s)) for s in shapes[:2]), sizes
