"""Run in a fresh process: four logical CPUs, MirroredStrategy over the
first `replicas` of them.

For each case of the JSON list in argv[1] ({"inner", "outer", "steps",
"eta", "mu", "nesterov", "shapes", "dtype", "seed", "replicas", and
optionally "density"}), applies
`LocalSteps` for 3 rounds and a half to variables of those shapes under a
MirroredStrategy with the given number of replicas, each replica given a
gradient of its own (drawn from the seed; a few components non-finite),
scaled as Keras scales a replica's gradient (its share's mean divided by
the replicas). Prints one JSON line per case: every replica's copy of
every variable after every step, and the anchors at the end.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 4)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_signadam as ks  # noqa: E402

INNER = {
    "SignAdamPP": lambda: ks.SignAdamPP(0.01, threshold=0.05),
    "Signum": lambda: ks.Signum(0.01),
    "Adam": lambda: keras.optimizers.Adam(0.01),
    "SGD": lambda: keras.optimizers.SGD(0.01),
}


def gradients(case, steps):
    rng = np.random.default_rng(case["seed"])
    out = []
    for _ in range(steps):
        per_replica = []
        for _ in range(case["replicas"]):
            grads = [rng.normal(size=s).astype("float32")
                     for s in case["shapes"]]
            grads[0].flat[rng.integers(grads[0].size)] = np.nan
            per_replica.append(grads)
        out.append(per_replica)
    return out


def run(case):
    replicas = case["replicas"]
    strategy = tf.distribute.MirroredStrategy(
        [f"/cpu:{i}" for i in range(replicas)])
    rng = np.random.default_rng(1000 + case["seed"])
    initial = [rng.normal(size=s).astype("float32") for s in case["shapes"]]
    with strategy.scope():
        variables = [keras.Variable(v, dtype=case["dtype"], name=f"v{i}")
                     for i, v in enumerate(initial)]
        optimizer = ks.optimizers.LocalSteps(
            INNER[case["inner"]](), steps=case["steps"],
            outer=case["outer"], outer_learning_rate=case["eta"],
            outer_momentum=case["mu"], nesterov=case["nesterov"],
            outer_density=case.get("density", 1 / 64))
        optimizer.build(variables)
    total = case["steps"] * 3 + case["steps"] // 2 + 1
    all_grads = gradients(case, total)

    @tf.function
    def step(grads):
        def replica_fn(g):
            optimizer.apply(g, variables)

        strategy.run(replica_fn, args=(grads,))

    trajectory = []
    for step_grads in all_grads:
        distributed = strategy.experimental_distribute_values_from_function(
            lambda ctx, step_grads=step_grads: [
                tf.constant(g / replicas)
                for g in step_grads[ctx.replica_id_in_sync_group]])
        step(distributed)
        trajectory.append([[np.asarray(c.numpy(), "float32").tolist()
                            for c in strategy.experimental_local_results(
                                v.value)] for v in variables])
    return dict(case, initial=[v.tolist() for v in initial],
                gradients=[[[g.tolist() for g in r] for r in s]
                           for s in all_grads],
                trajectory=trajectory,
                anchors=[np.asarray(a.numpy(), "float32").tolist()
                         for a in optimizer.anchors],
                iterations=int(optimizer.iterations.numpy()))


if __name__ == "__main__":
    for case in json.loads(sys.argv[1]):
        print(json.dumps(run(case)), flush=True)
