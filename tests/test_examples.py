"""Every script in examples/ runs and does what it says."""

import os
import re

import pytest

from tests.helpers import ROOT
from tests.helpers import run_python


def run_example(name, *args, backend=None):
    return run_python([os.path.join(ROOT, "examples", name), *args],
                      backend=backend).stdout


def numbers_after(label, text):
    return [float(v) for v in re.findall(label + r" ([0-9.e+-]+)", text)]


def test_custom_training_loop():
    out = run_example("custom_training_loop.py", "--epochs", "2")
    accuracies = numbers_after("test accuracy", out)
    assert len(accuracies) == 2 and accuracies[-1] > 0.85
    assert all(0 < s < 1 for s in numbers_after("sparsity", out))


def test_mixed_precision():
    out = run_example("mixed_precision.py", "--epochs", "2")
    assert numbers_after("test accuracy", out)[-1] > 0.8
    assert "weights float32, compute float16" in out


def test_save_and_resume_matches_uninterrupted():
    out = run_example("save_and_resume.py", "--epochs", "2")
    assert numbers_after("uninterrupted:", out) == [0.0]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_train_every_optimizer(backend):
    out = run_example("other_backends.py", "--backend", backend,
                      "--epochs", "2")
    assert f"Keras backend: {backend}" in out
    for name in ("SignAdamPP", "SignAdam", "Signum", "SignSGD", "NovoGrad",
                 "SignAdamPP \\+ AdaptiveConfidence"):
        assert numbers_after(f"{name}: test accuracy", out)[0] > 0.8
    # The sparsity ramp moved the threshold from its default 5e-4 (down
    # first, then up).
    line = re.search(r"threshold per epoch (.*)", out).group(1)
    thresholds = [float(t) for t in line.split()]
    assert len(thresholds) == 2
    assert thresholds[0] < 5e-4 < thresholds[-1]


def test_tpu_training_falls_back_on_cpu_under_mock_data():
    code = (
        "import sys, runpy, tensorflow_datasets as tfds\n"
        "sys.argv = ['tpu_training.py', '--epochs', '2', '--steps-per-epoch',"
        " '3', '--batch-size', '8', '--steps-per-execution', '2']\n"
        "with tfds.testing.mock_data(num_examples=64):\n"
        "    runpy.run_path("
        f"{os.path.join(ROOT, 'examples', 'tpu_training.py')!r},"
        " run_name='__main__')\n"
    )
    result = run_python(["-c", code])
    assert "No TPU found" in result.stdout
    assert "falling back to the CPU" in result.stdout
    assert ("One replica: aggregation='majority_vote' has no effect"
            in result.stdout)
    assert numbers_after("threshold", result.stdout)
    assert 0 <= numbers_after("sparsity", result.stdout)[-1] <= 1
