"""The paper's experiments, reproduced at a small scale.

    python -m benchmarks.paper [--quick] [--output-dir DIR] [--workers N]
        [--seeds N] [--epochs F] [--resume RUNS.jsonl]

Wang et al. (2019) report, for signADAM++ and its baselines:

- Table 2: epochs to reach a test-error tolerance (MNIST 0.01: LeNet and
  a 2-layer LSTM);
- Table 3: test accuracy of VGG-19 on CIFAR-100 (500 images per class),
  with signADAM++-AW (adaptive threshold, decoupled decay) first.

Here (`tasks.py`): a LeNet and a 2-layer LSTM on the bundled 8x8 digits
(Table 2), and a VGG-style CNN on 30 digits per class (Table 3). The
paper's set-up: regularization 5e-4, coupled into the gradient (L2) for
every method but the AW ones, which decay the weights by it, decoupled;
the learning rate decays x0.1 at 50% and 83% of the epochs, for every
method. Every optimizer gets the same learning-rate grid (1e-4 to 3e-2,
the paper's 1e-3 and 1e-4 among them), 3 seeds each; its rate is chosen
by mean final validation accuracy and the test figures of that choice are
reported (mean +- standard error). Epochs to a tolerance count, for each
seed, the first epoch whose test error is at or below it; "never" when a
seed does not reach it.

Writes `paper.md` and the raw runs `paper_runs.jsonl` to the output
folder (default `benchmarks/results/paper`). `--quick` runs 2 rates, 2
seeds and a tenth of the epochs, in a few minutes.
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks import machine  # noqa: E402
from benchmarks.paper.tasks import TASKS  # noqa: E402
from benchmarks.quality import runs  # noqa: E402
from benchmarks.quality import summary  # noqa: E402

# Rows in the order of the paper's tables; the name the paper gives each.
TABLE_2 = {
    "Adam L2": "Adam",
    "signADAM++ L2": "signADAM++",
    "signADAM L2": "signADAM",
    "Signum L2": "Signum",
    "SIGN-SGD L2": "SIGN-SGD",
    # Not in the paper: this package's hybrid (`ks.Hybrid`: Adam on the
    # output layer and the vectors).
    "Hybrid L2": "hybrid signADAM++ + Adam",
}
TABLE_3 = {
    "SIGN-SGD L2": "SIGN-SGD",
    "Signum L2": "Signum",
    "Adam L2": "Adam",
    "signADAM L2": "signADAM",
    "signADAM++ L2": "signADAM++",
    "AdamW 5e-4": "AdamW",
    "signADAM++-AW": "signADAM++-AW",
    "Hybrid L2": "hybrid signADAM++ + Adam",
    "Hybrid-AW": "hybrid signADAM++-AW + AdamW",
}
TASKS_2 = ("lenet_digits", "lstm_digits")
TASK_3 = "digits_few"
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
QUICK_LEARNING_RATES = (1e-3, 1e-2)
TOLERANCES = (0.01, 0.02, 0.05)

# The paper's figures (SPEC 3.4): Table 2, epochs to test error 0.01 on
# MNIST (None: never); Table 3, CIFAR-100 VGG-19 test accuracy (%).
PAPER_TABLE_2 = {
    "lenet_digits": {"Adam": 20, "signADAM++": 20, "Signum": 46,
                     "SIGN-SGD": None},
    "lstm_digits": {"Adam": 58, "signADAM++": 21},
}
PAPER_TABLE_3 = {"SIGN-SGD": 63.96, "Signum": 67.12, "Adam": 68.62,
                 "signADAM": 67.97, "signADAM++": 65.38, "AdamW": 69.11,
                 "signADAM++-AW": 72.31}


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.paper",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output-dir", default="benchmarks/results/paper")
    parser.add_argument("--workers", type=int,
                        default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=None,
                        help="multiplies every task's epochs")
    parser.add_argument("--resume", default=None, metavar="JSONL")
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 2 if args.quick else 3
    if args.epochs is None:
        args.epochs = 0.1 if args.quick else 1.0
    if args.seeds < 1 or args.workers < 1 or not args.epochs > 0:
        parser.error("--seeds and --workers must be >= 1, --epochs > 0")
    args.learning_rates = (QUICK_LEARNING_RATES if args.quick
                           else LEARNING_RATES)
    return args


def specs(args):
    jobs = [(task, name) for task in TASKS_2 for name in TABLE_2]
    jobs += [(TASK_3, name) for name in TABLE_3]
    return [dict(task=task, optimizer=name, learning_rate=lr,
                 schedule="step", seed=seed, fraction=1.0, test_curve=True,
                 epochs=max(2, int(round(TASKS[task].epochs * args.epochs))))
            for task, name in jobs for lr in args.learning_rates
            for seed in range(args.seeds)]


KEYS = ("task", "optimizer", "learning_rate", "schedule", "seed", "epochs")


def key(spec):
    return tuple(spec.get(k) for k in KEYS)


def epochs_to(record, tolerance):
    """First epoch (from 1) whose test error is <= tolerance, or None."""
    for epoch, accuracy in enumerate(record["test_accuracy_per_epoch"], 1):
        if accuracy is not None and 1.0 - accuracy <= tolerance + 1e-9:
            return epoch
    return None


def chosen_cells(records):
    """{(task, optimizer): Cell at the rate chosen by validation}."""
    cells = summary.sweep_cells(records)
    return {(task, name): summary.chosen(row)
            for (task, name, _), row in cells.items()}


def _epochs_cell(cell, tolerance):
    reached = [epochs_to(r, tolerance) for r in cell.records]
    hits = [e for e in reached if e is not None]
    if not hits:
        return "never"
    mean, error = summary.mean_and_error(hits)
    text = f"{mean:.1f}" + ("" if math.isnan(error) else f" ± {error:.1f}")
    if len(hits) < len(reached):
        text += f" ({len(hits)}/{len(reached)} seeds; others never)"
    return text


def _paper_epochs(value):
    return "never" if value is None else str(value)


def write(records, args, seconds, path):
    report = machine.Report("The paper's experiments, reproduced")
    emit = report.emit
    cells = chosen_cells(records)
    emit(f"{len(records)} runs, {seconds / 60:.0f} minutes on "
         f"{args.workers} worker(s); learning rates "
         f"{', '.join(f'{lr:g}' for lr in args.learning_rates)}, "
         f"{args.seeds} seeds, step decay x0.1 at 50% and 83% of the "
         "epochs, regularization 5e-4 (L2; decoupled for the AW rows). "
         "Generated by `python -m benchmarks.paper`; not edited.")
    emit()
    for name, task in TASKS.items():
        emit(f"- `{name}`: {task.description}, "
             f"{max(2, int(round(task.epochs * args.epochs)))} epochs, "
             f"batch {task.batch_size}")
    emit()
    emit("## Table 2: epochs to a test-error tolerance")
    emit()
    for task in TASKS_2:
        emit(f"### {task}")
        emit()
        emit("| optimizer | paper (MNIST, 0.01) | learning rate | "
             + " | ".join(f"epochs to {t:g}" for t in TOLERANCES)
             + " | final test accuracy |")
        emit("|---" * (4 + len(TOLERANCES)) + "|")
        for name, paper_name in TABLE_2.items():
            cell = cells.get((task, name))
            if cell is None:
                continue
            paper = PAPER_TABLE_2[task].get(paper_name, "-")
            paper = paper if paper == "-" else _paper_epochs(paper)
            emit(f"| {paper_name} | {paper} | {cell.learning_rate:g} | "
                 + " | ".join(_epochs_cell(cell, t) for t in TOLERANCES)
                 + f" | {100 * cell.test:.2f} ± {100 * cell.test_error:.2f}"
                 " |")
        emit()
    emit("## Table 3: test accuracy with few samples per class")
    emit()
    emit(f"### {TASK_3}")
    emit()
    emit("| optimizer | paper (CIFAR-100, %) | learning rate | test "
         "accuracy (%) | train - test (points) |")
    emit("|---|---|---|---|---|")
    for name, paper_name in TABLE_3.items():
        cell = cells.get((TASK_3, name))
        if cell is None:
            continue
        paper = PAPER_TABLE_3.get(paper_name)
        emit(f"| {paper_name} | {'-' if paper is None else f'{paper:.2f}'} | "
             f"{cell.learning_rate:g} | {100 * cell.test:.2f} ± "
             f"{100 * cell.test_error:.2f} | {100 * cell.gap:.1f} ± "
             f"{100 * cell.gap_error:.1f} |")
    emit()
    emit("## Every learning rate (mean final validation accuracy, %)")
    emit()
    emit("| task | optimizer | "
         + " | ".join(f"{lr:g}" for lr in args.learning_rates) + " |")
    emit("|---|---" + "|---" * len(args.learning_rates) + "|")
    for (task, name, _), row in sorted(summary.sweep_cells(records).items()):
        values = {c.learning_rate: c.val for c in row}
        emit(f"| {task} | {name} | " + " | ".join(
            "-" if lr not in values else
            ("diverged" if not np.isfinite(values[lr])
             else f"{100 * values[lr]:.1f}")
            for lr in args.learning_rates) + " |")
    emit()
    report.save(path)


def main(argv=None):
    args = parse(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    raw = os.path.join(args.output_dir, "paper_runs.jsonl")
    earlier = {}
    if args.resume:
        with open(args.resume, encoding="utf-8") as f:
            earlier = {key(r): r for r in map(json.loads, f) if r}
    todo = specs(args)
    records = [earlier[key(s)] for s in todo if key(s) in earlier]
    todo = [s for s in todo if key(s) not in earlier]
    print(f"{len(todo)} runs on {args.workers} worker(s), "
          f"{len(records)} reused", file=sys.stderr, flush=True)
    start = time.time()
    with open(raw + ".partial", "w", encoding="utf-8") as out, \
            runs.Workers(args.workers) as workers:
        for record in records:
            out.write(json.dumps(record) + "\n")

        def keep(record):
            records.append(record)
            out.write(json.dumps(record) + "\n")
            out.flush()
            if len(records) % 20 == 0:
                print(f"  {len(records)} runs, {time.time() - start:.0f} s",
                      file=sys.stderr, flush=True)

        if todo:
            workers.run_all(todo, keep)
    os.replace(raw + ".partial", raw)
    write(records, args, time.time() - start,
          os.path.join(args.output_dir, "paper.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
