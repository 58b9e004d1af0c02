"""Every tutorial notebook runs top to bottom under tfds mock data with a
tiny step budget (KERAS_SIGNADAM_TUTORIAL_STEPS)."""

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "tutorials", "*.ipynb")))


def test_all_four_tutorials_exist():
    names = [os.path.basename(n) for n in NOTEBOOKS]
    assert len(names) == 4, names


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
