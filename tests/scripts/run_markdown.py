"""Runs the Python code blocks of Markdown files, as a reader would: each
file's blocks in order, in one namespace per file, and exits non-zero
naming the first block that fails.

    python tests/scripts/run_markdown.py FILE.md [FILE.md ...]
"""

import os
import re
import sys
import traceback

os.environ.setdefault("MPLBACKEND", "Agg")

BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def blocks(path):
    with open(path, encoding="utf-8") as f:
        return BLOCK.findall(f.read())


def main(paths):
    import keras
    from run_notebook import executor

    compiled = executor().compiled

    ran = 0
    for path in paths:
        namespace = {"__name__": "__main__"}
        keras.backend.clear_session()
        for index, source in enumerate(blocks(path), start=1):
            try:
                exec(compiled(source, f"{path}:block{index}"), namespace)
            except Exception:
                traceback.print_exc()
                print(f"FAILED: Python block {index} of {path}",
                      file=sys.stderr)
                return 1
            ran += 1
    print(f"ran {ran} Python blocks")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
