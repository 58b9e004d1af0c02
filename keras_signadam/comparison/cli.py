"""Command line: ``python -m keras_signadam compare`` (or ``keras-signadam``).

Trains the same model with several optimizers and compares them. With no
options it uses the bundled handwritten digits (no download); `--dataset`
takes any tensorflow_datasets image classification name.

Arguments are parsed and checked before TensorFlow is imported, so `--help`,
`--version` and mistakes answer at once. Results are written after each
optimizer finishes; an interrupt keeps what finished. An optional output
that fails (see `_Outputs`) costs only itself, with one warning line.

Exit status: 0 all done; 1 the data could not be loaded; 2 bad input; 3
every optimizer finished but an output is missing or was written
elsewhere (the warnings say which); 130 interrupted.
"""

import argparse
import contextlib
import math
import os
import signal
import sys
import tempfile

from keras_signadam.comparison import choices
from keras_signadam.version import __version__

PROGRAM = "keras-signadam"
EXIT_STATUSES = (
    "exit status: 0 done; 1 the data could not be loaded; 2 bad input; 3 "
    "every optimizer finished but an output (results.json, curves.png) is "
    "missing or was written elsewhere, as a warning says; 130 "
    "interrupted")
FLOAT32_MAX = 3.4028234663852886e38
RESULT_FILES = ("results.json", "curves.png")


class _Parser(argparse.ArgumentParser):
    """Bad input: one line on stderr, exit status 2."""

    def error(self, message):
        fail(message, status=2)


def fail(message, status=2):
    sys.stderr.write(f"{PROGRAM}: error: {message}\n")
    sys.exit(status)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(
            f"must be in 0 .. 2**32 - 1, got {value}")
    return value


def _learning_rates(text):
    """'SignAdamPP=1e-3,Adam=3e-4' -> dict."""
    rates = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            rate = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected NAME=RATE pairs, got {item!r}") from None
        if not (math.isfinite(rate) and 0 < rate <= FLOAT32_MAX):
            raise argparse.ArgumentTypeError(
                f"learning rate for {name} must be a finite number > 0 "
                f"(in float32), got {value}")
        rates[name.strip()] = rate
    return rates


def build_parser():
    parser = _Parser(
        prog=PROGRAM,
        description="Keras optimizers driven by the sign of the gradient. "
                    "`compare` is the default command: "
                    f"`{PROGRAM} --epochs 5` runs `{PROGRAM} compare "
                    "--epochs 5`.",
        epilog=EXIT_STATUSES,
    )
    parser.add_argument("--version", action="version",
                        version=f"{PROGRAM} {__version__}")
    commands = parser.add_subparsers(
        dest="command", parser_class=_Parser, title="commands",
        metavar="{compare}",
        help="compare (the default): train one model with several "
             "optimizers; see `compare --help`")
    run = commands.add_parser(
        "compare", help="train one model with several optimizers",
        description="Train the same model with each optimizer; print a "
                    "table and write results.json and curves.png.",
        epilog=EXIT_STATUSES,
    )
    run.add_argument(
        "--dataset", default="digits",
        help="'digits' (bundled, no download) or a tensorflow_datasets "
             "image classification name, e.g. mnist, fashion_mnist, cifar10 "
             "(default: %(default)s)")
    run.add_argument(
        "--data-dir", default=None,
        help="where tensorflow_datasets keeps prepared data (default: its "
             "own, ~/tensorflow_datasets or $TFDS_DATA_DIR)")
    run.add_argument(
        "--model", default="auto", choices=("auto",) + choices.MODELS,
        help="default: auto = mlp for 8x8 images, cnn otherwise")
    run.add_argument(
        "--optimizers", default=",".join(choices.DEFAULT_LEARNING_RATES),
        help="comma-separated list (default: %(default)s)")
    run.add_argument("--epochs", type=_positive_int, default=15)
    run.add_argument("--batch-size", type=_positive_int, default=32)
    run.add_argument(
        "--learning-rates", type=_learning_rates, default={},
        help="NAME=RATE pairs overriding the defaults ("
             + ", ".join(f"{n}={lr:g}" for n, lr
                         in choices.DEFAULT_LEARNING_RATES.items()) + ")")
    run.add_argument("--seed", type=_seed, default=0)
    run.add_argument("--output", default="results",
                     help="folder for results.json and curves.png "
                          "(default: %(default)s)")
    return parser


def check_output(path):
    """Fails now, before any training, if the results cannot be written.
    The folder is created to prove it can be, and removed again (with any
    parents made for it) until the first results are written."""
    if os.path.exists(path) and not os.path.isdir(path):
        fail(f"--output {path!r} exists and is not a directory")
    made, folder = [], os.path.abspath(path)
    while not os.path.exists(folder):
        made.append(folder)
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        fail(f"cannot create --output {path!r}: {folder!r} is not a "
             "directory")
    for name in RESULT_FILES:
        target = os.path.join(path, name)
        if os.path.isdir(target):
            fail(f"cannot write {target!r}: it is a directory")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        fail(f"cannot write to --output {path!r}: "
             f"{error.strerror or error}")
    finally:
        for folder in made:  # deepest first
            if os.path.isdir(folder):
                os.rmdir(folder)


def _parse(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("compare", "-h", "--help", "--version"):
        argv = ["compare"] + argv
    args = build_parser().parse_args(argv)
    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    known = choices.DEFAULT_LEARNING_RATES
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        fail(f"unknown optimizer(s) {', '.join(unknown) or '(none given)'}; "
             f"choose from {', '.join(known)}")
    stray = [n for n in args.learning_rates if n not in known]
    if stray:
        fail(f"--learning-rates names unknown optimizer(s) "
             f"{', '.join(stray)}; choose from {', '.join(known)}")
    check_output(args.output)
    return args, names


@contextlib.contextmanager
def _quiet_startup():
    """TensorFlow's start-up lines (oneDNN, CUDA probing, printed twice by
    its two libraries) say nothing to a user of this program, and no
    environment variable silences them in TensorFlow 2.21: the process's
    standard error is muted while Keras and TensorFlow import. A failed
    import still raises, and is reported once it is restored."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _load(name, seed, data_dir):
    from keras_signadam.comparison import datasets

    if name == "digits":
        return datasets.load_digits(seed=seed), "handwritten digits (bundled)"
    try:
        data = datasets.load_image_classification(name, data_dir=data_dir,
                                                   seed=seed)
    except (datasets.UnknownDataset, datasets.NotImageClassification,
            datasets.DatasetNotPrepared) as error:
        fail(str(error), status=2)
    except datasets.DatasetError as error:
        fail(str(error), status=1)
    return data, f"{name} (tensorflow_datasets)"


class _Outputs:
    """results.json (written atomically) and curves.png, after each
    optimizer; the output folder is created on the first write.

    A part that fails costs only its own output, with one warning line,
    and training goes on: matplotlib that fails to import or to draw
    costs curves.png; an output folder that can no longer be written
    (read-only, full) sends both files to a new temporary folder from
    then on, so no finished result is lost."""

    def __init__(self, args, model_name=None):
        self.args, self.model_name = args, model_name
        self.folder = args.output
        self.results = {}
        self.saved = 0          # results in self.folder/results.json
        self.png = None         # curves.png of every result, when drawn
        self.failed = []        # what a warning line was given for
        self._plots = None

    def __call__(self, results):
        self.results = dict(results)
        self._in_folder(self._write_json)
        self.plot()

    def _write_json(self, folder):
        from keras_signadam.comparison import runner

        os.makedirs(folder, exist_ok=True)
        args = self.args
        runner.write_json(
            self.results, os.path.join(folder, "results.json"),
            dataset=args.dataset, model=self.model_name, epochs=args.epochs,
            batch_size=args.batch_size, seed=args.seed,
            complete=len(self.results))
        self.saved = len(self.results)

    def _in_folder(self, write):
        """`write(folder)`; when the folder refuses it, once, the same in
        a new temporary folder, which takes every later write."""
        try:
            write(self.folder)
            return True
        except OSError as error:
            if self.folder != self.args.output:
                self._warn("fallback", f"could not write to {self.folder}/ "
                           f"either ({_reason(error)}); the table holds "
                           "the results")
                return False
            self.folder = tempfile.mkdtemp(prefix="keras-signadam-")
            self._warn("folder", f"could not write to {self.args.output}/ "
                       f"({_reason(error)}); writing results.json and "
                       f"curves.png to {self.folder}/ instead")
            self.saved = 0
        return self._in_folder(write)

    def _warn(self, what, message):
        if what not in self.failed:
            warn(message)
            self.failed.append(what)

    def plot(self):
        self.png = None
        plots = self._plotting()
        if plots is None:
            return

        def draw(folder):
            png = os.path.join(folder, "curves.png")
            plots.plot_curves(self.results, png, title=f"{self.args.dataset}"
                              f", {self.model_name}")
            self.png = png

        try:
            self._in_folder(draw)
        except Exception as error:  # a broken matplotlib fails any way
            self._warn("plot", f"could not draw curves.png "
                       f"({_reason(error)}); the results are kept")

    def check_plotting(self):
        self._plotting()

    def _plotting(self):
        """The plotting module, or None: matplotlib is not installed (a
        choice: the `plots` extra), or it failed to import (a warning)."""
        if self._plots is None:
            self._plots = _import_plots()
            if isinstance(self._plots, str):
                self._warn("plot", f"no curves.png: {self._plots}; the "
                           "results are kept")
        return None if isinstance(self._plots, (str, bool)) else self._plots

    @property
    def plots_installed(self):
        return self._plots is not False

    @property
    def status(self):
        """0 when every output was written where asked (curves.png is not
        one without matplotlib); 3 when one is missing or elsewhere."""
        return 3 if self.failed else 0


def _import_plots():
    """The plots module; False when matplotlib is not installed; the
    reason, when it is installed but fails to import. A matplotlib that
    fails is then hidden (as if not installed): Keras imports
    matplotlib.pyplot when it starts, and fails with it unless the import
    raises ImportError."""
    import importlib.util

    try:
        if importlib.util.find_spec("matplotlib") is None:
            return False
    except (ImportError, ValueError):  # a stub module
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401

        from keras_signadam.comparison import plots
    except Exception as error:
        for name in [n for n in sys.modules
                     if n == "matplotlib" or n.startswith("matplotlib.")]:
            sys.modules[name] = None
        sys.modules["matplotlib"] = None
        return f"matplotlib failed to import ({_reason(error)})"
    return plots


def _reason(error):
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else (
        type(error).__name__)


def warn(message):
    sys.stderr.write(f"{PROGRAM}: warning: {message}\n")
    sys.stderr.flush()


class _Interrupt:
    """Ctrl-C ends the run at the next batch. Python's own handler raises
    KeyboardInterrupt wherever the interpreter is, and one raised inside a
    weak-reference callback of TensorFlow's is printed and dropped ("Exception
    ignored in ...") while training goes on to the end. So the handler only
    notes the signal, and the training loop raises it after each batch
    (`check`); a second Ctrl-C raises at once."""

    def __init__(self):
        self.seen = False
        self.previous = None

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc_info):
        signal.signal(signal.SIGINT, self.previous)

    def _handler(self, signum, frame):
        if self.seen:
            raise KeyboardInterrupt
        self.seen = True

    def check(self, *unused, **also_unused):
        if self.seen:
            raise KeyboardInterrupt

    def callback(self):
        import keras

        return keras.callbacks.LambdaCallback(on_train_batch_end=self.check)


def main(argv=None):
    args, names = _parse(argv)
    outputs = _Outputs(args)
    outputs.check_plotting()  # before Keras imports matplotlib
    with _quiet_startup():
        from keras_signadam.comparison import models
        from keras_signadam.comparison import runner

    data, description = _load(args.dataset, args.seed, args.data_dir)
    (x_train, _), (x_test, _) = data
    model_name = (models.default_model_name(x_train.shape[1:])
                  if args.model == "auto" else args.model)
    print(f"Dataset: {description}, {len(x_train)} train / {len(x_test)} "
          f"test images of shape {x_train.shape[1:]}; model {model_name}, "
          f"{args.epochs} epochs, batch {args.batch_size}", flush=True)
    outputs.model_name = model_name
    interrupt = _Interrupt()

    def printer(line):
        print(line, flush=True)
        interrupt.check()

    try:
        with interrupt:
            results = runner.run_comparison(
                data, names, epochs=args.epochs, batch_size=args.batch_size,
                learning_rates=args.learning_rates, seed=args.seed,
                model_fn=models.MODELS[model_name], printer=printer,
                on_result=outputs, callbacks=[interrupt.callback()],
            )
    except KeyboardInterrupt:
        if outputs.results and outputs.png is None:
            outputs.plot()  # the interrupt came while it was being drawn
        if outputs.saved:
            print(f"\nInterrupted: kept the results of the "
                  f"{outputs.saved} optimizer(s) that finished in "
                  f"{outputs.folder}/", flush=True)
        else:
            print("\nInterrupted before any optimizer finished; nothing "
                  "written.", flush=True)
        return 130
    print()
    print(runner.format_table(results))
    if outputs.saved == len(results):
        print(f"\nWrote {os.path.join(outputs.folder, 'results.json')}")
    if outputs.png:
        print(f"Wrote {outputs.png}")
    elif not outputs.plots_installed:
        print("matplotlib is not installed: no curves.png "
              "(install the package with its 'plots' extra)")
    return outputs.status


if __name__ == "__main__":
    sys.exit(main())
