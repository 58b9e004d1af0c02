"""Distributed training and the other Keras backends, each in its own
process: MirroredStrategy over two logical CPUs, MultiWorkerMirroredStrategy
with two workers on loopback, JAX DataParallel over two host devices, and
the update rules on the JAX and PyTorch backends."""

import json
import os
import socket

import numpy as np
import pytest

from tests.helpers import ROOT
from tests.helpers import run_python
from tests.helpers import start_python


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.parametrize("optimizer", ["SignAdamPP", "Signum", "NovoGrad",
                                       "SignAdamPP majority vote"])
def test_multi_worker_ends_with_identical_weights(optimizer, tmp_path):
    ports = free_ports(2)
    outputs = [tmp_path / f"worker{i}.npz" for i in range(2)]
    workers = [
        start_python([os.path.join(ROOT, "tests", "scripts",
                                   "multi_worker.py"),
                      str(i), str(ports[0]), str(ports[1]), optimizer,
                      str(outputs[i])])
        for i in range(2)
    ]
    try:
        results = [w.communicate(timeout=300) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    for w, (_, stderr) in zip(workers, results):
        assert w.returncode == 0, stderr[-3000:]
    first, second = (dict(np.load(o)) for o in outputs)
    assert int(first["replicas"]) == 2
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    assert first["loss"][-1] < first["loss"][0]


def run_script(name, *args, backend=None, timeout=900):
    result = run_python([os.path.join(ROOT, "tests", "scripts", name), *args],
                        backend=backend, timeout=timeout)
    return [json.loads(line) for line in result.stdout.splitlines()
            if line.startswith("{")]


OPTIMIZERS = {"SignSGD", "Signum", "SignAdam", "SignAdamPP", "NovoGrad",
              "SignAdamPP bfloat16 state", "SignAdamPP int8 state"}


def test_mirrored_strategy_fit_matches_single_device():
    rows = run_script("mirrored.py")
    assert {r["optimizer"] for r in rows} == OPTIMIZERS
    for row in rows:
        name = row["optimizer"]
        assert row["replicas"] == 2
        assert row["steps"] == 12
        # The optimizer's own XLA update ran per (variable, device), and
        # both replicas' copies of every variable stayed identical.
        assert row["compiled_functions"] == 2 * 4, row
        assert row["replica_spread"] == 0.0, name
        np.testing.assert_allclose(row["losses_mirrored"],
                                   row["losses_single"], rtol=1e-5,
                                   err_msg=name)
        # The gradients differ only by the order of a two-term sum...
        assert row["max_gradient_difference"] <= (
            1e-6 * row["gradient_scale"]), row
        # ...so a sign can differ only for components inside that band.
        assert row["sign_disagreements_outside_band"] == 0, row
        # A component whose sign (or confidence) flips on one step moves by
        # at most 2 * learning_rate there; 12 steps of flips on a few
        # components would show as differences of that size. Seen: none.
        assert row["components_differing_over_1e-6"] <= max(
            1, row["parameters"] // 1000), row
        assert row["max_weight_difference"] <= (
            2 * row["learning_rate"] * row["steps"]), row
        # A checkpoint taken under the strategy and restored into fresh
        # objects continues exactly as the uninterrupted run.
        assert row["resume_difference_keras"] == 0.0, row
        assert row["resume_difference_tf_checkpoint"] == 0.0, row
        if name == "SignAdamPP":
            assert row["sparsity_single"] == row["sparsity_mirrored"]


def test_jax_data_parallel_matches_single_device():
    rows = run_script("jax_data_parallel.py")
    assert {r["optimizer"] for r in rows} == OPTIMIZERS
    for row in rows:
        assert row["devices"] == 2
        assert row["state_devices"] == 2, row  # state lives on both
        np.testing.assert_allclose(row["losses_parallel"],
                                   row["losses_single"], rtol=1e-5,
                                   err_msg=row["optimizer"])
        assert row["max_weight_difference"] < 1e-5, row
        if row["optimizer"] == "SignAdamPP":
            assert 0.0 < row["sparsity"] < 1.0


# JAX runs these op by op outside `jit`, about 2 s a case: float32 only.
@pytest.mark.parametrize("backend,selection", [
    ("jax", "(reference and float32) or sparsity or beta_1"),
    ("torch", "reference or sparsity or beta_1"),
])
def test_update_rules_match_the_references_on(backend, selection):
    # The NumPy-reference tests of every optimizer, run again in a process
    # whose Keras backend is `backend`.
    result = run_python(
        ["-m", "pytest", "-k", selection,
         os.path.join(ROOT, "tests", "test_update_rules.py"),
         os.path.join(ROOT, "tests", "test_novograd.py")],
        backend=backend, cwd=ROOT, timeout=900,
    )
    assert " passed" in result.stdout and "skipped" not in result.stdout
