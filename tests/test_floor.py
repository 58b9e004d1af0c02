"""The declared Keras floor is the tested one, and private Keras names are
used in `compat.py` only. `make test-floor` runs this module, with the core
tests, at the floor."""

import glob
import os
import re

import keras

from keras_signadam import compat
from tests.helpers import ROOT

PRIVATE_KERAS_NAMES = (
    "_overwrite_variable_with_gradient", "_get_variable_index", "_var_key",
    "_use_weight_decay", "_track_variable", "_distribution_strategy",
    "_backend_update_step", "_distributed_tf_update_step",
    "_apply_weight_decay", "_layout",
)


def version(text):
    parts = [int(part) for part in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def test_setup_declares_the_tested_floor():
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        declared = re.search(r'"keras>=([0-9.]+)"', f.read()).group(1)
    assert version(declared) == version(compat.MINIMUM_KERAS)


def test_running_keras_is_at_least_the_floor():
    assert version(keras.__version__) >= version(compat.MINIMUM_KERAS)


def test_private_keras_names_appear_only_in_compat():
    pattern = re.compile(r"\.(" + "|".join(PRIVATE_KERAS_NAMES) + r")\b")
    offenders = []
    for path in glob.glob(os.path.join(ROOT, "keras_signadam", "**", "*.py"),
                          recursive=True):
        if os.path.basename(path) == "compat.py":
            continue
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if pattern.search(line):
                    offenders.append(f"{path}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
