"""The comparison program when an optional part breaks, met as a user
meets it: an installed matplotlib or tensorflow_datasets that fails to
import (a shim package ahead of the real one on the path), and an output
folder that turns read-only or fills up while training runs. Each failure
costs only its own output, with one warning line; every finished result
is written; the exit status says what happened."""

import json
import os
import pathlib
import re
import subprocess
import time

import pytest

from tests.helpers import ROOT

OPTIMIZERS = ("SignSGD", "Adam")


def shim(folder, package, init, modules=None):
    """A package `package` in `folder` whose `__init__.py` is `init`."""
    path = folder / package
    path.mkdir(parents=True)
    (path / "__init__.py").write_text(init)
    for name, text in (modules or {}).items():
        (path / f"{name}.py").write_text(text)
    return {"PYTHONPATH": f"{folder}{os.pathsep}{ROOT}"}


def compare(*args, out):
    return ["-m", "keras_signadam", "compare", "--optimizers",
            ",".join(OPTIMIZERS), "--output", str(out), *args]


def warnings_of(stderr):
    return [line for line in stderr.splitlines()
            if line.startswith("keras-signadam: warning:")]


def results(path):
    return json.loads(path.read_text())["results"]


BROKEN_MATPLOTLIB = {
    # Installed, but a shared library it needs is missing.
    "import": ("raise ImportError('libfreetype.so.6: cannot open shared "
               "object file: No such file or directory')", {}),
    # Imports, but its drawing backend fails.
    "drawing": ("def use(name):\n    pass\n",
                {"pyplot": "raise RuntimeError('no usable backend')"}),
}


@pytest.mark.parametrize("how", list(BROKEN_MATPLOTLIB))
def test_broken_matplotlib_costs_only_the_plot(how, tmp_path, run_python):
    init, modules = BROKEN_MATPLOTLIB[how]
    env = shim(tmp_path / "shims", "matplotlib", init, modules)
    out = tmp_path / "out"
    result = run_python(compare("--epochs", "1", out=out), env=env,
                        cwd=tmp_path, check=False)
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = warnings_of(result.stderr)
    assert len(lines) == 1, lines
    assert "curves.png" in lines[0] and (
        "libfreetype" in lines[0] if how == "import"
        else "no usable backend" in lines[0])
    assert list(results(out / "results.json")) == list(OPTIMIZERS)
    assert not (out / "curves.png").exists()
    assert "Wrote " + str(out / "results.json") in result.stdout


def test_broken_tfds_costs_only_the_tfds_data_sets(tmp_path, run_python):
    env = shim(tmp_path / "shims", "tensorflow_datasets",
               "raise ImportError('cannot import name array_record')")
    out = tmp_path / "out"
    # The bundled digits need no tensorflow_datasets.
    result = run_python(compare("--epochs", "1", out=out), env=env,
                        cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(results(out / "results.json")) == list(OPTIMIZERS)
    assert (out / "curves.png").exists()
    # A tfds data set cannot load: one line says why, status 1.
    result = run_python(compare("--dataset", "mnist", out=tmp_path / "o2"),
                        env=env, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines()
              if line.startswith("keras-signadam:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "tensorflow_datasets" in errors[0] and "array_record" in (
        errors[0]) and "--dataset digits" in errors[0]


def read_only(folder):
    """Makes `folder` refuse new files, as root too (`chattr +i`)."""
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    with pytest.raises(OSError):
        (folder / "probe").write_text("")
    return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)


def full(folder):
    """Fills the small file system `folder` is (see `output_folder`)."""
    with open(folder / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    with pytest.raises(OSError):
        (folder / "probe").write_bytes(b"\0" * 8192)
    return lambda: None


def output_folder(tmp_path, how):
    """The --output folder, and what undoes its set-up: for a full one,
    its own 2 MiB tmpfs."""
    out = tmp_path / "out"
    out.mkdir()
    if how == "full":
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                        str(out)], check=True)
        return out, lambda: subprocess.run(["umount", str(out)], check=True)
    return out, lambda: None


@pytest.mark.parametrize("how", ["read-only", "full"])
def test_an_output_folder_that_breaks_keeps_every_result(how, tmp_path,
                                                         start_python):
    out, undo_folder = output_folder(tmp_path, how)
    undo = lambda: None  # noqa: E731
    try:
        process = start_python(compare("--epochs", "4", out=out),
                               cwd=tmp_path)
        deadline = time.monotonic() + 300
        while not (out / "curves.png").exists():
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # The first optimizer's results and curves are written; the folder
        # breaks while the second trains.
        undo = (read_only if how == "read-only" else full)(out)
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 3, stdout[-2000:] + stderr[-3000:]
        assert "Traceback" not in stderr
        lines = warnings_of(stderr)
        assert len(lines) == 1, lines
        reason = ("Read-only file system|Operation not permitted"
                  if how == "read-only" else "No space left on device")
        assert re.search(reason, lines[0]), lines[0]
        elsewhere = re.search(r"to (\S+)/ instead", lines[0]).group(1)
        assert list(results(out / "results.json")) == [OPTIMIZERS[0]]
        moved = results(pathlib.Path(elsewhere) / "results.json")
        assert list(moved) == list(OPTIMIZERS)
        assert len(moved["Adam"]["history"]["loss"]) == 4
        assert (pathlib.Path(elsewhere) / "curves.png").exists()
        assert f"Wrote {elsewhere}/results.json" in stdout
        # Nothing half-written is left behind in the broken folder.
        assert not [p for p in os.listdir(out)
                    if p.startswith((".results-", ".curves-"))]
    finally:
        undo()
        undo_folder()
