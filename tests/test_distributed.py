"""Distributed training on TensorFlow, each in its own process:
MirroredStrategy over two logical CPUs and MultiWorkerMirroredStrategy with
two workers on the loopback of a network namespace of their own. (JAX's
DataParallel: test_other_backends.py.)"""

import json
import os

import numpy as np

from benchmarks import network_namespace
from tests.helpers import ROOT
from tests.helpers import needs_namespaces
from tests.helpers import start_python

NEEDS_NAMESPACES = needs_namespaces("any")
# The namespace is new, so nothing else listens there.
PORTS = (23456, 23457)
# Far above what 16 steps of a small MLP send: a cap, not a shaping.
LINK = 1e9


MULTI_WORKER = ["SignAdamPP", "Signum", "NovoGrad", "SignAdamPP majority vote",
                "LocalSteps sign", "LocalSteps average", "LocalSteps top_k"]


@NEEDS_NAMESPACES
def test_multi_worker_ends_with_identical_weights(tmp_path):
    outputs = [tmp_path / f"worker{i}.npz" for i in range(2)]
    with network_namespace.private(
            f"ks-multi-worker-{os.getpid()}") as namespace:
        namespace.limit(LINK)
        workers = [
            start_python([os.path.join(ROOT, "tests", "scripts",
                                       "multi_worker.py"),
                          str(i), str(PORTS[0]), str(PORTS[1]),
                          ",".join(MULTI_WORKER), str(outputs[i])],
                         prefix=namespace.command([]))
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
        if "/local_" in key:
            continue
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    # Within a round each worker steps on its own gradients: the inner
    # optimizers' states differ, and the weights agree after the round.
    for name in ("LocalSteps sign", "LocalSteps average",
                 "LocalSteps top_k"):
        local = [k for k in first if k.startswith(f"{name}/local_")]
        assert local and any(not np.array_equal(first[k], second[k])
                             for k in local), name
    for name in MULTI_WORKER:
        assert first[f"{name}/loss"][-1] < first[f"{name}/loss"][0], name


# Under the strategy every optimizer takes the same distributed path: the
# rules with each kind of state (moments kept as int8 codes, with the
# confidence filter and its counts; per-layer scalars).
MIRRORED = ["SignAdamPP int8 state", "NovoGrad"]


def test_mirrored_strategy_fit_matches_single_device():
    script = os.path.join(ROOT, "tests", "scripts", "mirrored.py")
    children = [start_python([script, *MIRRORED])]
    rows = []
    for child in children:
        stdout, stderr = child.communicate(timeout=900)
        assert child.returncode == 0, stderr[-4000:]
        rows += [json.loads(line) for line in stdout.splitlines()
                 if line.startswith("{")]
    assert [r["optimizer"] for r in rows] == MIRRORED
    assert {r["resumed_through"] for r in rows} == {"keras", "tf_checkpoint"}
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
        if name in ("SignAdamPP int8 state", "NovoGrad"):
            # The gradients differ only by the order of a two-term sum...
            assert row["max_gradient_difference"] <= (
                1e-6 * row["gradient_scale"]), row
            # ...so a sign can differ only for components inside that
            # band.
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
        assert row["resume_difference"] == 0.0, row
        if name.startswith("SignAdamPP"):
            assert row["sparsity_single"] == row["sparsity_mirrored"]
