"""Update-step throughput against Keras's optimizers and the memory limit.

An optimizer update is element-wise and memory-bound: every step must read
the gradient, the parameters and the state and write the parameters and
the state, so its floor is (bytes moved per parameter x parameters) /
memory bandwidth. This script times `optimizer.apply` on 10.1M float32
parameters in 40 tensors for this package's optimizers and Keras's `Adam`,
`Lion` and `SGD`, interleaved round by round in one process, in two
settings:

(a) "fit default": inside a `tf.function` without XLA, which is how Keras
    runs the train step on CPU-only machines and under `tf.distribute`;
(b) "XLA step": inside a `tf.function(jit_compile=True)`, as
    `model.compile(jit_compile=True)` does.

It also measures the machine's copy bandwidth (an XLA-compiled copy between
two 40 MB buffers) and reports each optimizer's effective bandwidth (the
bytes its rule must move, divided by its median time) and that as a
fraction of the copy bandwidth, the ratio of its time to Keras `Adam`'s in
the same setting, and its optimizer-state bytes per parameter. The rows
"statistics" use `track_statistics=True`, which adds the per-step count of
zero-confidence and non-finite components: a reduction over the gradient,
which XLA on CPU runs as a second pass instead of fusing it into the update.
The rows "bfloat16 state" keep the moments in bfloat16 with stochastic
rounding (`state_dtype="bfloat16"`), whose random bits are computed in the
update.

    python -m benchmarks.update_step [--rounds 15] [--output FILE]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_signadam as ks  # noqa: E402
from benchmarks import machine  # noqa: E402

# Bytes each rule must read and write per float32 parameter: the gradient
# and parameter are read, the parameter written, and each state tensor read
# and written once.
OPTIMIZERS = {
    "SignAdamPP": (lambda: ks.SignAdamPP(), 4 * (2 + 1 + 2 * 2)),
    "SignAdamPP, statistics": (
        lambda: ks.SignAdamPP(track_statistics=True), 4 * (2 + 1 + 2 * 2)),
    "SignAdam": (lambda: ks.SignAdam(), 4 * (2 + 1 + 2 * 2)),
    "Signum": (lambda: ks.Signum(), 4 * (2 + 1 + 2)),
    "SignSGD": (lambda: ks.SignSGD(), 4 * (2 + 1)),
    "SignSGD, statistics": (
        lambda: ks.SignSGD(track_statistics=True), 4 * (2 + 1)),
    "NovoGrad": (lambda: ks.NovoGrad(), 4 * (2 + 1 + 2)),
    # bfloat16 state: each state tensor moves 2 bytes each way.
    "SignAdamPP, bfloat16 state": (
        lambda: ks.SignAdamPP(state_dtype="bfloat16"), 4 * (2 + 1) + 2 * 4),
    "SignAdam, bfloat16 state": (
        lambda: ks.SignAdam(state_dtype="bfloat16"), 4 * (2 + 1) + 2 * 4),
    "Signum, bfloat16 state": (
        lambda: ks.Signum(state_dtype="bfloat16"), 4 * (2 + 1) + 2 * 2),
    "NovoGrad, bfloat16 state": (
        lambda: ks.NovoGrad(state_dtype="bfloat16"), 4 * (2 + 1) + 2 * 2),
    "keras Adam": (lambda: keras.optimizers.Adam(), 4 * (2 + 1 + 2 * 2)),
    "keras Lion": (lambda: keras.optimizers.Lion(), 4 * (2 + 1 + 2)),
    "keras SGD": (lambda: keras.optimizers.SGD(), 4 * (2 + 1)),
}
SETTINGS = {"fit default": False, "XLA step": True}


def parameter_shapes():
    """40 tensors, 10.1M parameters: conv kernels, dense kernels, biases."""
    shapes = []
    for i in range(10):
        shapes += [(3, 3, 160 + 16 * i, 256), (256,), (1024, 320 + 32 * i),
                   (320 + 32 * i,)]
    return shapes


def copy_bandwidth(n=10 * 2**20, repeats=20):
    source = tf.Variable(tf.random.uniform((n,)))
    target = tf.Variable(tf.zeros((n,)))

    @tf.function(jit_compile=True)
    def copy():
        target.assign(source)
        return target[0]

    copy().numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        copy().numpy()
        times.append(time.perf_counter() - start)
    return 2 * 4 * n / np.median(times)


def make_step(optimizer, grads, variables, jit_compile):
    @tf.function(jit_compile=jit_compile)
    def step():
        optimizer.apply(grads, variables)
        return optimizer.iterations

    return step


def state_bytes_per_parameter(optimizer, n_parameters):
    total = sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size
                for v in optimizer.variables)
    return total / n_parameters


TABLE_HEADERS = [
    "| optimizer | ms / step | x Keras Adam | M params / s | bytes moved / "
    "param | effective GB/s | fraction of copy bandwidth | state bytes / "
    "param |",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    shapes = parameter_shapes()
    n = sum(int(np.prod(s)) for s in shapes)
    grads = [tf.constant(rng.normal(size=s).astype("float32") * 1e-3)
             for s in shapes]
    steps, state = {}, {}
    for name, (factory, _) in OPTIMIZERS.items():
        for setting, jit in SETTINGS.items():
            variables = [keras.Variable(rng.normal(size=s).astype("float32"))
                         for s in shapes]
            optimizer = factory()
            optimizer.build(variables)
            state[name] = state_bytes_per_parameter(optimizer, n)
            step = make_step(optimizer, grads, variables, jit)
            for _ in range(3):
                step().numpy()
            steps[name, setting] = step
    bandwidth = copy_bandwidth()
    times = {key: [] for key in steps}
    for _ in range(args.rounds):
        for key, step in steps.items():
            start = time.perf_counter()
            step().numpy()
            times[key].append(time.perf_counter() - start)
    bandwidth = max(bandwidth, copy_bandwidth())

    report = machine.Report("Update-step benchmark")
    emit = report.emit
    emit(f"{n / 1e6:.1f}M float32 parameters in {len(shapes)} tensors; "
         f"median of {args.rounds} interleaved rounds. Measured copy "
         f"bandwidth (XLA copy, 40 MB buffers): {bandwidth / 1e9:.1f} GB/s. "
         f"Generated by `python -m benchmarks.update_step`; not edited.")
    for setting in SETTINGS:
        adam = np.median(times["keras Adam", setting])
        emit()
        emit(f"## {setting}")
        emit()
        emit(TABLE_HEADERS[0])
        emit("|---|---|---|---|---|---|---|---|")
        for name, (_, moved) in OPTIMIZERS.items():
            t = float(np.median(times[name, setting]))
            effective = moved * n / t
            emit(f"| {name} | {1e3 * t:.1f} | {t / adam:.2f} | "
                 f"{n / t / 1e6:.0f} | {moved} | {effective / 1e9:.1f} | "
                 f"{effective / bandwidth:.2f} | {state[name]:.2f} |")
    emit()
    emit("## Targets for `SignAdamPP()` and `SignAdamPP(state_dtype=\"bfloat16\")`")
    emit()
    ratio_fit = np.median(times["SignAdamPP", "fit default"]) / np.median(
        times["keras Adam", "fit default"])
    t_xla = np.median(times["SignAdamPP", "XLA step"])
    ratio_xla = t_xla / np.median(times["keras Adam", "XLA step"])
    fraction = OPTIMIZERS["SignAdamPP"][1] * n / t_xla / bandwidth
    low = "SignAdamPP, bfloat16 state"
    ratio_low = np.median(times[low, "XLA step"]) / np.median(
        times["keras Adam", "XLA step"])
    # Both also hold a few scalars (step counts, hyperparameters): a few
    # bytes against 10M parameters, so the ratio is read to 3 places.
    state_ratio = round(state[low] / state["keras Adam"], 3)
    for text, value, met in [
        ("fit default, x Keras Adam (target <= 0.6)", ratio_fit,
         ratio_fit <= 0.6),
        ("XLA step, x Keras Adam (target <= 1.1)", ratio_xla,
         ratio_xla <= 1.1),
        ("XLA step, fraction of copy bandwidth (target >= 0.6)", fraction,
         fraction >= 0.6),
        ("bfloat16 state: state bytes per parameter, x Keras Adam "
         "(target <= 0.5)", state_ratio, state_ratio <= 0.5),
        ("bfloat16 state: XLA step, x Keras Adam (target <= 0.8)",
         ratio_low, ratio_low <= 0.8),
    ]:
        emit(f"- {text}: {value:.2f}, {'met' if met else 'missed'}")
    emit()
    report.save(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
