"""One worker of a two-worker MultiWorkerMirroredStrategy run on loopback.

    multi_worker.py INDEX PORT0 PORT1 OPTIMIZERS OUTPUT.npz

Trains a few steps on the bundled digits with each of the comma-separated
OPTIMIZERS in turn (one model each, under the one strategy a process may
create) and writes the final weights and optimizer variables, keyed by
optimizer (`NAME/local_I` for the inner optimizer of `LocalSteps`, whose
state is each worker's own). Keras 3's `model.fit` does not run under
this strategy (keras-team/keras#20585: the per-replica batch reaches a tensor
conversion), so the steps are a custom loop: `strategy.run` with
`optimizer.apply`, which all-reduces the gradients and updates every
replica through the optimizer's distributed path.
"""

import json
import os
import sys

index, port0, port1, names, output = sys.argv[1:6]
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]},
    "task": {"type": "worker", "index": int(index)},
})
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_signadam as ks  # noqa: E402
from keras_signadam.comparison import datasets  # noqa: E402
from keras_signadam.comparison import models  # noqa: E402

FACTORIES = {
    "SignAdamPP": lambda: ks.SignAdamPP(1e-3),
    "SignAdamPP majority vote": lambda: ks.SignAdamPP(
        1e-3, aggregation="majority_vote"),
    "Signum": lambda: ks.Signum(1e-3),
    "NovoGrad": lambda: ks.NovoGrad(1e-2),
    # Rounds of 4 steps: the 16 steps end on a round's end.
    "LocalSteps sign": lambda: ks.LocalSteps(ks.SignAdamPP(1e-3), steps=4,
                                             outer="sign"),
    "LocalSteps average": lambda: ks.LocalSteps(keras.optimizers.Adam(1e-3),
                                                steps=4),
    "LocalSteps top_k": lambda: ks.LocalSteps(keras.optimizers.Adam(1e-3),
                                              steps=4, outer="top_k",
                                              outer_learning_rate=1.0,
                                              outer_momentum=0.0),
}

strategy = tf.distribute.MultiWorkerMirroredStrategy()
GLOBAL_BATCH = 64
(x, y), _ = datasets.load_digits()
dataset = tf.data.Dataset.from_tensor_slices((x[:512], y[:512])).batch(
    GLOBAL_BATCH)
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = (
    tf.data.experimental.AutoShardPolicy.DATA)
dataset = strategy.experimental_distribute_dataset(
    dataset.with_options(options))
loss_fn = keras.losses.SparseCategoricalCrossentropy(
    from_logits=True, reduction="none")


def train(name):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = models.mlp((8, 8, 1), 10, width=24)
        optimizer = FACTORIES[name]()
        optimizer.build(model.trainable_variables)

    @tf.function
    def train_step(batch):
        def step(xb, yb):
            with tf.GradientTape() as tape:
                per_example = loss_fn(yb, model(xb, training=True))
                loss = tf.nn.compute_average_loss(
                    per_example, global_batch_size=GLOBAL_BATCH)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return loss

        losses = strategy.run(step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses,
                               axis=None)

    epoch_losses = []
    for _ in range(2):
        epoch_losses.append(np.mean([float(train_step(b))
                                     for b in dataset]))
    arrays = {f"{name}/weight_{i}": w
              for i, w in enumerate(model.get_weights())}
    # The inner optimizer of LocalSteps keeps each worker's own state.
    inner = getattr(optimizer, "optimizer", None)
    own = {id(v) for v in inner.variables} if inner is not None else set()
    arrays.update({f"{name}/{'local' if id(v) in own else 'optimizer'}_{i}":
                   v.numpy() for i, v in enumerate(optimizer.variables)})
    arrays[f"{name}/loss"] = np.array(epoch_losses)
    return arrays


arrays = {}
for name in names.split(","):
    arrays.update(train(name))
arrays["replicas"] = np.array(strategy.num_replicas_in_sync)
np.savez(output, **arrays)
print("DONE", flush=True)
