"""Command line: ``python -m keras_signadam compare`` (or ``keras-signadam``).

Trains the same model with several optimizers and compares them. With no
options it uses the bundled handwritten digits (no download); `--dataset`
takes any tensorflow_datasets image classification name.
"""

import argparse
import os
import sys

PROGRAM = "keras-signadam"


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
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
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
                f"expected NAME=RATE pairs, got {item!r}")
        if not rate > 0:
            raise argparse.ArgumentTypeError(
                f"learning rate for {name} must be > 0, got {value}")
        rates[name.strip()] = rate
    return rates


def build_parser():
    from keras_signadam import compare
    from keras_signadam import models

    parser = _Parser(
        prog=PROGRAM,
        description="Keras optimizers driven by the sign of the gradient.",
    )
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
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
        "--model", default="auto",
        help=f"auto, {', '.join(models.MODELS)} (default: auto = mlp for "
             "8x8 images, cnn otherwise)")
    run.add_argument(
        "--optimizers", default=",".join(compare.OPTIMIZERS),
        help="comma-separated list (default: %(default)s)")
    run.add_argument("--epochs", type=_positive_int, default=15)
    run.add_argument("--batch-size", type=_positive_int, default=32)
    run.add_argument(
        "--learning-rates", type=_learning_rates, default={},
        help="NAME=RATE pairs overriding the defaults ("
             + ", ".join(f"{n}={lr:g}" for n, (_, lr)
                         in compare.OPTIMIZERS.items()) + ")")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--output", default="results",
                     help="folder for results.json and curves.png "
                          "(default: %(default)s)")
    return parser


def _check_output(path):
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        fail(f"cannot write to --output {path!r}: {error.strerror or error}")


def _load(name, seed):
    from keras_signadam import datasets

    if name == "digits":
        return datasets.load_digits(seed=seed), "handwritten digits (bundled)"
    try:
        data = datasets.load_image_classification(name, seed=seed)
    except datasets.DatasetError as error:
        status = 2 if str(error).startswith(("unknown", "dataset")) else 1
        fail(str(error), status=status)
    return data, f"{name} (tensorflow_datasets)"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("compare", "-h", "--help"):
        argv = ["compare"] + argv
    args = build_parser().parse_args(argv)

    from keras_signadam import compare
    from keras_signadam import models

    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    unknown = [n for n in names if n not in compare.OPTIMIZERS]
    if unknown or not names:
        fail(f"unknown optimizer(s) {', '.join(unknown) or '(none given)'}; "
             f"choose from {', '.join(compare.OPTIMIZERS)}")
    stray = [n for n in args.learning_rates if n not in compare.OPTIMIZERS]
    if stray:
        fail(f"--learning-rates names unknown optimizer(s) "
             f"{', '.join(stray)}; choose from "
             f"{', '.join(compare.OPTIMIZERS)}")
    if args.model != "auto" and args.model not in models.MODELS:
        fail(f"unknown model {args.model!r}; choose from auto, "
             f"{', '.join(models.MODELS)}")
    _check_output(args.output)

    data, description = _load(args.dataset, args.seed)
    (x_train, _), (x_test, _) = data
    model_name = (models.default_model_name(x_train.shape[1:])
                  if args.model == "auto" else args.model)
    print(f"Dataset: {description}, {len(x_train)} train / {len(x_test)} "
          f"test images of shape {x_train.shape[1:]}; model {model_name}, "
          f"{args.epochs} epochs, batch {args.batch_size}", flush=True)
    results = compare.run_comparison(
        data, names, epochs=args.epochs, batch_size=args.batch_size,
        learning_rates=args.learning_rates, seed=args.seed,
        model_fn=models.MODELS[model_name],
        printer=lambda line: print(line, flush=True),
    )
    print()
    print(compare.format_table(results))
    json_path = os.path.join(args.output, "results.json")
    compare.write_json(results, json_path, dataset=args.dataset,
                       model=model_name, epochs=args.epochs,
                       batch_size=args.batch_size, seed=args.seed)
    print(f"\nWrote {json_path}")
    try:
        png_path = os.path.join(args.output, "curves.png")
        compare.plot_curves(results, png_path,
                            title=f"{args.dataset}, {model_name}")
        print(f"Wrote {png_path}")
    except ImportError:
        print("matplotlib is not installed: no curves.png "
              "(pip install 'keras-signadam[plots]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
