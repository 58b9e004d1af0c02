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
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.paper import tables  # noqa: E402
from benchmarks.paper.tasks import TASKS  # noqa: E402
from benchmarks.quality import runs  # noqa: E402


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
    args.learning_rates = (tables.QUICK_LEARNING_RATES if args.quick
                           else tables.LEARNING_RATES)
    return args


def specs(args):
    jobs = [(task, name) for task in tables.TASKS_2 for name in tables.TABLE_2]
    jobs += [(tables.TASK_3, name) for name in tables.TABLE_3]
    return [dict(task=task, optimizer=name, learning_rate=lr,
                 schedule="step", seed=seed, fraction=1.0, test_curve=True,
                 epochs=max(2, int(round(TASKS[task].epochs * args.epochs))))
            for task, name in jobs for lr in args.learning_rates
            for seed in range(args.seeds)]


KEYS = ("task", "optimizer", "learning_rate", "schedule", "seed", "epochs")


def key(spec):
    return tuple(spec.get(k) for k in KEYS)


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
    tables.write(records, args, time.time() - start,
                 os.path.join(args.output_dir, "paper.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
