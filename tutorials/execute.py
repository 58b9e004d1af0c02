"""Executes a notebook's code cells in order and stores what they print and
the figures they draw as the notebook's outputs, so that a reader sees the
results where the notebook is shown.

    python tutorials/execute.py tutorials/00_digits_quick_tour.ipynb [OUT]

Writes OUT (default: the notebook itself). `make tutorial-outputs` runs it.
"""

import base64
import contextlib
import io
import json
import linecache
import os
import sys
import traceback

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _figures():
    """PNG outputs of the open matplotlib figures, which are then closed."""
    if "matplotlib.pyplot" not in sys.modules:
        return []
    import matplotlib.pyplot as plt

    outputs = []
    for number in plt.get_fignums():
        buffer = io.BytesIO()
        plt.figure(number).savefig(buffer, format="png", dpi=90,
                                   bbox_inches="tight")
        outputs.append({
            "output_type": "display_data",
            "data": {"image/png": base64.b64encode(buffer.getvalue())
                     .decode("ascii"), "text/plain": ["<Figure>"]},
            "metadata": {},
        })
    plt.close("all")
    return outputs


def compiled(source, filename):
    """A cell's code, with its source registered under `filename` as
    Jupyter does: `inspect` finds the source of the functions it defines
    there (tracebacks show the cell's lines, and TensorFlow's AutoGraph
    converts the cell's function, not the lines of whatever script runs
    the notebook at the same line numbers)."""
    linecache.cache[filename] = (len(source), None,
                                 source.splitlines(keepends=True), filename)
    return compile(source, filename, "exec")


def execute(path, out=None):
    with open(path, encoding="utf-8") as f:
        notebook = json.load(f)
    namespace = {"__name__": "__main__"}
    count = 0
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        count += 1
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            try:
                exec(compiled("".join(cell["source"]),
                              f"{path}:cell{count}"), namespace)
            except Exception:
                traceback.print_exc()
                sys.stderr.write(f"FAILED: code cell {count} of {path}\n")
                return 1
        outputs = []
        if printed.getvalue():
            outputs.append({"output_type": "stream", "name": "stdout",
                            "text": printed.getvalue()
                            .splitlines(keepends=True)})
        outputs.extend(_figures())
        cell["outputs"] = outputs
        cell["execution_count"] = count
    with open(out or path, "w", encoding="utf-8") as f:
        json.dump(notebook, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"executed {count} code cells of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(execute(*sys.argv[1:3]))
