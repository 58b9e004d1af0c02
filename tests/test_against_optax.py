"""This package's SignSGD, Signum and NovoGrad against optax's, an
independent implementation, on the JAX backend over 15 steps."""

import json
import os

import pytest

from tests.helpers import ROOT
from tests.helpers import run_python


@pytest.fixture(scope="module")
def report():
    result = run_python([os.path.join(ROOT, "tests", "scripts",
                                      "against_optax.py")], backend="jax")
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("rule", ["sign_sgd", "signum", "novograd"])
def test_same_parameters_as_optax(report, rule):
    # Both moved the parameters by far more than they differ.
    assert report[rule]["moved"] > 0.05
    assert report[rule]["difference"] <= 1e-5 * max(
        1.0, report[rule]["moved"]), report[rule]
