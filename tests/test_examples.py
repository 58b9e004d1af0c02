"""Every script in examples/ runs and does what it says (other_backends.py:
test_other_backends.py)."""

import os
import re

import pytest

from tests.helpers import ROOT

SCRIPTS = {
    "custom_training_loop.py": ["--epochs", "2"],
    "mixed_precision.py": ["--epochs", "2"],
    "save_and_resume.py": ["--epochs", "2"],
    "tpu_training.py": ["--epochs", "2", "--steps-per-epoch", "3",
                        "--batch-size", "8", "--steps-per-execution", "2"],
}


def scripts(folder):
    """The scripts to run, in the child process the `documentation`
    fixture (conftest.py) starts."""
    return [(["--mock-tfds", "64"] if name == "tpu_training.py" else [])
            + [os.path.join(ROOT, "examples", name), *args]
            for name, args in SCRIPTS.items()]


@pytest.fixture
def outputs(documentation):
    return documentation


def numbers_after(label, text):
    return [float(v) for v in re.findall(label + r" ([0-9.e+-]+)", text)]


def test_custom_training_loop(outputs):
    out = outputs["custom_training_loop.py"]
    accuracies = numbers_after("test accuracy", out)
    assert len(accuracies) == 2 and accuracies[-1] > 0.85
    assert all(0 < s < 1 for s in numbers_after("sparsity", out))


def test_mixed_precision(outputs):
    out = outputs["mixed_precision.py"]
    assert numbers_after("test accuracy", out)[-1] > 0.8
    assert "weights float32, compute float16" in out


def test_save_and_resume_matches_uninterrupted(outputs):
    out = outputs["save_and_resume.py"]
    assert numbers_after("uninterrupted:", out) == [0.0]


def test_tpu_training_falls_back_on_cpu_under_mock_data(outputs):
    out = outputs["tpu_training.py"]
    assert "No TPU found" in out
    assert "falling back to the CPU" in out
    assert "One replica: aggregation='majority_vote' has no effect" in out
    assert numbers_after("threshold", out)
    assert 0 <= numbers_after("sparsity", out)[-1] <= 1
