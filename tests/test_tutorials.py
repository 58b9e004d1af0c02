"""Every tutorial notebook runs top to bottom under tfds mock data with a
tiny step budget (KERAS_SIGNADAM_TUTORIAL_STEPS); the bundled-data tour
carries its executed outputs; every install instruction works from this
repository."""

import glob
import os

import pytest

from tests.helpers import ROOT
from tests.helpers import module_at

NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "tutorials", "*.ipynb")))


def test_every_tutorial_is_there():
    names = [os.path.basename(n) for n in NOTEBOOKS]
    assert names == [
        "00_digits_quick_tour.ipynb",
        "01_getting_started_mnist.ipynb",
        "02_fashion_mnist_sign_family.ipynb",
        "03_cifar10_paper_setting.ipynb",
        "04_adaptive_confidence.ipynb",
        "05_walk_and_landscape.ipynb",
    ]


# The quick tour is run by `tutorials/execute.py`, which stores its outputs.
RUN_HERE = NOTEBOOKS[1:]


def scripts(folder):
    """Run in the child process the `documentation` fixture (conftest.py)
    starts: the quick tour executed with its outputs stored, then the
    others, each notebook in its own namespace."""
    return [[os.path.join(ROOT, "tests", "scripts", "run_notebook.py"),
             "--store", NOTEBOOKS[0], str(folder / "tour.ipynb"),
             *RUN_HERE]]


@pytest.fixture
def ran(documentation):
    return (documentation["run_notebook.py"],
            documentation.folder / "tour.ipynb")


def test_notebooks_run(ran):
    stdout, _ = ran
    for notebook in RUN_HERE:
        assert f"code cells of {notebook}" in stdout, notebook


def test_quick_tour_carries_its_outputs():
    import json

    path = os.path.join(ROOT, "tutorials", "00_digits_quick_tour.ipynb")
    with open(path, encoding="utf-8") as f:
        cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
    printed = ["".join(o.get("text", [])) for c in cells
               for o in c["outputs"] if o["output_type"] == "stream"]
    images = [o for c in cells for o in c["outputs"]
              if "image/png" in o.get("data", {})]
    assert any("test acc" in text for text in printed)
    assert any("refused:" in text for text in printed)
    assert images, "no figure stored"
    assert all(c["execution_count"] for c in cells[1:])


def test_execute_stores_outputs(ran):
    import json

    stdout, tour = ran
    assert f"executed 6 code cells of {NOTEBOOKS[0]}" in stdout
    cells = json.loads(tour.read_text())["cells"]
    assert any("image/png" in o.get("data", {}) for c in cells
               for o in c.get("outputs", []))


def test_functions_defined_in_cells_are_converted_by_autograph(tmp_path):
    """A cell's function reaches AutoGraph with its own source (as under
    Jupyter): a Python `if` on a tensor becomes a graph conditional
    instead of failing, or of converting other lines at the same line
    numbers."""
    import json

    execute = module_at(os.path.join(ROOT, "tutorials", "execute.py"))
    cells = ["import tensorflow as tf",
             "@tf.function\ndef sign(x):\n    if x > 0:\n        return 1.0\n"
             "    return -1.0\n\nprint(float(sign(tf.constant(-3.0))))"]
    notebook = {"cells": [{"cell_type": "code", "source": c, "outputs": []}
                          for c in cells]}
    path = tmp_path / "cells.ipynb"
    path.write_text(json.dumps(notebook))
    assert execute.execute(str(path)) == 0
    stored = json.loads(path.read_text())["cells"][1]["outputs"]
    assert "".join(stored[0]["text"]).strip() == "-1.0"


def test_install_instructions_work_from_this_repository():
    """keras-signadam is not published on a package index: every pip
    command in the README and the notebooks installs a path or a wheel."""
    import re

    sources = [os.path.join(ROOT, "README.md")] + NOTEBOOKS
    by_name = re.compile(r"pip\W+install[^\n]*?(?<![\w./'\"-])"
                         r"keras-signadam(?![\w-]*(\.whl|/))")
    for path in sources:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert not by_name.search(text), (path, by_name.search(text))


class Shell:
    """Records the magics a notebook cell runs."""

    def __init__(self):
        self.calls = []

    def run_line_magic(self, name, line):
        self.calls.append((name, line))


@pytest.mark.parametrize("folder", ["", "tutorials"])
def test_install_cells_find_the_repository(folder, monkeypatch):
    """The install cell, where keras_signadam is not importable, installs
    this clone from the repository root and from tutorials/ alike."""
    import json
    import sys

    monkeypatch.setitem(sys.modules, "keras_signadam", None)
    monkeypatch.chdir(os.path.join(ROOT, folder))
    for path in NOTEBOOKS:
        with open(path, encoding="utf-8") as f:
            cells = json.load(f)["cells"]
        source = next("".join(c["source"]) for c in cells
                      if "run_line_magic" in "".join(c["source"]))
        shell = Shell()
        exec(source, {"get_ipython": lambda shell=shell: shell})
        assert shell.calls == [("pip", f"install -q '{ROOT}[compare]'")], path
