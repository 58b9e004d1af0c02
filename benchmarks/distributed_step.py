"""The custom `strategy.run` training step the communication and
slow-link benchmarks time: its only collective is the optimizer's
gradient aggregation (the float32 all-reduce or the vote), so what they
measure is that aggregation and nothing Keras adds around `fit`."""


def distributed_batches(strategy, x, y, global_batch, seed=None):
    """An endless iterator of global batches of (x, y), each replica
    getting its share (sharded by data, reshuffled every pass when `seed`
    is given)."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if seed is not None:
        dataset = dataset.shuffle(len(x), seed=seed,
                                  reshuffle_each_iteration=True)
    dataset = dataset.repeat().batch(global_batch, drop_remainder=True)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return iter(strategy.experimental_distribute_dataset(
        dataset.with_options(options)))


def train_step(strategy, model, optimizer, global_batch):
    """A `tf.function` taking one distributed batch: every replica computes
    its gradient of the cross-entropy averaged over the global batch and
    hands it to `optimizer.apply`, which aggregates across replicas."""
    import keras
    import tensorflow as tf

    loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="none")

    @tf.function
    def step(inputs):
        def replica_step(xb, yb):
            with tf.GradientTape() as tape:
                value = tf.nn.compute_average_loss(
                    loss(yb, model(xb, training=True)),
                    global_batch_size=global_batch)
            grads = tape.gradient(value, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)

        strategy.run(replica_step, args=inputs)

    return step
