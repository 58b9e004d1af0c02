"""AdaptiveConfidence and ConfidenceScheduler on real training."""

import csv

import keras
import numpy as np
import pytest

import keras_signadam as ks
from keras_signadam.comparison import datasets
from tests.helpers import small_model
from tests.helpers import to_numpy


@pytest.fixture(scope="module")
def digits():
    return datasets.load_digits()


def compiled(optimizer, jit_compile=True, hidden=32):
    model = small_model(hidden=hidden)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


@pytest.mark.parametrize("start", [1e-5, 5e-2])
def test_controller_reaches_target_sparsity_under_xla(start, digits):
    (x, y), _ = digits
    optimizer = ks.SignAdamPP(learning_rate=1e-3, threshold=start)
    model = compiled(optimizer, jit_compile=True)
    callback = ks.callbacks.AdaptiveConfidence(
        target_sparsity=0.5, update_every=5, gain=2.0, patience=None
    )
    history = model.fit(x, y, batch_size=32, epochs=6, verbose=0,
                        callbacks=[callback])
    observed = callback.history["sparsity"]
    assert abs(observed[0] - 0.5) > 0.1  # it started away from the target
    late = np.mean(observed[-len(observed) // 3:])
    assert abs(late - 0.5) < 0.1, late
    assert history.history["threshold"][-1] == pytest.approx(
        float(to_numpy(optimizer.threshold))
    )
    assert len(history.history["sparsity"]) == 6


def test_target_may_be_a_function_of_the_epoch(digits):
    (x, y), _ = digits
    optimizer = ks.SignAdamPP(threshold=1e-3)
    epochs_seen = []

    def target(epoch):
        epochs_seen.append(epoch)
        return 0.45 if epoch < 2 else 0.7

    callback = ks.callbacks.AdaptiveConfidence(
        target_sparsity=target, update_every=4, gain=2.0, patience=None)
    compiled(optimizer).fit(x, y, batch_size=32, epochs=5, verbose=0,
                            callbacks=[callback])
    assert sorted(set(epochs_seen)) == [0, 1, 2, 3, 4]
    epochs = np.array(callback.history["epoch"])
    observed = np.array(callback.history["sparsity"])
    assert abs(observed[epochs == 1].mean() - 0.45) < 0.1
    assert abs(observed[epochs == 4].mean() - 0.7) < 0.1


class _ConstantLog(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        logs["stuck"] = 1.0


def test_plateau_rule_raises_threshold_within_bounds():
    x = np.random.default_rng(0).uniform(size=(64, 8, 8, 1))
    y = np.arange(64) % 10
    optimizer = ks.SignAdamPP(threshold=1e-3)
    callback = ks.callbacks.AdaptiveConfidence(
        target_sparsity=None, monitor="stuck", patience=2, factor=3.0,
        max_threshold=2e-2
    )
    history = compiled(optimizer).fit(
        x, y, epochs=9, verbose=0, callbacks=[_ConstantLog(), callback]
    )
    # Epoch 0 sets the best value; the rule fires after 2 more epochs
    # without improvement (epochs 2, 4, 6, 8), and stops at the bound.
    expected = [1e-3, 1e-3, 3e-3, 3e-3, 9e-3, 9e-3, 2e-2, 2e-2, 2e-2]
    np.testing.assert_allclose(history.history["threshold"], expected,
                               rtol=1e-6)


def test_plateau_rule_on_validation_loss():
    # val_loss improves for two epochs, then stalls: with patience 2 the
    # threshold is multiplied by 4 after the second epoch without
    # improvement, and again two epochs later.
    values = iter([3.0, 2.0, 2.5, 2.4, 2.2, 2.1, 2.3])

    class Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(values)

    x = np.zeros((8, 8, 8, 1))
    y = np.zeros(8)
    optimizer = ks.SignAdamPP(threshold=1e-3)
    callback = ks.callbacks.AdaptiveConfidence(target_sparsity=None,
                                               patience=2)
    history = compiled(optimizer).fit(
        x, y, epochs=7, verbose=0, callbacks=[Validation(), callback])
    expected = [1e-3, 1e-3, 1e-3, 4e-3, 4e-3, 1.6e-2, 1.6e-2]
    np.testing.assert_allclose(history.history["threshold"], expected,
                               rtol=1e-6)


def test_plateau_rule_follows_training_loss_without_validation_data():
    x = np.zeros((8, 8, 8, 1))
    y = np.zeros(8)
    # Zero inputs with a frozen model: the training loss never improves
    # after the first epoch.
    optimizer = ks.SignAdamPP(learning_rate=0.0, threshold=1e-3)
    with pytest.warns(UserWarning, match="follows `loss`"):
        history = compiled(optimizer).fit(
            x, y, epochs=3, verbose=0,
            callbacks=[ks.callbacks.AdaptiveConfidence(
                target_sparsity=None, patience=2)])
    np.testing.assert_allclose(history.history["threshold"],
                               [1e-3, 1e-3, 4e-3], rtol=1e-6)


@pytest.mark.parametrize("mode,start,upper", [("absolute", 5e-4, 1.0),
                                              ("relative", 0.25, 10.0)])
def test_default_is_the_sparsity_ramp(digits, mode, start, upper):
    # AdaptiveConfidence() aims, in epoch e of E, at 0.9 * e / (E - 1),
    # with the plateau rule off; each controller step multiplies delta by
    # exp(gain * (target - observed)), within bounds that follow the
    # threshold mode; with the default update every batch it ends within
    # 0.05 of the target in both.
    (x, y), _ = digits
    epochs = 6
    optimizer = ks.SignAdamPP(threshold=start, threshold_mode=mode,
                              confidence="soft")
    assert ks.callbacks.AdaptiveConfidence().patience is None
    callback = ks.callbacks.AdaptiveConfidence()
    assert callback.update_every == 1
    history = compiled(optimizer).fit(x, y, batch_size=16, epochs=epochs,
                                      verbose=0, callbacks=[callback])
    assert callback.upper_bound(optimizer) == upper
    seen = callback.history
    epoch = np.array(seen["epoch"])
    np.testing.assert_allclose(seen["target"],
                               0.9 * epoch / (epochs - 1), rtol=1e-12)
    previous = np.concatenate([[start], seen["threshold"][:-1]])
    expected = np.clip(np.maximum(previous, 1e-6) * np.exp(
        np.array(seen["target"]) - np.array(seen["sparsity"])), 1e-6,
        upper)
    # Each update applies the rule, or holds delta where the rule would
    # lower it after a fall of e or more left the sparsity where it was.
    held = np.isclose(seen["threshold"], previous, rtol=1e-6, atol=0)
    np.testing.assert_allclose(np.array(seen["threshold"])[~held],
                               expected[~held], rtol=1e-5)
    assert np.all(expected[held] <= previous[held] * (1 + 1e-6))
    # The target 0 lowers delta at first; the rising target raises it,
    # and the fraction of filtered components with it, to the target.
    threshold = np.array(seen["threshold"])
    assert threshold[epoch == 0][-1] < start
    assert threshold[-1] > 10 * threshold[epoch == 0][-1]
    assert threshold.max() < upper
    # One batch's sparsity is noisy: the end is the mean of the second
    # half of the last epoch's observations.
    last = np.array(seen["sparsity"])[epoch == epochs - 1]
    end = last[len(last) // 2:].mean()
    assert abs(end - 0.9) < 0.05, (mode, " ".join(
        f"{e}:{s:.2f}:{d:.2g}" for e, s, d in zip(
            epoch, seen["sparsity"], seen["threshold"])))
    assert history.history["threshold"][-1] == pytest.approx(
        float(to_numpy(optimizer.threshold)))


class _Observed:
    """An optimizer of which the test sets the observed sparsity."""

    capabilities = ks.optimizers.SignAdamPP.capabilities
    threshold_mode = "absolute"
    track_statistics = True

    def __init__(self, threshold):
        self.threshold = keras.Variable(threshold, dtype="float32")
        self.sparsity = None


def drive(callback, optimizer, observations):
    """Feeds `observations` (sparsity after each batch) to the controller;
    returns delta after each update."""
    callback.set_model(type("Model", (), {"optimizer": optimizer})())
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    thresholds = []
    for batch, observed in enumerate(observations):
        optimizer.sparsity = observed
        callback.on_train_batch_end(batch)
        thresholds.append(float(to_numpy(optimizer.threshold)))
    return np.array(thresholds)


def test_controller_holds_delta_only_after_a_long_fall_changes_nothing():
    # Target 0 and a sparsity stuck at 0.3 (components of zero gradient):
    # delta falls by exp(-0.3) per update until it has fallen e-fold (4
    # updates: exp(-1.2)), then holds instead of sinking to min_threshold.
    optimizer = _Observed(1e-2)
    callback = ks.callbacks.AdaptiveConfidence(target_sparsity=0.0)
    thresholds = drive(callback, optimizer, [0.3] * 12)
    falls = 1e-2 * np.exp(-0.3 * np.arange(1, 5))
    np.testing.assert_allclose(thresholds[:4], falls, rtol=1e-5)
    np.testing.assert_allclose(thresholds[4:], falls[-1], rtol=1e-5)
    # A fall of the sparsity by more than 0.01 measures the fall from
    # there: four more updates (exp(-1.12)) before the hold.
    optimizer = _Observed(1e-2)
    callback = ks.callbacks.AdaptiveConfidence(target_sparsity=0.0)
    observations = [0.3, 0.3, 0.3] + [0.28] * 6
    thresholds = drive(callback, optimizer, observations)
    expected = 1e-2 * np.exp(-np.cumsum(observations[:7]))
    np.testing.assert_allclose(thresholds[:7], expected, rtol=1e-5)
    np.testing.assert_allclose(thresholds[7:], expected[-1], rtol=1e-5)


def test_controller_small_steps_near_the_target_are_never_held():
    # One step's noise around the target: runs of observations above it
    # lower delta at every update (holding after any decrease that left
    # the sparsity where it was would ratchet it above the target).
    optimizer = _Observed(1e-2)
    callback = ks.callbacks.AdaptiveConfidence(target_sparsity=0.9)
    rng = np.random.default_rng(0)
    observations = np.clip(0.9 + 0.02 * rng.standard_normal(300), 0, 1)
    thresholds = drive(callback, optimizer, observations)
    expected = 1e-2 * np.exp(np.cumsum(0.9 - observations))
    np.testing.assert_allclose(thresholds, expected, rtol=1e-4)


def test_plateau_rule_waits_while_monitor_improves():
    values = iter([5.0, 4.0, 3.0, 2.0])

    class Improving(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["metric"] = next(values)

    x = np.zeros((8, 8, 8, 1))
    y = np.zeros(8)
    optimizer = ks.SignSGD(threshold=1e-3)
    history = compiled(optimizer).fit(
        x, y, epochs=4, verbose=0,
        callbacks=[Improving(), ks.callbacks.AdaptiveConfidence(
            target_sparsity=None, monitor="metric", patience=0)],
    )
    assert history.history["threshold"] == pytest.approx([1e-3] * 4)


def test_scheduler_sets_the_exact_value_and_logs_to_csv(tmp_path, digits):
    (x, y), _ = digits
    optimizer = ks.SignAdamPP(track_statistics=True)
    values = [3e-4, 1e-3, 2.5e-3]
    log_file = tmp_path / "log.csv"
    history = compiled(optimizer).fit(
        x[:256], y[:256], epochs=3, verbose=0,
        callbacks=[
            ks.callbacks.ConfidenceScheduler(lambda epoch, _: values[epoch]),
            keras.callbacks.CSVLogger(str(log_file)),
        ],
    )
    assert history.history["threshold"] == pytest.approx(values, rel=1e-6)
    rows = list(csv.DictReader(open(log_file)))
    assert [float(r["threshold"]) for r in rows] == pytest.approx(values,
                                                                  rel=1e-6)
    assert all(0.0 <= float(r["sparsity"]) <= 1.0 for r in rows)


def count_calls(obj, name, counter):
    original = getattr(obj, name)

    def counted(*args, **kwargs):
        counter[name] = counter.get(name, 0) + 1
        return original(*args, **kwargs)

    setattr(obj, name, counted)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_changing_threshold_never_retraces(jit_compile, digits):
    # Python code of a traced function runs only while tracing, so these
    # counts are trace counts.
    (x, y), _ = digits
    # Statistics on from the start: turning them on would trace once more.
    model = compiled(ks.SignAdamPP(track_statistics=True),
                     jit_compile=jit_compile)
    traces = {}
    count_calls(model, "train_step", traces)
    count_calls(model.optimizer, "update_step", traces)
    model.fit(x[:128], y[:128], batch_size=32, epochs=1, verbose=0)
    after_first_fit = dict(traces)
    assert after_first_fit["train_step"] >= 1
    model.fit(
        x[:256], y[:256], batch_size=32, epochs=3, verbose=0,
        callbacks=[
            ks.callbacks.ConfidenceScheduler(lambda e, d: 1e-4 * (e + 1)),
            ks.callbacks.AdaptiveConfidence(target_sparsity=0.5,
                                            update_every=1, patience=None),
        ],
    )
    assert traces == after_first_fit
    assert float(to_numpy(model.optimizer.threshold)) != 3e-4


def test_callbacks_reject_optimizers_without_threshold():
    model = compiled(keras.optimizers.Adam())
    with pytest.raises(ValueError, match="AdaptiveConfidence"):
        model.fit(np.zeros((4, 8, 8, 1)), np.zeros(4), verbose=0,
                  callbacks=[ks.callbacks.AdaptiveConfidence(0.5)])


def test_works_through_loss_scale_optimizer():
    optimizer = keras.optimizers.LossScaleOptimizer(ks.SignAdamPP())
    history = compiled(optimizer).fit(
        np.random.default_rng(0).uniform(size=(64, 8, 8, 1)),
        np.arange(64) % 10, epochs=2, verbose=0,
        callbacks=[ks.callbacks.ConfidenceScheduler(lambda e, d: 2e-3)],
    )
    assert history.history["threshold"] == pytest.approx([2e-3, 2e-3])


@pytest.mark.parametrize("kwargs,name", [
    (dict(target_sparsity=1.5), "target_sparsity"),
    (dict(target_sparsity="linear"), "target_sparsity"),
    (dict(final_sparsity=1.0), "final_sparsity"),
    (dict(update_every=0), "update_every"),
    (dict(gain=-1.0), "gain"),
    (dict(patience=-1), "patience"),
    (dict(factor=0.0), "factor"),
    (dict(min_threshold=1e-2, max_threshold=1e-3), "max_threshold"),
    (dict(mode="up"), "mode"),
])
def test_bad_callback_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        ks.callbacks.AdaptiveConfidence(**kwargs)


@pytest.mark.parametrize("scheduler", [ks.callbacks.ConfidenceScheduler,
                                       ks.callbacks.MomentumScheduler])
def test_schedulers_need_a_callable(scheduler):
    with pytest.raises(ValueError, match="`schedule`"):
        scheduler(0.5)


def test_scheduler_rejects_negative_values():
    model = compiled(ks.SignAdamPP())
    with pytest.raises(ValueError, match="schedule"):
        model.fit(np.zeros((4, 8, 8, 1)), np.zeros(4), verbose=0,
                  callbacks=[ks.callbacks.ConfidenceScheduler(
                      lambda e, d: -1.0)])


@pytest.mark.parametrize("jit_compile", [True, False])
def test_controller_turns_statistics_on_after_a_traced_fit(jit_compile):
    # A first fit traces the update without counts; the controller must
    # make the train function trace again so that its reads are real. With
    # delta pinned far above every gradient, each component has zero
    # confidence, so every observation must be exactly 1.
    x = np.random.default_rng(0).normal(size=(64, 8, 8, 1)).astype("float32")
    y = np.arange(64) % 10
    optimizer = ks.SignAdamPP(threshold=1e9)
    assert not optimizer.track_statistics
    model = compiled(optimizer, jit_compile=jit_compile)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert optimizer.sparsity is None
    callback = ks.callbacks.AdaptiveConfidence(
        0.5, update_every=1, min_threshold=1e9, max_threshold=1e9,
        patience=None)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0,
              callbacks=[callback])
    assert optimizer.track_statistics
    assert callback.history["sparsity"] == [1.0] * 4
    assert optimizer.sparsity == 1.0


@pytest.mark.parametrize("jit_compile", [True, False])
def test_paper_method_switches_to_the_std_threshold(digits, jit_compile):
    """(c): a SignAdamPP made with an absolute threshold, trained with
    `AdaptiveConfidence(std_multiplier=0.999)`, takes the steps of one
    made with `threshold_mode="adaptive"` (the running deviation starting
    at the first step), in a train function made again for it."""
    (x, y), _ = digits
    x, y = x[:256], y[:256]
    weights = []
    for optimizer, callbacks in (
            (ks.SignAdamPP(learning_rate=3e-3),
             [ks.callbacks.AdaptiveConfidence(
                 target_sparsity=None, std_multiplier=0.999)]),
            (ks.SignAdamPP(learning_rate=3e-3, threshold_mode="adaptive"),
             [])):
        keras.utils.set_random_seed(1)
        model = compiled(optimizer, jit_compile=jit_compile)
        model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0,
                  callbacks=callbacks)
        weights.append(model.get_weights())
        assert optimizer.threshold_mode == "adaptive"
        stds = [to_numpy(v) for v in optimizer.variables
                if v.path.endswith("_gradient_std")]
        assert len(stds) == len(model.trainable_variables)
        assert all(s > 0 for s in stds)
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # Not a no-op: the absolute threshold's run ends elsewhere.
    keras.utils.set_random_seed(1)
    plain = compiled(ks.SignAdamPP(learning_rate=3e-3),
                     jit_compile=jit_compile)
    plain.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    assert any(np.abs(a - b).max() > 1e-3
               for a, b in zip(plain.get_weights(), weights[0]))


def test_paper_method_with_the_controller_scales_the_multiplier(digits):
    (x, y), _ = digits
    optimizer = ks.SignAdamPP(learning_rate=3e-3)
    callback = ks.callbacks.AdaptiveConfidence(target_sparsity=0.8,
                                               std_multiplier=0.999)
    history = compiled(optimizer).fit(x[:512], y[:512], batch_size=32,
                                      epochs=3, verbose=0,
                                      callbacks=[callback])
    assert optimizer.threshold_mode == "adaptive"
    assert callback.upper_bound(optimizer) == 10.0
    # The controller's first update starts from the multiplier.
    first = callback.history["threshold"][0]
    assert first == pytest.approx(0.999 * np.exp(
        0.8 - callback.history["sparsity"][0]), rel=1e-5)
    assert history.history["threshold"][-1] != pytest.approx(0.999)
    with pytest.raises(ValueError, match="std_multiplier"):
        ks.callbacks.AdaptiveConfidence(std_multiplier=-1)
