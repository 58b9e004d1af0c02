"""Every tutorial notebook runs top to bottom under tfds mock data with a
tiny step budget (KERAS_SIGNADAM_TUTORIAL_STEPS)."""

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "tutorials", "*.ipynb")))


def test_every_tutorial_is_there():
    names = [os.path.basename(n) for n in NOTEBOOKS]
    assert names == [
        "01_getting_started_mnist.ipynb",
        "02_fashion_mnist_sign_family.ipynb",
        "03_cifar10_paper_setting.ipynb",
        "04_adaptive_confidence.ipynb",
        "05_walk_and_landscape.ipynb",
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS,
                         ids=[os.path.basename(n) for n in NOTEBOOKS])
def test_notebook_runs(notebook):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT,
               KERAS_SIGNADAM_TUTORIAL_STEPS="2", MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "scripts",
                                      "run_notebook.py"), notebook],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, (result.stdout[-2000:]
                                    + result.stderr[-4000:])
    assert "ran " in result.stdout
