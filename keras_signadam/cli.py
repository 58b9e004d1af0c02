"""Command line: ``python -m keras_signadam compare`` (or ``keras-signadam``).

Compares optimizers on the bundled handwritten digits (no download).
"""

import argparse
import os
import sys


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def build_parser():
    from keras_signadam import compare

    parser = argparse.ArgumentParser(
        prog="keras-signadam",
        description="Keras optimizers driven by the sign of the gradient.",
    )
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser(
        "compare", help="train one model with several optimizers"
    )
    run.add_argument(
        "--optimizers", default=",".join(compare.OPTIMIZERS),
        help="comma-separated list (default: %(default)s)",
    )
    run.add_argument("--epochs", type=_positive_int, default=20)
    run.add_argument("--batch-size", type=_positive_int, default=32)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--output", default="results",
                     help="folder for results.json (default: %(default)s)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["compare"] + list(argv or sys.argv[1:]))

    from keras_signadam import compare
    from keras_signadam.datasets import load_digits

    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    unknown = [n for n in names if n not in compare.OPTIMIZERS]
    if unknown or not names:
        parser.error(
            f"unknown optimizer(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(compare.OPTIMIZERS)}"
        )
    try:
        os.makedirs(args.output, exist_ok=True)
        probe = os.path.join(args.output, ".write-test")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as error:
        parser.error(f"cannot write to --output {args.output!r}: {error}")

    data = load_digits()
    print(f"Dataset: handwritten digits (bundled), {len(data[0][0])} train / "
          f"{len(data[1][0])} test images; {args.epochs} epochs, "
          f"batch {args.batch_size}")
    results = compare.run_comparison(
        data, names, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed,
    )
    print()
    print(compare.format_table(results))
    path = os.path.join(args.output, "results.json")
    compare.write_json(results, path, dataset="digits", epochs=args.epochs,
                       batch_size=args.batch_size, seed=args.seed)
    print(f"\nWrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
