"""Runs notebooks' code cells in order, each notebook in a namespace of
its own (and a fresh Keras session), under
`tensorflow_datasets.testing.mock_data`, and exits non-zero naming the
first cell that fails. With `--store NOTEBOOK OUT` it first executes that
notebook with `tutorials/execute.py` (outside the mock: it stores the
outputs to OUT), in the same process.

    python tests/scripts/run_notebook.py [--store NOTEBOOK.ipynb OUT] \
        NOTEBOOK.ipynb [NOTEBOOK.ipynb ...]
"""

import functools
import json
import os
import sys
import traceback

os.environ.setdefault("MPLBACKEND", "Agg")


@functools.cache
def executor():
    """`tutorials/execute.py`, loaded as a module (once per process)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "tutorials", "execute.py")
    spec = importlib.util.spec_from_file_location("execute", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(path):
    import keras
    import tensorflow_datasets as tfds

    keras.backend.clear_session()
    with open(path, encoding="utf-8") as f:
        cells = [c for c in json.load(f)["cells"]
                 if c["cell_type"] == "code"]
    namespace = {"__name__": "__main__"}
    compiled = executor().compiled
    with tfds.testing.mock_data(num_examples=64):
        for index, cell in enumerate(cells, start=1):
            source = "".join(cell["source"])
            try:
                exec(compiled(source, f"{path}:cell{index}"), namespace)
            except Exception:
                traceback.print_exc()
                print(f"FAILED: code cell {index} of {path}",
                      file=sys.stderr)
                return 1
    print(f"ran {len(cells)} code cells of {path}")
    return 0


def store(path, out):
    import keras

    keras.backend.clear_session()
    return executor().execute(path, out)


if __name__ == "__main__":
    os.environ.setdefault("KERAS_SIGNADAM_TUTORIAL_STEPS", "2")
    notebooks = sys.argv[1:]
    if notebooks[:1] == ["--store"]:
        if store(*notebooks[1:3]):
            sys.exit(1)
        notebooks = notebooks[3:]
    for notebook in notebooks:
        if main(notebook):
            sys.exit(1)
