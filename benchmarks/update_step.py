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
The rows "error feedback" (`error_feedback=True`) add the residual, and
its scale's two sums over the gradient and residual, a second pass too
(with the adaptive threshold, whose deviation is one more pass, in one of
them).
The rows "bfloat16 state" keep the moments in bfloat16 with stochastic
rounding (`state_dtype="bfloat16"`), whose random bits are computed in the
update; the rows "int8 state" keep them as stochastically rounded 8-bit
codes (`state_dtype="int8"`).

Under `KERAS_BACKEND=jax` (how it runs on a GPU machine without
TensorFlow) there is one setting, "XLA step": `optimizer.stateless_apply`
under `jax.jit` with the state and parameters donated, as Keras's JAX
trainer runs it; the copy bandwidth is then that of an XLA-compiled
element-wise pass (negation). A second table says what XLA compiled for
each step: its own estimate of the bytes moved, the arrays it copies and
its kernels, which show where a step moves more than it must. `--scale`
widens every tensor, so that on a GPU the step is not dominated by kernel
launches and the buffers do not fit in its cache; the copy buffers grow
with it.

    python -m benchmarks.update_step [--rounds 15] [--scale 1]
        [--output FILE]
"""

import argparse
import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_signadam as ks  # noqa: E402
from benchmarks import machine  # noqa: E402

# Bytes each rule must read and write per float32 parameter: the gradient
# and parameter are read, the parameter written, and each state tensor read
# and written once.
OPTIMIZERS = {
    "SignAdamPP": (lambda: ks.SignAdamPP(), 4 * (2 + 1 + 2)),
    "SignAdamPP, statistics": (
        lambda: ks.SignAdamPP(track_statistics=True), 4 * (2 + 1 + 2)),
    "SignAdamPP, adaptive threshold": (
        lambda: ks.SignAdamPP(threshold_mode="adaptive"), 4 * (2 + 1 + 2)),
    # The rule of 0.5: Adam's two moments of the filtered signs.
    "SignAdamPP, second moment": (
        lambda: ks.SignAdamPP(second_moment=True), 4 * (2 + 1 + 2 * 2)),
    "SignAdam": (lambda: ks.SignAdam(), 4 * (2 + 1 + 2 * 2)),
    "Signum": (lambda: ks.Signum(), 4 * (2 + 1 + 2)),
    "SignSGD": (lambda: ks.SignSGD(), 4 * (2 + 1)),
    "SignSGD, statistics": (
        lambda: ks.SignSGD(track_statistics=True), 4 * (2 + 1)),
    "NovoGrad": (lambda: ks.NovoGrad(), 4 * (2 + 1 + 2)),
    # Error feedback adds the residual (read and written); its scale's
    # sums are a second pass over the gradient and residual, not counted.
    "SignAdamPP, error feedback": (
        lambda: ks.SignAdamPP(error_feedback=True), 4 * (2 + 1 + 2 + 2)),
    "SignSGD, error feedback": (
        lambda: ks.SignSGD(error_feedback=True), 4 * (2 + 1 + 2)),
    "SignAdamPP, adaptive threshold, error feedback": (
        lambda: ks.SignAdamPP(threshold_mode="adaptive",
                              error_feedback=True), 4 * (2 + 1 + 2 + 2)),
    # The coupled decay's term lambda theta enters the statistics too.
    "SignAdamPP, adaptive threshold, coupled decay": (
        lambda: ks.SignAdamPP(threshold_mode="adaptive",
                              coupled_weight_decay=1e-4), 4 * (2 + 1 + 2)),
    # Clipping by norm reads the gradient once more, for its norm (not
    # counted).
    "SignAdamPP, clipnorm": (
        lambda: ks.SignAdamPP(clipnorm=1.0), 4 * (2 + 1 + 2)),
    # bfloat16 state: each state tensor moves 2 bytes each way.
    "SignAdamPP, bfloat16 state": (
        lambda: ks.SignAdamPP(state_dtype="bfloat16"), 4 * (2 + 1) + 2 * 2),
    "SignAdam, bfloat16 state": (
        lambda: ks.SignAdam(state_dtype="bfloat16"), 4 * (2 + 1) + 2 * 4),
    "Signum, bfloat16 state": (
        lambda: ks.Signum(state_dtype="bfloat16"), 4 * (2 + 1) + 2 * 2),
    "NovoGrad, bfloat16 state": (
        lambda: ks.NovoGrad(state_dtype="bfloat16"), 4 * (2 + 1) + 2 * 2),
    # int8 state: each state tensor moves 1 byte each way.
    "SignAdamPP, int8 state": (
        lambda: ks.SignAdamPP(state_dtype="int8"), 4 * (2 + 1) + 1 * 2),
    "SignAdam, int8 state": (
        lambda: ks.SignAdam(state_dtype="int8"), 4 * (2 + 1) + 1 * 4),
    "keras Adam": (lambda: keras.optimizers.Adam(), 4 * (2 + 1 + 2 * 2)),
    "keras Adam, clipnorm": (lambda: keras.optimizers.Adam(clipnorm=1.0),
                             4 * (2 + 1 + 2 * 2)),
    "keras Lion": (lambda: keras.optimizers.Lion(), 4 * (2 + 1 + 2)),
    "keras SGD": (lambda: keras.optimizers.SGD(), 4 * (2 + 1)),
}


def settings():
    """Setting name -> jit_compile, for the backend in use."""
    if keras.backend.backend() == "jax":
        return {"XLA step": True}
    return {"fit default": False, "XLA step": True}


def parameter_shapes(scale=1):
    """40 tensors, 10.1M x `scale` parameters: conv kernels, dense
    kernels, biases."""
    shapes = []
    for i in range(10):
        channels, units = 256 * scale, 320 + 32 * i
        shapes += [(3, 3, 160 + 16 * i, channels), (channels,),
                   (1024 * scale, units), (units,)]
    return shapes


def copy_bandwidth(n, repeats=20):
    """Bytes read and written per second by one XLA pass over n floats."""
    if keras.backend.backend() == "jax":
        import jax
        import jax.numpy as jnp

        # Donated, so the pass writes in place like the donated updates
        # (a fresh output buffer each call would time page faults on CPU).
        negate = jax.jit(lambda x: -x, donate_argnums=0)
        buffer = [jnp.ones((n,), "float32")]

        def copy():
            buffer[0] = negate(buffer[0])
            buffer[0].block_until_ready()
    else:
        import tensorflow as tf

        source = tf.Variable(tf.random.uniform((n,)))
        target = tf.Variable(tf.zeros((n,)))

        @tf.function(jit_compile=True)
        def assign():
            target.assign(source)
            return target[0]

        def copy():
            assign().numpy()

    copy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        copy()
        times.append(time.perf_counter() - start)
    return 2 * 4 * n / np.median(times)


def jax_update(optimizer, variables):
    """`optimizer.stateless_apply` as Keras's JAX trainer runs it: jitted,
    with the state (model variables, optimizer variables) donated and
    returned in the order it came in. Returns the update, a function of
    (state, gradients) that returns the new state, and the first state.

    JAX pairs each output with the first unused donated input of its shape
    and dtype; in `stateless_apply`'s own order (optimizer variables in,
    model variables out first) a new parameter would take a moment's
    buffer, and XLA would copy every buffer to keep the old values."""
    import jax

    def update(state, grads):
        trainable, optimizer_variables = state
        return optimizer.stateless_apply(optimizer_variables, grads,
                                         trainable)

    state = ([v.value for v in variables],
             [v.value for v in optimizer.variables])
    return jax.jit(update, donate_argnums=0), state


def device_kind():
    import jax

    return jax.devices()[0].device_kind


def make_step(optimizer, grads, variables, jit_compile):
    """A function that applies one update and waits for it."""
    if keras.backend.backend() == "jax":
        import jax

        update, first = jax_update(optimizer, variables)
        compiled = update.lower(first, grads).compile()
        state = [first]

        def step():
            state[0] = compiled(state[0], grads)
            jax.block_until_ready(state[0])

        step.program = compiled
        return step
    import tensorflow as tf

    @tf.function(jit_compile=jit_compile)
    def apply():
        optimizer.apply(grads, variables)
        return optimizer.iterations

    return lambda: apply().numpy()


BYTES_OF = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2,
            "f32": 4, "s32": 4, "u32": 4, "f64": 8, "s64": 8}


def compiled_traffic(program, n_parameters):
    """What XLA compiled for one JAX step: its own estimate of the bytes
    the step reads and writes, the bytes of the arrays it copies (both per
    parameter), and its kernels (fusions and other top-level operations on
    arrays, scalars left out)."""
    analysis = program.cost_analysis()
    if isinstance(analysis, list):  # older JAX: one dict per program
        analysis = analysis[0]
    entry = program.as_text().split("\nENTRY ", 1)[1]
    arrays = re.findall(r"= (\w+)\[(\d[\d,]*)\]\S* (\w[\w-]*)\(", entry)
    copied = sum(BYTES_OF[dtype] * int(np.prod([int(d) for d in
                                                 dims.split(",")]))
                 for dtype, dims, op in arrays if op == "copy")
    kernels = [op for _, _, op in arrays
               if op not in ("parameter", "bitcast", "constant", "tuple",
                             "get-tuple-element")]
    return (analysis.get("bytes accessed", float("nan")) / n_parameters,
            copied / n_parameters, len(kernels))


def state_bytes_per_parameter(optimizer, n_parameters):
    total = sum(keras.ops.convert_to_numpy(v).nbytes
                for v in optimizer.variables)
    return total / n_parameters


TABLE_HEADERS = [
    "| optimizer | ms / step | x Keras Adam | M params / s | bytes moved / "
    "param | effective GB/s | fraction of copy bandwidth | state bytes / "
    "param |",
    "| optimizer | bytes moved / param | XLA's bytes accessed / param | "
    "bytes copied / param | kernels |",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.scale < 1:
        parser.error("--rounds and --scale must be >= 1")

    rng = np.random.default_rng(0)
    shapes = parameter_shapes(args.scale)
    n = sum(int(np.prod(s)) for s in shapes)
    copy_size = 10 * 2**20 * args.scale
    grads = [keras.ops.convert_to_tensor(
        rng.normal(size=s).astype("float32") * 1e-3) for s in shapes]
    steps, state, traffic = {}, {}, {}
    for name, (factory, _) in OPTIMIZERS.items():
        for setting, jit in settings().items():
            variables = [keras.Variable(rng.normal(size=s).astype("float32"))
                         for s in shapes]
            optimizer = factory()
            optimizer.build(variables)
            state[name] = state_bytes_per_parameter(optimizer, n)
            step = make_step(optimizer, grads, variables, jit)
            if hasattr(step, "program"):
                traffic[name] = compiled_traffic(step.program, n)
            for _ in range(3):
                step()
            steps[name, setting] = step
    bandwidth = copy_bandwidth(copy_size)
    times = {key: [] for key in steps}
    for _ in range(args.rounds):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    bandwidth = max(bandwidth, copy_bandwidth(copy_size))

    report = machine.Report("Update-step benchmark")
    emit = report.emit
    emit(f"{n / 1e6:.1f}M float32 parameters in {len(shapes)} tensors; "
         f"median of {args.rounds} interleaved rounds. Measured copy "
         f"bandwidth (XLA pass, {4 * copy_size / 2**20:.0f} MiB buffers): "
         f"{bandwidth / 1e9:.1f} GB/s. Generated by `python -m "
         f"benchmarks.update_step --rounds {args.rounds} "
         f"--scale {args.scale}` (backend {keras.backend.backend()}); "
         "not edited.")
    for setting in settings():
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
    if traffic:
        emit()
        emit("## What XLA compiled")
        emit()
        emit(f"Per step, from the compiled program of each optimizer's "
             f"step: XLA's own estimate of the bytes it reads and writes "
             f"(its cost analysis for this {device_kind()}), the bytes of "
             f"the arrays it copies, and its kernels (fusions and other "
             f"operations on arrays) for the {len(shapes)} tensors. Bytes "
             f"beyond the minimum are intermediate arrays written and read "
             f"back, inputs read by several kernels, or copies.")
        emit()
        emit(TABLE_HEADERS[1])
        emit("|---|---|---|---|---|")
        for name, (_, moved) in OPTIMIZERS.items():
            accessed, copied, kernels = traffic[name]
            emit(f"| {name} | {moved} | {accessed:.1f} | {copied:.1f} | "
                 f"{kernels} |")
    emit()
    emit("## Targets for `SignAdamPP()` and "
         "`SignAdamPP(state_dtype=\"bfloat16\")`")
    emit()
    t_xla = np.median(times["SignAdamPP", "XLA step"])
    ratio_xla = t_xla / np.median(times["keras Adam", "XLA step"])
    fraction = OPTIMIZERS["SignAdamPP"][1] * n / t_xla / bandwidth
    low = "SignAdamPP, bfloat16 state"
    ratio_low = np.median(times[low, "XLA step"]) / np.median(
        times["keras Adam", "XLA step"])
    # Both also hold a few scalars (step counts, hyperparameters): a few
    # bytes against 10M parameters, so the ratio is read to 3 places.
    state_ratio = round(state[low] / state["keras Adam"], 3)
    targets = []
    if "fit default" in settings():
        ratio_fit = np.median(times["SignAdamPP", "fit default"]) / np.median(
            times["keras Adam", "fit default"])
        targets.append(("fit default, x Keras Adam (target <= 0.6)",
                        ratio_fit, ratio_fit <= 0.6))
    for text, value, met in targets + [
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
    eight = "SignAdamPP, int8 state"
    eight_state = round(state[eight] / state["keras Adam"], 3)
    eight_time = np.median(times[eight, "XLA step"]) / np.median(
        times["keras Adam", "XLA step"])
    emit(f"- int8 state (no target): state bytes per parameter "
         f"{eight_state:.2f}x Keras Adam, XLA step {eight_time:.2f}x")
    emit()
    report.save(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
