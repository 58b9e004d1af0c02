"""Runs notebooks' code cells in order, each notebook in a namespace of
its own (and a fresh Keras session), under
`tensorflow_datasets.testing.mock_data`, and exits non-zero naming the
first cell that fails.

    python tests/scripts/run_notebook.py NOTEBOOK.ipynb [NOTEBOOK.ipynb ...]
"""

import json
import os
import sys
import traceback

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("KERAS_SIGNADAM_TUTORIAL_STEPS", "2")


def main(path):
    import keras
    import tensorflow_datasets as tfds

    keras.backend.clear_session()
    with open(path, encoding="utf-8") as f:
        cells = [c for c in json.load(f)["cells"]
                 if c["cell_type"] == "code"]
    namespace = {"__name__": "__main__"}
    with tfds.testing.mock_data(num_examples=64):
        for index, cell in enumerate(cells, start=1):
            source = "".join(cell["source"])
            try:
                exec(compile(source, f"{path}:cell{index}", "exec"),
                     namespace)
            except Exception:
                traceback.print_exc()
                print(f"FAILED: code cell {index} of {path}",
                      file=sys.stderr)
                return 1
    print(f"ran {len(cells)} code cells of {path}")
    return 0


if __name__ == "__main__":
    for notebook in sys.argv[1:]:
        if main(notebook):
            sys.exit(1)
