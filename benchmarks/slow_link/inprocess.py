"""The slow-link benchmark's measurements that need no network (a child
process each, since logical devices are fixed at start-up):

    python -m benchmarks.slow_link.inprocess steps REPLICAS WIDTH STEPS OUTPUT
    python -m benchmarks.slow_link.inprocess select REPLICAS PLAN OUTPUT

`steps`: the median step time of the float32 sum and of the vote under a
MirroredStrategy of REPLICAS logical CPUs in this one process (4.35M
parameters at WIDTH 2048), SignAdamPP.
`select`: for each (configuration, learning rate) of PLAN, one training run
under a MirroredStrategy of REPLICAS logical CPUs (the same arithmetic as
that many workers, votes included) and its final validation accuracy.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def strategy_of(replicas):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    # Each replica's collective op holds an inter-op thread until every
    # replica has joined: with fewer threads than replicas (the default
    # is one per core) a step can wait forever. Seen at 4 replicas on 2
    # cores, after 18 training runs.
    tf.config.threading.set_inter_op_parallelism_threads(replicas + 2)
    return tf.distribute.MirroredStrategy(
        [f"/cpu:{i}" for i in range(replicas)])


def steps(replicas, width, count, output):
    from benchmarks.quality.tasks import load_digits
    from benchmarks.slow_link import worker

    strategy = strategy_of(replicas)
    data = load_digits()
    payload = worker.Payload()
    rows = []
    for config in ("SignAdamPP sum", "SignAdamPP vote"):
        trainer = worker.Trainer(strategy, config, width, 1e-3, 0, data,
                                 replicas, payload)
        seconds, timed = worker.median_time(trainer.step, count)
        rows.append(dict(config=config, replicas=replicas,
                         parameters=worker.parameters(width),
                         step_ms=1e3 * seconds, timed_steps=timed))
    with open(output, "w", encoding="utf-8") as f:
        json.dump(rows, f)


def select(replicas, plan_path, output):
    import gc

    import keras

    from benchmarks.quality.tasks import load_digits
    from benchmarks.slow_link import worker

    strategy = strategy_of(replicas)
    data = load_digits()
    payload = worker.Payload()
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    with open(output, "a", encoding="utf-8") as out:
        for job in plan:
            trainer = worker.Trainer(strategy, job["config"], job["width"],
                                     job["lr"], job["seed"], data, replicas,
                                     payload)
            for _ in range(job["epochs"] * trainer.steps_per_epoch):
                trainer.step()
            out.write(json.dumps(dict(
                job, val_accuracy=trainer.accuracy(trainer.val))) + "\n")
            out.flush()
            # Each model holds 10M parameters on every replica, with
            # their state: free them before the next.
            del trainer
            keras.backend.clear_session()
            gc.collect()


def main(argv):
    mode, replicas = argv[0], int(argv[1])
    if mode == "steps":
        steps(replicas, int(argv[2]), int(argv[3]), argv[4])
    elif mode == "select":
        select(replicas, argv[2], argv[3])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
