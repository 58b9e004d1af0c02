"""The sparse-signal benchmark's step sizes, against moments computed in
NumPy from the signal: a dense sign moves by exactly lr, a component whose
signal returns after a long gap moves by more."""

import keras
import numpy as np

import keras_signadam as ks
from benchmarks.sparse_signal import _StepSizes

BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-8


def reference_steps(signals):
    """|m_hat| / (sqrt(v_hat) + epsilon) after every step, per component."""
    m = np.zeros(signals.shape[1])
    v = np.zeros(signals.shape[1])
    steps = []
    for t, s in enumerate(signals, start=1):
        m = BETA_1 * m + (1 - BETA_1) * s
        v = BETA_2 * v + (1 - BETA_2) * s * s
        steps.append(np.abs(m) / (1 - BETA_1 ** t)
                     / (np.sqrt(v / (1 - BETA_2 ** t)) + EPSILON))
    return np.array(steps)


def test_step_sizes_match_the_moments_of_the_signal():
    # Component 0: a few signs, a long gap, then signs again (the step
    # after the gap exceeds lr); 1: always +1 (exactly lr); 2: never.
    steps = 400
    signs = np.zeros((steps, 3))
    signs[:5, 0] = 1.0
    signs[300:, 0] = -1.0
    signs[:, 1] = 1.0
    gradients = 0.01 * signs

    variable = keras.Variable(np.zeros(3, "float32"))
    optimizer = ks.SignAdam(1e-3, bias_correction=True, jit_compile=False)
    optimizer.track_statistics = True
    recorder = _StepSizes(optimizer)
    for g in gradients:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(
            g.astype("float32")), variable)])
        recorder.on_train_batch_end(0)

    expected = reference_steps(signs)
    moved = expected > 0
    zero, above_1, above_2, largest, mean = recorder.row()
    assert recorder.total == expected.size
    assert recorder.moved == moved.sum()
    np.testing.assert_allclose(zero, (signs == 0).mean(), atol=1e-9)
    np.testing.assert_allclose(above_1, (expected > 1 + 1e-6).sum()
                               / moved.sum())
    np.testing.assert_allclose(above_2, (expected > 2).sum() / moved.sum())
    np.testing.assert_allclose(largest, expected.max(), rtol=1e-5)
    # After the gap m refills faster than v: steps above 2 lr, below the
    # bound for a gap long enough to empty v.
    assert above_2 > 0
    k = np.arange(1, 100)
    assert 2 < largest < ((1 - BETA_1 ** k) / np.sqrt(1 - BETA_2 ** k)).max()
    np.testing.assert_allclose(mean, expected[moved].mean(), rtol=1e-5)
    # The dense component never moves by more than lr.
    assert expected[:, 1].max() <= 1 + 1e-6
