"""Helpers shared by the test modules (test modules import only this,
`reference`, and the package)."""

import functools
import json
import os
import re
import signal
import subprocess
import sys
import zipfile

import keras
import ml_dtypes
import numpy as np
import pytest

from benchmarks import network_namespace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHAPES = [(), (7,), (5, 3), (2, 3, 4)]
STEPS = 12
DTYPES = {
    "float32": np.float32,
    "bfloat16": ml_dtypes.bfloat16,
    "float16": np.float16,
}


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def tensors_written_besides(hlo, shapes):
    """The instructions of XLA's optimized `hlo` (its entry computation)
    that make a tensor of one of `shapes` and are neither an output, a
    parameter nor a constant: copies and temporaries written out in
    full."""
    lines = hlo.split("\nENTRY ", 1)[1].splitlines()[1:]
    root = next(line for line in lines if "ROOT " in line)
    # The outputs: the root's tuple elements, or the root itself.
    outputs = set(re.findall(r"%([\w.-]+)", root.split(" tuple(", 1)[-1]))
    sizes = {",".join(map(str, s)) for s in shapes}
    written = []
    for line in lines:
        match = re.match(r"\s*%([\w.-]+) = \w+\[([\d,]+)\]", line)
        if (match and match.group(2) in sizes
                and match.group(1) not in outputs
                and not re.search(r" (parameter|constant)\(", line)):
            written.append(line.split(", metadata")[0])
    return written


def small_model(num_classes=10, hidden=32):
    """The package's MLP for the 8x8 digits."""
    from keras_signadam.comparison.models import mlp

    return mlp((8, 8, 1), num_classes, width=hidden)


def make_problem(seed, dtype, shapes=SHAPES, steps=STEPS):
    """Initial parameters and `steps` gradients per shape, with magnitudes
    on both sides of the default 5e-4 threshold, and exact zeros."""
    rng = np.random.default_rng(seed)
    thetas = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = []
    for _ in range(steps):
        step = []
        for s in shapes:
            g = rng.normal(size=s) * 10.0 ** rng.uniform(-4.5, -2, size=s)
            g = np.where(rng.uniform(size=s) < 0.1, 0.0, g)
            step.append(np.asarray(g, np.float32).astype(dtype)
                        .astype(np.float32))
        grads.append(step)
    return thetas, grads


def apply_steps(optimizer, thetas, grads, dtype_name):
    variables = [
        keras.Variable(th, dtype=dtype_name, name=f"v{i}")
        for i, th in enumerate(thetas)
    ]
    for step in grads:
        optimizer.apply(
            [keras.ops.convert_to_tensor(g, dtype_name) for g in step],
            variables,
        )
    return [to_numpy(v).astype(np.float32) for v in variables]


def tolerance(dtype_name):
    if dtype_name == "float32":
        return dict(rtol=2e-5, atol=2e-6)
    # One rounding step of the 16-bit parameter.
    return dict(rtol=1e-2, atol=1e-3)


def python_env(backend=None, **extra):
    """The environment of a child Python: the repository importable,
    TensorFlow quiet, the given Keras backend (else the default); `extra`
    sets variables (None removes one)."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3",
               MPLBACKEND="Agg")
    env.pop("KERAS_BACKEND", None)
    env.pop("TF_CONFIG", None)
    if backend:
        env["KERAS_BACKEND"] = backend
    for name, value in extra.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def start_python(args, backend=None, env=None, cwd=None, prefix=()):
    """A child Python running `args` (a script path or -m/-c and its
    arguments), with pipes for its output; `prefix` goes before the
    interpreter (`ip netns exec NAME`)."""
    return subprocess.Popen(
        [*prefix, sys.executable, *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=cwd,
        env=python_env(backend, **(env or {})),
        # A child inherits an ignored SIGINT, and Python then installs no
        # KeyboardInterrupt handler: the interrupt tests need the default.
        preexec_fn=_default_interrupt,
    )


def _default_interrupt():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_python(args, backend=None, env=None, cwd=None, timeout=600,
               check=True):
    """Runs a child Python to the end; with `check`, fails the test with
    the end of its error output unless it exits 0."""
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd,
        env=python_env(backend, **(env or {})), timeout=timeout,
    )
    if check:
        assert result.returncode == 0, (result.stdout[-2000:]
                                        + result.stderr[-4000:])
    return result


def module_at(path):
    """The Python file at `path` (a script, not in a package), loaded as a
    module named after the file."""
    import importlib.util

    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digits_like(n=64, seed=0):
    """`n` random 8x8x1 images with labels 0..9 in turn: a digits-shaped
    batch for tests that need training to run, not to learn."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=(n, 8, 8, 1)).astype("float32"),
            (np.arange(n) % 10).astype("int32"))


def tampered(path, target, change):
    """A copy of the saved model `path` at `target` (may be `path`) whose
    optimizer config was changed by `change(config)`."""
    with zipfile.ZipFile(path) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    config = json.loads(files["config.json"])
    change(config["compile_config"]["optimizer"]["config"])
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


def start_scripts(groups, backend=None, env=None, cwd=None):
    """A child Python running each group (a script and its arguments, or
    `-m MODULE ...`) in turn with `tests/scripts/run_examples.py`."""
    arguments = [os.path.join(ROOT, "tests", "scripts", "run_examples.py")]
    for group in groups:
        arguments += [*group, "--"]
    return start_python(arguments, backend=backend, env=env, cwd=cwd)


class Sections:
    """What each script of a `start_scripts` child printed, by name (the
    script's file name, or the module's). Asking for a script that failed
    fails the asking test with the child's error output; the others'
    tests still pass."""

    def __init__(self, process, timeout=900):
        self.stdout, self.stderr = process.communicate(timeout=timeout)
        self.printed = dict(re.findall(
            r"=== BEGIN (\S+) ===\n(.*?)=== END \1 ===", self.stdout,
            re.S))

    def __getitem__(self, name):
        if name not in self.printed:
            begun = self.stdout.partition(f"=== BEGIN {name} ===\n")[2]
            raise AssertionError(
                f"{name} did not run to the end; it printed:\n"
                f"{begun.split('=== BEGIN ')[0][-3000:]}\n"
                f"error output:\n{self.stderr[-4000:]}")
        return self.printed[name]


def needs_namespaces(kind="root"):
    """A mark that skips a test where this process cannot make a network
    namespace and shape its traffic: the processes of a test that talk
    over a network do so only inside one (`benchmarks/network_namespace.py`).
    `kind`: "root" for a `Namespace` (root and iproute2), "user" for a
    `UserNamespace` (unprivileged user namespaces, util-linux and
    iproute2), "any" for `network_namespace.private()`, either."""
    needs = {"root": "root", "user": "unprivileged user namespaces",
             "any": "root or unprivileged user namespaces"}
    return pytest.mark.skipif(
        not _can_enter(kind),
        reason=f"needs {needs[kind]} and iproute2 to make a network "
               "namespace")


def namespace_of(kind, name):
    """A network namespace of `kind` (as `needs_namespaces` names them),
    called `name` where it has a name; not entered yet."""
    if kind == "root":
        return network_namespace.Namespace(name)
    if kind == "user":
        return network_namespace.UserNamespace()
    return network_namespace.private(name)


@functools.cache
def _can_enter(kind):
    try:
        with namespace_of(kind, f"ks-probe-{os.getpid()}") as namespace:
            namespace.limit(1e9)
            return True
    except network_namespace.Unavailable:
        return False
