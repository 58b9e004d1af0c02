"""Every tutorial notebook runs top to bottom under tfds mock data with a
tiny step budget (KERAS_SIGNADAM_TUTORIAL_STEPS)."""

import glob
import os

import pytest

from tests.helpers import ROOT
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
def test_notebook_runs(notebook, run_python):
    result = run_python(
        [os.path.join(ROOT, "tests", "scripts", "run_notebook.py"), notebook],
        env={"KERAS_SIGNADAM_TUTORIAL_STEPS": "2"},
    )
    assert "ran " in result.stdout
