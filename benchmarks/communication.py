"""Sign-compressed gradient communication: bytes, accuracy and step time.

    python -m benchmarks.communication [--quick] [--output FILE]

Measures `aggregation="majority_vote"` against the exact float32 sum:

1. Bytes per replica per step at 2, 4 and 8 replicas (MirroredStrategy on
   logical CPUs, one process per replica count), read off the tensors each
   replica-context collective call is given and returns, for the float32
   all-reduce and for both packings of the vote. Wire bytes follow the ring
   algorithms: an all-reduce of n bytes sends 2 (R - 1) / R n per replica,
   an all-gather of n bytes per replica sends (R - 1) n.
2. Digits test accuracy at 4 replicas (`model.fit`, global batch 128),
   voted (with and without error feedback) against exact, for each sign
   optimizer, over 3 seeds.
3. Step time under MirroredStrategy in one process (the bytes table's
   last column): with no network between the replicas it shows what
   packing and voting cost, not what fewer bytes save. Workers in
   separate processes behind rate-limited links are `benchmarks/slow_link`
   (a network namespace of its own, `tc`); the saving at scale is the
   cost model.
4. A cost model: communication time per step on 1, 10 and 100 Gbit/s links
   for 8 to 256 replicas and a 25.6M-parameter model (ResNet-50), from
   the bytes per component measured in 1.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks import distributed_step
from benchmarks.statistics import mean_and_error
from benchmarks.statistics import plus_minus

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGN_OPTIMIZERS = ("SignAdamPP", "SignAdam", "Signum", "SignSGD")
MODES = ("sum", "all_gather", "all_reduce")
RESNET50_PARAMETERS = 25_557_032
BYTES_HEADER = ("| replicas | aggregation | collective | sent B | received B "
                "| bits/param sent | wire B | vs float32 | chosen | step ms |")
ACCURACY_HEADER = ("| optimizer | exact float32 sum | majority vote | "
                   "difference | vote with error feedback | difference |")
ACCURACY_MODES = ("sum", "majority_vote", "majority_vote EF")
# The target of the vote with error feedback: within this of exact.
EF_TOLERANCE = 0.005
COST_HEADER = ("| replicas | float32 B/param | vote B/param | ratio | "
               "1 Gbit/s float32 / vote ms | 10 Gbit/s | 100 Gbit/s |")
TABLE_HEADERS = [BYTES_HEADER, ACCURACY_HEADER, COST_HEADER]


def table(emit, header):
    emit(header)
    emit("|" + "---|" * (header.count("|") - 1))


def optimizer_for(name, mode, **kwargs):
    import keras_signadam as ks

    aggregation = "sum" if mode == "sum" else "majority_vote"
    if mode.endswith("EF"):
        kwargs["error_feedback"] = True
    return getattr(ks, name)(1e-3, aggregation=aggregation, **kwargs)


def force_collective(mode):
    """Makes the vote use `mode`'s collective (the benchmark measures
    both; the optimizer otherwise picks by replica count)."""
    from keras_signadam.backend.tensorflow import majority_vote

    if mode != "sum":
        majority_vote.collective_for = lambda r, components=0: mode


def logical_cpus(count):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)


class CollectiveLog:
    """Sizes of the tensors given to and returned by each replica-context
    collective call (patched in, so nothing is assumed)."""

    def __init__(self):
        import tensorflow as tf

        self.calls = []
        context = tf.distribute.ReplicaContext
        originals = (context.all_reduce, context.all_gather)
        log = self

        def size(values):
            return sum(v.shape.num_elements() * v.dtype.size
                       for v in tf.nest.flatten(values))

        def all_reduce(self, reduce_op, value, options=None):
            result = originals[0](self, reduce_op, value, options)
            log.calls.append(("all_reduce", size(value), size(result)))
            return result

        def all_gather(self, value, axis, options=None):
            result = originals[1](self, value, axis, options)
            log.calls.append(("all_gather", size(value), size(result)))
            return result

        context.all_reduce, context.all_gather = all_reduce, all_gather


def custom_loop(strategy, mode, width, batch):
    """A model, an optimizer and a `strategy.run` train step whose only
    collective is the optimizer's gradient aggregation."""
    import keras

    from keras_signadam.comparison import datasets
    from keras_signadam.comparison import models

    (x, y), _ = datasets.load_digits()
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = models.mlp((8, 8, 1), 10, width=width)
        optimizer = optimizer_for("SignAdamPP", mode)
        optimizer.build(model.trainable_variables)
    batches = distributed_step.distributed_batches(strategy, x, y, batch)
    step = distributed_step.train_step(strategy, model, optimizer, batch)

    parameters = sum(int(v.shape.num_elements())
                     for v in model.trainable_variables)
    return lambda: step(next(batches)), parameters


def time_steps(step, steps):
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


# ----------------------------------------------------------- child modes
def child_bytes(replicas, steps, width):
    """Bytes of one step's collectives and the median step time, for each
    mode, at `replicas` replicas in one process."""
    logical_cpus(8)
    import tensorflow as tf

    log = CollectiveLog()
    strategy = tf.distribute.MirroredStrategy(
        [f"/cpu:{i}" for i in range(replicas)])
    rows = []
    for mode in MODES:
        force_collective(mode)
        step, parameters = custom_loop(strategy, mode, width,
                                       batch=32 * replicas)
        start = len(log.calls)
        step()
        calls = log.calls[start:]
        # One call per replica per step (the trace records each once).
        kinds = {c[0] for c in calls}
        assert len(kinds) == 1 and len(set(calls)) == 1, calls
        name, sent, received = calls[0]
        rows.append({"mode": mode, "replicas": replicas,
                     "parameters": parameters, "collective": name,
                     "sent": sent, "received": received,
                     "step_ms": 1e3 * time_steps(step, steps)})
    print(json.dumps(rows), flush=True)


def child_accuracy(replicas, seeds, epochs):
    logical_cpus(replicas)
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_signadam.comparison import datasets
    from keras_signadam.comparison import models

    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    strategy = tf.distribute.MirroredStrategy(
        [f"/cpu:{i}" for i in range(replicas)])

    def accuracy(model, x, y):
        # Outside the strategy: `evaluate` under it fails on a last batch
        # that does not split evenly across the replicas.
        logits = keras.ops.convert_to_numpy(model(x, training=False))
        return float(np.mean(np.argmax(logits, axis=1) == y))

    rows = []
    for name in SIGN_OPTIMIZERS:
        for mode in ACCURACY_MODES:
            for seed in seeds:
                with strategy.scope():
                    keras.utils.set_random_seed(seed)
                    model = models.mlp(x_train.shape[1:], 10)
                    model.compile(
                        optimizer=optimizer_for(name, mode),
                        loss=keras.losses.SparseCategoricalCrossentropy(
                            from_logits=True))
                model.fit(x_train, y_train, batch_size=32 * replicas,
                          epochs=epochs, verbose=0)
                rows.append({"optimizer": name, "mode": mode, "seed": seed,
                             "test_accuracy": accuracy(model, x_test,
                                                       y_test),
                             "train_accuracy": accuracy(model, x_train,
                                                        y_train)})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(json.dumps(rows), flush=True)


# ---------------------------------------------------------------- parent
def run_child(*args, timeout=3600):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.communication", "--child",
         *map(str, args)], capture_output=True, text=True, env=env,
        timeout=timeout, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def wire_bytes(collective, sent, replicas):
    if collective == "all_gather":
        return (replicas - 1) * sent
    return 2 * (replicas - 1) / replicas * sent


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        kind, *rest = argv[1:]
        if kind == "bytes":
            child_bytes(*map(int, rest))
        elif kind == "accuracy":
            replicas, epochs, *seeds = map(int, rest)
            child_accuracy(replicas, seeds, epochs)
        return 0

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer steps, 1 seed and 3 epochs")
    parser.add_argument("--output", default=None,
                        help="also write the report to this file")
    args = parser.parse_args(argv)
    from benchmarks import machine
    from keras_signadam.backend.tensorflow import majority_vote

    steps = 5 if args.quick else 40
    width = 256 if args.quick else 2048
    seeds = (0,) if args.quick else (0, 1, 2)
    epochs = 3 if args.quick else 30
    started = time.time()
    report = machine.Report(
        "Sign-compressed communication: majority vote against the float32 "
        "all-reduce")
    emit = report.emit
    emit("Generated by `python -m benchmarks.communication"
         f"{' --quick' if args.quick else ''}`.")
    emit()

    emit("## Bytes per replica per step")
    emit()
    emit(f"Digits MLP of width {width} under MirroredStrategy on logical "
         "CPUs, SignAdamPP. *Sent* and *received*: the tensors one replica "
         "gives to and gets from the collective call. *Wire*: bytes one "
         "replica sends under the ring algorithm. Ratio: float32 wire "
         "bytes over this row's.")
    emit()
    table(emit, BYTES_HEADER)
    measured = {}
    for replicas in (2, 4, 8):
        rows = run_child("bytes", replicas, steps, width)
        exact = None
        for row in rows:
            wire = wire_bytes(row["collective"], row["sent"], replicas)
            if row["mode"] == "sum":
                exact = wire
            bits = 8 * row["sent"] / row["parameters"]
            chosen = (row["mode"] == majority_vote.collective_for(replicas))
            label = ("float32 sum" if row["mode"] == "sum"
                     else "majority vote")
            emit(f"| {replicas} | {label} | {row['collective']} | "
                 f"{row['sent']} | {row['received']} | {bits:.2f} | "
                 f"{wire:.0f} | {exact / wire:.2f}x | "
                 f"{'yes' if chosen else ''} | {row['step_ms']:.1f} |")
            measured[(replicas, row["mode"])] = wire / row["parameters"]
            model_wire = majority_vote.ring_bytes_sent(
                "float32_all_reduce" if row["mode"] == "sum"
                else row["mode"], row["parameters"], replicas)
            # The cost model below rests on the formula: it must agree.
            assert abs(model_wire - wire) < 1e-6 * max(wire, 1), (
                row, model_wire)
    emit()

    emit("## Digits test accuracy at 4 replicas")
    emit()
    emit(f"Digits MLP (width 128), global batch 128 (32 per replica), "
         f"lr 1e-3, {epochs} epochs, seeds {list(seeds)}; mean ± standard "
         "error of the test accuracy.")
    emit()
    table(emit, ACCURACY_HEADER)
    rows = run_child("accuracy", 4, epochs, *seeds)
    feedback_gaps = {}
    for name in SIGN_OPTIMIZERS:
        (em, ee), (vm, ve), (fm, fe) = (
            mean_and_error([r["test_accuracy"] for r in rows
                            if r["optimizer"] == name and r["mode"] == mode])
            for mode in ACCURACY_MODES)
        feedback_gaps[name] = fm - em
        emit(f"| {name} | {plus_minus(em, ee)} | {plus_minus(vm, ve)} | "
             f"{vm - em:+.4f} | {plus_minus(fm, fe)} | {fm - em:+.4f} |")
    emit()
    for name in ("Signum", "SignAdamPP"):
        gap = feedback_gaps[name]
        emit(f"- Target: {name}'s vote with error feedback within "
             f"{100 * EF_TOLERANCE:g} points of exact aggregation at 4 "
             f"replicas: {100 * gap:+.2f} points, "
             f"{'met' if gap >= -EF_TOLERANCE else 'NOT met'}.")
    emit()

    emit("## Cost model: communication time per step")
    emit()
    emit(f"A {RESNET50_PARAMETERS / 1e6:.1f}M-parameter model (ResNet-50), "
         "ring algorithms, link speed per replica, no overlap with compute. "
         "Bytes per parameter from `majority_vote.ring_bytes_sent`, which "
         "matches the bytes measured above at 2, 4 and 8 replicas; the "
         "vote uses the collective the optimizer chooses.")
    emit()
    table(emit, COST_HEADER)
    n = RESNET50_PARAMETERS
    for replicas in (8, 16, 32, 64, 128, 256):
        exact = majority_vote.ring_bytes_sent("float32_all_reduce", n,
                                              replicas)
        voted = majority_vote.ring_bytes_sent(
            majority_vote.collective_for(replicas), n, replicas)
        cells = []
        for gbit in (1, 10, 100):
            seconds = [b * 8 / (gbit * 1e9) for b in (exact, voted)]
            cells.append(f"{1e3 * seconds[0]:.1f} / {1e3 * seconds[1]:.1f}")
        emit(f"| {replicas} | {exact / n:.3f} | {voted / n:.3f} | "
             f"{exact / voted:.2f}x | {' | '.join(cells)} |")
    emit()
    emit(f"Total time {time.time() - started:.0f} s.")
    report.save(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
