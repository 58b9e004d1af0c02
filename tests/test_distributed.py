"""Distributed training: two worker processes on loopback."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.parametrize("optimizer", ["SignAdamPP", "Signum", "NovoGrad"])
def test_multi_worker_ends_with_identical_weights(optimizer, tmp_path):
    ports = free_ports(2)
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    outputs = [tmp_path / f"worker{i}.npz" for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "scripts",
                                          "multi_worker.py"),
             str(i), str(ports[0]), str(ports[1]), optimizer,
             str(outputs[i])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env)
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
