"""Time to accuracy on rate-limited links: the vote against the float32
all-reduce, end to end.

    python -m benchmarks.slow_link [--quick]
        [--rates none,10gbit,1gbit,100mbit] [--workers 2,4] [--tta 1gbit:4]
        [--seeds 3] [--epochs 6] [--configs A,B] [--output FILE]
        [--selection JSONL] [--keep-selection JSONL] [--keep-results JSONL]
        [--results JSONL]

Needs iproute2 (`ip`, `tc`) and root or, without root, unprivileged user
namespaces (and util-linux's `unshare`, `nsenter`): it makes a private
network namespace, limits its loopback with a token-bucket filter, and
runs the workers of a `MultiWorkerMirroredStrategy` inside it on
127.0.0.1 (`benchmarks/network_namespace.py`); the namespace is removed
at the end, on an error and on Ctrl-C. Where none can be made it stops
with one line.

1. In one process, the voting step against the float32 step at 8 logical
   CPU replicas (no network).
2. Learning rates: for each configuration, the same grid of multiples of
   its default, one run each under a MirroredStrategy of as many logical
   CPUs as the time-to-accuracy runs have workers (the same arithmetic,
   votes included); the best final validation accuracy chooses.
3. For every worker count and link rate: each configuration's median step
   time, its compute alone (the step without collectives), the payload it
   hands the collectives and the bytes the loopback carried per step, at
   4.35M parameters (the targets) and 10.5M (the time-to-accuracy model).
4. For each link of `--tta`: every configuration trained end to end over
   the seeds, the validation accuracy read with the clock stopped; time to
   accuracy is the training time until the validation accuracy first
   reaches Adam's final accuracy (mean over seeds) minus 0.5 points.
"""

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

from benchmarks.slow_link.tables import BYTES_HEADER
from benchmarks.slow_link.tables import INPROCESS_HEADER
from benchmarks.slow_link.tables import LR_HEADER
from benchmarks.slow_link.tables import STEP_HEADER
from benchmarks.slow_link.tables import TTA_HEADER
from benchmarks.statistics import mean_and_error
from benchmarks.statistics import plus_minus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
TARGET_WIDTH = 2048     # 4.35M parameters: the step-time targets
TTA_WIDTH = 3200        # 10.5M parameters: time to accuracy
FACTORS = (0.3, 1.0, 3.0, 10.0)
DEFAULT_LR = 1e-3
TOLERANCE = 0.005       # the accuracy target: Adam's final minus this
JOBS_PER_LAUNCH = 8
VOTES = {"SignAdamPP vote": "SignAdamPP sum",
         "SignAdamPP vote EF": "SignAdamPP sum",
         "Signum vote": "Signum sum", "Signum vote EF": "Signum sum"}


def parse(argv):
    from benchmarks import network_namespace

    parser = argparse.ArgumentParser(prog="python -m benchmarks.slow_link",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 workers, no limit and 1 Gbit/s, small "
                             "models, few steps, 2 epochs, 1 seed, default "
                             "learning rates, 2 replicas in one process")
    parser.add_argument("--rates", default=None)
    parser.add_argument("--workers", default=None)
    parser.add_argument("--tta", default=None,
                        help="links for time to accuracy, RATE:WORKERS, "
                             "comma-separated")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--width", type=int, default=None,
                        help="units per hidden layer of the time-to-"
                             f"accuracy model (default {TTA_WIDTH})")
    parser.add_argument("--only-tta", action="store_true",
                        help="time to accuracy (and its learning rates) "
                             "only: no step-time tables")
    parser.add_argument("--configs", default=None,
                        help="a subset of the configurations, "
                             "comma-separated")
    parser.add_argument("--selection", default=None, metavar="JSONL",
                        help="the learning-rate runs of an earlier run "
                             "(its --keep-selection file): reused where "
                             "they match, the others run")
    parser.add_argument("--keep-selection", default=None, metavar="JSONL",
                        help="also write the learning-rate runs here")
    parser.add_argument("--results", default=None, metavar="JSONL",
                        help="the jobs of an earlier run (its "
                             "--keep-results file): reused where they "
                             "match, the others run")
    parser.add_argument("--keep-results", default=None, metavar="JSONL",
                        help="also append every job's raw result here as "
                             "it arrives (a later failure loses nothing)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    args.command = shown_command(args)
    from benchmarks.slow_link import worker

    args.configs = [c.strip() for c in (args.configs or ",".join(
        worker.CONFIGS)).split(",") if c.strip()]
    unknown = [c for c in args.configs if c not in worker.CONFIGS]
    if unknown or not args.configs:
        parser.error(f"--configs: unknown {unknown or args.configs}; "
                     f"choose from {', '.join(worker.CONFIGS)}")
    quick = args.quick
    try:
        args.rates = [network_namespace.parse_rate(r) for r in (
            args.rates or ("none,1gbit" if quick
                           else "none,10gbit,1gbit,100mbit")).split(",")]
    except ValueError as error:
        parser.error(f"--rates: {error}")
    try:
        args.workers = [int(w) for w in (
            args.workers or ("2" if quick else "2,4")).split(",")]
        args.tta = [(network_namespace.parse_rate(link.split(":")[0]),
                     int(link.split(":")[1]))
                    for link in (args.tta or ("1gbit:2" if quick
                                              else "1gbit:4")).split(",")
                    if link]
    except (ValueError, IndexError) as error:
        parser.error(f"--workers / --tta: {error}")
    if any(w < 2 for w in args.workers) or any(w < 2 for _, w in args.tta):
        parser.error("--workers and --tta need at least 2 workers")
    args.seeds = args.seeds or (1 if quick else 3)
    args.epochs = args.epochs or (2 if quick else 6)
    if args.seeds < 1 or args.epochs < 1:
        parser.error("--seeds and --epochs must be >= 1")
    args.widths = ((128, 128) if quick else (TARGET_WIDTH, TTA_WIDTH))
    if args.width is not None:
        if args.width < 1:
            parser.error("--width must be >= 1")
        args.widths = (args.widths[0], args.width)
    args.factors = (1.0,) if quick else FACTORS
    args.steps, args.budget = (3, 10.0) if quick else (15, 60.0)
    args.inprocess = 2 if quick else 8
    return args


def shown_command(args):
    """The command line as the report names it: every option given that
    shapes the results (read from the parsed values, so abbreviated and
    `--name=value` spellings count alike), none that only say where files
    go."""
    shown = ["python", "-m", "benchmarks.slow_link"]
    for name, value in vars(args).items():
        if value in (None, False) or name in ("output", "keep_results",
                                              "keep_selection"):
            continue
        shown.append("--" + name.replace("_", "-"))
        if value is not True:
            shown.append(str(value))
    return shlex.join(shown)


# ---------------------------------------------------------- processes
def python(module, *arguments):
    return [sys.executable, "-m", module, *map(str, arguments)]


def environment():
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep
                + os.environ.get("PYTHONPATH", ""),
                TF_CPP_MIN_LOG_LEVEL="3")


def run_child(argv, timeout=7200):
    result = subprocess.run(argv, capture_output=True, text=True,
                            env=environment(), cwd=ROOT, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed:\n"
                           + result.stderr[-3000:])


def write_lines(path, rows, mode):
    with open(path, mode, encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


_PORT = [23000]


def run_workers(ns, workers, plan, folder, timeout=14400):
    """Runs `plan` on `workers` worker processes inside the namespace;
    returns worker 0's results."""
    plan_path = os.path.join(folder, f"plan{time.monotonic_ns()}.json")
    output = plan_path.replace("plan", "out")
    with open(plan_path, "w", encoding="utf-8") as f:
        json.dump(plan, f)
    port, _PORT[0] = _PORT[0], _PORT[0] + workers + 1
    processes = [subprocess.Popen(
        ns.command(python("benchmarks.slow_link.worker", index, workers,
                          port, plan_path, output)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=environment(), cwd=ROOT) for index in range(workers)]
    try:
        errors = [p.communicate(timeout=timeout)[1] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, error in zip(processes, errors):
        if p.returncode != 0:
            raise RuntimeError(f"worker failed:\n{error[-3000:]}")
    return read_lines(output)


def matching(job, results):
    """The earlier result of the same job, or None."""
    for result in results:
        if all(result.get(key) == value for key, value in job.items()):
            return result
    return None


# -------------------------------------------------------------- phases
def inprocess_steps(args, folder):
    output = os.path.join(folder, "inprocess.json")
    run_child(python("benchmarks.slow_link.inprocess", "steps",
                     args.inprocess, args.widths[0],
                     5 if args.quick else 20, output))
    with open(output, encoding="utf-8") as f:
        return json.load(f)


def select_rates(args, folder, replicas):
    """{configuration: (chosen lr, {lr: validation accuracy})}."""
    configs = tta_configs(args)
    plan = [dict(config=config, width=args.widths[1],
                 lr=round(DEFAULT_LR * factor, 12), seed=0,
                 epochs=args.epochs)
            for config in configs for factor in args.factors]
    if len(args.factors) == 1:
        return {c: (DEFAULT_LR, {}) for c in configs}
    earlier = read_lines(args.selection) if args.selection else []
    key = ("config", "width", "lr", "seed", "epochs")
    done = {tuple(r[k] for k in key): r for r in earlier}
    rows = [done[tuple(p[k] for k in key)] for p in plan
            if tuple(p[k] for k in key) in done]
    plan = [p for p in plan if tuple(p[k] for k in key) not in done]
    plan_path = os.path.join(folder, "select.json")
    output = os.path.join(folder, "selected.jsonl")
    # A few runs per child: its memory grows with every 10M-parameter
    # model it builds (12 GB after 18).
    for first in range(0, len(plan), JOBS_PER_LAUNCH):
        with open(plan_path, "w", encoding="utf-8") as f:
            json.dump(plan[first:first + JOBS_PER_LAUNCH], f)
        run_child(python("benchmarks.slow_link.inprocess", "select",
                         replicas, plan_path, output))
    if plan:
        rows += read_lines(output)
    if args.keep_selection:
        write_lines(args.keep_selection, rows, "w")
    chosen = {}
    for row in rows:
        chosen.setdefault(row["config"], {})[row["lr"]] = row["val_accuracy"]
    # Ties go to the lower learning rate.
    return {c: (max(accuracies, key=lambda lr: (accuracies[lr], -lr)),
                accuracies) for c, accuracies in chosen.items()}


def tta_configs(args):
    from benchmarks.slow_link import worker

    return [c for c in worker.TRAINED if c in args.configs]


def time_plan(args):
    return [dict(kind="time", config=config, width=width, lr=DEFAULT_LR,
                 steps=args.steps, budget=args.budget)
            for width in sorted(set(args.widths))
            for config in args.configs]


def tta_plan(args, rates):
    return [dict(kind="train", config=config, width=args.widths[1],
                 lr=rates[config][0], seed=seed, epochs=args.epochs,
                 evals_per_epoch=2)
            for seed in range(args.seeds) for config in tta_configs(args)]


# -------------------------------------------------------------- report
def step_rows(emit, results, rate_name):
    by_key = {(r["workers"], r["rate"], r["width"], r["config"]): r
              for r in results}
    ratios = {}
    for (workers, rate, width, config), r in sorted(
            by_key.items(), key=lambda kv: (kv[0][0], -(kv[0][1] or 1e18),
                                            kv[0][2])):
        base = by_key.get((workers, rate, width, VOTES.get(config)))
        ratio = r["step_ms"] / base["step_ms"] if base else None
        if ratio is not None:
            ratios[(workers, rate, width, config)] = ratio
        wire = r["wire_bytes_per_step"]
        emit(f"| {workers} | {rate_name(rate)} | {r['parameters'] / 1e6:.2f}M"
             f" | {config} | {r['step_ms']:.1f} | {r['compute_ms']:.1f} | "
             f"{max(0.0, r['step_ms'] - r['compute_ms']):.1f} | "
             f"{'' if ratio is None else f'{ratio:.2f}'} | "
             f"{r['payload_bytes']} | "
             f"{'' if wire is None else f'{wire / workers:.0f}'} |")
    return ratios


def time_to_target(curve, target):
    for seconds, step, accuracy in curve:
        if accuracy >= target:
            return seconds, step
    return None, None


def tta_rows(emit, results, rate_name):
    """The table, and {(rate, workers, config): (mean seconds, whether
    every seed reached the target)}.

    A seed that never reached the target counts with its whole training
    time, a lower bound on its time to target: the mean is then shown as
    a bound (>=), and so is its ratio to Adam's (<= where only Adam's is a
    bound, >= where only this one's is, none where both are)."""
    import numpy as np

    from benchmarks.slow_link import worker

    summary = {}
    for (rate, workers) in sorted({(r["rate"], r["workers"])
                                   for r in results}, key=str):
        runs = [r for r in results if (r["rate"], r["workers"]) == (
            rate, workers)]
        adam = [r["curve"][-1][2] for r in runs if r["config"] == "Adam"]
        if not adam:
            continue
        target = float(np.mean(adam)) - TOLERANCE
        emit(f"Target at {rate_name(rate)}, {workers} workers: Adam's final "
             f"validation accuracy {np.mean(adam):.4f} minus 0.5 points = "
             f"{target:.4f}.")
        emit()
        emit(TTA_HEADER)
        emit("|" + "---|" * (TTA_HEADER.count("|") - 1))
        adam_time = None
        for config in worker.TRAINED:
            mine = [r for r in runs if r["config"] == config]
            if not mine:
                continue
            reached = [time_to_target(r["curve"], target) for r in mine]
            steps = [k for _, k in reached if k is not None]
            bounded = [s if s is not None else r["curve"][-1][0]
                       for (s, _), r in zip(reached, mine)]
            finals = [r["curve"][-1][2] for r in mine]
            tests = [r["test_accuracy"] for r in mine]
            exact = len(steps) == len(mine)
            mean_time = mean_and_error(bounded) if steps else None
            if mean_time:
                summary[(rate, workers, config)] = (mean_time[0], exact)
            if config == "Adam" and mean_time:
                adam_time = summary[(rate, workers, config)]
            versus = ""
            if mean_time and adam_time and (exact or adam_time[1]):
                sign = ("" if exact and adam_time[1] else
                        "≤ " if exact else "≥ ")
                versus = f"{sign}{mean_time[0] / adam_time[0]:.2f}x"
            shown = ("not reached" if not mean_time else
                     ("" if exact else "≥ ") + plus_minus(*mean_time, 1))
            emit(f"| {rate_name(rate)} | {workers} | {config} | "
                 f"{mine[0]['lr']:g} | {shown} | "
                 f"{len(steps)} of {len(mine)} | "
                 f"{plus_minus(*mean_and_error(steps), 0) if steps else ''} | "
                 f"{plus_minus(*mean_and_error(finals), 4)} | "
                 f"{plus_minus(*mean_and_error(tests), 4)} | {versus} |")
        emit()
    return summary


def ring_bytes(config, parameters_by_variable, workers, row):
    """Bytes one worker sends per step under the ring algorithms: the
    optimizer's own account where it gives one (local steps), else the
    float32 all-reduce or the packed vote of every variable."""
    from keras_signadam.backend import packing

    if row.get("optimizer_bytes_per_step") is not None:
        return row["optimizer_bytes_per_step"]
    total = sum(parameters_by_variable)
    if config in VOTES:
        collective = packing.collective_for(workers, total)
        return sum(packing.ring_bytes_sent(collective, n, workers)
                   for n in parameters_by_variable)
    return packing.ring_bytes_sent("float32_all_reduce", total, workers)


def bytes_rows(emit, results, rate_name):
    """Bytes per step of the time-to-accuracy runs, over the whole run
    (rounds included)."""
    from benchmarks.slow_link import worker

    rows = [r for r in results if r.get("wire_bytes_per_step") is not None]
    if not rows:
        return
    emit("## Bytes per step")
    emit()
    emit(BYTES_HEADER)
    emit("|" + "---|" * (BYTES_HEADER.count("|") - 1))
    for (rate, workers) in sorted({(r["rate"], r["workers"]) for r in rows},
                                  key=str):
        runs = [r for r in rows if (r["rate"], r["workers"]) == (rate,
                                                                 workers)]
        sizes = worker.variable_sizes(runs[0]["width"])
        adam = ring_bytes("Adam", sizes, workers, {})
        for config in worker.TRAINED:
            mine = [r for r in runs if r["config"] == config]
            if not mine:
                continue
            wire = mean_and_error([r["wire_bytes_per_step"] / workers
                                   for r in mine])[0]
            ring = ring_bytes(config, sizes, workers, mine[0])
            emit(f"| {rate_name(rate)} | {workers} | {config} | {wire:,.0f} "
                 f"| {ring:,.0f} | {adam / ring if ring else float('inf'):.1f}"
                 f"x |")
    emit()
    emit("*Loopback*: bytes the namespace's loopback carried over the whole "
         "run (every worker's, TCP and gRPC included), per step and "
         "worker. *Ring*: what one worker's collectives send per step "
         "under the ring algorithms (for local steps, a round's exchange "
         "divided by its steps); *fewer*: the float32 all-reduce's ring "
         "bytes divided by this.")
    emit()


def local_targets(emit, args, tta, name):
    """The local-steps goals at every time-to-accuracy link."""
    import numpy as np

    from benchmarks.slow_link import worker

    for rate, workers in args.tta:
        runs = [r for r in tta if (r["rate"], r["workers"]) == (rate,
                                                                workers)]
        adam_runs = [r for r in runs if r["config"] == "Adam"]
        if not adam_runs:
            continue
        adam_final = float(np.mean([r["curve"][-1][2] for r in adam_runs]))
        sizes = worker.variable_sizes(adam_runs[0]["width"])
        for config in worker.LOCAL:
            mine = [r for r in runs if r["config"] == config]
            if not mine:
                continue
            final = float(np.mean([r["curve"][-1][2] for r in mine]))
            fewer = ring_bytes("Adam", sizes, workers, {}) / ring_bytes(
                config, sizes, workers, mine[0])
            at = f"{config} at {name(rate)} with {workers} workers"
            emit(f"- {at}: {fewer:.0f}x fewer bytes per step than the "
                 f"float32 all-reduce (target: at least 100x): "
                 f"{verdict(fewer >= 100)}; final validation accuracy "
                 f"{100 * (final - adam_final):+.2f} points from Adam's "
                 f"(target: within 0.5): "
                 f"{verdict(final >= adam_final - TOLERANCE)}.")
            target = adam_final - TOLERANCE
            own = bounded_time(mine, target)
            for other, label, bound in (
                    ("SignAdamPP vote", "the per-step vote's", 0.3),
                    ("Adam", "Adam's all-reduce's", 0.05)):
                theirs = bounded_time([r for r in runs
                                       if r["config"] == other], target)
                if theirs is None:
                    emit(f"- {at}: {label} time not measured.")
                    continue
                ratio = own[0] / theirs[0]
                # A time that was not reached on every seed is a lower
                # bound: the ratio is then a bound, or unknown.
                if own[1] and theirs[1]:
                    shown, ok = f"{ratio:.3f}x", ratio <= bound
                elif own[1]:
                    shown, ok = f"at most {ratio:.3f}x", ratio <= bound
                elif theirs[1]:
                    shown, ok = (f"at least {ratio:.3f}x (not reached on "
                                 f"every seed)"), False
                else:
                    shown, ok = "unknown: neither reached it on every seed;"\
                        f" {ratio:.3f}x over whole runs", False
                emit(f"- {at}: time to Adam's accuracy minus 0.5 points "
                     f"against {label}: {shown} (target: at most {bound}x)"
                     f": {verdict(ok)}.")


def bounded_time(runs, target):
    """(mean time to `target`, whether every run reached it); a run that
    did not counts with its whole training time. None without runs."""
    if not runs:
        return None
    reached = [time_to_target(r["curve"], target)[0] for r in runs]
    seconds = [t if t is not None else r["curve"][-1][0]
               for t, r in zip(reached, runs)]
    return (sum(seconds) / len(seconds),
            all(t is not None for t in reached))


def verdict(ok):
    return "met" if ok else "NOT met"


def last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no error output"


def failure_lines(emit, failures, name):
    for rate, workers, error in failures:
        emit(f"- {workers} workers at {name(rate)}: a worker failed, and "
             f"the jobs of that link after it did not run: `{error}`")
    if failures:
        emit()


def step_sections(emit, args, inprocess, steps, name, failures):
    """The step-time and in-process tables; returns the step-time ratios
    and the in-process vote / sum ratio."""
    emit("## Step time and bytes")
    emit()
    emit(STEP_HEADER)
    emit("|" + "---|" * (STEP_HEADER.count("|") - 1))
    ratios = step_rows(emit, steps, name)
    emit()
    failure_lines(emit, failures, name)
    emit("*Payload*: bytes one replica hands the collectives per step. "
         "*Loopback*: bytes the namespace's loopback carried per step "
         "(every worker's, with TCP and gRPC overhead), divided by the "
         "workers.")
    emit()
    emit("## In one process")
    emit()
    emit(INPROCESS_HEADER)
    emit("|" + "---|" * (INPROCESS_HEADER.count("|") - 1))
    in_sum = next(r for r in inprocess if r["config"] == "SignAdamPP sum")
    in_ratio = None
    for r in inprocess:
        ratio = r["step_ms"] / in_sum["step_ms"]
        if r["config"] != "SignAdamPP sum":
            in_ratio = ratio
        emit(f"| {r['replicas']} | {r['config']} | {r['step_ms']:.1f} | "
             f"{ratio:.2f} |")
    emit()
    emit("MirroredStrategy over logical CPUs, "
         f"{inprocess[0]['parameters'] / 1e6:.2f}M parameters, global "
         "batch 128: no network, so this is what packing and voting cost.")
    emit()
    return ratios, in_ratio


def write_report(args, inprocess, rates, steps, tta, seconds, output,
                 failures=()):
    from benchmarks import machine
    from benchmarks import network_namespace

    name = network_namespace.rate_name
    report = machine.Report("Time to accuracy on slow links: the majority "
                            "vote against the float32 all-reduce")
    emit = report.emit
    reused = getattr(args, "reused", 0)
    emit(f"Generated by `{args.command}` in {seconds / 60:.1f} min"
         + (f", {reused} jobs taken from an earlier run's results "
            f"(`--results`; their times are that run's)" if reused else "")
         + ". "
         f"Workers are processes of this machine in a "
         f"`MultiWorkerMirroredStrategy` (ring collectives over gRPC) on "
         f"127.0.0.1 inside a private network namespace whose loopback is "
         f"limited with `tc` tbf: the limit is shared by all the workers' "
         f"traffic, as W workers behind one link of that rate. Each worker "
         f"has {os.cpu_count()} // W threads. Digits (the quality "
         f"benchmark's split), MLP 64-W-W-10, global batch 128, a custom "
         f"`strategy.run` loop; lr {DEFAULT_LR:g} for the step times. "
         f"Communication is the step minus its compute alone (gradients "
         f"and update on one worker's share without collectives): packing, "
         f"transfer and waiting.")
    emit()
    ratios, in_ratio = {}, None
    if not args.only_tta:
        ratios, in_ratio = step_sections(emit, args, inprocess, steps, name,
                                         failures)
    else:
        failure_lines(emit, failures, name)
    emit("## Time to accuracy")
    emit()
    from benchmarks.slow_link import worker

    emit(f"Model of {args.widths[1]} units per layer "
         f"({worker.parameters(args.widths[1]):,} "
         f"parameters), {args.epochs} epochs, seeds 0..{args.seeds - 1}, "
         f"validation accuracy twice per epoch with the clock stopped "
         f"(and during the first step, which traces and compiles); times "
         f"are mean ± standard error over the seeds. A seed that did not "
         f"reach the target counts with its whole training time, so a "
         f"mean marked ≥ is a lower bound, and a ratio to it a bound "
         f"too.")
    emit()
    times = tta_rows(emit, tta, name)
    bytes_rows(emit, tta, name)
    emit("## Learning rates")
    emit()
    emit(f"Chosen by final validation accuracy over "
         f"{', '.join(f'{f:g}x' for f in args.factors)} of {DEFAULT_LR:g}, "
         f"one run each (seed 0) under a MirroredStrategy with as many "
         f"replicas as the time-to-accuracy workers.")
    emit()
    emit(LR_HEADER)
    emit("|" + "---|" * (LR_HEADER.count("|") - 1))
    for config, (lr, accuracies) in rates.items():
        emit(f"| {config} | {lr:g} | "
             + " ".join(f"{k:g}: {v:.4f}" for k, v in sorted(
                 accuracies.items())) + " |")
    emit()
    emit("## Targets")
    emit()
    width = args.widths[0]

    def ratio_at(rate, workers=2, config="SignAdamPP vote"):
        return ratios.get((workers, rate, width, config))

    checks = [("vote / sum step time, no limit, 2 workers", ratio_at(None),
               1.1),
              (f"vote / sum step time, {args.inprocess} replicas in one "
               f"process", in_ratio, 1.1),
              ("vote / sum step time at 10 Gbit/s, 2 workers",
               ratio_at(10e9), 1.0),
              ("vote / sum step time at 1 Gbit/s, 2 workers", ratio_at(1e9),
               0.3)]
    for text, value, bound in checks:
        if value is not None:
            emit(f"- {text} ({width} units): {value:.2f} (target: at most "
                 f"{bound}): {verdict(value <= bound)}.")
    for rate, workers in args.tta:
        vote = times.get((rate, workers, "SignAdamPP vote"))
        adam = times.get((rate, workers, "Adam"))
        if not adam:
            emit(f"- SignAdamPP with the vote against Adam at {name(rate)} "
                 f"with {workers} workers: not measured (Adam did not "
                 f"reach its own target on any seed).")
            continue
        # Shown where the vote's mean is exact: against a bound on
        # Adam's (a seed that did not reach), the ratio is at most this.
        settled = vote is not None and vote[1]
        if settled:
            value = (f"reaches the target in {'' if adam[1] else 'at most '}"
                     f"{vote[0] / adam[0]:.2f}x of Adam's time")
        else:
            value = "does not reach the target on every seed"
        emit(f"- SignAdamPP with the vote {value} at {name(rate)} with "
             f"{workers} workers (target: at most 0.5x): "
             f"{verdict(settled and vote[0] <= 0.5 * adam[0])}.")
    local_targets(emit, args, tta, name)
    report.save(output)


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    from benchmarks import network_namespace

    # SIGTERM unwinds the whole run, so the child of the phase under way
    # is stopped with it (subprocess.run kills it on any exception).
    signal.signal(signal.SIGTERM, network_namespace.terminate)
    try:
        # Made first, so a machine that cannot make one is told at once.
        with network_namespace.private(f"ks-slow-link-{os.getpid()}") as ns:
            return measure(args, ns)
    except network_namespace.Unavailable as error:
        print(f"slow_link: cannot run here: {error}", file=sys.stderr)
        return 2


def measure(args, ns):
    """Every phase, with the workers inside `ns`; writes the report."""
    from benchmarks import network_namespace

    start = time.time()
    with tempfile.TemporaryDirectory() as folder:
        inprocess = []
        if not args.only_tta:
            print("in-process steps", file=sys.stderr, flush=True)
            inprocess = inprocess_steps(args, folder)
        print("learning rates", file=sys.stderr, flush=True)
        rates = select_rates(args, folder, args.tta[0][1])
        # The jobs of each link.
        plans = {}
        for workers in ([] if args.only_tta else args.workers):
            for rate in args.rates:
                plans.setdefault((rate, workers), []).extend(
                    time_plan(args))
        for rate, workers in args.tta:
            plans.setdefault((rate, workers), []).extend(
                tta_plan(args, rates))
        results, failures = [], []
        earlier = read_lines(args.results) if args.results else []
        args.reused = 0
        for (rate, workers), plan in plans.items():
            done = [r for r in earlier
                    if (r["rate"], r["workers"]) == (rate, workers)]
            reused = [matching(job, done) for job in plan]
            results += [r for r in reused if r is not None]
            args.reused += sum(r is not None for r in reused)
            plan = [job for job, r in zip(plan, reused) if r is None]
            if not plan:
                continue
            rate_name = network_namespace.rate_name(rate)
            print(f"{workers} workers, {rate_name}: {len(plan)} jobs",
                  file=sys.stderr, flush=True)
            ns.limit(rate)
            # A few jobs per launch: the workers' memory grows with every
            # 10M-parameter model they build.
            for first in range(0, len(plan), JOBS_PER_LAUNCH):
                try:
                    launched = [dict(r, rate=rate) for r in run_workers(
                        ns, workers, plan[first:first + JOBS_PER_LAUNCH],
                        folder)]
                except RuntimeError as error:
                    # A link can fail where another works (at 100 Mbit/s,
                    # 4 workers' transfers once starved the heartbeats);
                    # the rest of the run goes on.
                    failures.append((rate, workers, last_line(str(error))))
                    print(f"  failed: {failures[-1][2]}",
                          file=sys.stderr, flush=True)
                    break
                results += launched
                if args.keep_results:
                    write_lines(args.keep_results, launched, "a")
        steps = [r for r in results if r["kind"] == "time"]
        tta = [r for r in results if r["kind"] == "train"]
        write_report(args, inprocess, rates, steps, tta,
                     time.time() - start, args.output, failures)
    return 0


if __name__ == "__main__":
    from benchmarks import network_namespace

    try:
        sys.exit(main())
    except network_namespace.Terminated:
        sys.exit(128 + signal.SIGTERM)
