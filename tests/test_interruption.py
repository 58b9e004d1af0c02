"""A run killed with SIGKILL mid-epoch and restarted ends exactly where an
uninterrupted run ends: weights and every optimizer variable. Custom loops
of every optimizer run in lockstep in one process, so one kill interrupts
them all; `fit` with `BackupAndRestore` is killed with the optimizer whose
state has every kind of variable (moments, hyperparameters, bias
correction, counters)."""

import os
import signal

import numpy as np

from tests.helpers import ROOT
from tests.helpers import start_python

SCRIPT = os.path.join(ROOT, "tests", "scripts", "interrupted_training.py")
OPTIMIZERS = ["SignSGD", "Signum", "SignAdam", "SignAdamPP", "NovoGrad"]


def child(workdir, *runs):
    return start_python([SCRIPT, str(workdir), *runs])


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


# Each run with the moment of its kill (epoch:batch for `fit`, the global
# step for `loop`).
RUNS = {"fit=SignAdamPP": "2:3", "loop=" + ",".join(OPTIMIZERS): "0:23"}


def test_killed_and_resumed_equals_uninterrupted(tmp_path):
    """The uninterrupted runs and the resumed ones each in one process;
    each run killed in a process of its own."""
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    straight.mkdir()
    broken.mkdir()
    reference = child(straight, *RUNS)
    for run, pause in RUNS.items():
        kill_when_paused(child(broken, run, "--pause-at", pause))
    finish(reference)
    for mode in ("fit", "loop"):
        assert not (broken / mode / "final.npz").exists()
    finish(child(broken, *RUNS))

    for run in RUNS:
        mode, _, names = run.partition("=")
        expected, got = load(straight / mode), load(broken / mode)
        assert expected.keys() == got.keys()
        for name in names.split(","):
            assert any(k.startswith(f"{name}/optimizer_") for k in got), (
                name)
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key],
                                          err_msg=f"{mode} {key}")
