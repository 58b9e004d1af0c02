"""Momentum annealing, the walk between iterates, and the landscape
tools."""

import keras
import numpy as np
import pytest

import keras_signadam as ks
from keras_signadam import landscape
from keras_signadam.comparison import datasets
from keras_signadam.comparison import models


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = datasets.load_digits()
    return x[:320], y[:320]


def trained(optimizer, data, callbacks=(), epochs=3, model=None):
    keras.utils.set_random_seed(0)
    model = model or models.mlp((8, 8, 1), 10, width=24)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(*data, batch_size=32, epochs=epochs, shuffle=False,
                        verbose=0, callbacks=list(callbacks))
    return model, history


# ---------------------------------------------------------------- momentum
MOMENTUM = {
    "SignAdamPP": lambda: ks.SignAdamPP(1e-3),
    "Signum": lambda: ks.Signum(1e-3),
    "NovoGrad": lambda: ks.NovoGrad(1e-2),
    "SGD": lambda: keras.optimizers.SGD(1e-2, momentum=0.9),
}


@pytest.mark.parametrize("name", list(MOMENTUM))
def test_momentum_follows_schedule(name, digits):
    values = [0.9, 0.6, 0.3]
    _, history = trained(MOMENTUM[name](), digits, [
        ks.callbacks.MomentumScheduler(lambda epoch, m: values[epoch])])
    assert history.history["momentum"] == pytest.approx(values, rel=1e-6)


@pytest.mark.parametrize("name", list(MOMENTUM))
def test_constant_schedule_equals_no_callback(name, digits):
    plain, _ = trained(MOMENTUM[name](), digits)
    scheduled, _ = trained(MOMENTUM[name](), digits, [
        ks.callbacks.MomentumScheduler(lambda epoch, m: m)])
    for a, b in zip(plain.get_weights(), scheduled.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["SignAdamPP", "SGD"])
def test_annealing_takes_effect(name, digits):
    constant, _ = trained(MOMENTUM[name](), digits, epochs=2)
    annealed, _ = trained(MOMENTUM[name](), digits, epochs=2, callbacks=[
        ks.callbacks.MomentumScheduler(lambda e, m: 0.9 if e == 0 else 0.1)])
    first_epoch, _ = trained(MOMENTUM[name](), digits, epochs=1)
    assert any(not np.allclose(a, b) for a, b in
               zip(constant.get_weights(), annealed.get_weights()))
    assert any(not np.allclose(a, b) for a, b in
               zip(first_epoch.get_weights(), annealed.get_weights()))


def test_momentum_scheduler_rejects_what_it_cannot_anneal(digits):
    with pytest.raises(ValueError, match="MomentumScheduler"):
        trained(keras.optimizers.Adam(), digits, [
            ks.callbacks.MomentumScheduler(lambda e, m: 0.5)], epochs=1)
    with pytest.raises(ValueError, match="momentum=0"):
        trained(keras.optimizers.SGD(), digits, [
            ks.callbacks.MomentumScheduler(lambda e, m: 0.5)], epochs=1)
    with pytest.raises(ValueError, match="schedule"):
        trained(ks.Signum(), digits, [
            ks.callbacks.MomentumScheduler(lambda e, m: 1.0)], epochs=1)


# ------------------------------------------------------- loss interpolation
@pytest.mark.parametrize("every", [1, 4])
def test_walk_does_not_change_training(every, digits):
    x, y = digits
    plain, _ = trained(ks.SignAdamPP(1e-3), digits, epochs=2)
    walk = ks.callbacks.LossInterpolation((x[:64], y[:64]), every=every,
                                          alphas=np.linspace(-0.5, 1.5, 9))
    probed, history = trained(ks.SignAdamPP(1e-3), digits, [walk], epochs=2)
    for a, b in zip(plain.get_weights(), probed.get_weights()):
        np.testing.assert_array_equal(a, b)
    steps = 2 * 10
    assert len(walk.records) == steps // every
    assert [r["step"] for r in walk.records] == list(
        range(every, steps + 1, every))
    # Only the very first step of training has no previous step.
    assert (walk.records[0]["cosine"] is None) == (every == 1)
    assert all(r["cosine"] is not None for r in walk.records[1:])
    for r in walk.records:
        assert r["height_before"] >= 0 and r["height_after"] >= 0
        assert r["step_length"] > 0 and len(r["losses"]) == 9
    assert history.history["walk_step_length"][-1] == pytest.approx(
        walk.records[-1]["step_length"])


def linear_problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = (x @ rng.normal(size=(5, 1)) + 0.3).astype("float32")
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    model.compile(optimizer=ks.SignAdam(0.05), loss="mse")
    return model, x, y


def test_walk_floor_on_a_quadratic_matches_the_algebra():
    model, x, y = linear_problem()
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            snapshots.append(self.model.get_weights())

    # Sign steps of 0.05 are short next to the distance to the least-
    # squares valley floor along them (12 to 17 step lengths here): the
    # grid reaches past it, and the loss along the line is an exact
    # parabola, so the refined floor must match the algebra every time.
    walk = ks.callbacks.LossInterpolation((x, y), every=1,
                                          alphas=np.linspace(-2, 30, 33))
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0,
              callbacks=[Snapshot(), walk])
    snapshots.append(model.get_weights())
    design = np.hstack([x, np.ones((len(x), 1), "float32")])
    assert len(walk.records) == 4
    for record, before, after in zip(walk.records, snapshots,
                                     snapshots[1:]):
        theta0 = np.vstack([before[0], before[1][None]])
        theta1 = np.vstack([after[0], after[1][None]])
        r0, dr = design @ theta0 - y, design @ (theta1 - theta0)
        expected = -np.mean(r0 * dr) / np.mean(dr * dr)
        assert 1 < expected < 29
        assert record["floor_position"] == pytest.approx(expected,
                                                         rel=1e-3)


# -------------------------------------------------------------- landscape
def test_interpolation_endpoints_equal_evaluate(digits):
    x, y = digits
    model, _ = trained(ks.SignAdamPP(1e-3), digits, epochs=1)
    start = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    end = model.get_weights()
    alphas, losses = landscape.interpolate(model, start, end, (x, y),
                                           num=5, batch_size=100)
    for a, b in zip(model.get_weights(), end):  # left where it was
        np.testing.assert_array_equal(a, b)
    assert alphas.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    for weights, loss in [(start, losses[0]), (end, losses[-1])]:
        model.set_weights(weights)
        assert loss == pytest.approx(model.evaluate(x, y, verbose=0),
                                     rel=1e-5)


def test_interpolation_floor_on_a_quadratic():
    model, x, y = linear_problem(1)
    start = model.get_weights()
    end = [w + 0.5 for w in start]
    alphas, losses = landscape.interpolate(model, start, end, (x, y),
                                           alphas=np.linspace(-3, 3, 13))
    design = np.hstack([x, np.ones((len(x), 1), "float32")])
    theta = np.vstack([start[0], start[1][None]])
    r0, dr = design @ theta - y, design @ np.full_like(theta, 0.5)
    position, _ = landscape.valley_floor(alphas, losses)
    assert position == pytest.approx(-np.mean(r0 * dr) / np.mean(dr * dr),
                                     abs=1e-3)


def test_slices_and_directions(digits):
    model, _ = trained(ks.SignAdamPP(1e-3), digits, epochs=1)
    weights = model.get_weights()
    direction = landscape.filter_normalized_direction(weights, seed=3)
    for w, d in zip(weights, direction):
        if w.ndim == 1:
            assert not d.any()
        else:
            np.testing.assert_allclose(np.linalg.norm(d, axis=0),
                                       np.linalg.norm(w, axis=0), rtol=1e-5)
    alphas, losses = landscape.slice_1d(model, digits, num=7, radius=0.5)
    assert losses[3] == pytest.approx(model.evaluate(*digits, verbose=0),
                                      rel=1e-5)
    a, b, grid = landscape.slice_2d(model, digits, num=5, radius=0.5)
    assert grid.shape == (5, 5) and grid[2, 2] == pytest.approx(losses[3])
    assert landscape.sharpness(model, digits, radius=0.1, samples=4) > 0
    for w, v in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(w, v)


def test_hessian_top_eigenvalue_of_least_squares():
    model, x, y = linear_problem(2)
    design = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    expected = np.linalg.eigvalsh(2 * design.T @ design / len(x))[-1]
    got = landscape.hessian_top_eigenvalue(model, (x, y), iterations=60,
                                           batch_size=20)
    assert got == pytest.approx(expected, rel=1e-3)


class _Exploding:
    """A dataset that fails after its first batch."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        yield self.x[:16], self.y[:16]
        raise RuntimeError("disk gone")


@pytest.mark.parametrize("tool", ["interpolate", "slice_1d", "slice_2d",
                                  "sharpness"])
def test_weights_restored_after_an_error(tool, digits):
    model, _ = trained(ks.SignAdamPP(1e-3), digits, epochs=1)
    weights = model.get_weights()
    data = _Exploding(*digits)
    calls = {
        "interpolate": lambda: landscape.interpolate(
            model, weights, [w * 2 for w in weights], data),
        "slice_1d": lambda: landscape.slice_1d(model, data),
        "slice_2d": lambda: landscape.slice_2d(model, data),
        "sharpness": lambda: landscape.sharpness(model, data),
    }
    with pytest.raises(RuntimeError, match="disk gone"):
        calls[tool]()
    for w, v in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(w, v)


def test_bad_landscape_arguments(digits):
    model, _ = trained(ks.SignAdamPP(1e-3), digits, epochs=1)
    weights = model.get_weights()
    with pytest.raises(ValueError, match="`end_weights`"):
        landscape.interpolate(model, weights, weights[:-1], digits)
    uncompiled = models.mlp((8, 8, 1), 10)
    with pytest.raises(ValueError, match="compile"):
        landscape.slice_1d(uncompiled, digits)
    with pytest.raises(ValueError, match="`every`"):
        ks.callbacks.LossInterpolation(digits, every=0)


def test_plots_render_png(tmp_path, digits):
    x, y = digits
    model, _ = trained(ks.SignAdamPP(1e-3), digits, epochs=1)
    walk = ks.callbacks.LossInterpolation((x[:64], y[:64]), every=2)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[walk])
    alphas, losses = landscape.slice_1d(model, digits, num=5)
    a, b, grid = landscape.slice_2d(model, digits, num=4)
    files = {
        "curve.png": lambda p: landscape.plot_curve(alphas, losses, path=p),
        "plane.png": lambda p: landscape.plot_slice_2d(a, b, grid, path=p),
        "walk.png": lambda p: landscape.plot_walk(walk.records, path=p),
    }
    for name, draw in files.items():
        path = tmp_path / name
        draw(str(path))
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5_000, name
