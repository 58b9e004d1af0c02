"""Quality benchmark: which optimizer gives the best model, task by task.

    python -m benchmarks.quality [--quick] [--output-dir DIR]
        [--tasks a,b] [--optimizers A,B] [--seeds N] [--epochs N]
        [--workers N] [--factors 0.3,1,3,10,30]
        [--schedules constant,cosine] [--resume RUNS.jsonl]

For every task (see `benchmarks/quality/tasks.py`) and optimizer, the same
learning-rate grid relative to the optimizer's default (0.3x .. 30x), with
a constant rate and with cosine decay, over 3 seeds. The learning rate and
schedule of each optimizer are chosen by mean validation accuracy; the
tables report the test accuracy of that choice (mean +- standard error over
seeds), the train-test gap, the epochs to reach 95% of the best validation
accuracy and the seconds per epoch.

The recommended SignAdamPP setting is chosen leave-one-task-out among
`optimizers.CANDIDATES` (chosen on the other tasks, reported on the one
held out, beside the in-sample choice).

A threshold study then runs, at the chosen constant learning rates,
SignAdamPP (absolute threshold) and its recipe (relative threshold) with
their fixed threshold and with `AdaptiveConfidence()`, and Adam with
`ReduceLROnPlateau` (Adam with cosine decay comes from the sweep).

Writes `quality.md`, `quality_sweep.png`, `quality_threshold.png` and the
raw runs `quality_runs.jsonl` to the output folder.
`--quick` runs 3 learning rates, 2 seeds, the constant rate only, a
quarter of the epochs and half of the data, in a few minutes.
`--resume` takes the runs of an earlier, interrupted run from its
`quality_runs.jsonl.partial` and runs only the others.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.quality import optimizers  # noqa: E402
from benchmarks.quality import report  # noqa: E402
from benchmarks.quality import runs  # noqa: E402
from benchmarks.quality import summary  # noqa: E402
from benchmarks.quality.tasks import ALL_TASKS as TASKS  # noqa: E402
from benchmarks.quality.tasks import TASKS as DEFAULT_TASKS  # noqa: E402

SCHEDULES = ("constant", "cosine")
# The optimizers of the threshold study, by threshold mode.
STUDIED = {"absolute": "SignAdamPP", "relative": "SignAdamPP recipe"}


def _names(text, known, argument):
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise SystemExit(
            f"error: --{argument}: unknown {unknown or text!r}; choose from "
            f"{', '.join(known)}")
    return names


def parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.quality",
        description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output-dir", default="benchmarks/results")
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                        help="comma-separated; the default is the seven "
                             "tasks, char_transformer runs when named")
    parser.add_argument("--optimizers",
                        default=",".join(optimizers.DEFAULT))
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=None,
                        help="multiplies every task's epochs")
    parser.add_argument("--workers", type=int,
                        default=min(2, os.cpu_count() or 1))
    parser.add_argument("--schedules", default=None,
                        help="constant, cosine or both (the default; "
                             "--quick: constant)")
    parser.add_argument("--resume", default=None, metavar="JSONL",
                        help="reuse the runs of an earlier (partial) run "
                             "whose settings match; run only the rest")
    parser.add_argument("--candidates", default=None,
                        help="the settings the recommendation is chosen "
                             "from, leave-one-task-out (default: "
                             "optimizers.CANDIDATES)")
    parser.add_argument("--factors", default=None,
                        help="learning rates as multiples of each "
                             "optimizer's default, comma-separated")
    args = parser.parse_args(argv)
    args.tasks = _names(args.tasks, list(TASKS), "tasks")
    args.optimizers = _names(args.optimizers, list(optimizers.OPTIMIZERS),
                             "optimizers")
    args.candidates = (optimizers.CANDIDATES if args.candidates is None
                       else tuple(_names(args.candidates,
                                         list(optimizers.OPTIMIZERS),
                                         "candidates")))
    if args.seeds is None:
        args.seeds = 2 if args.quick else 3
    if args.epochs is None:
        args.epochs = 0.25 if args.quick else 1.0
    for name in ("seeds", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if not args.epochs > 0:
        parser.error("--epochs must be > 0")
    args.fraction = 0.5 if args.quick else 1.0
    if args.schedules is None:
        args.schedules = SCHEDULES[:1] if args.quick else SCHEDULES
    else:
        args.schedules = tuple(_names(args.schedules, list(SCHEDULES),
                                      "schedules"))
    if args.factors is None:
        args.factors = (optimizers.QUICK_FACTORS if args.quick
                        else optimizers.FACTORS)
    else:
        try:
            args.factors = tuple(float(f) for f in args.factors.split(","))
        except ValueError:
            parser.error(f"--factors must be comma-separated numbers, got "
                         f"{args.factors!r}")
        if not all(f > 0 for f in args.factors):
            parser.error("--factors must all be > 0")
    return args


def _epochs(task, args):
    return max(2, int(round(task.epochs * args.epochs)))


def sweep_specs(args):
    return [
        dict(task=task, optimizer=name, learning_rate=lr, schedule=schedule,
             seed=seed, epochs=_epochs(TASKS[task], args),
             fraction=args.fraction)
        for task in args.tasks
        for name in args.optimizers
        for lr in optimizers.learning_rates(name, args.factors)
        for schedule in args.schedules
        for seed in range(args.seeds)
    ]


def study_specs(args, cells):
    """The threshold study at the constant learning rates the sweep
    chose."""
    specs = []
    for task in args.tasks:
        for study, name in (("fixed", STUDIED["absolute"]),
                            ("adaptive", STUDIED["absolute"]),
                            ("fixed relative", STUDIED["relative"]),
                            ("adaptive relative", STUDIED["relative"]),
                            ("plateau", "Adam")):
            row = cells.get((task, name, "constant"))
            if not row:
                continue
            lr = summary.chosen(row).learning_rate
            specs += [dict(task=task, optimizer=name, learning_rate=lr,
                           schedule="constant", seed=seed, study=study,
                           epochs=_epochs(TASKS[task], args),
                           fraction=args.fraction)
                      for seed in range(args.seeds)]
    return specs


SPEC_KEYS = ("task", "optimizer", "learning_rate", "schedule", "seed",
             "epochs", "fraction", "study")


def _key(spec):
    return tuple(spec.get(k) for k in SPEC_KEYS)


def earlier_runs(path):
    """{spec key: record} of an earlier run's raw records."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        return {_key(r): r for r in map(json.loads, f) if r}


def main(argv=None):
    args = parse(argv)
    earlier = earlier_runs(args.resume)
    args.reused = 0
    os.makedirs(args.output_dir, exist_ok=True)
    raw = os.path.join(args.output_dir, "quality_runs.jsonl")
    start = time.time()
    records = []
    with open(raw + ".partial", "w", encoding="utf-8") as out, \
            runs.Workers(args.workers) as workers:
        def keep(record):
            records.append(record)
            out.write(json.dumps(record) + "\n")
            out.flush()
            done = len(records)
            if done % 20 == 0:
                print(f"  {done} runs, {time.time() - start:.0f} s",
                      file=sys.stderr, flush=True)

        def run_all(specs, what):
            reused = [earlier[_key(s)] for s in specs if _key(s) in earlier]
            specs = [s for s in specs if _key(s) not in earlier]
            args.reused += len(reused)
            print(f"{len(specs)} {what} runs on {args.workers} worker(s), "
                  f"{len(reused)} reused", file=sys.stderr, flush=True)
            for record in reused:
                keep(record)
            if specs:
                workers.run_all(specs, keep)

        run_all(sweep_specs(args), "sweep")
        run_all(study_specs(args, summary.sweep_cells(records)),
                "threshold-study")
    os.replace(raw + ".partial", raw)
    report.write(records, args, args.candidates, time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
