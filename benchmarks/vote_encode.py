"""What each replica does before the vote's collective, with and without
error feedback.

Under `aggregation="majority_vote"` every replica runs one compiled
function (`VoteProgram.encode`) before the collective: it forms its
ternary signal of its gradient share and packs it into 32-bit words; with
`error_feedback=True` it also adds its residual to the share, forms the
residual's scale (two sums over the gradient and residual) and writes the
residual's new value. This script times that function on the update-step
benchmark's 10.1M float32 parameters (40 tensors) at 4 replicas (the
integer all-reduce's packing), for each sign optimizer with and without
error feedback (and SignAdamPP with the adaptive threshold, whose
per-tensor deviation is one more pass), TensorFlow with XLA (the
optimizers' default).

Each configuration runs in a process of its own, as a training process
holds one optimizer: one process that interleaves several encodes reuses
the buffers one of them frees for the next, and hides the fresh memory an
encode may touch at every call. The processes take turns, `--passes`
times, each timing `--calls` calls after 3 untimed ones. Reported: the
median time, its ratio to the same optimizer's encode without error
feedback, and the minor page faults per call (fresh memory: a copy of
all residuals is about 10,000 faults of 4 KiB).

    python -m benchmarks.vote_encode [--passes 3] [--calls 10]
        [--output FILE]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_signadam as ks  # noqa: E402
from benchmarks import machine  # noqa: E402
from benchmarks.update_step import parameter_shapes  # noqa: E402
from keras_signadam.backend.packing import collective_for  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPLICAS = 4
# Row name -> (optimizer, its arguments besides the vote's).
OPTIMIZERS = {
    "SignSGD": ("SignSGD", {}),
    "Signum": ("Signum", {}),
    "SignAdamPP": ("SignAdamPP", {}),
    "SignAdamPP, adaptive threshold": (
        "SignAdamPP", {"threshold_mode": "adaptive"}),
}
TABLE_HEADERS = [
    "| optimizer | error feedback | encode ms | x without error feedback "
    "| page faults per call |",
]


def measure(name, feedback, calls):
    """Seconds and minor page faults of each of `calls` encode calls in
    this process."""
    import tensorflow as tf

    from keras_signadam.backend.tensorflow import majority_vote

    rng = np.random.default_rng(0)
    shapes = parameter_shapes()
    grads = [tf.constant(rng.normal(size=s).astype("float32") * 1e-3)
             for s in shapes]
    variables = [keras.Variable(rng.normal(size=s).astype("float32"))
                 for s in shapes]
    cls, arguments = OPTIMIZERS[name]
    optimizer = getattr(ks, cls)(aggregation="majority_vote",
                                 error_feedback=feedback, **arguments)
    optimizer.build(variables)
    program = majority_vote.VoteProgram(optimizer, variables, REPLICAS,
                                        collective_for(REPLICAS))
    for _ in range(3):
        program.encode(grads).numpy()
    seconds, faults = [], []
    for _ in range(calls):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        program.encode(grads).numpy()
        seconds.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                      - before)
    return seconds, faults


def in_child(name, feedback, calls):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.vote_encode", "--child", name,
         str(int(feedback)), str(calls)],
        check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--output", default=None)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if keras.backend.backend() != "tensorflow":
        parser.error("the vote runs under tf.distribute: KERAS_BACKEND "
                     "must be tensorflow")
    if args.child:
        name, feedback, calls = args.child
        print(json.dumps(measure(name, feedback == "1", int(calls))))
        return 0
    if args.passes < 1 or args.calls < 1:
        parser.error("--passes and --calls must be >= 1")

    keys = [(name, feedback) for name in OPTIMIZERS
            for feedback in (False, True)]
    times = {key: [] for key in keys}
    faults = {key: [] for key in keys}
    for _ in range(args.passes):
        for key in keys:
            seconds, counts = in_child(*key, args.calls)
            times[key] += seconds
            faults[key] += counts

    shapes = parameter_shapes()
    n = sum(int(np.prod(s)) for s in shapes)
    report = machine.Report("The vote's encode step")
    emit = report.emit
    emit(f"{n / 1e6:.1f}M float32 parameters in {len(shapes)} tensors, "
         f"{REPLICAS} replicas (the {collective_for(REPLICAS)} packing), "
         f"XLA; median of {args.passes} x {args.calls} calls, one process "
         f"per configuration and pass. Generated by `python -m "
         f"benchmarks.vote_encode --passes {args.passes} --calls "
         f"{args.calls}`; not edited.")
    emit()
    emit(TABLE_HEADERS[0])
    emit("|---|---|---|---|---|")
    for name, feedback in keys:
        t = float(np.median(times[name, feedback]))
        plain = float(np.median(times[name, False]))
        emit(f"| {name} | {'yes' if feedback else 'no'} | {1e3 * t:.1f} | "
             f"{t / plain:.2f} | {np.mean(faults[name, feedback]):.0f} |")
    emit()
    report.save(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
