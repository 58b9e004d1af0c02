"""One worker of the slow-link benchmark (run by `__main__` inside the
namespace, one process per worker):

    python -m benchmarks.slow_link.worker INDEX WORKERS PORT PLAN OUTPUT

Joins a `MultiWorkerMirroredStrategy` of WORKERS processes on 127.0.0.1
ports PORT .. PORT + WORKERS - 1 and runs the jobs of the JSON file PLAN in
order, each with a custom `strategy.run` loop on the digits (the quality
benchmark's split). Worker 0 writes one JSON line per job to OUTPUT.

Jobs:
- ``{"kind": "time", "config", "width", "lr", "steps", "budget"}``: the
  median step time over up to `steps` steps (fewer once `budget` seconds
  have passed, at least 3), the bytes every worker sent over the
  loopback per step (its counter, read inside the namespace), the payload
  each replica handed the collectives, and the median time of the same
  step without any collective (gradients and the update on one worker's
  share of the batch; all workers measure it at once, so the cores are as
  shared as in the real step).
- ``{"kind": "train", "config", "width", "lr", "seed", "epochs",
  "evals_per_epoch"}``: trains and, on worker 0, evaluates the validation
  accuracy `evals_per_epoch` times per epoch with the clock stopped;
  returns (training seconds, step, validation accuracy) at every
  evaluation and the final test accuracy. The clock leaves out the first
  step, which traces and compiles.
"""

import gc
import json
import os
import sys
import time

from benchmarks import distributed_step
from benchmarks.network_namespace import loopback_bytes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

GLOBAL_BATCH = 128
HEARTBEAT_TIMEOUT_MS = 600_000


def optimizer_for(config, lr):
    import keras

    import keras_signadam as ks

    factories = {
        "Adam": lambda: keras.optimizers.Adam(lr),
        "SignAdamPP sum": lambda: ks.SignAdamPP(lr),
        "SignAdamPP vote": lambda: ks.SignAdamPP(
            lr, aggregation="majority_vote"),
        "SignAdamPP vote EF": lambda: ks.SignAdamPP(
            lr, aggregation="majority_vote", error_feedback=True),
        "Signum sum": lambda: ks.Signum(lr),
        "Signum vote": lambda: ks.Signum(lr, aggregation="majority_vote"),
        "Signum vote EF": lambda: ks.Signum(
            lr, aggregation="majority_vote", error_feedback=True),
        # Local steps: the inner optimizer's rate is `lr`; the outer step
        # keeps LocalSteps' defaults (DiLoCo's 0.7 and Nesterov 0.9).
        "DiLoCo Adam": lambda: ks.LocalSteps(
            keras.optimizers.Adam(lr), steps=ROUND, outer="average"),
        "Local Adam + sign outer": lambda: ks.LocalSteps(
            keras.optimizers.Adam(lr), steps=ROUND, outer="sign"),
        "Local SignAdamPP + sign outer": lambda: ks.LocalSteps(
            ks.SignAdamPP(lr), steps=ROUND, outer="sign"),
        # The outer step in SparseLoCo's form (Sarfi et al., 2025): no
        # outer momentum, each worker's residual taking its place, and the
        # voted change applied whole (rate 1).
        "Local Adam + sign outer (mu=0)": lambda: ks.LocalSteps(
            keras.optimizers.Adam(lr), steps=ROUND, outer="sign",
            outer_learning_rate=1.0, outer_momentum=0.0),
        # SparseLoCo's own compression: the largest 1/64 of each chunk of
        # the change with 2-bit values, which sends so little that rounds
        # can be short (H = 4: about 200x fewer bytes than Adam's
        # all-reduce at 4 workers).
        "Local Adam + top-k outer (H=4)": lambda: ks.LocalSteps(
            keras.optimizers.Adam(lr), steps=SHORT_ROUND, outer="top_k",
            outer_learning_rate=1.0, outer_momentum=0.0),
    }
    return factories[config]()


# Steps per round of the local-steps configurations: LocalSteps' default.
ROUND = 16
SHORT_ROUND = 4
CONFIGS = ("Adam", "SignAdamPP sum", "SignAdamPP vote", "SignAdamPP vote EF",
           "Signum sum", "Signum vote", "Signum vote EF", "DiLoCo Adam",
           "Local Adam + sign outer", "Local SignAdamPP + sign outer",
           "Local Adam + sign outer (mu=0)", "Local Adam + top-k outer (H=4)")
LOCAL = tuple(c for c in CONFIGS if c.startswith(("DiLoCo", "Local")))
# Trained end to end for time to accuracy: all but Signum's float sum,
# which only gives the Signum votes' step times a baseline.
TRAINED = tuple(c for c in CONFIGS if c != "Signum sum")


def model_for(width):
    import keras

    return keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(),
        keras.layers.Dense(width, activation="relu"),
        keras.layers.Dense(width, activation="relu"),
        keras.layers.Dense(10)])


def variable_sizes(width):
    """Components of each variable of `model_for(width)`, in order."""
    return [64 * width, width, width * width, width, width * 10, 10]


def parameters(width):
    return sum(variable_sizes(width))


class Payload:
    """Bytes each replica hands the replica-context collectives (patched
    in, so nothing is assumed)."""

    def __init__(self):
        import tensorflow as tf

        self.sent = 0
        context = tf.distribute.ReplicaContext
        originals = (context.all_reduce, context.all_gather)
        log = self

        def size(values):
            return sum(v.shape.num_elements() * v.dtype.size
                       for v in tf.nest.flatten(values))

        def all_reduce(self, reduce_op, value, options=None):
            log.sent += size(value)
            return originals[0](self, reduce_op, value, options)

        def all_gather(self, value, axis, options=None):
            log.sent += size(value)
            return originals[1](self, value, axis, options)

        context.all_reduce, context.all_gather = all_reduce, all_gather


class Trainer:
    """A model, its optimizer and the distributed and local train steps."""

    def __init__(self, strategy, config, width, lr, seed, data, workers,
                 payload):
        import keras

        self.strategy = strategy
        self.train, self.val, self.test = data
        x, y = self.train
        with strategy.scope():
            keras.utils.set_random_seed(seed)
            self.model = model_for(width)
            self.optimizer = optimizer_for(config, lr)
            self.optimizer.build(self.model.trainable_variables)
        self.loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="none")
        self.batches = distributed_step.distributed_batches(
            strategy, x, y, GLOBAL_BATCH, seed=seed)
        self.steps_per_epoch = len(x) // GLOBAL_BATCH
        self.payload, self.calls = payload, None
        step = distributed_step.train_step(strategy, self.model,
                                           self.optimizer, GLOBAL_BATCH)

        self._step = step
        self.workers = workers
        self.config, self.width, self.lr, self.seed = config, width, lr, seed

    def step(self):
        before = self.payload.sent
        self._step(next(self.batches))
        if self.calls is None:  # the first call traces: its bytes count
            self.calls = self.payload.sent - before

    def accuracy(self, split):
        """On this worker alone: calling the model reads the local copies
        of the variables, with no collective (`predict` under the strategy
        would start one that the other workers never join)."""
        import keras
        import numpy as np

        x, y = split
        logits = keras.ops.convert_to_numpy(self.model(x, training=False))
        return float(np.mean(np.argmax(logits, axis=1) == y))

    def local_step_time(self, steps):
        """Median time of gradients and update on one worker's share of
        the batch, outside the strategy: no collective at all."""
        import tensorflow as tf

        model = model_for(self.width)
        optimizer = local_optimizer(self.config, self.lr)
        optimizer.build(model.trainable_variables)
        share = GLOBAL_BATCH // self.workers
        xb, yb = (tf.constant(a[:share]) for a in self.train)
        loss = self.loss

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                value = tf.reduce_mean(loss(yb, model(xb, training=True)))
            grads = tape.gradient(value, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)

        return median_time(step, steps)[0]


def local_optimizer(config, lr):
    """The configuration's optimizer with the exact sum (on one device,
    a vote or a residual changes nothing in what is computed)."""
    import keras

    import keras_signadam as ks

    if config.startswith(("Adam", "DiLoCo Adam", "Local Adam")):
        return keras.optimizers.Adam(lr)
    return getattr(ks, config.replace("Local ", "").split(" ")[0])(lr)


def median_time(step, steps, budget=None, warm_up=2):
    for _ in range(warm_up):
        step()
    times, start = [], time.perf_counter()
    for _ in range(steps):
        begin = time.perf_counter()
        step()
        times.append(time.perf_counter() - begin)
        if budget and len(times) >= 3 and (
                time.perf_counter() - start) > budget:
            break
    times.sort()
    return times[len(times) // 2], len(times)


def barrier(strategy):
    """Returns on each worker once every worker has called it (a
    one-number all-reduce, a few hundred bytes on the wire)."""
    import tensorflow as tf

    one = strategy.run(lambda: tf.constant(1.0))
    strategy.reduce(tf.distribute.ReduceOp.SUM, one, axis=None)


def time_job(strategy, job, data, workers, payload):
    trainer = Trainer(strategy, job["config"], job["width"], job["lr"], 0,
                      data, workers, payload)
    trainer.step()
    # Worker 0 reads a counter that all workers' traffic moves: without
    # the barriers, a worker still in its last step (or already in its
    # next) would leave bytes outside the window, which over a few timed
    # steps is a few percent.
    barrier(strategy)
    sent_before = loopback_bytes()
    step_seconds, steps = median_time(trainer.step, job["steps"],
                                      job["budget"], warm_up=1)
    barrier(strategy)
    sent_after = loopback_bytes()
    # Every timed step plus the warm-up step after the counter started.
    counted = steps + 1
    compute = trainer.local_step_time(5)
    return dict(
        job, parameters=parameters(job["width"]),
        step_ms=1e3 * step_seconds, compute_ms=1e3 * compute,
        timed_steps=steps,
        payload_bytes=trainer.calls,
        wire_bytes_per_step=(None if sent_before is None
                             else (sent_after - sent_before) / counted))


def optimizer_bytes(optimizer, workers):
    """What one worker sends per step, by the optimizer's own account
    (the ring algorithms' bytes of its collectives); None for an
    optimizer that does not say."""
    bytes_sent = getattr(optimizer, "bytes_sent", None)
    return None if bytes_sent is None else float(bytes_sent(workers))


def train_job(strategy, job, data, workers, payload, index):
    trainer = Trainer(strategy, job["config"], job["width"], job["lr"],
                      job["seed"], data, workers, payload)
    per_epoch = trainer.steps_per_epoch
    every = max(1, per_epoch // job["evals_per_epoch"])
    curve, elapsed = [], 0.0
    sent_before = loopback_bytes()
    for step in range(1, job["epochs"] * per_epoch + 1):
        begin = time.perf_counter()
        trainer.step()
        # The first step traces and compiles (more so for the vote's
        # functions): a cost paid once per process, left off the clock.
        if step > 1:
            elapsed += time.perf_counter() - begin
        if index == 0 and (step % every == 0
                           or step == job["epochs"] * per_epoch):
            curve.append([round(elapsed, 4), step,
                          trainer.accuracy(trainer.val)])
    sent_after = loopback_bytes()
    steps = job["epochs"] * per_epoch
    result = dict(job, parameters=parameters(job["width"]), curve=curve,
                  steps=steps, wire_bytes_per_step=(
                      None if sent_before is None
                      else (sent_after - sent_before) / steps),
                  optimizer_bytes_per_step=optimizer_bytes(
                      trainer.optimizer, workers))
    if index == 0:
        result["test_accuracy"] = trainer.accuracy(trainer.test)
    return result


def main(argv):
    index, workers, port = map(int, argv[:3])
    plan_path, output_path = argv[3], argv[4]
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{port + i}"
                               for i in range(workers)]},
        "task": {"type": "worker", "index": index}})
    import tensorflow as tf

    cores = os.cpu_count() or 1
    tf.config.threading.set_intra_op_parallelism_threads(
        max(1, cores // workers))
    tf.config.threading.set_inter_op_parallelism_threads(
        max(1, cores // workers))
    # At 100 Mbit/s a float32 all-reduce of 10M parameters among 4 workers
    # queues tens of seconds of traffic ahead of the coordination
    # service's heartbeats, past its 10 s default: the strategy keeps a
    # service configured before it is built, so this one waits longer.
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    context.context().configure_coordination_service(
        service_type="standalone", service_leader="/job:worker/task:0",
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(
            name="worker", num_tasks=workers)],
        heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_MS)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation
            .RING))
    import keras

    from benchmarks.quality.tasks import load_digits

    data = load_digits()
    payload = Payload()
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    out = open(output_path, "a", encoding="utf-8") if index == 0 else None
    for job in plan:
        if job["kind"] == "time":
            result = time_job(strategy, job, data, workers, payload)
        else:
            result = train_job(strategy, job, data, workers, payload, index)
        if out is not None:
            out.write(json.dumps(dict(result, workers=workers)) + "\n")
            out.flush()
        # A job's model and state (10M parameters) are not needed again.
        keras.backend.clear_session()
        gc.collect()
    if out is not None:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
