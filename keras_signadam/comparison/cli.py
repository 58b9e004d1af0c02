"""Command line: ``python -m keras_signadam compare`` (or ``keras-signadam``).

Trains the same model with several optimizers and compares them. With no
options it uses the bundled handwritten digits (no download); `--dataset`
takes any tensorflow_datasets image classification name.

Arguments are parsed and checked before TensorFlow is imported, so `--help`,
`--version` and mistakes answer at once. Results are written after each
optimizer finishes; an interrupt keeps what finished.
"""

import argparse
import contextlib
import math
import os
import signal
import sys

from keras_signadam.comparison import choices
from keras_signadam.version import __version__

PROGRAM = "keras-signadam"
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


class _Saver:
    """Writes results.json (atomically) and curves.png after each
    optimizer; creates the output folder on the first write."""

    def __init__(self, args, model_name):
        self.args, self.model_name = args, model_name
        self.saved = 0
        self.png = None

    def __call__(self, results):
        from keras_signadam.comparison import runner

        args = self.args
        os.makedirs(args.output, exist_ok=True)
        runner.write_json(
            results, os.path.join(args.output, "results.json"),
            dataset=args.dataset, model=self.model_name, epochs=args.epochs,
            batch_size=args.batch_size, seed=args.seed,
            complete=len(results),
        )
        self.saved = len(results)
        self.results = dict(results)
        self.png = None
        self.plot()

    def plot(self):
        if not plots_available():
            return
        from keras_signadam.comparison import plots

        png = os.path.join(self.args.output, "curves.png")
        plots.plot_curves(self.results, png,
                          title=f"{self.args.dataset}, {self.model_name}")
        self.png = png


def plots_available():
    """Whether matplotlib (the `plots` extra) can be imported; without it
    every optimizer still trains and the plot is skipped."""
    import importlib.util

    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):  # a stub module, as in tests
        return False


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
    saver = _Saver(args, model_name)
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
                on_result=saver, callbacks=[interrupt.callback()],
            )
    except KeyboardInterrupt:
        if saver.saved and saver.png is None:
            saver.plot()  # the interrupt came while it was being drawn
        if saver.saved:
            print(f"\nInterrupted: kept the results of the {saver.saved} "
                  f"optimizer(s) that finished in {args.output}/",
                  flush=True)
        else:
            print("\nInterrupted before any optimizer finished; nothing "
                  "written.", flush=True)
        return 130
    print()
    print(runner.format_table(results))
    print(f"\nWrote {os.path.join(args.output, 'results.json')}")
    if saver.png:
        print(f"Wrote {saver.png}")
    else:
        print("matplotlib is not installed: no curves.png "
              "(install the package with its 'plots' extra)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
