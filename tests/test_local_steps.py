"""`LocalSteps`: local inner steps and a rare outer step, against the
NumPy reference of its docstring's rules (`reference.LocalSteps`)."""

import json
import os

import keras
import numpy as np
import pytest

import keras_signadam as ks
from tests import reference
from tests.helpers import ROOT
from tests.helpers import start_python

INNER = {
    "SignAdamPP": lambda: reference.SignAdamPP(0.01, threshold=0.05),
    "Signum": lambda: reference.Signum(0.01),
    "Adam": lambda: reference.Adam(0.01),
    "SGD": lambda: reference.SGD(0.01),
}


class _Cleaned:
    """A Keras optimizer inside `LocalSteps` gets its non-finite gradient
    components as zeros."""

    def __init__(self, inner):
        self.inner = inner

    def step(self, theta, g, t):
        return self.inner.step(theta, reference.clean(g), t)
# Outer rules, momenta, round lengths, dtypes, replica counts and inner
# optimizers, each met at least once.
CASES = [
    dict(inner="Adam", outer="average", steps=2, eta=0.7, mu=0.9,
         nesterov=True, shapes=[[3, 4], [4]], dtype="float32", seed=0,
         replicas=2),
    dict(inner="SignAdamPP", outer="sign", steps=3, eta=0.7, mu=0.9,
         nesterov=True, shapes=[[5, 3], [7]], dtype="float32", seed=1,
         replicas=2),
    dict(inner="Signum", outer="sign", steps=2, eta=1.0, mu=0.5,
         nesterov=False, shapes=[[33], [2, 2]], dtype="float32", seed=2,
         replicas=2),
    dict(inner="SignAdamPP", outer="average", steps=4, eta=1.0, mu=0.0,
         nesterov=True, shapes=[[6, 2]], dtype="float64", seed=3,
         replicas=2),
    dict(inner="Signum", outer="sign", steps=1, eta=0.5, mu=0.9,
         nesterov=True, shapes=[[4, 4]], dtype="float32", seed=4,
         replicas=1),
    # 4 replicas: the signs travel by integer all-reduce.
    dict(inner="Adam", outer="sign", steps=2, eta=0.7, mu=0.9,
         nesterov=True, shapes=[[9, 5], [3]], dtype="float32", seed=5,
         replicas=4),
    # The sign outer step in SparseLoCo's form, which the docs recommend.
    dict(inner="Adam", outer="sign", steps=3, eta=1.0, mu=0.0,
         nesterov=True, shapes=[[6, 4], [4]], dtype="float32", seed=6,
         replicas=2),
    # Top-k with 2-bit values: two chunks of which the second has fewer
    # components than it keeps (4100 = 4096 + 4), a small tensor, and
    # 4 replicas with a float64 anchor. SGD inside: its changes keep the
    # gradients' spread of magnitudes.
    dict(inner="SGD", outer="top_k", steps=2, eta=1.0, mu=0.0,
         nesterov=True, shapes=[[4100], [5, 3]], dtype="float32", seed=7,
         replicas=2),
    dict(inner="SGD", outer="top_k", steps=3, eta=0.7, mu=0.9,
         nesterov=True, shapes=[[70, 64], [9]], dtype="float64", seed=8,
         replicas=4, density=0.1),
]


@pytest.fixture(scope="module")
def replica_runs():
    child = start_python([os.path.join(ROOT, "tests", "scripts",
                                       "local_steps.py"), json.dumps(CASES)])
    stdout, stderr = child.communicate(timeout=600)
    assert child.returncode == 0, stderr[-4000:]
    return [json.loads(line) for line in stdout.splitlines()
            if line.startswith("{")]


def _float(x):
    return np.asarray(x, dtype=np.float32)


@pytest.mark.parametrize("index", range(len(CASES)),
                         ids=[f"{c['inner']}-{c['outer']}-H{c['steps']}-"
                              f"{c['dtype']}-R{c['replicas']}"
                              for c in CASES])
def test_replicas_follow_the_reference_and_agree_after_each_round(
        replica_runs, index):
    run = replica_runs[index]
    case = CASES[index]
    assert {k: run[k] for k in case} == case
    replicas, steps = case["replicas"], case["steps"]
    inner = INNER[case["inner"]]
    if case["inner"] in ("Adam", "SGD"):
        inner = (lambda make=inner: _Cleaned(make()))
    references = [reference.LocalSteps(
        inner, replicas, _float(theta), steps,
        case["outer"], case["eta"], case["mu"], case["nesterov"],
        case.get("density", 1 / 64)) for theta in run["initial"]]
    tolerance = 2e-5
    differed = False
    for t, (grads, observed) in enumerate(
            zip(run["gradients"], run["trajectory"]), start=1):
        for j, ref in enumerate(references):
            expected = ref.step([_float(grads[r][j]) for r in
                                 range(replicas)], t)
            copies = [_float(c) for c in observed[j]]
            assert len(copies) == replicas
            for r in range(replicas):
                np.testing.assert_allclose(
                    copies[r], expected[r], rtol=tolerance,
                    atol=tolerance, err_msg=f"step {t}, variable {j}, "
                                            f"replica {r}")
            if t % steps == 0:
                # Every replica holds exactly the same weights.
                for r in range(1, replicas):
                    np.testing.assert_array_equal(copies[r], copies[0])
            elif replicas > 1:
                differed |= not np.array_equal(copies[1], copies[0])
    assert differed == (replicas > 1 and steps > 1)
    for anchor, ref in zip(run["anchors"], references):
        np.testing.assert_allclose(_float(anchor), ref.anchor,
                                   rtol=tolerance, atol=tolerance)
    assert run["iterations"] == len(run["gradients"])


@pytest.fixture(scope="module")
def fit_runs():
    child = start_python([os.path.join(ROOT, "tests", "scripts",
                                       "local_steps_fit.py"),
                         "average,sign,top_k"])
    stdout, stderr = child.communicate(timeout=900)
    assert child.returncode == 0, stderr[-4000:]
    return [json.loads(line) for line in stdout.splitlines()
            if line.startswith("{")]


def test_fit_under_mirrored_strategy_saves_loads_and_resumes(fit_runs):
    assert len(fit_runs) == 8
    assert {(r["outer"], r["replicas"], r["steps_per_epoch"])
            for r in fit_runs if r["steps_per_epoch"] == 8} == {
        ("average", 2, 8), ("average", 1, 8)}
    for run in fit_runs:
        label = (run["outer"], run["replicas"], run["steps_per_epoch"])
        total = 2 * run["steps_per_epoch"]
        assert run["iterations"] == total, label
        # Rounds of 4 steps: an epoch of 6 ends mid-round, with the
        # replicas apart; every run ends on a round's end, together.
        if run["replicas"] == 2 and run["steps_per_epoch"] == 6:
            assert run["spread_mid"] > 0, label
        else:
            assert run["spread_mid"] == 0, label
        assert run["spread_end"] == 0, label
        # A restore gives back exactly what was saved, and training goes
        # on to the same step count with the outer steps where they were.
        assert run["restored"] == 0, label
        assert run["resumed"]["iterations"] == total, label
        assert run["resumed"]["spread"] == 0, label
        if run["replicas"] == 1:
            # Nothing is kept per replica: resuming is exact.
            assert run["resumed"]["difference"] == 0, label
        assert run["reloaded"] == dict(difference=0.0, same_config=True,
                                       type="LocalSteps",
                                       inner="SignAdamPP"), label


# ---------------------------------------------------- on one device
def _apply(optimizer, thetas, grads_by_step, dtype="float32"):
    variables = [keras.Variable(t, dtype=dtype) for t in thetas]
    trajectory = []
    for grads in grads_by_step:
        optimizer.apply([keras.ops.convert_to_tensor(g, dtype)
                         for g in grads], variables)
        trajectory.append([keras.ops.convert_to_numpy(v) for v in variables])
    return trajectory, variables


@pytest.mark.parametrize("outer", ["average", "sign", "top_k"])
@pytest.mark.parametrize("nesterov", [True, False])
def test_one_device_follows_the_reference(outer, nesterov):
    rng = np.random.default_rng(7)
    shapes = [(4, 3), (5,)]
    inner = (ks.SignAdamPP(0.05, threshold=0.1),
             lambda: reference.SignAdamPP(0.05, threshold=0.1))
    if outer == "top_k":
        # Two chunks, the second shorter; SGD keeps the magnitudes apart.
        shapes.append((4100,))
        inner = (keras.optimizers.SGD(0.05), lambda: reference.SGD(0.05))
    thetas = [rng.normal(size=s).astype("float32") for s in shapes]
    steps = [[rng.normal(size=s).astype("float32") for s in shapes]
             for _ in range(11)]
    optimizer = ks.LocalSteps(inner[0], steps=3, outer=outer,
                              outer_learning_rate=0.6, outer_momentum=0.8,
                              nesterov=nesterov, outer_density=0.1)
    trajectory, _ = _apply(optimizer, thetas, steps)
    references = [reference.LocalSteps(
        inner[1], 1, theta, 3, outer, 0.6, 0.8, nesterov, density=0.1)
        for theta in thetas]
    for t, (grads, observed) in enumerate(zip(steps, trajectory), start=1):
        for j, ref in enumerate(references):
            expected = ref.step([grads[j]], t)[0]
            np.testing.assert_allclose(observed[j], expected, rtol=2e-6,
                                       atol=2e-6, err_msg=f"step {t}")


def test_average_with_unit_rate_and_no_momentum_is_the_inner_optimizer():
    rng = np.random.default_rng(3)
    thetas = [rng.normal(size=(6,)).astype("float32")]
    steps = [[rng.normal(size=(6,)).astype("float32")] for _ in range(7)]
    wrapped, _ = _apply(ks.LocalSteps(keras.optimizers.Adam(0.1), steps=2,
                                      outer_learning_rate=1.0,
                                      outer_momentum=0.0), thetas, steps)
    alone, _ = _apply(keras.optimizers.Adam(0.1), thetas, steps)
    np.testing.assert_allclose(wrapped[-1][0], alone[-1][0], rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("outer", ["sign", "top_k"])
def test_compiled_train_step_takes_the_same_steps(outer):
    """`fit` with a compiled train step (XLA; `torch.compile` on PyTorch)
    takes the same steps as without."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    weights = {}
    for jit_compile in (True, False):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
        model.compile(optimizer=ks.LocalSteps(
            keras.optimizers.Adam(0.01), steps=2, outer=outer),
            loss="mse", jit_compile=jit_compile)
        model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False)
        weights[jit_compile] = model.get_weights()
        assert int(model.optimizer.iterations) == 12
    for compiled, eager in zip(weights[True], weights[False]):
        np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)


def test_non_finite_gradients_reach_nothing():
    """A NaN gradient component reaches no weight and no state of a Keras
    inner optimizer."""
    optimizer = ks.LocalSteps(keras.optimizers.Adam(0.05), steps=2)
    bad = np.ones((3,), "float32")
    bad[1] = np.nan
    _, variables = _apply(optimizer, [np.zeros(3, "float32")], [[bad]] * 4)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(variables[0])))
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(v)))
               for v in optimizer.variables)


# ------------------------------------------------ arguments, config
@pytest.mark.parametrize("kwargs, argument", [
    (dict(steps=0), "steps"),
    (dict(steps=2.5), "steps"),
    (dict(outer="mean"), "outer"),
    (dict(outer_learning_rate=-1.0), "outer_learning_rate"),
    (dict(outer_momentum=1.0), "outer_momentum"),
    (dict(nesterov="yes"), "nesterov"),
    (dict(outer_density=0.0), "outer_density"),
    (dict(outer_density=1.5), "outer_density"),
    (dict(optimizer="adam"), "optimizer"),
    (dict(optimizer=ks.SignAdamPP(aggregation="majority_vote")),
     "optimizer"),
    (dict(learning_rate=0.1), "learning_rate"),
])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        ks.LocalSteps(**kwargs)


def test_nested_local_steps_are_refused():
    with pytest.raises(ValueError, match="another `LocalSteps`"):
        ks.LocalSteps(ks.LocalSteps())


def test_config_round_trip_and_string_identifier():
    optimizer = ks.LocalSteps(
        ks.Hybrid(ks.Signum(0.01), keras.optimizers.Adam(0.002)), steps=5,
        outer="sign", outer_learning_rate=0.5, outer_momentum=0.0,
        nesterov=False, outer_density=0.05)
    config = optimizer.get_config()
    again = ks.LocalSteps.from_config(config)
    assert again.get_config() == config
    assert isinstance(again.optimizer, ks.Hybrid)
    serialized = keras.optimizers.serialize(optimizer)
    assert keras.optimizers.deserialize(serialized).get_config() == config
    assert isinstance(keras.optimizers.get("LocalSteps"), ks.LocalSteps)


def test_bytes_per_step_and_the_inner_optimizers_figures():
    optimizer = ks.LocalSteps(ks.SignAdamPP(0.01), steps=8, outer="sign")
    variables = [keras.Variable(np.zeros((1000, 10), "float32")),
                 keras.Variable(np.zeros((10,), "float32"))]
    optimizer.build(variables)
    average = ks.LocalSteps(ks.SignAdamPP(0.01), steps=8)
    average.build(variables)
    # The float32 ring all-reduce sends 2 (R - 1) / R * 4 bytes per
    # component; per round, once every 8 steps.
    assert average.bytes_sent(4) == pytest.approx(1.5 * 4 * 10010 / 8)
    # Packed signs: 2 bits per component and replica for the all-gather
    # at 2 replicas, whole 32-bit words per variable, and one float32
    # scale per variable.
    words = -(-10000 // 16) + -(-10 // 16)
    assert optimizer.bytes_sent(2) == pytest.approx(
        (4 * words + 2 * (2 - 1) / 2 * 4 * 2) / 8)
    assert optimizer.bytes_sent(1) == 0
    # Top-k at density 1/64: the 10,000 components are 3 chunks of 4096
    # keeping 64 each (16-bit indices, 2-bit codes, two float32 levels
    # per chunk), the 10 one chunk keeping 1; all-gathered, so each of
    # 4 replicas sends its words 3 times.
    sparse = ks.LocalSteps(ks.SignAdamPP(0.01), steps=8, outer="top_k")
    sparse.build(variables)
    words = (192 // 2 + 192 // 16 + 6) + (1 + 1 + 2)
    assert sparse.bytes_sent(4) == pytest.approx(3 * 4 * words / 8)
    optimizer.learning_rate = 0.5
    assert float(optimizer.optimizer.learning_rate) == 0.5
    assert optimizer.iterations is optimizer.optimizer.iterations


@pytest.mark.parametrize("outer", ["sign", "top_k"])
def test_sixteen_bit_weights_keep_a_float32_anchor(outer):
    """The anchor of a bfloat16 variable is float32 (its outer steps
    would not move in bfloat16), and a round ends with the weights at
    the anchor, rounded."""
    rng = np.random.default_rng(11)
    thetas = [rng.normal(size=(8, 4)).astype("float32")]
    steps = [[rng.normal(size=(8, 4)).astype("float32")] for _ in range(6)]
    optimizer = ks.LocalSteps(ks.SignAdamPP(0.01), steps=3, outer=outer,
                              outer_density=0.25)
    _, variables = _apply(optimizer, thetas, steps, dtype="bfloat16")
    anchor = optimizer.anchors[0]
    assert keras.backend.standardize_dtype(anchor.dtype) == "float32"
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(keras.ops.cast(variables[0], "float32")),
        keras.ops.convert_to_numpy(keras.ops.cast(
            keras.ops.cast(anchor, "bfloat16"), "float32")))
    assert not np.array_equal(keras.ops.convert_to_numpy(anchor), thetas[0])
