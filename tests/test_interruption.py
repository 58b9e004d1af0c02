"""A run killed with SIGKILL mid-epoch and restarted ends exactly where an
uninterrupted run ends: weights and every optimizer variable."""

import os
import signal

import numpy as np
import pytest

from tests.helpers import ROOT
from tests.helpers import start_python

SCRIPT = os.path.join(ROOT, "tests", "scripts", "interrupted_training.py")
OPTIMIZERS = ["SignSGD", "Signum", "SignAdam", "SignAdamPP", "NovoGrad"]


def child(mode, optimizer, workdir, *extra):
    return start_python([SCRIPT, mode, optimizer, str(workdir), *extra])


def finish(process):
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert "DONE" in stdout


def kill_when_paused(process):
    try:
        for line in process.stdout:
            if line.strip() == "PAUSED":
                break
        else:
            raise AssertionError(
                "child ended before pausing: " + process.stderr.read()[-3000:])
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        assert process.returncode == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def load(workdir):
    with np.load(os.path.join(workdir, "final.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("mode,pause", [("fit", "2:3"), ("loop", "0:23")])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_killed_and_resumed_equals_uninterrupted(optimizer, mode, pause,
                                                 tmp_path):
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    straight.mkdir()
    broken.mkdir()
    reference = child(mode, optimizer, straight)
    victim = child(mode, optimizer, broken, "--pause-at", pause)
    kill_when_paused(victim)
    finish(reference)
    assert not (broken / "final.npz").exists()
    finish(child(mode, optimizer, broken))

    expected, got = load(straight), load(broken)
    assert expected.keys() == got.keys()
    assert any(k.startswith("optimizer_") for k in got)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
