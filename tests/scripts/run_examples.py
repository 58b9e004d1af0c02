"""Runs scripts one after another in this process, each as `__main__`
with its own `sys.argv` (and its folder first on `sys.path`, as Python
runs a script) and a fresh Keras session, and prints each one's output
between marker lines; a script preceded by `--mock-tfds N` runs under
`tensorflow_datasets.testing.mock_data` with N examples, and `-m MODULE`
runs a module as `python -m` does.

    python tests/scripts/run_examples.py [--mock-tfds N] SCRIPT.py \
        [ARGS...] -- [--mock-tfds N] SCRIPT.py [ARGS...] -- -m MODULE ...

A script that fails is named on stderr and its end marker is not
printed; the others still run, and the exit status is then 1.
"""

import contextlib
import os
import runpy
import sys
import traceback

BEGIN, END = "=== BEGIN {} ===", "=== END {} ==="


def groups(arguments):
    group = []
    for argument in arguments + ["--"]:
        if argument == "--":
            if group:
                yield group
            group = []
        else:
            group.append(argument)


def main(arguments):
    import keras

    failed = False
    for group in groups(arguments):
        mock = contextlib.nullcontext()
        if group[0] == "--mock-tfds":
            import tensorflow_datasets as tfds

            mock = tfds.testing.mock_data(num_examples=int(group[1]))
            group = group[2:]
        module = group[0] == "-m"
        script, *args = group[1:] if module else group
        name = script if module else os.path.basename(script)
        keras.backend.clear_session()
        keras.mixed_precision.set_global_policy("float32")
        sys.argv = [script, *args]
        path = list(sys.path)
        print(BEGIN.format(name), flush=True)
        try:
            with mock:
                if module:
                    runpy.run_module(script, run_name="__main__",
                                     alter_sys=True)
                else:
                    sys.path.insert(0, os.path.dirname(
                        os.path.abspath(script)))
                    runpy.run_path(script, run_name="__main__")
        except SystemExit as exit_:
            if exit_.code not in (None, 0):
                print(f"FAILED: {name} exited with {exit_.code}",
                      file=sys.stderr, flush=True)
                failed = True
                continue
        except Exception:
            traceback.print_exc()
            print(f"FAILED: {name}", file=sys.stderr, flush=True)
            failed = True
            continue
        finally:
            sys.path[:] = path
        print(END.format(name), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
